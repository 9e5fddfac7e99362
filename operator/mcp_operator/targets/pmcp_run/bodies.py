"""Pure translations between the neutral desired state and pmcp.run's API. No I/O.

pmcp.run keeps no tags and no field we could set and read back: which deployment is which revision is known from
the history (``Desired.history``) and from what this process created. One revision's intent, recorded before its
deployment was made, claims the newest deployment of the server that nobody claims and that was made after it: after
a restart between ``createDeploymentFromS3`` and the status write, the deployment found is the one that was made,
and no second one is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ...api.models import PmcpRunOAuth
from ...artifacts import Bundle
from ...contract import (
    CREATED_BY_TAG,
    OPERATOR_NAME,
    OWNER_TAG,
    Observed,
    ObservedRevision,
    Phase,
    RecordedRevision,
    RevisionKey,
    TerminalError,
)
from ...reconcile.desired import Desired
from .placement import RUNTIME, PmcpRunPlacement, pmcp_placement

Record = Mapping[str, Any]  # a deployment as getDeployment answers it (listDeployments' items have its id and name only)
DEPLOYING = ("pending", "validating", "deploying")
FINISHED = ("success", "failed")  # a deployment in one of these never changes again
KNOWN_STATUSES = (*DEPLOYING, *FINISHED)
CLOCK_SKEW = timedelta(minutes=2)  # between the operator's clock (the intent) and pmcp.run's (createdAt)
DESTROYED = ("deleted", "success", "completed")
DESTROY_FAILED = ("failed", "delete_failed", "error")


def build_of(bundle: Bundle) -> tuple[str, bytes, bytes, str]:
    """The template and bootstrap in a cargo-pmcp build: (template name, template, bootstrap, its content type).

    The template is ``*-stack.template.json`` (what cargo-pmcp prefers since 0.28), else the only ``*.template.json``
    or ``template.json``; the bootstrap is ``bootstrap`` (the raw binary) or ``bootstrap.zip`` (a package)."""
    names = [f.name for f in bundle.files]
    templates = sorted(n for n in names if PurePosixPath(n).name.endswith("-stack.template.json")) or sorted(
        n for n in names if PurePosixPath(n).name.endswith(".template.json") or PurePosixPath(n).name == "template.json")
    bootstraps = [n for n in names if PurePosixPath(n).name in ("bootstrap", "bootstrap.zip")]
    if len(templates) != 1 or len(bootstraps) != 1:
        raise TerminalError("BundleInvalid", f"spec.server.artifact: {bundle.reference} must hold one CloudFormation "
                                             "template (<name>-stack.template.json or template.json) and one bootstrap "
                                             f"(bootstrap or bootstrap.zip), as cargo pmcp deploy builds them; it holds "
                                             f"{', '.join(names) or 'no files'}")
    template, bootstrap = bundle.file(templates[0]), bundle.file(bootstraps[0])
    assert template is not None and bootstrap is not None
    kind = "application/zip" if bootstrap.name.endswith(".zip") else "application/octet-stream"
    return template.name, template.data, bootstrap.data, kind


def render_template(name: str, template: bytes, environment: Sequence[tuple[str, str]]) -> bytes:
    """The template with the spec's literal environment merged into every Lambda function (secrets are not: pmcp.run
    injects them server-side), as cargo-pmcp merges ``[environment]``."""
    try:
        document = json.loads(template)
        resources = document["Resources"]
    except (ValueError, KeyError, TypeError) as error:
        raise TerminalError("BundleInvalid", f"spec.server.artifact: {name} is not a CloudFormation template in JSON "
                                             f"with Resources ({error})") from error
    functions = [r for r in resources.values() if isinstance(r, dict) and r.get("Type") == "AWS::Lambda::Function"]
    if not functions:
        raise TerminalError("BundleInvalid", f"spec.server.artifact: {name} declares no AWS::Lambda::Function")
    for function in functions:
        variables = function.setdefault("Properties", {}).setdefault("Environment", {}).setdefault("Variables", {})
        variables.update(dict(environment))
    return json.dumps(document, sort_keys=True).encode()


def deployment_variables(where: PmcpRunPlacement, upload: Record) -> dict[str, Any]:
    """createDeploymentFromS3's variables, as cargo-pmcp sends them (null where deploy.toml says nothing)."""
    return {"templateS3Key": upload["templateS3Key"], "bootstrapS3Key": upload["bootstrapS3Key"],
            "projectName": where.project, "runtime": RUNTIME, "memorySize": where.memory_size, "timeout": where.timeout,
            "serverVersion": where.server_version, "tier": where.tier, "allowComposition": where.allow_composition,
            "internalOnly": where.internal_only, "compositionDescription": where.composition_description}


def oauth_variables(project: str, oauth: PmcpRunOAuth) -> dict[str, Any]:
    return {"serverId": project, "enabled": True, "scopes": list(oauth.scopes), "dcrEnabled": oauth.dcr_enabled,
            "publicClientPatterns": list(oauth.public_client_patterns), "sharedPoolName": oauth.shared_pool_name}


def _at(stamp: str | None) -> datetime:
    if not stamp:
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def keys_of(deployments: Sequence[Record], history: Sequence[RecordedRevision],
            remembered: Mapping[str, RevisionKey]) -> dict[str, RevisionKey]:
    """Deployment id -> the revision it is: named by the history, created by this process, or claimed by an intent."""
    keys = {r.cloud_id: r.key for r in history if r.cloud_id}
    keys.update(remembered)
    for intent in (r for r in reversed(history) if r.cloud_id is None):
        if intent.key in keys.values():
            continue
        unclaimed = [d for d in deployments if d["id"] not in keys and _at(d.get("createdAt")) >= _at(intent.since) - CLOCK_SKEW]
        if unclaimed:
            keys[max(unclaimed, key=lambda d: _at(d.get("createdAt")))["id"]] = intent.key
    return keys


def newest(deployments: Sequence[Record]) -> Record | None:
    """The deployment made last (by pmcp.run's createdAt)."""
    return max(deployments, key=lambda d: _at(d.get("createdAt")), default=None)


def mcp_url(record: Record, api_url: str) -> str:
    """The URL the API gives, else cargo-pmcp's fallback: <api>/<deployment id>/mcp."""
    return str(record.get("url") or f"{api_url}/{record['id']}/mcp")


def health_url(url: str) -> str:
    return url[: -len("/mcp")] + "/health" if url.endswith("/mcp") else url.rstrip("/") + "/health"


def _phase(record: Record, serving: Record | None) -> Phase:
    status = record["status"]
    if status in DEPLOYING:
        return Phase.PENDING
    if status == "failed":
        return Phase.FAILED
    if record is serving:
        return Phase.READY
    return Phase.RETIRED  # replaced by a newer deployment (or a status nobody knows, on an old one)


def oauth_drift(wanted: PmcpRunOAuth, found: Record | None) -> tuple[str, ...]:
    enabled = bool(found and found.get("oauthEnabled"))
    if wanted.enabled != enabled:
        return (f"OAuth is {'on' if enabled else 'off'} at pmcp.run, spec.pmcpRun.oauth.enabled is "
                f"{str(wanted.enabled).lower()}",)
    if not enabled or found is None:
        return ()
    drift = []
    if found.get("scopes") is not None and sorted(found["scopes"]) != sorted(wanted.scopes):
        drift.append(f"OAuth scopes are {found['scopes']}, want {list(wanted.scopes)}")
    if found.get("dcrEnabled") is not None and bool(found["dcrEnabled"]) != wanted.dcr_enabled:
        drift.append(f"dynamic client registration is {'on' if found['dcrEnabled'] else 'off'}, want "
                     f"{'on' if wanted.dcr_enabled else 'off'}")
    return tuple(drift)


def observed_from(desired: Desired, deployments: Sequence[Record], keys: Mapping[str, RevisionKey],
                  oauth: Record | None, digest: str | None) -> Observed:
    where = pmcp_placement(desired)
    resource = f"pmcp.run server {where.project} at {where.api_url}"
    if not deployments:
        return Observed(exists=False, resource=resource)
    ordered = sorted(deployments, key=lambda d: _at(d.get("createdAt")))
    newest = ordered[-1]
    if newest["status"] not in KNOWN_STATUSES:
        raise TerminalError("UnknownDeploymentStatus", f"pmcp.run reports status {newest['status']!r} for deployment "
                                                       f"{newest['id']} of {where.project}, which neither this operator nor "
                                                       "cargo-pmcp knows (pending, validating, deploying, success, failed); "
                                                       "the operator looks again at the next drift check")
    serving = next((d for d in reversed(ordered) if d["status"] == "success"), None)
    url = mcp_url(serving, where.api_url) if serving is not None else None
    revisions = tuple(ObservedRevision(
        cloud_id=d["id"], key=keys.get(d["id"]), phase=_phase(d, serving), percent=100 if d is serving else 0,
        message=(d.get("errorMessage") or "the deployment failed") if d["status"] == "failed" else None,
        created=d.get("createdAt"), url=url if d is serving else None) for d in ordered)
    ours = any(d["id"] in keys for d in ordered)
    facts: dict[str, Any] = {"apiUrl": where.api_url, "projectName": where.project,
                             "deploymentId": serving["id"] if serving else None, "deploymentStatus": newest["status"],
                             "healthUrl": health_url(url) if url else None, "bundleDigest": digest}
    if oauth is not None:
        facts["oauthEnabled"] = bool(oauth.get("oauthEnabled"))
        facts.update({k: oauth.get(k) for k in ("discoveryUrl", "authorizationEndpoint", "tokenEndpoint",
                                                 "registrationEndpoint", "userPoolId")})
    return Observed(exists=True, revisions=revisions, host=urlsplit(url).hostname if url else None, url=url,
                    facts={k: v for k, v in facts.items() if v is not None},
                    config_drift=oauth_drift(where.oauth, oauth) if ours and serving is not None else (),
                    owner_marks={CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: desired.owner} if ours else {},
                    resource=resource)
