"""The Cloud Run target: the Target interface over the Admin API v2, Secret Manager v1 and Cloud Logging v2.

A revision is a Cloud Run revision we name; traffic is the service's traffic list, always pinned by revision name
(never "latest"), so a new revision starts with none until the reconciler routes to it. Every write is one request
that starts a long-running operation; its outcome is read from the service on later passes (``reconciling``,
``observedGeneration``, ``terminalCondition``), never by waiting on the operation, so no worker is held.
Writes carry the etag they were based on: a concurrent change is a 409 ABORTED, and the pass reads again.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ...contract import (
    CREATED_BY_TAG,
    OPERATOR_NAME,
    OWNER_TAG,
    Accepted,
    Capabilities,
    Deletion,
    Observed,
    Prepared,
    RevisionKey,
    TerminalError,
    TransientError,
)
from ...reconcile import ownership
from ...reconcile.desired import Desired
from . import bodies
from .client import GoogleClient
from .placement import service_placement
from .settings import GcpSettings

log = logging.getLogger(__name__)
SEEN_FOR = 2.0  # seconds an observe's reads stand in for fresh ones (the etag catches what changed meanwhile)
SECRET_LABEL = "mcp-service"  # noqa: S105 - a label key, not a secret. A Secret Manager label naming the service a secret belongs to (for the clean-up)


@dataclasses.dataclass
class _Seen:
    """What the last observe of a service read, for the write that follows it in the same pass."""

    at: float
    service: dict[str, Any]
    policy: dict[str, Any] | None = None
    revisions: list[str] | None = None  # short names, where listed


class CloudRunTarget:
    capabilities = Capabilities(cloud_named_revisions=True, max_traffic_split=10, idle_revisions_cost=False,
                                deletes_beyond_history=True)

    def __init__(self, settings: GcpSettings, client: GoogleClient):
        self.settings, self.client = settings, client
        self._seen: dict[str, _Seen] = {}
        self._secret_versions: dict[tuple[str, str], str] = {}  # (secret path, value digest) -> version

    async def close(self) -> None:
        await self.client.close()

    def revision_id(self, desired: Desired, key: RevisionKey) -> str | None:
        return service_placement(desired).revision_name(key)

    # ----- reading ------------------------------------------------------------------------------------------
    async def observe(self, desired: Desired, detailed: bool = True) -> Observed:
        where = service_placement(desired)
        self._seen.pop(where.path, None)
        service = await self.client.maybe("run", "GET", f"v2/{where.path}")
        if service is None:
            return Observed(exists=False)
        shallow = bodies.observed_from(desired, service, None, None)
        if ownership.claim(shallow, desired.owner) is not ownership.Claim.OURS:
            return shallow  # not ours (yet): its revisions and policy are none of our business
        policy = await self.client.call("run", "GET", f"v2/{where.path}:getIamPolicy")
        seen = _Seen(time.monotonic(), service, policy)
        if detailed:
            revisions = await self._revisions(where.path)
            seen.revisions = [bodies.short(r.get("name")) for r in revisions]
            self._seen[where.path] = seen
            return bodies.observed_from(desired, service, revisions, policy)
        self._seen[where.path] = seen
        return bodies.observed_from(desired, service, None, policy)

    async def _revisions(self, path: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            page = await self.client.call("run", "GET", f"v2/{path}/revisions", params={"pageToken": token} if token else None)
            found += page.get("revisions", [])
            token = page.get("nextPageToken", "")
            if not token:
                return found

    async def _snapshot(self, desired: Desired) -> _Seen | None:
        """What a write starts from: this pass's observe when nothing was written since, else a fresh read."""
        where = service_placement(desired)
        seen = self._seen.pop(where.path, None)
        if seen is not None and time.monotonic() - seen.at < SEEN_FOR:
            return seen
        service = await self.client.maybe("run", "GET", f"v2/{where.path}")
        return _Seen(time.monotonic(), service) if service is not None else None

    async def prepare(self, desired: Desired) -> Prepared:
        return Prepared(True)  # a service needs nothing around it; its secrets come with each revision

    # ----- writing ------------------------------------------------------------------------------------------
    async def create_revision(self, desired: Desired, secrets: Mapping[str, str], key: RevisionKey,
                              serving: str | None) -> Accepted:
        """The service at revision ``key``: created, or patched with the new template while traffic stays where it
        is; the new revision gets a tag (its own URL) and, when nothing serves yet, all traffic."""
        where = service_placement(desired)
        wait = Accepted(retry_after=min(self.settings.poll_interval, 2.0))
        name = where.revision_name(key)
        versions = await self._ensure_secrets(desired, secrets)
        template = bodies.template(desired, key, versions)
        seen = await self._snapshot(desired)
        if seen is None:
            body = {**bodies.service_settings(desired), "template": template,
                    "traffic": bodies.traffic({name: 100}, {name: bodies.tag_of(key)})}
            await self.client.call("run", "POST", f"v2/{where.parent}/services", body, {"serviceId": where.service})
            await self._ensure_public(desired, None)
            return wait
        service = seen.service
        if bodies.busy(service) is not None:
            return wait
        known = seen.revisions if seen.revisions is not None else [bodies.short(service.get("latestCreatedRevision"))]
        if name in known:
            return wait  # made already (a lost answer, a restart): Cloud Run shows how it went
        percents = {n: p for n, p in bodies.percents(service).items() if p > 0} or {name: 100}
        traffic = bodies.traffic(percents, {**bodies.tags_for(where, list(percents)), name: bodies.tag_of(key)})
        body = {"template": template, "traffic": traffic, "etag": service["etag"],
                "annotations": bodies.annotations_with_marks(desired, service)}
        await self.client.call("run", "PATCH", f"v2/{where.path}", body, {"updateMask": "template,traffic,annotations"})
        return wait

    async def _ensure_secrets(self, desired: Desired, secrets: Mapping[str, str]) -> dict[str, str]:
        """Each Secret value in a Secret Manager secret of its own (ours, labelled with the service): the version
        that holds it now, adding one when the value changed. Values never leave this function but to Google."""
        where = service_placement(desired)
        versions: dict[str, str] = {}
        for variable, value in secrets.items():
            path = f"projects/{where.project}/secrets/{where.secret_id(variable)}"
            digest = hashlib.sha256(value.encode()).hexdigest()
            if (path, digest) not in self._secret_versions:
                self._secret_versions[(path, digest)] = await self._secret_version(desired, path, value)
            versions[variable] = self._secret_versions[(path, digest)]
        return versions

    async def _secret_version(self, desired: Desired, path: str, value: str) -> str:
        where = service_placement(desired)
        secret = await self.client.maybe("secretmanager", "GET", f"v1/{path}")
        if secret is None:
            body = {"replication": {"automatic": {}}, "annotations": bodies.marks(desired),
                    "labels": {"managed-by": OPERATOR_NAME, SECRET_LABEL: where.service}}
            await self.client.call("secretmanager", "POST", f"v1/projects/{where.project}/secrets", body,
                                   {"secretId": path.rpartition("/")[2]})
        elif (secret.get("annotations") or {}).get(OWNER_TAG) != desired.owner:
            raise TerminalError("SecretNotOurs", f"Secret Manager secret {path} exists and was not created by this "
                                                 "McpDeployment; nothing was written to it. Delete or rename it.")
        else:
            latest = await self.client.maybe("secretmanager", "GET", f"v1/{path}/versions/latest:access")
            if latest is not None and base64.b64decode(latest["payload"]["data"]).decode(errors="replace") == value:
                return str(latest["name"]).rpartition("/")[2]
        added = await self.client.call("secretmanager", "POST", f"v1/{path}:addVersion",
                                       {"payload": {"data": base64.b64encode(value.encode()).decode()}})
        return str(added["name"]).rpartition("/")[2]

    async def route(self, desired: Desired, traffic: Mapping[str, int], revive: tuple[str, ...]) -> Accepted:
        """Traffic as asked, each revision that receives some tagged (its own URL); one write, none when so already."""
        where = service_placement(desired)
        seen = await self._snapshot(desired)
        if seen is None:
            raise TransientError("ServiceMissing", f"Cloud Run service {where.service} is gone")
        shares = {name: percent for name, percent in traffic.items() if percent > 0}
        wanted = bodies.traffic(shares, bodies.tags_for(where, list(shares)))
        in_effect = seen.service.get("traffic") if seen.service.get("reconciling") else seen.service.get("trafficStatuses")
        if _same_traffic(seen.service.get("traffic") or [], wanted) and _same_traffic(in_effect or [], wanted):
            return Accepted()
        await self.client.call("run", "PATCH", f"v2/{where.path}", {"traffic": wanted, "etag": seen.service["etag"]},
                               {"updateMask": "traffic"})
        return Accepted(retry_after=min(self.settings.poll_interval, 2.0))

    async def reconfigure(self, desired: Desired, secrets: Mapping[str, str], serving: str) -> Accepted:
        """Ingress and scaling (one write when they differ) and public access (the IAM policy, by its etag)."""
        where = service_placement(desired)
        seen = await self._snapshot(desired)
        if seen is None:
            return Accepted()
        service = seen.service
        drift = bodies.config_drift(desired, service, None)
        if drift:
            body = {**bodies.service_settings(desired), "etag": service["etag"],
                    "annotations": bodies.annotations_with_marks(desired, service)}
            await self.client.call("run", "PATCH", f"v2/{where.path}", body, {"updateMask": "ingress,scaling,annotations"})
        await self._ensure_public(desired, seen.policy)
        return Accepted(retry_after=min(self.settings.poll_interval, 2.0) if drift else None)

    async def _ensure_public(self, desired: Desired, policy: dict[str, Any] | None) -> None:
        """allUsers as roles/run.invoker as the spec says: read, change, set with the etag read (IAM's convention)."""
        where = service_placement(desired)
        if policy is None:
            policy = await self.client.call("run", "GET", f"v2/{where.path}:getIamPolicy")
        changed = bodies.with_public(policy, where.public)
        if changed is not None:
            await self.client.call("run", "POST", f"v2/{where.path}:setIamPolicy", {"policy": changed})

    async def retire(self, desired: Desired, cloud_ids: tuple[str, ...]) -> None:
        """Deletes revisions the history no longer holds (a service keeps at most 1000), untagging them first."""
        where = service_placement(desired)
        seen = await self._snapshot(desired)
        if seen is None:
            return
        current = seen.service.get("traffic") or []
        if any(t.get("revision") in cloud_ids for t in current):
            kept = [t for t in current if t.get("revision") not in cloud_ids]
            if sum(int(t.get("percent") or 0) for t in kept) != 100:
                return  # one of them still receives traffic: kept until it does not
            await self.client.call("run", "PATCH", f"v2/{where.path}", {"traffic": kept, "etag": seen.service["etag"]},
                                   {"updateMask": "traffic"})
        for name in cloud_ids:
            try:
                await self.client.maybe("run", "DELETE", f"v2/{where.path}/revisions/{name}")
            except TerminalError as error:
                if error.reason != "FailedPrecondition":  # still named by the traffic until the patch is done: later
                    raise

    # ----- deleting -------------------------------------------------------------------------------------------
    async def delete(self, desired: Desired) -> Deletion:
        """The service (with its revisions), then the Secret Manager secrets this McpDeployment created for it."""
        where = service_placement(desired)
        service = await self.client.maybe("run", "GET", f"v2/{where.path}")
        if service is not None:
            if not service.get("deleteTime"):
                await self.client.call("run", "DELETE", f"v2/{where.path}", params={"etag": service["etag"]})
            return Deletion(done=False, retry_after=min(self.settings.poll_interval, 2.0))
        notes = [f"Cloud Run service {where.service} is deleted"]
        notes += await self._delete_secrets(desired)
        return Deletion(done=True, notes=tuple(notes))

    async def _delete_secrets(self, desired: Desired) -> list[str]:
        where = service_placement(desired)
        found = await self.client.call("secretmanager", "GET", f"v1/projects/{where.project}/secrets",
                                       params={"filter": f"labels.{SECRET_LABEL}={where.service}"})
        notes = []
        for secret in found.get("secrets", []):
            marks = secret.get("annotations") or {}
            if marks.get(CREATED_BY_TAG) == OPERATOR_NAME and marks.get(OWNER_TAG) == desired.owner:
                await self.client.maybe("secretmanager", "DELETE", f"v1/{secret['name']}")
                notes.append(f"deleted Secret Manager secret {secret['name'].rpartition('/')[2]}")
        self._secret_versions = {k: v for k, v in self._secret_versions.items() if not k[0].startswith(
            f"projects/{where.project}/secrets/{where.service}-")}
        return notes

    # ----- logs ---------------------------------------------------------------------------------------------
    async def logs(self, desired: Desired, revision: str | None, tail: int, follow: bool) -> AsyncIterator[str]:
        """Cloud Logging's entries of the service (``revision``: of that revision alone); ``follow`` polls."""
        where = service_placement(desired)
        scope = f'resource.type="cloud_run_revision" AND resource.labels.service_name="{where.service}"'
        if revision:
            scope += f' AND resource.labels.revision_name="{revision}"'
        since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        first = True
        while True:
            page = await self.client.call("logging", "POST", "v2/entries:list", {
                "resourceNames": [f"projects/{where.project}"], "filter": f'{scope} AND timestamp>="{since}"',
                "orderBy": "timestamp asc", "pageSize": 1000})
            entries = [e for e in page.get("entries", []) if str(e.get("timestamp")) > since or first]
            for entry in entries[-tail:] if first else entries:
                text = entry.get("textPayload") or entry.get("jsonPayload") or entry.get("httpRequest") or ""
                yield f"{entry.get('timestamp')} {text}"
            if entries:
                since = max(str(e.get("timestamp")) for e in entries)
            first = False
            if not follow:
                return
            await asyncio.sleep(2.0)


def _same_traffic(found: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    def canonical(entries: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
        return sorted((str(e.get("revision", "")), int(e.get("percent") or 0), str(e.get("tag", ""))) for e in entries)
    return canonical(found) == canonical(wanted)
