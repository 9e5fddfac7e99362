"""The pmcp.run target: the Target interface over pmcp.run's GraphQL API (client.py).

pmcp.run keeps no revisions: a revision is a new deployment of the server (``createDeploymentFromS3`` of a template
and bootstrap uploaded to presigned URLs), which replaces the serving one when it succeeds; a failed one leaves the
previous one serving. A rollback is a new deployment of the kept artifact (the planner's has_revisions False), and
there is no URL for a deployment before it serves: the MCP check runs on the server's URL once it took over.
Deployment and destroy are followed by looking again on later passes, never by holding a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ...artifacts import ArtifactFetcher
from ...contract import Accepted, Capabilities, Deletion, Observed, Prepared, RevisionKey, TerminalError, TransientError
from ...reconcile.desired import Desired
from . import bodies
from .client import ApiRefusal, PmcpRunClient
from .placement import pmcp_placement

POLL = 2.0  # seconds between looks at a deployment in progress (cargo-pmcp's own)
DESTROY_POLL = 5.0  # and at a destroy in progress
MAX_DESTROY_BACKOFF = 300.0


def refusal(operation: str, error: ApiRefusal) -> Exception:
    if any(kind in ("ConflictException", "ThrottlingException", "InternalFailure") for kind in error.types):
        return TransientError("CloudBusy", f"pmcp.run: {operation}: {error.text}")
    return TerminalError("PmcpRunRefused", f"pmcp.run refused {operation}: {error.text}")


class PmcpRunTarget:
    capabilities = Capabilities(cloud_named_revisions=False, max_traffic_split=1, idle_revisions_cost=False,
                                has_revisions=False, carries_marks=False)

    def __init__(self, client: PmcpRunClient, fetcher: ArtifactFetcher):
        self.client, self.fetcher = client, fetcher
        self._details: dict[str, dict[str, Any]] = {}  # deployment id -> getDeployment's answer (createdAt is immutable)
        self._created: dict[str, dict[str, RevisionKey]] = {}  # project -> deployment id -> the revision it is
        self._digests: dict[str, str] = {}  # deployment id -> the artifact digest it was made from
        self._destroying: dict[str, str] = {}  # project -> the deployment id its destroy follows
        self._destroy_failures: dict[str, int] = {}

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, operation: str, variables: Mapping[str, Any] | None = None) -> Any:
        try:
            return await self.client.execute(operation, variables)
        except ApiRefusal as error:
            raise refusal(operation, error) from error

    async def _maybe(self, operation: str, variables: Mapping[str, Any]) -> Any:
        """The answer, or None when what it asks for does not exist (a null result, or a NotFound error)."""
        try:
            return await self.client.execute(operation, variables)
        except ApiRefusal as error:
            if error.not_found:
                return None
            raise refusal(operation, error) from error

    async def _deployment(self, deployment_id: str) -> dict[str, Any] | None:
        found = await self._maybe("GetDeployment", {"id": deployment_id})
        if found is not None:
            self._details[deployment_id] = dict(found)
        return found  # type: ignore[no-any-return]

    def revision_id(self, desired: Desired, key: RevisionKey) -> str | None:
        return None  # pmcp.run gives deployments their ids

    # ----- reading ------------------------------------------------------------------------------------------
    async def _deployments(self, desired: Desired) -> list[dict[str, Any]]:
        """The server's deployments as getDeployment answers them: one list a pass (cargo-pmcp's ListDeployments selects
        ids and names only), and a getDeployment for each deployment whose state can still change (a finished one is
        kept: its status, URL and message do not change)."""
        project = pmcp_placement(desired).project
        listed = await self._call("ListDeployments")
        items = [i["id"] for i in (listed or {}).get("items") or [] if i and i.get("projectName") == project]
        found_all = []
        for deployment_id in items:
            known = self._details.get(deployment_id)
            if known is None or known.get("status") not in bodies.FINISHED:
                known = await self._deployment(deployment_id)
            if known is not None:
                found_all.append(known)
        # listDeployments has no paging that cargo-pmcp reads: the history's own ids are read one by one when missing.
        for recorded in desired.history:
            if recorded.cloud_id and recorded.cloud_id not in items:
                found = await self._deployment(recorded.cloud_id)
                if found is not None and found.get("projectName") == project:
                    found_all.append(found)
        return found_all

    async def observe(self, desired: Desired, detailed: bool = True) -> Observed:
        """The server's deployments (one list, plus each new one's details once) and, once ours, its OAuth settings."""
        where = pmcp_placement(desired)
        deployments = await self._deployments(desired)
        keys = bodies.keys_of(deployments, desired.history, self._created.get(where.project, {}))
        oauth = await self._maybe("FetchServerOAuthEndpoints", {"serverId": where.project}) if deployments and keys else None
        newest = bodies.newest(deployments)
        digest = self._digests.get(newest["id"]) if newest else None
        return bodies.observed_from(desired, deployments, keys, oauth, digest)

    async def prepare(self, desired: Desired) -> Prepared:
        return Prepared(True)  # pmcp.run makes everything a server needs

    # ----- writing ------------------------------------------------------------------------------------------
    async def create_revision(self, desired: Desired, secrets: Mapping[str, str], key: RevisionKey,
                              serving: str | None) -> Accepted:
        """A new deployment for revision ``key``: its secrets set on the server, template and bootstrap uploaded,
        then ``createDeploymentFromS3``. None when this process made one for the key already (the observe of each
        pass finds one made before a restart, by the intent recorded before it)."""
        where = pmcp_placement(desired)
        made = self._created.setdefault(where.project, {})
        if key in made.values():
            return Accepted(retry_after=POLL)
        bundle = await self.fetcher.fetch(where.artifact)
        name, template, bootstrap, kind = bodies.build_of(bundle)
        rendered = bodies.render_template(name, template, desired.literal_env)
        for variable, value in sorted(secrets.items()):  # set before the deployment, which reads them server-side
            answer = await self._call("SetServerSecret", {"serverId": where.project, "secretName": variable,
                                                           "secretValue": value, "audience": "mcp"})
            if not (answer or {}).get("success"):
                raise TerminalError("PmcpRunRefused", f"pmcp.run did not set secret {variable}: "
                                                      f"{(answer or {}).get('error') or 'no reason given'}")
        upload = await self._call("GetUploadUrls", {"projectName": where.project, "templateSize": len(rendered),
                                                     "bootstrapSize": len(bootstrap)})
        await asyncio.gather(self.client.put(upload["templateUploadUrl"], rendered, "application/json"),
                             self.client.put(upload["bootstrapUploadUrl"], bootstrap, kind))
        created = await self._call("CreateDeploymentFromS3", bodies.deployment_variables(where, upload))
        if created is None:
            raise TerminalError("PmcpRunRefused", "createDeploymentFromS3 answered nothing (cargo-pmcp's advice: check "
                                                  "the service logs, in pmcp.run's dashboard)")
        made[created["deploymentId"]] = key
        self._digests[created["deploymentId"]] = bundle.digest
        return Accepted(retry_after=POLL)

    async def route(self, desired: Desired, traffic: Mapping[str, int], revive: tuple[str, ...]) -> Accepted:
        """Nothing to route: the newest successful deployment serves. Asked for another one, say so."""
        seen = await self.observe(desired)
        wanted = next((cloud_id for cloud_id, percent in traffic.items() if percent == 100), None)
        if seen.serving is not None and wanted == seen.serving.cloud_id:
            return Accepted()
        raise TerminalError("NoTrafficSwitch", f"pmcp.run cannot send traffic to deployment {wanted}: it keeps no revisions "
                                               "to switch between, the newest successful deployment serves. A rollback is "
                                               "a new deployment, which the operator makes when the spec is edited back")

    async def reconfigure(self, desired: Desired, secrets: Mapping[str, str], serving: str) -> Accepted:
        """OAuth at the MCP endpoint, as spec.pmcpRun.oauth says (no new deployment)."""
        where = pmcp_placement(desired)
        if where.oauth.enabled:
            await self._call("ConfigureServerOAuth", bodies.oauth_variables(where.project, where.oauth))
        else:
            answer = await self._call("DisableServerOAuth", {"serverId": where.project})
            if (answer or {}).get("oauthEnabled"):
                raise TransientError("CloudBusy", f"pmcp.run still reports OAuth on for {where.project} after disabling it")
        return Accepted()

    async def retire(self, desired: Desired, cloud_ids: tuple[str, ...]) -> None:
        return None  # a replaced deployment costs nothing and cannot be deleted on its own

    # ----- deleting -------------------------------------------------------------------------------------------
    async def delete(self, desired: Desired) -> Deletion:
        """destroyDeployment, then its progress by the deployment id until deleted; a failed destroy is said (a Warning)
        and tried again, later each time."""
        where = pmcp_placement(desired)
        following = self._destroying.get(where.project)
        if following is None:
            deployments = await self._deployments(desired)
            if not deployments:
                self._forget(where.project)
                return Deletion(done=True, notes=(f"pmcp.run server {where.project} is gone",))
            following = str((bodies.newest(deployments) or {})["id"])
            answer = await self._call("DestroyDeployment", {"id": following})
            self._destroying[where.project] = following
            status, message = answer["status"], answer.get("message")
        else:
            operation = await self._call("GetDeploymentOperationStatus", {"id": following})
            status, message = (operation or {}).get("status", "deleted"), (operation or {}).get("message")
        if status in bodies.DESTROYED:
            self._forget(where.project)
            return Deletion(done=True, notes=(f"destroyed pmcp.run server {where.project} (its stack, OAuth configuration "
                                              "and deployment records)",))
        if status in bodies.DESTROY_FAILED:
            self._destroying.pop(where.project, None)  # the next attempt destroys again
            failures = self._destroy_failures[where.project] = self._destroy_failures.get(where.project, 0) + 1
            delay = min(MAX_DESTROY_BACKOFF, DESTROY_POLL * 2 ** failures)
            return Deletion(done=False, retry_after=delay, warning=f"pmcp.run could not destroy server {where.project} "
                            f"({status}: {message or 'no reason given'}); trying again in {delay:.0f} s")
        return Deletion(done=False, retry_after=DESTROY_POLL,
                        notes=(f"destroying pmcp.run server {where.project} ({status})",))

    def _forget(self, project: str) -> None:
        for deployment_id in self._created.pop(project, {}):
            self._details.pop(deployment_id, None)
            self._digests.pop(deployment_id, None)
        self._destroying.pop(project, None)
        self._destroy_failures.pop(project, None)

    # ----- logs ---------------------------------------------------------------------------------------------
    async def logs(self, desired: Desired, revision: str | None, tail: int, follow: bool) -> AsyncIterator[str]:
        """pmcp.run's API serves no logs (cargo-pmcp's `logs` points at the dashboard too)."""
        where = pmcp_placement(desired)
        yield (f"pmcp.run's API serves no logs of server {where.project}: open it in pmcp.run's dashboard "
               f"(cargo pmcp deploy logs says the same)")
