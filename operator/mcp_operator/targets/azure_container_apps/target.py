"""The Azure Container Apps target: the Target interface over the async Azure management SDKs.

Long-running operations are started and left to the cloud: the reconciler looks again after ARM's
Retry-After instead of holding a worker on a poller, so thousands of resources progress at once
and a restarted operator resumes from what the cloud shows. Retries of single requests (429 with
Retry-After, 5xx, dropped connections) are azure-core's own retry policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.mgmt.appcontainers import models
from azure.mgmt.appcontainers.aio import ContainerAppsAPIClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from ... import metrics
from ...contract import (
    CREATED_BY_TAG,
    OPERATOR_NAME,
    Accepted,
    Capabilities,
    Deletion,
    Observed,
    Prepared,
    RevisionKey,
    TerminalError,
    TransientError,
)
from ...pacing import ThrottlePacer
from ...reconcile import ownership
from ...reconcile.desired import Desired
from ...settings import proxies_configured
from . import bodies
from .placement import app_placement
from .settings import AzureSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
PROVIDER = "Microsoft.App"
TARGET_LABEL = "azure-container-apps"  # the metrics' target label
ENV_PREFIX, RG_PREFIX = "managedEnvironment/", "resourceGroup/"


def _retry_after(error: HttpResponseError) -> float | None:
    headers = getattr(error.response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After", "")) if headers.get("Retry-After") else None
    except ValueError:
        return None


# What a call to the SDK raises when the request itself fails (HttpResponseError is handled apart: it has a status).
_TRANSPORT_ERRORS = (ServiceRequestError, ServiceResponseError, ClientAuthenticationError, TimeoutError, aiohttp.ClientError)


def _retry_after_header(pipeline_response: Any, _deserialized: Any, _headers: Any) -> str | None:
    value = pipeline_response.http_response.headers.get("Retry-After")
    return str(value) if value is not None else None


def _count_response(response: Any) -> None:
    """azure-core's raw_response_hook: called with every pipeline response of the management clients."""
    http = response.http_response
    metrics.count_cloud_response(TARGET_LABEL, http.request.method, http.status_code)


def classify(error: Exception) -> Exception:
    """Maps an SDK error to TransientError (retry as is) or TerminalError (needs a change)."""
    if isinstance(error, ClientAuthenticationError) and getattr(error, "status_code", None) is None:
        return TerminalError("CredentialsInvalid", f"could not get an Azure token: {error.message}")
    if isinstance(error, ServiceRequestError | ServiceResponseError | TimeoutError | aiohttp.ClientError):
        metrics.count_cloud_connection_error(TARGET_LABEL)
        return TransientError("ConnectionError", f"connection to Azure failed: {error}")
    if isinstance(error, HttpResponseError):
        code = error.error.code if error.error is not None and error.error.code else str(error.status_code)
        message = error.error.message if error.error is not None and error.error.message else str(error.message)
        status = error.status_code or 0
        if status == 429 or status >= 500 or status == 408:
            return TransientError("Throttled" if status == 429 else "CloudServerError", f"{code}: {message}", _retry_after(error))
        if status == 409 and "InProgress" in code:
            return TransientError("OperationInProgress", f"{code}: {message}", _retry_after(error))
        if status in (401, 403):
            return TerminalError("AuthorizationFailed", f"Azure refused the request ({code}): {message}. Check the "
                                 "credentials and that the identity has Contributor on the resource group.")
        return TerminalError(code, message)
    return error


class _RetryButNotThrottling(AsyncRetryPolicy):  # type: ignore[type-arg]
    """azure-core's retries for dropped connections and 5xx; 429s go to the ThrottlePacer, which paces them."""

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        return bool(response.http_response.status_code != 429 and super().is_retry(settings, response))


class SharedSession:
    """One aiohttp session (and TLS context) for every Azure client and credential of the process.

    Left to itself, azure-core gives every client its own connection pool, and with a CA bundle path it
    builds a new SSLContext for every request, which defeats connection reuse: each request pays a TLS
    handshake and the pool fills with idle connections.
    """

    def __init__(self, settings: AzureSettings):
        # A bounded pool: each TLS connection holds buffers of its own, and ARM's throttling makes more than a
        # few dozen requests in flight pointless. Requests beyond the limit wait for a free connection.
        context: ssl.SSLContext | bool = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else True
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=settings.arm_connections),
                                             trust_env=proxies_configured())

    def options(self) -> dict[str, Any]:
        """Keyword arguments for one SDK client or credential (each gets its own transport over the shared session)."""
        return {"transport": AioHttpTransport(session=self.session, session_owner=False)}

    async def close(self) -> None:
        await self.session.close()


class ContainerAppsTarget:
    # Ingress splits traffic over active revisions; an active revision is billed while it runs, so idle ones
    # are deactivated, keeping the one before the serving one ready for an instant rollback.
    capabilities = Capabilities(cloud_named_revisions=True, max_traffic_split=100, idle_revisions_cost=True,
                                standby_revisions=1)

    def __init__(self, settings: AzureSettings, credential: AsyncTokenCredential, subscription_id: str, session: SharedSession):
        self.settings = settings
        options: dict[str, Any] = {"base_url": settings.arm_endpoint, "credential_scopes": [settings.arm_scope],
                                   "polling_interval": settings.poll_interval, "raw_response_hook": _count_response}
        self.apps = ContainerAppsAPIClient(credential, subscription_id, retry_policy=_RetryButNotThrottling(), **options,
                                           **session.options())
        self.resources = ResourceManagementClient(credential, subscription_id, retry_policy=_RetryButNotThrottling(), **options,
                                                  **session.options())
        # ARM's documented refill rates per subscription and class of request.
        self.pacer = ThrottlePacer({"reads": 25.0, "writes": 10.0, "deletes": 10.0})
        self.throttle_patience = 120.0  # seconds one call may wait out throttling before the pass gives up
        self.credential = credential
        # Shared infrastructure (provider registration, resource group, environment) is checked by one resource at
        # a time, and a negative answer is trusted until it is worth asking again: a fleet waiting for one
        # environment costs one read per poll, not one per resource.
        self._registered = False
        self._provider_lock = asyncio.Lock()
        self._provider_recheck = 0.0
        self._ready_environments: set[tuple[str, str]] = set()  # (resource group, environment), known to exist
        self._environment_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._environment_recheck: dict[tuple[str, str], float] = {}

    async def _arm(self, klass: str, request: Callable[[], Awaitable[T]]) -> T:
        """One ARM call of ``klass`` (reads, writes, deletes), paced while ARM throttles, errors classified."""
        deadline = time.monotonic() + self.throttle_patience
        while True:
            await self.pacer.admit(klass)
            try:
                return await request()
            except HttpResponseError as error:
                if error.status_code == 429:
                    retry_after = _retry_after(error) or 1.0
                    self.pacer.throttled(klass, retry_after)
                    if time.monotonic() + retry_after < deadline:
                        continue
                raise classify(error) from error
            except _TRANSPORT_ERRORS as error:
                raise classify(error) from error

    async def close(self) -> None:
        await self.apps.close()
        await self.resources.close()
        with contextlib.suppress(Exception):
            await self.credential.close()

    def revision_id(self, desired: Desired, key: RevisionKey) -> str:
        return bodies.revision_name(desired, key)

    # ----- reading ----------------------------------------------------------------------------------
    async def observe(self, desired: Desired, detailed: bool = True) -> Observed:
        where = app_placement(desired)
        # Registration first: on an unregistered subscription every Microsoft.App call answers 409, and the
        # SDK's built-in remedy registers while sleeping 10 s between checks inside the request.
        await self._ensure_provider()
        key = (where.resource_group.lower(), where.environment.lower())
        if key not in self._ready_environments and time.monotonic() < self._environment_recheck.get(key, 0.0):
            return Observed(exists=False)  # its environment is still being created: the app cannot exist yet
        try:
            app = await self._arm("reads", lambda: self.apps.container_apps.get(where.resource_group, desired.app_name))
        except TerminalError as error:
            if error.reason in ("ResourceNotFound", "ResourceGroupNotFound", "404"):
                return Observed(exists=False)
            raise
        except ResourceNotFoundError:
            return Observed(exists=False)
        body = app.as_dict()
        drift = bodies.config_drift(desired, body)
        shallow = bodies.shallow_observed(body, drift, where.resource_group)
        if not detailed and shallow.facts.get("provisioningState") != "Failed":
            return shallow  # one read: enough to follow a first rollout or to check an idle resource
        if ownership.claim(shallow, desired.owner) is not ownership.Claim.OURS:
            return shallow  # not ours (yet): its revisions are none of our business
        revisions = [r.as_dict() async for r in self._revisions(desired)]
        return bodies.observed_from(body, revisions, drift, where.resource_group)

    async def _revisions(self, desired: Desired) -> AsyncIterator[Any]:
        where = app_placement(desired)
        try:
            async for revision in self.apps.container_apps_revisions.list_revisions(where.resource_group, desired.app_name):
                yield revision
        except (HttpResponseError, *_TRANSPORT_ERRORS) as error:
            raise classify(error) from error

    # ----- infrastructure ---------------------------------------------------------------------------
    async def _ensure_provider(self) -> None:
        if self._registered:
            return
        async with self._provider_lock:
            if self._registered:
                return
            wait = self._provider_recheck - time.monotonic()
            if wait <= 0:
                provider = await self._arm("reads", lambda: self.resources.providers.get(PROVIDER))
                state = provider.registration_state
                if state == "Registered":
                    self._registered = True
                    return
                if state in (None, "NotRegistered", "Unregistered"):
                    await self._arm("writes", lambda: self.resources.providers.register(PROVIDER))
                wait = self.settings.poll_interval
                self._provider_recheck = time.monotonic() + wait
        raise TransientError("RegisteringProvider", f"registering resource provider {PROVIDER} in the subscription "
                                                    "(a one-time step that can take minutes)", wait)

    async def prepare(self, desired: Desired) -> Prepared:
        where = app_placement(desired)
        key = (where.resource_group.lower(), where.environment.lower())
        if key in self._ready_environments:
            return Prepared(True)
        await self._ensure_provider()
        async with self._environment_locks.setdefault(key, asyncio.Lock()):
            if key in self._ready_environments:
                return Prepared(True)
            wait = self._environment_recheck.get(key, 0.0) - time.monotonic()
            if wait > 0:
                return Prepared(False, wait)
            prepared = await self._check_infrastructure(desired, key)
            if not prepared.ready:
                self._environment_recheck[key] = time.monotonic() + (prepared.retry_after or self.settings.poll_interval)
            return prepared

    async def _check_infrastructure(self, desired: Desired, key: tuple[str, str]) -> Prepared:
        where = app_placement(desired)
        created: list[str] = []
        if not await self._arm("reads", lambda: self.resources.resource_groups.check_existence(where.resource_group)):
            await self._arm("writes", lambda: self.resources.resource_groups.create_or_update(
                where.resource_group, {"location": where.location, "tags": bodies.tags(desired)}))
            created.append(RG_PREFIX + where.resource_group)
        try:
            env = await self._arm("reads", lambda: self.apps.managed_environments.get(
                where.resource_group, where.environment))
        except (TerminalError, ResourceNotFoundError) as error:
            if isinstance(error, TerminalError) and error.reason not in ("ResourceNotFound", "404"):
                raise
            retry_after = await self._start(
                self.apps.managed_environments.begin_create_or_update, where.resource_group, where.environment,
                models.ManagedEnvironment({"location": where.location, "tags": bodies.tags(desired), "properties": {}}))
            created.append(ENV_PREFIX + where.environment)
            return Prepared(False, retry_after, tuple(created))
        state = env.properties.provisioning_state if env.properties else None
        if state == "Succeeded":
            self._ready_environments.add(key)
            return Prepared(True, None, tuple(created))
        if state in ("Failed", "Canceled", "UpgradeFailed"):
            raise TerminalError("EnvironmentFailed", f"managed environment {where.environment} is {state}; fix or delete "
                                                     "it in Azure, or choose another spec.azure.environment")
        return Prepared(False, None, tuple(created))

    # ----- writing ----------------------------------------------------------------------------------
    async def create_revision(self, desired: Desired, secrets: Mapping[str, str], key: RevisionKey,
                              serving: str | None) -> Accepted:
        where = app_placement(desired)
        body = bodies.app_body(desired, secrets, key, serving or bodies.revision_name(desired, key))
        try:
            retry_after = await self._start(self.apps.container_apps.begin_create_or_update, where.resource_group,
                                            desired.app_name, models.ContainerApp(body))
        except TerminalError as error:
            if error.reason in ("ManagedEnvironmentNotFound", "ResourceGroupNotFound"):
                self._ready_environments.discard((where.resource_group.lower(), where.environment.lower()))
                raise TransientError("InfrastructureMissing", error.message) from error
            raise
        return Accepted(retry_after=retry_after)

    async def route(self, desired: Desired, traffic: Mapping[str, int], revive: tuple[str, ...]) -> Accepted:
        where = app_placement(desired)
        for revision in revive:  # a deactivated revision refuses traffic until it is active again
            await self._arm("writes", lambda name=revision: self.apps.container_apps_revisions.activate_revision(  # type: ignore[misc]
                where.resource_group, desired.app_name, name))
        patch = {"properties": {"configuration": {"ingress": {
            "targetPort": where.target_port, "traffic": bodies.traffic_body(traffic)}}}}
        return Accepted(retry_after=await self._start(self.apps.container_apps.begin_update, where.resource_group,
                                                      desired.app_name, models.ContainerApp(patch)))

    async def reconfigure(self, desired: Desired, secrets: Mapping[str, str], serving: str) -> Accepted:
        where = app_placement(desired)
        patch: dict[str, Any] = {"properties": {"configuration": bodies.configuration(desired, secrets, {serving: 100})}}
        key = bodies.revision_key(serving)
        if key is not None and desired.revision_hash.startswith(key.hash):
            # The serving revision's own template and suffix: ARM recognises it and makes no new revision.
            patch["properties"]["template"] = bodies.template(desired, key)
        return Accepted(retry_after=await self._start(self.apps.container_apps.begin_update,
                                                      where.resource_group, desired.app_name,
                                                      models.ContainerApp(patch)))

    async def retire(self, desired: Desired, cloud_ids: tuple[str, ...]) -> None:
        where = app_placement(desired)
        for revision in cloud_ids:
            await self._arm("writes", lambda name=revision: self.apps.container_apps_revisions.deactivate_revision(  # type: ignore[misc]
                where.resource_group, desired.app_name, name))

    async def _start(self, begin: Callable[..., Awaitable[Any]], *args: Any) -> float | None:
        """Sends the initial request of a long-running operation without polling; returns its Retry-After."""
        klass = "deletes" if begin.__name__ == "begin_delete" else "writes"
        poller = await self._arm(klass, lambda: begin(*args, polling=False, cls=_retry_after_header))
        value = await poller.result()
        return float(value) if value not in (None, "") else None

    # ----- deleting ---------------------------------------------------------------------------------
    async def delete(self, desired: Desired) -> Deletion:
        """Deletes the app, then its environment and resource group if this operator created them (by their tags)
        and nothing else is left in them; whichever McpDeployment leaves last cleans up shared ones."""
        where = app_placement(desired)
        observed = await self.observe(desired)
        if observed.exists:
            if observed.facts.get("provisioningState") != "Deleting":
                await self._start(self.apps.container_apps.begin_delete, where.resource_group, desired.app_name)
            return Deletion(done=False, notes=(f"deleting container app {desired.app_name}",))
        notes: list[str] = []
        for step in (self._delete_environment, self._delete_resource_group):
            pending, note = await step(desired)
            notes.append(note)
            if pending:
                return Deletion(done=False, notes=tuple(notes))
        return Deletion(done=True, notes=tuple(notes))

    async def _delete_environment(self, desired: Desired) -> tuple[bool, str]:
        where = app_placement(desired)
        if not await self._arm("reads", lambda: self.resources.resource_groups.check_existence(where.resource_group)):
            return False, f"resource group {where.resource_group} is gone"
        try:
            env = await self._arm("reads", lambda: self.apps.managed_environments.get(
                where.resource_group, where.environment))
        except (TerminalError, ResourceNotFoundError):
            return False, f"managed environment {where.environment} is gone"
        if (env.tags or {}).get(CREATED_BY_TAG) != OPERATOR_NAME:
            return False, f"kept managed environment {where.environment}: not created by {OPERATOR_NAME}"
        if env.properties and env.properties.provisioning_state == "ScheduledForDelete":
            return True, f"deleting managed environment {where.environment}"
        try:
            await self._start(self.apps.managed_environments.begin_delete, where.resource_group, where.environment)
        except TerminalError as error:
            if error.reason.startswith("ManagedEnvironmentHas") or "409" in error.reason:
                return False, f"kept managed environment {where.environment}: other container apps still use it"
            raise
        self._ready_environments.discard((where.resource_group.lower(), where.environment.lower()))
        return True, f"deleting managed environment {where.environment}"

    async def _delete_resource_group(self, desired: Desired) -> tuple[bool, str]:
        where = app_placement(desired)
        rg = where.resource_group
        if not await self._arm("reads", lambda: self.resources.resource_groups.check_existence(rg)):
            return False, f"resource group {rg} is gone"
        group = await self._arm("reads", lambda: self.resources.resource_groups.get(rg))
        if (group.tags or {}).get(CREATED_BY_TAG) != OPERATOR_NAME:
            return False, f"kept resource group {rg}: not created by {OPERATOR_NAME}"
        if group.properties and group.properties.provisioning_state == "Deleting":
            return True, f"deleting resource group {rg}"
        remaining = [str(r.name) async for r in self.resources.resources.list_by_resource_group(rg)]
        if remaining:
            return False, f"kept resource group {rg}: it still holds {', '.join(sorted(remaining))}"
        await self._start(self.resources.resource_groups.begin_delete, rg)
        return True, f"deleting resource group {rg}"

    # ----- logs ---------------------------------------------------------------------------------------
    async def logs(self, desired: Desired, revision: str | None, tail: int, follow: bool) -> AsyncIterator[str]:
        where = app_placement(desired)
        app = await self._arm("reads", lambda: self.apps.container_apps.get(where.resource_group, desired.app_name))
        token = await self._arm("writes", lambda: self.apps.container_apps.get_auth_token(
            where.resource_group, desired.app_name))
        endpoint = app.properties.event_stream_endpoint if app.properties else None
        if not endpoint or not token.properties:
            raise TerminalError("NoLogStream", f"container app {desired.app_name} has no log stream endpoint")
        url = endpoint.rsplit("/eventstream", 1)[0]
        url += f"/revisions/{revision or app.properties.latest_ready_revision_name}/logstream"  # type: ignore[union-attr]
        params = {"tailLines": str(tail), "follow": "true" if follow else "false"}
        headers = {"Authorization": f"Bearer {token.properties.token}"}
        ssl_option: Any = True
        if self.settings.ca_bundle:
            ssl_option = ssl.create_default_context(cafile=self.settings.ca_bundle)
        async with aiohttp.ClientSession() as session, session.get(url, params=params, headers=headers, ssl=ssl_option) as response:
            if response.status != 200:
                raise TerminalError("LogStreamRefused", f"log stream answered {response.status}")
            async for line in response.content:
                yield line.decode(errors="replace").rstrip("\n")

