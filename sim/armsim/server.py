"""The HTTPS front of the simulator: ARM's wire protocol, the identity platform and test controls.

Request pipeline, in the order ARM applies it: authentication -> throttling -> api-version ->
subscription -> provider registration -> resource group -> body validation -> the operation.
Every request is recorded (method, path, operation id, class, status) for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from simcore.controls import common_control
from simcore.faults import Fault, RecordedRequest, drop
from simcore.front import SimulatorFront

from .identity import Identity
from .schema import OpenApiDocument, load_document
from .throttle import Throttle, operation_class
from .world import JSON, ArmError, Operation, RevisionFailure, World

ARM_AUDIENCES = ("https://management.azure.com/", "https://management.core.windows.net/")
SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
APP = RG + r"/providers/Microsoft\.App/containerApps/(?P<app>[^/]+)"
ENV = RG + r"/providers/Microsoft\.App/managedEnvironments/(?P<env>[^/]+)"
REV = APP + r"/revisions/(?P<rev>[^/]+)"
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")

Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass
class SimulatorConfig:
    subscription_id: str = "8f3c2b9e-1d4a-4c7b-9e2f-5a6b7c8d9e0f"
    tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    client_id: str = "0c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"
    client_secret: str = "sim-client-secret"  # noqa: S105 - a test credential of the simulator itself
    registered_providers: tuple[str, ...] = ()
    retry_after: int = 1
    throttling: bool = False
    openapi: Path | None = None
    latency: dict[str, float] = field(default_factory=dict)


class Simulator(SimulatorFront):
    """An ARM + identity simulator. Use ``start()``/``stop()`` from asyncio, or run ``python -m armsim``."""

    workdir_prefix = "armsim-"
    max_body = 8 * 1024 * 1024
    world: World

    def __init__(self, config: SimulatorConfig | None = None, workdir: Path | None = None):
        super().__init__(workdir)
        self.config = config or SimulatorConfig()
        self.world = World([self.config.subscription_id], self.config.registered_providers)
        self.world.latency.update(self.config.latency)
        self.identity = Identity(self.config.tenant_id, {self.config.client_id: self.config.client_secret},
                                 {self.config.client_id})
        self.throttle = Throttle(enabled=self.config.throttling)
        self.retry_after = self.config.retry_after
        self.document: OpenApiDocument | None = load_document(str(self.config.openapi)) if self.config.openapi else None
        self._routes = self._route_table()

    # ----- lifecycle ----------------------------------------------------------------------------
    async def start(self, port: int = 0) -> None:
        await super().start(port)
        self.world.log_stream_base = self.endpoint + "/_logstream"

    def info(self) -> JSON:
        return {
            "armEndpoint": self.endpoint,
            "authorityHost": self.endpoint,
            "caBundle": str(self.certs.ca_file) if self.certs else None,
            "tenantId": self.config.tenant_id,
            "subscriptionId": self.config.subscription_id,
            "clientId": self.config.client_id,
            "clientSecret": self.config.client_secret,
            "controls": self.endpoint + "/_sim",
            "ingress": f"127.0.0.1:{self.ingress.port}" if self.ingress else None,
        }

    @property
    def schedule(self) -> World:
        return self.world

    # ----- controls -----------------------------------------------------------------------------
    def fail_revisions(self, image_contains: str, message: str | None = None, code: str | None = None) -> None:
        rule = RevisionFailure(image_contains)
        if message:
            rule.message = message
        if code:
            rule.code = code
        self.world.revision_failures.append(rule)

    def fail_next_operation(self, kind: str, code: str, message: str) -> None:
        self.world.operation_failures.setdefault(kind, []).append(ArmError(400, code, message))

    def clear_faults(self) -> None:
        self.faults.clear()
        self.world.revision_failures.clear()
        self.world.operation_failures.clear()

    async def _controls(self, request: web.Request, path: str) -> web.StreamResponse:
        body: Any = await request.json() if request.can_read_body else {}
        common = common_control(self, request.method, path, request.query, body)
        if common is not None:
            return common
        route = (request.method, path.rstrip("/"))
        if route == ("PUT", "/_sim/retry-after"):
            self.retry_after = int(body["seconds"])
            return web.json_response({"seconds": self.retry_after})
        if route == ("POST", "/_sim/revision-failures"):
            self.fail_revisions(body["imageContains"], body.get("message"), body.get("code"))
            return web.json_response({})
        if route == ("POST", "/_sim/operation-failures"):
            self.fail_next_operation(body["kind"], body["code"], body["message"])
            return web.json_response({})
        return web.json_response({"error": f"no control {request.method} {path}"}, status=404)

    # ----- dispatch -----------------------------------------------------------------------------
    def _route_table(self) -> list[tuple[str, re.Pattern[str], str, Handler]]:
        table: list[tuple[str, str, str, Handler]] = [
            ("GET", SUB + r"/providers/(?P<ns>[^/]+)", "Providers_Get", self._provider_get),
            ("POST", SUB + r"/providers/(?P<ns>[^/]+)/register", "Providers_Register", self._provider_register),
            ("GET", SUB + r"/providers/Microsoft\.App/locations/(?P<loc>[^/]+)/(?P<kind>containerappOperationStatuses|"
             r"managedEnvironmentOperationStatuses)/(?P<op>[^/]+)", "OperationStatus_Get", self._operation_status),
            ("GET", SUB + r"/providers/Microsoft\.App/locations/(?P<loc>[^/]+)/(?P<kind>containerappOperationResults|"
             r"managedEnvironmentOperationResults)/(?P<op>[^/]+)", "OperationResult_Get", self._operation_result),
            ("GET", SUB + r"/operationresults/(?P<op>[^/]+)", "OperationResult_Get", self._operation_result),
            ("PUT", RG, "ResourceGroups_CreateOrUpdate", self._group_put),
            ("GET", RG, "ResourceGroups_Get", self._group_get),
            ("HEAD", RG, "ResourceGroups_CheckExistence", self._group_head),
            ("DELETE", RG, "ResourceGroups_Delete", self._group_delete),
            ("GET", ENV, "ManagedEnvironments_Get", self._env_get),
            ("PUT", ENV, "ManagedEnvironments_CreateOrUpdate", self._env_put),
            ("PATCH", ENV, "ManagedEnvironments_Update", self._env_patch),
            ("DELETE", ENV, "ManagedEnvironments_Delete", self._env_delete),
            ("GET", RG + r"/resources", "Resources_ListByResourceGroup", self._group_resources),
            ("GET", RG + r"/providers/Microsoft\.App/managedEnvironments", "ManagedEnvironments_ListByResourceGroup",
             self._env_list),
            ("GET", RG + r"/providers/Microsoft\.App/containerApps", "ContainerApps_ListByResourceGroup", self._app_list),
            ("GET", SUB + r"/providers/Microsoft\.App/containerApps", "ContainerApps_ListBySubscription", self._app_list),
            ("GET", APP, "ContainerApps_Get", self._app_get),
            ("PUT", APP, "ContainerApps_CreateOrUpdate", self._app_put),
            ("PATCH", APP, "ContainerApps_Update", self._app_patch),
            ("DELETE", APP, "ContainerApps_Delete", self._app_delete),
            ("POST", APP + r"/listSecrets", "ContainerApps_ListSecrets", self._app_secrets),
            ("POST", APP + r"/getAuthtoken", "ContainerApps_GetAuthToken", self._app_token),
            ("GET", APP + r"/revisions", "ContainerAppsRevisions_ListRevisions", self._rev_list),
            ("GET", REV, "ContainerAppsRevisions_GetRevision", self._rev_get),
            ("POST", REV + r"/activate", "ContainerAppsRevisions_ActivateRevision", self._rev_action),
            ("POST", REV + r"/deactivate", "ContainerAppsRevisions_DeactivateRevision", self._rev_action),
            ("POST", REV + r"/restart", "ContainerAppsRevisions_RestartRevision", self._rev_action),
            ("GET", REV + r"/replicas", "ContainerAppsRevisionReplicas_ListReplicas", self._replica_list),
            ("GET", REV + r"/replicas/(?P<replica>[^/]+)", "ContainerAppsRevisionReplicas_GetReplica", self._replica_get),
        ]
        return [(m, re.compile(p + "$", re.IGNORECASE), op, h) for m, p, op, h in table]

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str], Handler] | None:
        for route_method, pattern, operation, handler in self._routes:
            found = pattern.match(path)
            if found and route_method == method:
                return operation, found.groupdict(), handler
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim"):
            return await self._controls(request, path)
        if path.startswith("/_logstream/"):
            return await self._logstream(request, path[len("/_logstream"):])
        if "/oauth2/" in path or "/.well-known/" in path:
            return await self._identity(request, path)
        return await self._arm(request, path)

    async def _arm(self, request: web.Request, path: str) -> web.StreamResponse:
        started = time.monotonic()
        matched = self._match(request.method, path)
        operation = matched[0] if matched else "Unknown"
        klass = operation_class(request.method)
        sub = path.split("/")[2] if path.lower().startswith("/subscriptions/") and path.count("/") >= 2 else None
        record = RecordedRequest(started, request.method, path, operation, klass, 0, sub)
        self.requests.append(record)
        self.world.settle()
        fault = self.faults.take(request.method, path, operation)
        if fault and fault.action == "drop" and fault.when == "before":
            return drop(request, record)
        try:
            self._authenticate(request)
            headers = self._throttle(sub, klass)
            if self.world.latency.get("request"):
                await asyncio.sleep(self.world.latency["request"])
            if fault and fault.action == "status":
                raise _InjectedStatus(fault)
            if not matched:
                raise ArmError(404, "NoRegisteredProviderFound" if "/providers/" in path else "NotFound",
                               f"No registered resource provider found for {request.method} {path}.")
            if not _API_VERSION.match(request.query.get("api-version", "")):
                raise ArmError(400, "MissingApiVersionParameter",
                               "The api-version query parameter (?api-version=) is required for all requests.")
            response = await matched[2](request, matched[1])
            for name, value in headers.items():
                response.headers[name] = value
        except _InjectedStatus as injected:
            response = self._error_response(ArmError(injected.fault.status, injected.fault.code, injected.fault.message))
            if injected.fault.retry_after is not None:
                response.headers["Retry-After"] = str(injected.fault.retry_after)
        except _Throttled as throttled:
            response = self._error_response(ArmError(
                429, "SubscriptionRequestsThrottled",
                f"Number of '{klass}' requests for subscription '{sub}' exceeded the limit. Please try again after "
                f"'{throttled.retry_after}' seconds."))
            response.headers["Retry-After"] = str(throttled.retry_after)
            response.headers[f"x-ms-ratelimit-remaining-subscription-{klass}"] = "0"
        except ArmError as error:
            response = self._error_response(error)
        if fault and fault.action == "drop" and fault.when == "after":
            return drop(request, record)
        response.headers["x-ms-request-id"] = str(uuid.uuid4())
        response.headers["x-ms-correlation-request-id"] = request.headers.get("x-ms-client-request-id", str(uuid.uuid4()))
        record.status = response.status
        record.seconds = time.monotonic() - started
        return response

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        problem = self.identity.verify(header[7:].strip(), ARM_AUDIENCES)
        if problem:
            raise ArmError(401, "InvalidAuthenticationToken", problem)

    def _throttle(self, sub: str | None, klass: str) -> dict[str, str]:
        if sub is None:
            return {}
        allowed, remaining, retry_after = self.throttle.take(sub, klass)
        if not allowed:
            raise _Throttled(retry_after)
        return {f"x-ms-ratelimit-remaining-subscription-{klass}": str(remaining)}

    @staticmethod
    def _error_response(error: ArmError) -> web.Response:
        response = web.json_response(error.body(), status=error.status)
        response.headers["x-ms-failure-cause"] = "gateway" if error.status == 429 else "service"
        return response

    def _validate(self, definition: str, body: Any, partial: bool = False) -> None:
        if self.document is None:
            return
        problems = self.document.errors(definition, body, partial)
        if problems:
            raise ArmError(400, "InvalidRequestContent",
                           f"The request content was invalid and could not be deserialized: {'; '.join(problems[:5])}",
                           problems[0].split(":")[0])

    # ----- monitors -------------------------------------------------------------------------------
    def _monitor_url(self, op: Operation, kind: str, sub: str) -> str:
        return (f"{self.endpoint}/subscriptions/{sub}/providers/Microsoft.App/locations/{op.region}/{kind}/{op.id}"
                f"?api-version=2026-07-01")

    def _lro_headers(self, op: Operation, sub: str, header: str, kind: str) -> dict[str, str]:
        return {header: self._monitor_url(op, kind, sub), "Retry-After": str(self.retry_after)}

    def _operation(self, op_id: str) -> Operation:
        op = self.world.operations.get(op_id)
        if not op:
            raise ArmError(404, "OperationNotFound", f"Operation '{op_id}' was not found.")
        return op

    async def _operation_status(self, request: web.Request, p: dict[str, str]) -> web.Response:
        op = self._operation(p["op"])
        response = web.json_response(op.as_status())
        if op.status == "InProgress":
            response.headers["Retry-After"] = str(self.retry_after)
        return response

    async def _operation_result(self, request: web.Request, p: dict[str, str]) -> web.Response:
        op = self._operation(p["op"])
        if op.status == "InProgress":
            return web.Response(status=202, headers={"Location": str(request.url), "Retry-After": str(self.retry_after)})
        if op.status == "Failed" and op.error:
            return web.json_response({"error": op.error}, status=400)
        body = op.final_body() if op.final_body else None
        return web.json_response(body) if body is not None else web.Response(status=204)

    # ----- providers and resource groups ---------------------------------------------------------------
    async def _provider_get(self, request: web.Request, p: dict[str, str]) -> web.Response:
        return web.json_response(self.world.provider_body(p["sub"], p["ns"]))

    async def _provider_register(self, request: web.Request, p: dict[str, str]) -> web.Response:
        return web.json_response(self.world.register_provider(p["sub"], p["ns"]))

    async def _group_put(self, request: web.Request, p: dict[str, str]) -> web.Response:
        body = await _json_body(request)
        status, result = self.world.put_group(p["sub"], p["rg"], body)
        return web.json_response(result, status=status)

    async def _group_get(self, request: web.Request, p: dict[str, str]) -> web.Response:
        return web.json_response(self.world.group_body(self.world.group(p["sub"], p["rg"])))

    async def _group_head(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.subscription(p["sub"])
        exists = p["rg"].lower() in self.world.subscription(p["sub"]).groups
        return web.Response(status=204 if exists else 404)

    async def _group_delete(self, request: web.Request, p: dict[str, str]) -> web.Response:
        if p["rg"].lower() not in self.world.subscription(p["sub"]).groups:
            return web.Response(status=204)
        op = self.world.new_operation("resourceGroup.delete", p["rg"], "global", final_status=200)
        self.world.delete_group(p["sub"], p["rg"], op)
        location = f"{self.endpoint}/subscriptions/{p['sub']}/operationresults/{op.id}?api-version=2025-04-01"
        return web.Response(status=202, headers={"Location": location, "Retry-After": str(self.retry_after)})

    async def _group_resources(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.group(p["sub"], p["rg"])
        key = (p["sub"].lower(), p["rg"].lower())
        found = [(a.id, a.name, "Microsoft.App/containerApps", a.body.get("location"), a.body.get("tags") or {})
                 for k, a in self.world.apps.items() if k[:2] == key]
        found += [(e.id, e.name, "Microsoft.App/managedEnvironments", e.location, e.body.get("tags") or {})
                  for k, e in self.world.environments.items() if k[:2] == key]
        return await self._paged(request, [{"id": i, "name": n, "type": t, "location": loc, "tags": tags}
                                           for i, n, t, loc, tags in found])

    # ----- managed environments ------------------------------------------------------------------
    async def _env_get(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        self.world.group(p["sub"], p["rg"])
        return web.json_response(self.world.environment_body(self.world.environment(p["sub"], p["rg"], p["env"])))

    async def _env_put(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        body = await _json_body(request)
        self._validate("ManagedEnvironment", body)
        status, result, op = self.world.put_environment(p["sub"], p["rg"], p["env"], body)
        headers = self._lro_headers(op, p["sub"], "Location", "managedEnvironmentOperationResults") if status == 201 else {}
        return web.json_response(result, status=status, headers=headers)

    async def _env_patch(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        patch = await _json_body(request)
        self._validate("ManagedEnvironment", patch, partial=True)
        env = self.world.environment(p["sub"], p["rg"], p["env"])
        for key in ("tags", "properties"):
            if key in patch:
                env.body[key] = {**env.body.get(key, {}), **patch[key]}
        return web.json_response(self.world.environment_body(env))

    async def _env_delete(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        self.world.group(p["sub"], p["rg"])
        if (p["sub"].lower(), p["rg"].lower(), p["env"].lower()) not in self.world.environments:
            return web.Response(status=204)
        env = self.world.environment(p["sub"], p["rg"], p["env"])
        op = self.world.new_operation("environment.delete", env.id, _region(env.location))
        self.world.delete_environment(p["sub"], p["rg"], p["env"], op)
        return web.Response(status=202, headers=self._lro_headers(op, p["sub"], "Location", "managedEnvironmentOperationResults"))

    async def _env_list(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        self.world.group(p["sub"], p["rg"])
        key = (p["sub"].lower(), p["rg"].lower())
        values = [self.world.environment_body(e) for k, e in self.world.environments.items() if k[:2] == key]
        return web.json_response({"value": values})

    # ----- container apps ----------------------------------------------------------------------
    def _app(self, p: dict[str, str]) -> Any:
        self.world.require_registered(p["sub"], "Microsoft.App")
        return self.world.app(p["sub"], p["rg"], p["app"])

    async def _app_get(self, request: web.Request, p: dict[str, str]) -> web.Response:
        return web.json_response(self.world.app_body(self._app(p)))

    async def _app_put(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        body = await _json_body(request)
        self._validate("ContainerApp", body)
        status, result, op = self.world.put_app(p["sub"], p["rg"], p["app"], body)
        headers = self._lro_headers(op, p["sub"], "Azure-AsyncOperation", "containerappOperationStatuses")
        return web.json_response(result, status=status, headers=headers)

    async def _app_patch(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self._app(p)
        patch = await _json_body(request)
        self._validate("ContainerApp", patch, partial=True)
        result, op = self.world.patch_app(p["sub"], p["rg"], p["app"], patch)
        headers = self._lro_headers(op, p["sub"], "Location", "containerappOperationResults")
        return web.json_response(result, status=202, headers=headers)

    async def _app_delete(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        self.world.group(p["sub"], p["rg"])
        if (p["sub"].lower(), p["rg"].lower(), p["app"].lower()) not in self.world.apps:
            return web.Response(status=204)
        app = self.world.app(p["sub"], p["rg"], p["app"])
        env = self.world.environments.get(app.environment_key)
        op = self.world.new_operation("containerApp.delete", app.id, _region(env.location if env else "eastus"))
        self.world.delete_app(p["sub"], p["rg"], p["app"], op)
        return web.Response(status=202, headers=self._lro_headers(op, p["sub"], "Location", "containerappOperationResults"))

    async def _app_list(self, request: web.Request, p: dict[str, str]) -> web.Response:
        self.world.require_registered(p["sub"], "Microsoft.App")
        if "rg" in p and p.get("rg"):
            self.world.group(p["sub"], p["rg"])
        apps = [a for k, a in self.world.apps.items()
                if k[0] == p["sub"].lower() and ("rg" not in p or not p.get("rg") or k[1] == p["rg"].lower())]
        return await self._paged(request, [self.world.app_body(a) for a in apps])

    async def _paged(self, request: web.Request, values: list[JSON], page_size: int = 50) -> web.Response:
        skip = int(request.query.get("$skiptoken", "0") or 0)
        page: JSON = {"value": values[skip: skip + page_size]}
        if skip + page_size < len(values):
            url = request.url.update_query({"$skiptoken": str(skip + page_size)})
            page["nextLink"] = str(url.with_scheme("https").with_host("127.0.0.1").with_port(self.port))
        return web.json_response(page)

    async def _app_secrets(self, request: web.Request, p: dict[str, str]) -> web.Response:
        app = self._app(p)
        return web.json_response({"value": [{"name": k, "value": v} for k, v in app.secrets.items()]})

    async def _app_token(self, request: web.Request, p: dict[str, str]) -> web.Response:
        app = self._app(p)
        token = self.identity.issue(f"logstream:{app.id}", "https://logstream.azurecontainerapps.dev/.default")
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return web.json_response({
            "id": app.id, "name": app.name, "type": "Microsoft.App/containerApps/accesstoken",
            "location": app.body.get("location"), "properties": {"token": token["access_token"], "expires": expires},
        })

    # ----- revisions and replicas ---------------------------------------------------------------
    async def _rev_list(self, request: web.Request, p: dict[str, str]) -> web.Response:
        app = self._app(p)
        return await self._paged(request, [self.world.revision_body(app, r) for r in app.revisions.values()])

    async def _rev_get(self, request: web.Request, p: dict[str, str]) -> web.Response:
        app = self._app(p)
        return web.json_response(self.world.revision_body(app, self.world.revision(app, p["rev"])))

    async def _rev_action(self, request: web.Request, p: dict[str, str]) -> web.Response:
        app = self._app(p)
        action = request.path.rstrip("/").rsplit("/", 1)[1].lower()
        {"activate": self.world.activate, "deactivate": self.world.deactivate, "restart": self.world.restart}[action](app, p["rev"])
        return web.Response(status=200)

    async def _replica_list(self, request: web.Request, p: dict[str, str]) -> web.Response:
        app = self._app(p)
        return web.json_response({"value": self.world.replicas(app, self.world.revision(app, p["rev"]))})

    async def _replica_get(self, request: web.Request, p: dict[str, str]) -> web.Response:
        app = self._app(p)
        for replica in self.world.replicas(app, self.world.revision(app, p["rev"])):
            if replica["name"].lower() == p["replica"].lower():
                return web.json_response(replica)
        raise ArmError(404, "ResourceNotFound", f"Replica '{p['replica']}' was not found.")

    # ----- log stream (the data plane behind getAuthtoken) ---------------------------------------------
    async def _logstream(self, request: web.Request, path: str) -> web.StreamResponse:
        token = request.headers.get("Authorization", "")[7:].strip()
        if self.identity.verify(token, ("https://logstream.azurecontainerapps.dev/",)):
            return web.json_response({"error": "unauthorized"}, status=401)
        found = re.match(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/containerApps/([^/]+)", path, re.IGNORECASE)
        self.world.settle()
        app = self.world.apps.get(tuple(g.lower() for g in found.groups())) if found else None  # type: ignore[arg-type]
        if app is None:
            return web.json_response({"error": "not found"}, status=404)
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        tail = int(request.query.get("tailLines", "20"))
        sent = max(0, len(app.log_lines) - tail)
        deadline = time.monotonic() + float(request.query.get("followSeconds", "300"))
        while True:
            self.world.settle()
            for line in app.log_lines[sent:]:
                await response.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n".encode())
            sent = len(app.log_lines)
            if request.query.get("follow", "false").lower() != "true" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await response.write_eof()
        return response

    # ----- identity platform --------------------------------------------------------------------
    async def _identity(self, request: web.Request, path: str) -> web.Response:
        parts = path.strip("/").split("/")
        tenant = parts[0]
        if request.method == "GET" and path.endswith("/.well-known/openid-configuration"):
            return web.json_response(self.identity.openid_configuration(self.endpoint, tenant))
        if request.method == "POST" and path.endswith("/oauth2/v2.0/token"):
            form = {k: str(v) for k, v in (await request.post()).items()}
            status, body = self.identity.grant(tenant, form)
            return web.json_response(body, status=status)
        return web.json_response({"error": "not_found"}, status=404)


class _Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class _InjectedStatus(Exception):
    def __init__(self, fault: Fault):
        super().__init__(fault.status)
        self.fault = fault


def _region(location: str) -> str:
    return re.sub(r"\s+", "", location).lower()


async def _json_body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArmError(400, "InvalidRequestContent", f"The request content is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body
