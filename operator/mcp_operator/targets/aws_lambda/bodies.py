"""Pure translations between the neutral desired state and Lambda's request and answer bodies. No I/O.

A revision is a published version. Its key travels in the version's Description (the one field a
version keeps from the moment it is published), so that a restarted operator recognises a version it
published even when the answer to the publish was lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Observed, ObservedRevision, Phase, RevisionKey
from ...reconcile.desired import Desired
from .placement import CANDIDATE_ALIAS, LIVE_ALIAS, FunctionPlacement, function_placement

MARKER = "mcp-operator revision "
LATEST = "$LATEST"
# Lambda answers the CORS preflight (OPTIONS) itself; the model allows only methods of up to 6 characters.
CORS_METHODS = ["GET", "POST", "DELETE"]
CORS_HEADERS = ["content-type", "authorization", "mcp-session-id", "mcp-protocol-version", "last-event-id"]
# What a URL with AuthType NONE needs so that anyone may call it (both, since October 2025).
PUBLIC_STATEMENTS: dict[str, dict[str, Any]] = {
    "mcp-operator-url": {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"},
    "mcp-operator-invoke": {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True},
}
PHASES = {"Pending": Phase.PENDING, "Active": Phase.READY, "Inactive": Phase.READY, "Failed": Phase.FAILED}


def marker(key: RevisionKey) -> str:
    return MARKER + key.label


def key_of(description: str | None) -> RevisionKey | None:
    if not description or not description.startswith(MARKER):
        return None
    return RevisionKey.from_label(description[len(MARKER):].split()[0])


def is_key(description: str | None, key: RevisionKey) -> bool:
    """Whether a description names revision ``key`` (it carries the key's short hash)."""
    found = key_of(description)
    return found is not None and found.matches(key.number, key.hash)


def tags(desired: Desired) -> dict[str, str]:
    return {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: desired.owner}


def environment(desired: Desired, secrets: Mapping[str, str]) -> dict[str, str]:
    """The function's environment: the spec's values, the Secret values, and the port the Web Adapter forwards to."""
    where = function_placement(desired)
    variables = {**dict(desired.literal_env), **secrets, "PORT": str(where.port), "AWS_LWA_PORT": str(where.port)}
    if where.invoke_mode == "RESPONSE_STREAM":
        variables["AWS_LWA_INVOKE_MODE"] = "response_stream"
    return variables


def configuration(desired: Desired, secrets: Mapping[str, str], key: RevisionKey, role_arn: str) -> dict[str, Any]:
    """What UpdateFunctionConfiguration (and CreateFunction) sets: everything of a version but its code."""
    where = function_placement(desired)
    body: dict[str, Any] = {"Role": role_arn, "MemorySize": where.memory_mb, "Timeout": where.timeout_seconds,
                            "Description": marker(key), "Environment": {"Variables": environment(desired, secrets)}}
    if where.image is None:
        body.update(Runtime=where.runtime, Handler=where.handler)
    return body


def code(where: FunctionPlacement) -> dict[str, Any]:
    """The Code of CreateFunction / the code arguments of UpdateFunctionCode."""
    if where.image is not None:
        return {"ImageUri": where.image}
    return {"S3Bucket": where.s3_bucket, "S3Key": where.s3_key}


def create_function(desired: Desired, secrets: Mapping[str, str], key: RevisionKey, role_arn: str) -> dict[str, Any]:
    where = function_placement(desired)
    return {"FunctionName": where.function_name, "PackageType": "Image" if where.image else "Zip", "Code": code(where),
            "Architectures": [where.architecture], "Tags": tags(desired), "Publish": False,
            **configuration(desired, secrets, key, role_arn)}


def url_config(desired: Desired) -> dict[str, Any]:
    where = function_placement(desired)
    return {"AuthType": where.url_auth_type, "InvokeMode": where.invoke_mode,
            "Cors": {"AllowOrigins": list(desired.allowed_origins), "AllowMethods": CORS_METHODS, "AllowHeaders": CORS_HEADERS,
                     "ExposeHeaders": ["mcp-session-id"], "MaxAge": 600}}


def url_drift(desired: Desired, found: Mapping[str, Any] | None) -> list[str]:
    """How the live alias's function URL differs from the spec, in words."""
    if found is None:
        return [f"the function URL of alias {LIVE_ALIAS} is missing"]
    want = url_config(desired)
    drift = [f"function URL {name} is {found.get(name)}, not {want[name]}" for name in ("AuthType", "InvokeMode")
             if found.get(name) != want[name]]
    cors = found.get("Cors") or {}
    if sorted(cors.get("AllowOrigins") or []) != sorted(want["Cors"]["AllowOrigins"]):
        drift.append(f"function URL CORS origins are {cors.get('AllowOrigins')}, not {want['Cors']['AllowOrigins']}")
    return drift


def missing_statements(policy: str | None) -> list[str]:
    """The public-access statements (by Sid) a NONE URL needs and the alias's resource policy lacks."""
    statements = json.loads(policy).get("Statement", []) if policy else []
    present = {(s.get("Action"), json.dumps(s.get("Principal"))) for s in statements}
    return [sid for sid, wanted in PUBLIC_STATEMENTS.items() if (wanted["Action"], '"*"') not in present]


def env_hash(variables: Mapping[str, str]) -> str:
    """Environments are compared by hash: Lambda returns values, which must not be kept or logged."""
    return hashlib.sha256(json.dumps(dict(sorted(variables.items()))).encode()).hexdigest()


def concurrency_drift(desired: Desired, function: Mapping[str, Any], provisioned: Mapping[str, Any] | None) -> list[str]:
    """How reserved and provisioned concurrency differ from the spec, in words."""
    where = function_placement(desired)
    drift = []
    reserved = (function.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    if reserved != where.reserved_concurrency:
        drift.append(f"reserved concurrency is {reserved if reserved is not None else 'unset'}, not "
                     f"{where.reserved_concurrency if where.reserved_concurrency is not None else 'unset'}")
    requested = (provisioned or {}).get("RequestedProvisionedConcurrentExecutions")
    if requested != where.provisioned_concurrency or (provisioned or {}).get("Status") == "FAILED":
        failed = f" (FAILED: {provisioned.get('StatusReason')})" if provisioned and provisioned.get("Status") == "FAILED" else ""
        drift.append(f"provisioned concurrency of alias {LIVE_ALIAS} is {requested if requested else 'unset'}{failed}, not "
                     f"{where.provisioned_concurrency if where.provisioned_concurrency else 'unset'}")
    return drift


def observed_from(desired: Desired, function: Mapping[str, Any], versions: Sequence[Mapping[str, Any]],
                  aliases: Mapping[str, Mapping[str, Any]], urls: Mapping[str, Mapping[str, Any]],
                  live_policy: str | None, provisioned: Mapping[str, Any] | None = None) -> Observed:
    """The neutral view: each published version a revision, traffic from the live alias, the URL its host."""
    where = function_placement(desired)
    latest = function["Configuration"]
    percent = _traffic(aliases.get(LIVE_ALIAS))
    candidate = (aliases.get(CANDIDATE_ALIAS) or {}).get("FunctionVersion")
    newest_ours = max((int(v["Version"]) for v in versions if key_of(v.get("Description"))), default=0)
    revisions = []
    for version in versions:
        number = version["Version"]
        found_key = key_of(version.get("Description"))
        url = _revision_url(number, candidate, percent, urls)
        staged = number == candidate or percent.get(number, 0) > 0 or int(number) < newest_ours
        revisions.append(ObservedRevision(
            cloud_id=number, key=found_key, phase=PHASES.get(version.get("State", ""), Phase.PENDING),
            percent=percent.get(number, 0), message=version.get("StateReason"), created=version.get("LastModified"),
            url=url, unfinished=found_key is not None and not staged))
    failed = _failed_latest(latest, versions)
    if failed is not None:
        revisions.append(failed)
    live_url = (urls.get(LIVE_ALIAS) or {}).get("FunctionUrl")
    drift: list[str] = []
    if LIVE_ALIAS in aliases:
        drift = url_drift(desired, urls.get(LIVE_ALIAS))
        if where.url_auth_type == "NONE" and LIVE_ALIAS in urls and missing_statements(live_policy):
            drift.append("the public-access permissions of the function URL are missing: "
                         + ", ".join(missing_statements(live_policy)))
        drift += concurrency_drift(desired, function, provisioned)
    doing = busy(desired, function)
    host = live_url.split("/")[2] if live_url else None
    return Observed(exists=True, revisions=tuple(revisions), busy=doing, host=host,
                    facts={**facts(function, provisioned), **({"alias": LIVE_ALIAS} if LIVE_ALIAS in aliases else {})},
                    config_drift=tuple(drift),
                    owner_marks=dict(function.get("Tags") or {}), resource=_resource(where))


def facts(function: Mapping[str, Any], provisioned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Lambda's own words on the function, for status.aws."""
    latest = function["Configuration"]
    found = {"functionArn": latest.get("FunctionArn"), "executionRoleArn": latest.get("Role"), "state": latest.get("State"),
             "lastUpdateStatus": latest.get("LastUpdateStatus"),
             "reservedConcurrency": (function.get("Concurrency") or {}).get("ReservedConcurrentExecutions"),
             "provisionedConcurrency": (provisioned or {}).get("RequestedProvisionedConcurrentExecutions"),
             "provisionedConcurrencyStatus": (provisioned or {}).get("Status")}
    return {k: v for k, v in found.items() if v is not None}


def busy(desired: Desired, function: Mapping[str, Any]) -> str | None:
    """What Lambda is doing to the function, while it refuses updates and publishing (409); None when idle."""
    latest = function["Configuration"]
    if latest.get("State") == "Pending" or latest.get("LastUpdateStatus") == "InProgress":
        reason = latest.get("StateReason") or latest.get("LastUpdateStatusReason") or "in progress"
        return f"Lambda is updating function {function_placement(desired).function_name} ({reason})"
    return None


def weights(alias: Mapping[str, Any]) -> dict[str, float]:
    return dict((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def shallow(desired: Desired, function: Mapping[str, Any]) -> Observed:
    """The function alone (not ours: its versions are none of our business)."""
    return Observed(exists=True, owner_marks=dict(function.get("Tags") or {}), resource=_resource(function_placement(desired)),
                    complete=False, facts=facts(function))


def _resource(where: FunctionPlacement) -> str:
    return f"Lambda function {where.function_name} in {where.region}"


def _traffic(alias: Mapping[str, Any] | None) -> dict[str, int]:
    if not alias:
        return {}
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    shares = {number: round(weight * 100) for number, weight in weights.items()}
    shares[alias["FunctionVersion"]] = 100 - sum(shares.values())
    return shares


def _revision_url(number: str, candidate: str | None, percent: Mapping[str, int], urls: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Where this version alone answers: the candidate alias's URL, or the live one when it has all traffic."""
    for alias, applies in ((CANDIDATE_ALIAS, number == candidate), (LIVE_ALIAS, percent.get(number) == 100)):
        found = urls.get(alias)
        if applies and found and found.get("AuthType") == "NONE":
            return str(found["FunctionUrl"])
    return None


def _failed_latest(latest: Mapping[str, Any], versions: Sequence[Mapping[str, Any]]) -> ObservedRevision | None:
    """A revision that failed before it could be published: $LATEST carries its key and the failure."""
    found_key = key_of(latest.get("Description"))
    if found_key is None or any(key_of(v.get("Description")) == found_key for v in versions):
        return None
    if latest.get("State") == "Failed":
        message = latest.get("StateReason")
    elif latest.get("LastUpdateStatus") == "Failed":
        message = latest.get("LastUpdateStatusReason")
    else:
        return None
    return ObservedRevision(cloud_id=LATEST, key=found_key, phase=Phase.FAILED, message=message)
