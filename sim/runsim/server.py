"""The HTTPS front of the Google Cloud simulator: Cloud Run Admin API v2, Secret Manager v1, Logging v2's
``entries.list``, the OAuth and STS token endpoints, and the test controls.

Request pipeline, in the order Google applies it: which method (the discovery documents' paths) -> the
bearer token -> the Admin API's rate quotas (per project and region, reads and writes per minute) -> query
parameters and body checked against the method's schema -> the operation -> its answer, checked against the
schema too (enums as integers when the client asks ``enum-encoding=int``). Every request is recorded.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from simcore.buckets import TokenBuckets
from simcore.controls import common_control
from simcore.faults import RecordedRequest, drop
from simcore.front import SimulatorFront

from . import discovery
from .identity import Identity
from .world import Failure, GoogleError, Operation, Secret, Service, World, invalid, stamp

JSON = dict[str, Any]
# Cloud Run Admin API rate quotas per project and region (requests per minute). Writes: the 60 a third-party quota
# page shows (Google's own page does not give the default); reads: 1000 (assumed likewise). See docs/simulator.md.
QUOTAS_PER_MINUTE = {"reads": 1000.0, "writes": 60.0}
COMMON_PARAMETERS = {"$alt", "alt", "prettyPrint", "$prettyPrint", "fields", "key", "$fields", "quotaUser", "uploadType"}
API_ORDER = ("run", "secretmanager", "logging")


@dataclass
class GcpSimulatorConfig:
    project: str = "mcp-sim-project"
    project_number: str = "123456789012"
    region: str = "us-central1"
    pool_audience: str = ("//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/k8s/"
                          "providers/mcp-operator")
    throttling: bool = False
    latency: dict[str, float] = field(default_factory=dict)


class GcpSimulator(SimulatorFront):
    world: World
    workdir_prefix = "gcpsim-"

    def __init__(self, config: GcpSimulatorConfig | None = None, workdir: Path | None = None):
        super().__init__(workdir)
        self.config = config or GcpSimulatorConfig()
        self.world = World(self.config.project_number)
        self.world.schedule.latency.update(self.config.latency)
        self.identity = Identity(self.config.project, self.config.pool_audience)
        self.throttle = TokenBuckets({k: (v, v / 60.0) for k, v in QUOTAS_PER_MINUTE.items()}, enabled=self.config.throttling)

    def info(self) -> JSON:
        return {"endpoint": self.endpoint, "caBundle": str(self.certs.ca_file) if self.certs else None,
                "project": self.config.project, "projectNumber": self.config.project_number, "region": self.config.region,
                "tokenUri": self.endpoint + "/token", "stsUri": self.endpoint + "/v1/token",
                "poolAudience": self.config.pool_audience, "subjectToken": self.identity.subject_token,
                "controls": self.endpoint + "/_sim", "documents": discovery.revision_of_documents(),
                "ingress": f"127.0.0.1:{self.ingress.port}" if self.ingress else None}

    # ----- controls ---------------------------------------------------------------------------------
    async def _controls(self, request: web.Request) -> web.StreamResponse:
        body: Any = await request.json() if request.can_read_body else {}
        common = common_control(self, request.method, request.path, request.query, body)
        if common is not None:
            return common
        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/_sim/failures"):
            self.world.failures.append(Failure(body["contains"], body.get("message", Failure.message)))
            return web.json_response({})
        if route == ("POST", "/_sim/service-account-keys"):  # a new key file for a service account, as IAM hands it out
            return web.json_response(self.identity.key_file(self.identity.new_key(body["account"]), self.endpoint + "/token"))
        return web.json_response({"error": f"no control {request.method} {request.path}"}, status=404)

    # ----- dispatch -----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_sim"):
            return await self._controls(request)
        started = time.monotonic()
        klass = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(request.method, "writes")
        record = RecordedRequest(started, request.method, request.path, "Unknown", klass, 0)
        self.requests.append(record)
        body = await request.read()
        if request.method == "POST" and request.path in ("/token", "/v1/token"):
            record.operation = "oauth.token" if request.path == "/token" else "sts.token"
            return self._finish(record, self._token(request.path, body), started)
        found = self._match(request.method, request.path)
        if found is None:
            return self._finish(record, _error(GoogleError(404, "NOT_FOUND", f"The requested URL {request.path} was not "
                                                                             "found on this server.")), started)
        method, params = found
        record.operation = method.short
        fault = self.faults.take(request.method, request.path, method.short)
        if fault and fault.action == "drop" and fault.when == "before":
            return drop(request, record)
        try:
            self.identity.principal(request.headers.get("Authorization"))
            if method.api == "run":
                self._throttle(params, klass)
            if fault and fault.action == "status":
                raise GoogleError(fault.status, fault.code, fault.message)
            payload = self._request_body(method, request, body)
            result = self._operate(method, params, dict(request.query), payload)
            response = self._answer(method, request, result)
        except GoogleError as error:
            response = _error(error)
        if fault and fault.action == "drop" and fault.when == "after":
            return drop(request, record)
        return self._finish(record, response, started)

    @staticmethod
    def _finish(record: RecordedRequest, response: web.StreamResponse, started: float) -> web.StreamResponse:
        record.status = response.status
        record.seconds = time.monotonic() - started
        return response

    @staticmethod
    def _match(http_method: str, path: str) -> tuple[discovery.Method, dict[str, str]] | None:
        for name in API_ORDER:
            found = discovery.api(name).match(http_method, path)
            if found is not None:
                return found
        return None

    def _throttle(self, params: dict[str, str], klass: str) -> None:
        scope = next((v for v in params.values() if v.startswith("projects/")), "")
        parts = scope.split("/")
        where = f"{parts[1]}:{parts[3]}" if len(parts) > 3 else scope
        allowed, _, _ = self.throttle.take(where, "reads" if klass == "reads" else "writes")
        if not allowed:
            metric = "Read requests" if klass == "reads" else "Write requests"
            raise GoogleError(429, "RESOURCE_EXHAUSTED", f"Quota exceeded for quota metric '{metric}' and limit '{metric} "
                                                         f"per minute per region' of service 'run.googleapis.com' for "
                                                         f"consumer 'project_number:{self.config.project_number}'.")

    @staticmethod
    def _request_body(method: discovery.Method, request: web.Request, body: bytes) -> JSON:
        api = discovery.api(method.api)
        unknown = set(request.query) - set(method.parameters) - COMMON_PARAMETERS
        if unknown:
            raise invalid(f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\": Cannot bind query "
                          "parameter. Field could not be found in request message.")
        if method.request is None:
            return {}
        try:
            payload = json.loads(body or b"{}")
        except ValueError as error:
            raise invalid(f"Invalid JSON payload received. {error}") from error
        root = method.request.removeprefix("GoogleCloudRunV2").removeprefix("Google").lower() or "body"
        problems = api.problems(method.request, payload, root)
        if problems:
            raise invalid("; ".join(problems[:5]))
        return dict(api.enums(method.request, payload, as_names=True))

    @staticmethod
    def _answer(method: discovery.Method, request: web.Request, result: JSON) -> web.Response:
        api = discovery.api(method.api)
        if method.response:
            problems = api.problems(method.response, result, "response")
            if problems:  # the simulator broke its own contract: say so loudly, never answer it
                raise GoogleError(500, "INTERNAL", "simulator answer violates the discovery document: " + "; ".join(problems))
            if "enum-encoding=int" in request.query.get("$alt", ""):
                result = api.enums(method.response, result, as_names=False)
        return web.json_response(result)

    # ----- tokens ---------------------------------------------------------------------------------------
    def _token(self, path: str, body: bytes) -> web.Response:
        form = dict(parse_qsl(body.decode()))
        try:
            if path == "/token":
                if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                    raise GoogleError(400, "unsupported_grant_type", "Invalid grant_type")
                return web.json_response(self.identity.jwt_bearer(form.get("assertion", ""), self.endpoint + "/token"))
            return web.json_response(self.identity.exchange(form))
        except GoogleError as error:
            return web.json_response({"error": error.code, "error_description": error.message}, status=error.status)

    # ----- operations -----------------------------------------------------------------------------------
    def _operate(self, method: discovery.Method, params: dict[str, str], query: dict[str, str], body: JSON) -> JSON:
        w = self.world
        name = params.get("name") or params.get("resource") or ""
        match method.id:
            case "run.projects.locations.services.create":
                project, region = params["parent"].split("/")[1], params["parent"].split("/")[3]
                return self._operation(w.create_service(project, region, query.get("serviceId", ""), body))
            case "run.projects.locations.services.get":
                return self._service(w.service(name))
            case "run.projects.locations.services.list":
                w.settle()
                return {"services": [self._service(s) for s in w.services.values() if s.path.startswith(params["parent"] + "/")]}
            case "run.projects.locations.services.patch":
                mask = [_camel(k) for k in query.get("updateMask", "").split(",") if k] or None
                return self._operation(w.patch_service(name, body, mask, query.get("allowMissing") == "true"))
            case "run.projects.locations.services.delete":
                return self._operation(w.delete_service(name, query.get("etag")))
            case "run.projects.locations.services.getIamPolicy":
                return dict(w.service(name).policy)
            case "run.projects.locations.services.setIamPolicy":
                return dict(w.set_policy(w.service(name), body.get("policy") or {}))
            case "run.projects.locations.services.revisions.list":
                service = w.service(params["parent"])
                return {"revisions": [self._revision(service, r) for r in service.revisions.values()]}
            case "run.projects.locations.services.revisions.get":
                service = w.service(name.rpartition("/revisions/")[0])
                revision = service.revisions.get(name.rpartition("/")[2])
                if revision is None:
                    raise GoogleError(404, "NOT_FOUND", f"Resource '{name}' was not found")
                return self._revision(service, revision)
            case "run.projects.locations.services.revisions.delete":
                return self._operation(w.delete_revision(name))
            case "run.projects.locations.operations.get" | "run.projects.locations.operations.wait":
                return self._operation(w.operation(name))
            case "secretmanager.projects.secrets.create":
                return self._secret(w.create_secret(params["parent"].split("/")[1], query.get("secretId", ""), body))
            case "secretmanager.projects.secrets.list":
                project = params["parent"].split("/")[1]
                label, _, value = query.get("filter", "").removeprefix("labels.").partition("=")
                found = [x for x in w.secrets.values() if x.project == project and (not label or x.labels.get(label) == value)]
                return {"secrets": [self._secret(x) for x in found], "totalSize": len(found)}
            case "secretmanager.projects.secrets.get":
                return self._secret(w.secret(name))
            case "secretmanager.projects.secrets.delete":
                w.secrets.pop(w.secret(name).path)
                return {}
            case "secretmanager.projects.secrets.addVersion":
                data = base64.b64decode((body.get("payload") or {}).get("data", ""))
                version = w.add_version(params["parent"], data)
                return {"name": f"{params['parent']}/versions/{version.number}", "state": "ENABLED",
                        "createTime": stamp(version.created)}
            case "secretmanager.projects.secrets.versions.access":
                secret_path, _, wanted = name.rpartition("/versions/")
                holder, held = w.version(secret_path, wanted)
                return {"name": f"{holder.path}/versions/{held.number}",
                        "payload": {"data": base64.b64encode(held.data).decode()}}
            case "logging.entries.list":
                return {"entries": self._entries(body)}
        raise GoogleError(501, "UNIMPLEMENTED", f"The simulator does not implement {method.id}")

    # ----- answers -----------------------------------------------------------------------------------------
    def _service(self, s: Service) -> JSON:
        body: JSON = {
            "name": s.path, "uid": s.uid, "generation": str(s.generation), "observedGeneration": str(s.observed_generation),
            "labels": s.spec.get("labels") or {}, "annotations": s.spec.get("annotations") or {},
            "createTime": stamp(s.created), "updateTime": stamp(s.updated or s.created),
            "creator": "mcp-operator@sim", "lastModifier": "mcp-operator@sim", "launchStage": "GA",
            "ingress": s.spec.get("ingress", "INGRESS_TRAFFIC_ALL"), "template": s.spec["template"],
            "traffic": s.spec["traffic"], "reconciling": s.reconciling, "terminalCondition": s.terminal,
            "conditions": [{"type": "RoutesReady", "state": s.terminal.get("state")},
                           {"type": "ConfigurationsReady", "state": s.terminal.get("state")}],
            "etag": s.etag, "trafficStatuses": s.traffic_statuses,
        }
        for key in ("scaling", "invokerIamDisabled", "description"):
            if key in s.spec and s.spec[key] is not None:
                body[key] = s.spec[key]
        if s.latest_created:
            body["latestCreatedRevision"] = f"{s.path}/revisions/{s.latest_created}"
        if s.latest_ready:
            body["latestReadyRevision"] = f"{s.path}/revisions/{s.latest_ready}"
        if s.traffic_statuses:
            body["uri"] = f"https://{s.host()}"
            body["urls"] = [body["uri"], f"https://{s.name}-{self.config.project_number}.{s.region}.run.app"]
        if s.deleted is not None:
            body["deleteTime"] = stamp(s.deleted)
        return body

    def _revision(self, s: Service, r: Any) -> JSON:
        template = r.template
        condition = {"type": "Ready", "state": r.state, "lastTransitionTime": stamp(r.created)}
        if r.message:
            condition.update(message=r.message, reason=r.reason, severity="ERROR")
        body = {"name": f"{s.path}/revisions/{r.name}", "uid": r.uid, "generation": "1", "service": s.path,
                "labels": template.get("labels") or {}, "annotations": template.get("annotations") or {},
                "createTime": stamp(r.created), "updateTime": stamp(r.created), "launchStage": "GA",
                "containers": template["containers"], "timeout": template.get("timeout", "300s"),
                "maxInstanceRequestConcurrency": template.get("maxInstanceRequestConcurrency", 80),
                "serviceAccount": template.get("serviceAccount") or f"{self.config.project_number}-compute@developer."
                                                                     "gserviceaccount.com",
                "reconciling": r.state == "CONDITION_RECONCILING", "observedGeneration": "1", "conditions": [condition],
                "logUri": f"https://console.cloud.google.com/logs/viewer?project={s.project}&resource=cloud_run_revision/"
                          f"service_name/{s.name}/revision_name/{r.name}", "etag": r.uid[:8]}
        if template.get("executionEnvironment"):
            body["executionEnvironment"] = template["executionEnvironment"]
        return body

    def _operation(self, operation: Operation) -> JSON:
        if operation.revision is not None:
            kind, subject = "Revision", self._revision(operation.service, operation.revision)
        else:
            kind, subject = "Service", self._service(operation.service)
        body: JSON = {"name": operation.name, "done": operation.done,
                      "metadata": {"@type": f"type.googleapis.com/google.cloud.run.v2.{kind}", **subject}}
        if operation.done and operation.error is not None:
            error = operation.error
            body["error"] = {"code": _GRPC_CODES.get(error.code, 2), "message": error.message}
        elif operation.done:
            body["response"] = {"@type": f"type.googleapis.com/google.cloud.run.v2.{kind}", **subject}
        return body

    @staticmethod
    def _secret(secret: Secret) -> JSON:
        return {"name": secret.path, "createTime": stamp(secret.created), "labels": secret.labels,
                "annotations": secret.annotations, "etag": f'"{secret.etag}"', "replication": {"automatic": {}}}

    def _entries(self, body: JSON) -> list[JSON]:
        clauses = [c.strip() for c in str(body.get("filter", "")).split(" AND ") if c.strip()]
        wanted: list[tuple[str, str, str]] = []
        for clause in clauses:
            for op in (">=", "="):
                key, sep, value = clause.partition(op)
                if sep:
                    wanted.append((key.strip(), op, value.strip().strip('"')))
                    break
            else:
                raise invalid(f"Unparseable filter: {clause}")
        entries = [e for e in self.world.logs if all(_holds(e, *w) for w in wanted)]
        entries.sort(key=lambda e: str(e["timestamp"]), reverse=body.get("orderBy", "").endswith("desc"))
        return entries[: int(body.get("pageSize") or 1000)]


_GRPC_CODES = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
               "FAILED_PRECONDITION": 9, "ABORTED": 10, "INTERNAL": 13, "UNAVAILABLE": 14, "UNAUTHENTICATED": 16}


def _holds(entry: JSON, key: str, op: str, value: str) -> bool:
    found: Any = entry
    for part in key.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return str(found) >= value if op == ">=" else str(found) == value


def _camel(name: str) -> str:
    head, *rest = name.strip().split("_")
    return head + "".join(part.title() for part in rest)


def _error(error: GoogleError) -> web.Response:
    return web.json_response({"error": {"code": error.status, "message": error.message, "status": error.code}},
                             status=error.status)


__all__ = ["GcpSimulator", "GcpSimulatorConfig"]
