"""Pure translations between the neutral desired state and Cloud Run's request and answer bodies. No I/O.

A revision is a Cloud Run revision named ``<service>-<revision key>``: the name carries the key, and Cloud Run
refuses a second template under a name it knows, so a restarted operator can never make two revisions of one
key. Each revision the operator routes to, and the newest one, carries the traffic tag ``r<number>``, whose URL
reaches that revision alone (the MCP check before traffic moves, the periodic check after).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from ...contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Observed, ObservedRevision, Phase, RevisionKey
from ...reconcile.desired import Desired
from .placement import ServicePlacement, service_placement

REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
INVOKER = "roles/run.invoker"
PUBLIC = "allUsers"
HASH_ANNOTATION = "mcp.deploy.dev/revision-hash"
PHASES = {"CONDITION_SUCCEEDED": Phase.READY, "CONDITION_FAILED": Phase.FAILED}
SYSTEM_PREFIXES = ("run.googleapis.com/", "cloud.googleapis.com/", "serving.knative.dev/", "client.knative.dev/")


def short(name: str | None) -> str:
    """A revision's short name from its resource name (``projects/.../revisions/<name>``)."""
    return (name or "").rpartition("/")[2]


def key_of(revision: str, service: str) -> RevisionKey | None:
    if not revision.startswith(service + "-"):
        return None
    return RevisionKey.from_label(revision[len(service) + 1:])


def tag_of(key: RevisionKey) -> str:
    return f"r{key.number}"


def marks(desired: Desired) -> dict[str, str]:
    """Annotations, not labels: Google's label keys allow neither '.' nor '/'."""
    return {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: desired.owner}


def annotations_with_marks(desired: Desired, service: Mapping[str, Any]) -> dict[str, str]:
    """The service's annotations with ours on top: a write that takes a service over keeps what others set."""
    return {**(service.get("annotations") or {}), **marks(desired)}


def template(desired: Desired, key: RevisionKey, secret_versions: Mapping[str, str]) -> dict[str, Any]:
    """The revision template of ``key``. ``secret_versions`` maps an environment variable to its secret's version."""
    where = service_placement(desired)
    env: list[dict[str, Any]] = [{"name": name, "value": value} for name, value in sorted(desired.literal_env)]
    env += [{"name": name, "valueSource": {"secretKeyRef": {"secret": where.secret_id(name), "version": version}}}
            for name, version in sorted(secret_versions.items())]
    container: dict[str, Any] = {"image": where.image, "ports": [{"name": "http1", "containerPort": where.port}],
                                 "resources": {"limits": {"cpu": where.cpu, "memory": where.memory}}}
    if env:
        container["env"] = env
    body: dict[str, Any] = {"revision": where.revision_name(key), "containers": [container],
                            "annotations": {**marks(desired), HASH_ANNOTATION: desired.revision_hash},
                            "maxInstanceRequestConcurrency": where.concurrency, "timeout": f"{where.timeout_seconds}s"}
    if where.service_account:
        body["serviceAccount"] = where.service_account
    if where.execution_environment:
        body["executionEnvironment"] = f"EXECUTION_ENVIRONMENT_{where.execution_environment.upper()}"
    return body


def traffic(shares: Mapping[str, int], tagged: Mapping[str, str]) -> list[dict[str, Any]]:
    """Traffic targets pinned by revision name: each share, and a tag (its own URL) for every revision in ``tagged``."""
    names = list(dict.fromkeys([*shares, *tagged]))
    entries = []
    for name in names:
        entry: dict[str, Any] = {"type": REVISION, "revision": name, "percent": shares.get(name, 0)}
        if name in tagged:
            entry["tag"] = tagged[name]
        entries.append(entry)
    return entries


def tags_for(where: ServicePlacement, names: Sequence[str]) -> dict[str, str]:
    """The tag of each of our revisions among ``names`` (a revision not ours gets none)."""
    found = {}
    for name in names:
        key = key_of(name, where.service)
        if key is not None:
            found[name] = tag_of(key)
    return found


def service_settings(desired: Desired) -> dict[str, Any]:
    """What makes no revision: who may reach it, how it scales, whose it is."""
    where = service_placement(desired)
    return {"ingress": where.ingress, "annotations": marks(desired),
            "scaling": {"minInstanceCount": where.min_instances, "maxInstanceCount": where.max_instances}}


def with_public(policy: Mapping[str, Any], public: bool) -> dict[str, Any] | None:
    """``policy`` with allUsers added to or removed from roles/run.invoker, or None when it already is so."""
    bindings = [dict(b, members=list(b.get("members", []))) for b in policy.get("bindings", [])]
    invoker = next((b for b in bindings if b.get("role") == INVOKER and not b.get("condition")), None)
    has = invoker is not None and PUBLIC in invoker["members"]
    if has == public:
        return None
    if public:
        if invoker is None:
            bindings.append({"role": INVOKER, "members": [PUBLIC]})
        else:
            invoker["members"].append(PUBLIC)
    elif invoker is not None:
        invoker["members"].remove(PUBLIC)
        if not invoker["members"]:
            bindings.remove(invoker)
    return {"bindings": bindings, "etag": policy.get("etag"), "version": policy.get("version", 1)}


def is_public(policy: Mapping[str, Any] | None) -> bool:
    return with_public(policy or {}, True) is None


def config_drift(desired: Desired, service: Mapping[str, Any], policy: Mapping[str, Any] | None) -> list[str]:
    where = service_placement(desired)
    drift = []
    if service.get("ingress", "INGRESS_TRAFFIC_ALL") != where.ingress:
        drift.append(f"ingress is {service.get('ingress')}, not {where.ingress}")
    scaling = service.get("scaling") or {}
    found = (int(scaling.get("minInstanceCount", 0)), int(scaling.get("maxInstanceCount", 0)))
    if found != (where.min_instances, where.max_instances):
        drift.append(f"scaling is {found[0]}-{found[1]} instances, not {where.min_instances}-{where.max_instances}")
    if policy is not None and is_public(policy) != where.public:
        drift.append(f"{PUBLIC} {'holds' if is_public(policy) else 'lacks'} {INVOKER}; spec.gcp.allowUnauthenticated is "
                     f"{str(where.public).lower()}")
    return drift


def owner_marks(service: Mapping[str, Any]) -> dict[str, str]:
    found = {**(service.get("labels") or {}), **(service.get("annotations") or {})}
    return {k: str(v) for k, v in found.items() if not k.startswith(SYSTEM_PREFIXES)}


def busy(service: Mapping[str, Any]) -> str | None:
    if service.get("deleteTime"):
        return "Cloud Run is deleting the service"
    if service.get("reconciling"):
        return f"Cloud Run is rolling out generation {service.get('generation')} of the service"
    return None


def percents(service: Mapping[str, Any]) -> dict[str, int]:
    shares: dict[str, int] = {}
    for status in service.get("trafficStatuses") or []:
        name = status.get("revision") or short(service.get("latestReadyRevision"))
        shares[name] = shares.get(name, 0) + int(status.get("percent") or 0)
    return shares


def _urls(service: Mapping[str, Any], where: ServicePlacement) -> dict[str, str]:
    if not where.checkable:
        return {}
    return {s["revision"]: str(s["uri"]) for s in service.get("trafficStatuses") or [] if s.get("uri") and s.get("revision")}


def observed_from(desired: Desired, service: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]] | None,
                  policy: Mapping[str, Any] | None) -> Observed:
    """The neutral view. With ``revisions`` every revision; without, those traffic names and the newest one."""
    where = service_placement(desired)
    shares, urls = percents(service), _urls(service, where)
    found: list[ObservedRevision] = []
    if revisions is not None:
        for revision in revisions:
            name = short(revision.get("name"))
            ready: Mapping[str, Any] = next((c for c in revision.get("conditions") or [] if c.get("type") == "Ready"), {})
            found.append(ObservedRevision(
                cloud_id=name, key=key_of(name, where.service), phase=PHASES.get(ready.get("state", ""), Phase.PENDING),
                percent=shares.get(name, 0), message=ready.get("message"), created=revision.get("createTime"),
                url=urls.get(name)))
    else:
        newest = short(service.get("latestCreatedRevision"))
        done = not service.get("reconciling") and service.get("observedGeneration") == service.get("generation")
        terminal = service.get("terminalCondition") or {}
        for name in dict.fromkeys([*shares, newest]):
            if not name:
                continue
            phase = Phase.READY if name in shares else (PHASES.get(terminal.get("state", ""), Phase.PENDING) if done
                                                            else Phase.PENDING)
            found.append(ObservedRevision(cloud_id=name, key=key_of(name, where.service), phase=phase,
                                          percent=shares.get(name, 0), url=urls.get(name),
                                          message=terminal.get("message") if phase is Phase.FAILED else None))
    uri = service.get("uri")
    facts = {"projectId": where.project, "region": where.region, "service": where.service, "uri": uri,
             "latestReadyRevision": short(service.get("latestReadyRevision")) or None,
             "latestCreatedRevision": short(service.get("latestCreatedRevision")) or None,
             "observedGeneration": str(service.get("observedGeneration")) if service.get("observedGeneration") else None,
             "public": str(is_public(policy)).lower() if policy is not None else None}
    return Observed(exists=True, revisions=tuple(found), busy=busy(service), host=urlparse(uri).hostname if uri else None,
                    facts={k: v for k, v in facts.items() if v is not None},
                    config_drift=tuple(config_drift(desired, service, policy)), complete=revisions is not None,
                    owner_marks=owner_marks(service), resource=f"Cloud Run service {where.service} in {where.parent}")
