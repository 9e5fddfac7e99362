"""The Workers target: the Target interface over the official ``cloudflare`` SDK (asyncio, httpx).

A revision is an immutable Worker version uploaded from the pinned bundle; traffic is the Worker's deployment (one
or two versions by percentage). The first version is a PUT of the script (Cloudflare's only way to create a Worker;
it deploys that version at 100%); later ones are uploaded without traffic, checked on their preview URL, and
deployed by ``route``. Everything is synchronous at Cloudflare: an answer is the new state.

Every call goes through the SDK's raw-response interface and reads Cloudflare's envelope itself. Why: in SDK
5.7-5.9 ``versions.create``/``versions.get`` raise while parsing the answer (after the upload was accepted) and
``deployments.list`` reads ``result.items`` where the API answers ``result.deployments`` (an empty list); the raw
interface keeps the SDK's request building, auth and error classes, and the same code works across those versions.
The SDK's own retries are off (``max_retries=0``): it would retry a POST without an idempotency key, and an upload
retried that way makes a second version. The reconciler repeats the pass instead, after looking for the version that
carries the revision's key. Requests are kept under Cloudflare's 1,200 per five minutes *before* a refusal (a 429
locks the token out for five minutes): the shared ``RequestBudget``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import cloudflare
import httpx
from cloudflare import AsyncCloudflare, DefaultAsyncHttpxClient

from ... import metrics
from ...artifacts import ArtifactFetcher
from ...contract import (
    Accepted,
    Capabilities,
    Deletion,
    Observed,
    Prepared,
    RevisionKey,
    TerminalError,
    TransientError,
)
from ...pacing import RequestBudget
from ...reconcile import ownership
from ...reconcile.desired import Desired
from ...settings import proxies_configured
from . import bodies
from .placement import worker_placement
from .settings import CloudflareSettings

log = logging.getLogger(__name__)
TARGET_LABEL = "cloudflare-workers"
WINDOW = 300.0
SEEN_FOR = 2.0  # seconds an observe's finding that no Worker exists stands for the create that follows it
PERMISSIONS = "Account > Workers Scripts > Edit (and Workers Scripts > Read, Account Settings > Read)"
NOT_FOUND_CODES = (10007, 10090)  # the Worker does not exist


def _errors(error: cloudflare.APIStatusError) -> list[dict[str, Any]]:
    try:
        found = error.response.json().get("errors") or []
    except (ValueError, AttributeError):
        found = []
    return [e for e in found if isinstance(e, dict)]


def classify(error: Exception) -> Exception:
    if isinstance(error, cloudflare.APIStatusError):
        errors = _errors(error)
        codes = [int(e.get("code", 0)) for e in errors]
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or str(error)
        status = error.status_code
        if status == 429:
            retry = error.response.headers.get("retry-after")
            return TransientError("Throttled", f"Cloudflare's rate limit: {text}", float(retry) if retry else WINDOW)
        if status >= 500:
            return TransientError("CloudServerError", text)
        if status in (401, 403) or 10000 in codes:
            return TerminalError("AuthorizationFailed", f"Cloudflare refused the API token ({text}). It needs "
                                                        f"{PERMISSIONS} on the account.")
        if 10220 in codes:
            return TerminalError("SecretsChangedSinceVersion", f"Cloudflare refuses to deploy that version again: {text}. "
                                                               "The operator never forces it; a change of the spec (any "
                                                               "server.env value) uploads a new version with the secrets "
                                                               "as they are now.")
        return TerminalError("CloudflareRefused", text)
    if isinstance(error, cloudflare.APIConnectionError | httpx.HTTPError | OSError):
        metrics.count_cloud_connection_error(TARGET_LABEL)
        return TransientError("ConnectionError", f"connection to Cloudflare failed: {error}")
    return error


def _not_found(error: BaseException) -> bool:
    return isinstance(error, cloudflare.APIStatusError) and (
        error.status_code == 404 or any(int(e.get("code", 0)) in NOT_FOUND_CODES for e in _errors(error)))


class WorkersTarget:
    capabilities = Capabilities(cloud_named_revisions=False, max_traffic_split=2, idle_revisions_cost=False)

    def __init__(self, settings: CloudflareSettings, token: str, fetcher: ArtifactFetcher):
        context = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else True
        self.settings = settings
        self.client = AsyncCloudflare(api_token=token, base_url=settings.api_base, max_retries=0,
                                      http_client=DefaultAsyncHttpxClient(verify=context, trust_env=proxies_configured()))
        self.budget = RequestBudget(settings.budget, WINDOW)
        self.fetcher = fetcher
        self._subdomains: dict[str, str] = {}  # account -> its workers.dev subdomain
        self._refused: dict[str, dict[str, str]] = {}  # script -> key label -> why Cloudflare refused its upload
        self._ours: dict[str, list[str]] = {}  # script -> its tags, once they said it is this McpDeployment's
        self._versions: dict[str, dict[str, dict[str, Any]]] = {}  # script -> version id -> version (immutable)
        self._absent: dict[str, float] = {}  # script -> when an observe found no such Worker

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """One request (raw), within the budget, counted; the ``result`` of Cloudflare's envelope."""
        await self.budget.spend()
        try:
            raw = await call(*args, **kwargs)
        except cloudflare.APIStatusError as error:
            metrics.count_cloud_response(TARGET_LABEL, error.response.request.method, error.status_code)
            raise classify(error) from error
        except (cloudflare.APIConnectionError, httpx.HTTPError, OSError) as error:
            raise classify(error) from error
        metrics.count_cloud_response(TARGET_LABEL, raw.http_request.method, raw.status_code)
        envelope = raw.http_response.json()
        if not envelope.get("success", True):  # the SDK would return it as a value; it is a refusal
            raise TerminalError("CloudflareRefused", "; ".join(f"{e.get('code')}: {e.get('message')}"
                                                               for e in envelope.get("errors", [])))
        return envelope.get("result")

    async def _maybe(self, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._call(call, *args, **kwargs)
        except (TerminalError, TransientError) as error:
            if error.__cause__ is not None and _not_found(error.__cause__):
                return None
            raise

    def revision_id(self, desired: Desired, key: RevisionKey) -> str | None:
        return None  # Cloudflare gives versions their ids

    # ----- reading ------------------------------------------------------------------------------------------
    async def _subdomain(self, account: str) -> str:
        if account not in self._subdomains:
            found = await self._maybe(self.client.workers.subdomains.with_raw_response.get, account_id=account)
            self._subdomains[account] = str((found or {}).get("subdomain", ""))
        return self._subdomains[account]

    async def observe(self, desired: Desired, detailed: bool = True) -> Observed:
        """Two reads for a Worker that is ours and whose deployed versions are known (the deployments, the workers.dev
        state); its tags once (then kept: what this process created or found ours stays so), its versions when a pass
        needs them all or the deployment names one not seen yet (versions are immutable: kept too)."""
        where = worker_placement(desired)
        scripts = self.client.workers.scripts
        self._absent.pop(where.script, None)
        found = await self._maybe(scripts.deployments.with_raw_response.list, where.script, account_id=where.account)
        if found is None:
            self._absent[where.script] = time.monotonic()
            self._ours.pop(where.script, None)
            return Observed(exists=False)
        deployments = found.get("deployments", [])
        marks = self._ours.get(where.script)
        if marks is None or detailed:
            settings = await self._call(scripts.settings.with_raw_response.get, where.script, account_id=where.account)
            marks = [str(t) for t in settings.get("tags") or []]
            shallow = Observed(exists=True, owner_marks=bodies.owner_marks(marks),
                               resource=f"Worker {where.script} in account {where.account}")
            if ownership.claim(shallow, desired.owner) is not ownership.Claim.OURS:
                self._ours.pop(where.script, None)
                return shallow  # not ours (yet): its versions are none of our business
            self._ours[where.script] = marks
        known = self._versions.setdefault(where.script, {})
        deployed = {str(v["version_id"]) for d in deployments[:1] for v in d.get("versions", [])}
        if detailed or not known or not deployed <= set(known):
            listed = await self._call(scripts.versions.with_raw_response.list, where.script, account_id=where.account,
                                      page=1, per_page=100)
            known.clear()
            known.update({str(v["id"]): v for v in listed.get("items", [])})
        subdomain = await self._call(scripts.subdomain.with_raw_response.get, where.script, account_id=where.account)
        return bodies.observed_from(desired, deployments, list(known.values()), subdomain,
                                    await self._subdomain(where.account), marks, self._refused.get(where.script, {}),
                                    complete=True)

    async def prepare(self, desired: Desired) -> Prepared:
        return Prepared(True)  # a Worker needs nothing around it

    # ----- writing ------------------------------------------------------------------------------------------
    async def create_revision(self, desired: Desired, secrets: Mapping[str, str], key: RevisionKey,
                              serving: str | None) -> Accepted:
        """Uploads version ``key`` (no traffic; a new Worker's first version is deployed by its creation), unless a
        version carrying the key exists already. A refused upload is remembered and observed as a failed revision."""
        where = worker_placement(desired)
        bundle = await self.fetcher.fetch(where.artifact)
        main = bodies.main_module(desired, bundle)
        scripts = self.client.workers.scripts
        if time.monotonic() - self._absent.get(where.script, -SEEN_FOR) < SEEN_FOR:
            existing = None  # this pass's observe found no Worker: nothing to look for
        else:
            existing = await self._maybe(scripts.versions.with_raw_response.list, where.script, account_id=where.account,
                                         page=1, per_page=100)
        if existing is not None and any(bodies.is_key(v, key) for v in existing.get("items", [])):
            await self._ensure_subdomain(desired)
            return Accepted()  # uploaded already (a lost answer, a restart)
        first = existing is None
        body = bodies.metadata(desired, secrets, key, bundle, main, first)
        upload = scripts.with_raw_response.update if first else scripts.versions.with_raw_response.create
        try:
            await self._call(upload, where.script, account_id=where.account, metadata=body, files=bodies.files(bundle))
        except TerminalError as error:
            if error.reason != "CloudflareRefused":
                raise
            self._refused.setdefault(where.script, {})[key.label] = f"Cloudflare refused the upload: {error.message}"
            return Accepted()
        self._refused.get(where.script, {}).pop(key.label, None)
        self._absent.pop(where.script, None)
        if first:  # a new Worker is on no workers.dev yet: no need to read that
            self._ours[where.script] = body["tags"]
            await self._ensure_subdomain(desired, {"enabled": False, "previews_enabled": False})
        return Accepted()

    async def _ensure_subdomain(self, desired: Desired, found: Mapping[str, Any] | None = None) -> None:
        where = worker_placement(desired)
        scripts = self.client.workers.scripts
        if found is None:
            found = await self._call(scripts.subdomain.with_raw_response.get, where.script, account_id=where.account)
        if bool(found.get("enabled")) != where.workers_dev or bool(found.get("previews_enabled")) != (
                where.workers_dev and where.preview_urls):
            await self._call(scripts.subdomain.with_raw_response.create, where.script, account_id=where.account,
                             enabled=where.workers_dev, previews_enabled=where.workers_dev and where.preview_urls)

    async def route(self, desired: Desired, traffic: Mapping[str, int], revive: tuple[str, ...]) -> Accepted:
        """A new deployment of those versions (the newest deployment is the active one); none when it already is so."""
        where = worker_placement(desired)
        scripts = self.client.workers.scripts
        shares = [{"version_id": version, "percentage": float(percent)} for version, percent in traffic.items() if percent > 0]
        found = await self._call(scripts.deployments.with_raw_response.list, where.script, account_id=where.account)
        active = (found.get("deployments") or [{}])[0]
        if sorted((v["version_id"], float(v["percentage"])) for v in active.get("versions", [])) == sorted(
                (s["version_id"], s["percentage"]) for s in shares):
            return Accepted()
        await self._call(scripts.deployments.with_raw_response.create, where.script, account_id=where.account,
                         strategy="percentage", versions=shares, annotations={"workers/message": "mcp-operator route"})
        return Accepted()

    async def reconfigure(self, desired: Desired, secrets: Mapping[str, str], serving: str) -> Accepted:
        await self._ensure_subdomain(desired)
        return Accepted()

    async def retire(self, desired: Desired, cloud_ids: tuple[str, ...]) -> None:
        return None  # versions cannot be deleted; Cloudflare keeps the newest 100 deployable

    # ----- deleting -------------------------------------------------------------------------------------------
    async def delete(self, desired: Desired) -> Deletion:
        where = worker_placement(desired)
        exists = await self._maybe(self.client.workers.scripts.settings.with_raw_response.get, where.script,
                                   account_id=where.account)
        self._refused.pop(where.script, None)
        self._ours.pop(where.script, None)
        self._versions.pop(where.script, None)
        if exists is None:
            return Deletion(done=True, notes=(f"Worker {where.script} is gone",))
        await self._maybe(self.client.workers.scripts.with_raw_response.delete, where.script, account_id=where.account)
        return Deletion(done=True, notes=(f"deleted Worker {where.script} (all its versions and its workers.dev route)",))

    # ----- logs ---------------------------------------------------------------------------------------------
    async def logs(self, desired: Desired, revision: str | None, tail: int, follow: bool) -> AsyncIterator[str]:
        """A live tail (as `wrangler tail`): Workers keeps no log history this API can read."""
        where = worker_placement(desired)
        if not follow:
            yield (f"Cloudflare keeps no log history of Worker {where.script} that its API can read: use --follow for a "
                   "live tail, or Workers Logs / Logpush in Cloudflare's dashboard")
            return
        scripts = self.client.workers.scripts
        opened = await self._call(scripts.tail.with_raw_response.create, where.script, account_id=where.account,
                                  extra_body={"filters": []})  # what wrangler sends: no filter
        context = ssl.create_default_context(cafile=self.settings.ca_bundle) if self.settings.ca_bundle else None
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    opened["url"], protocols=("trace-v1",), ssl=context if context else True) as socket:
                await socket.send_str(json.dumps({"debug": False}))
                async for message in socket:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = json.loads(message.data)
                    if revision and (event.get("scriptVersion") or {}).get("id") != revision:
                        continue
                    for line in event.get("logs", []):
                        yield f"{event.get('eventTimestamp')} {event.get('outcome')} {' '.join(map(str, line['message']))}"
        finally:
            await asyncio.shield(self._maybe(scripts.tail.with_raw_response.delete, opened["id"], account_id=where.account,
                                             script_name=where.script))
