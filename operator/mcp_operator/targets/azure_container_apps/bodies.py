"""Mapping between the desired state and Container Apps' ARM bodies (wire format, camelCase). No I/O.

Container Apps names a revision ``<app>--<suffix>``; our suffix is the revision key's label, so a
restarted operator asks for the same name and ARM's idempotent PUT makes no second revision.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ...contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Observed, ObservedRevision, Phase, RevisionKey
from ...reconcile.desired import Desired, SecretEnv
from .placement import app_placement

CORS_METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
CORS_HEADERS = ["*"]
CONTAINER_NAME = "mcp-server"
RUNNING_STATES = ("Running", "RunningAtMaxScale")


def tags(desired: Desired) -> dict[str, str]:
    return {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: desired.owner}


def revision_name(desired: Desired, key: RevisionKey) -> str:
    return f"{desired.app_name}--{key.label}"


def revision_key(name: str) -> RevisionKey | None:
    """The key a revision name carries, if we made it (``<app>--r<N>-<hash8>``)."""
    _, separator, suffix = name.rpartition("--")
    return RevisionKey.from_label(suffix.lower()) if separator else None


def secret_name(ref: SecretEnv) -> str:
    """A Container Apps secret name: lower-case letters, digits, '-' and '.', at most 253 characters."""
    raw = re.sub(r"[^a-z0-9.-]+", "-", f"{ref.secret_name}-{ref.key}".lower()).strip("-.")
    if len(raw) > 60:
        raw = raw[:51] + "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return raw or "secret"


def app_secrets(desired: Desired, values: Mapping[str, str]) -> dict[str, str]:
    """Container Apps secret name -> value, from environment variable name -> value."""
    return {secret_name(ref): values[ref.env_name] for ref in desired.secret_env}


def environment_id(desired: Desired) -> str:
    where = app_placement(desired)
    return (f"/subscriptions/{where.subscription_id}/resourceGroups/{where.resource_group}"
            f"/providers/Microsoft.App/managedEnvironments/{where.environment}")


def ingress(desired: Desired, traffic: Mapping[str, int]) -> dict[str, Any]:
    return {
        "external": True,
        "targetPort": app_placement(desired).target_port,
        "transport": "auto",
        "allowInsecure": False,
        "traffic": traffic_body(traffic),
        "corsPolicy": {"allowedOrigins": list(desired.allowed_origins), "allowedMethods": CORS_METHODS,
                       "allowedHeaders": CORS_HEADERS},
    }


def traffic_body(traffic: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"revisionName": name, "weight": weight} for name, weight in traffic.items()]


def configuration(desired: Desired, secrets: Mapping[str, str], traffic: Mapping[str, int]) -> dict[str, Any]:
    return {
        "activeRevisionsMode": "Multiple",
        "ingress": ingress(desired, traffic),
        "secrets": [{"name": name, "value": value} for name, value in sorted(app_secrets(desired, secrets).items())],
    }


def template(desired: Desired, key: RevisionKey) -> dict[str, Any]:
    where = app_placement(desired)
    env: list[dict[str, Any]] = [{"name": "PORT", "value": str(where.target_port)}]
    env += [{"name": name, "value": value} for name, value in desired.literal_env]
    env += [{"name": s.env_name, "secretRef": secret_name(s)} for s in desired.secret_env]
    return {
        "revisionSuffix": key.label,
        "containers": [{
            "name": CONTAINER_NAME,
            "image": desired.image,
            "env": env,
            "resources": {"cpu": float(desired.cpu), "memory": desired.memory},
        }],
        "scale": {"minReplicas": where.min_replicas, "maxReplicas": where.max_replicas},
    }


def app_body(desired: Desired, secrets: Mapping[str, str], key: RevisionKey, traffic_to: str) -> dict[str, Any]:
    return {
        "location": app_placement(desired).location,
        "tags": tags(desired),
        "properties": {
            "environmentId": environment_id(desired),
            "configuration": configuration(desired, secrets, {traffic_to: 100}),
            "template": template(desired, key),
        },
    }


def config_drift(desired: Desired, app: dict[str, Any]) -> tuple[str, ...]:
    """Differences in settings that do not make a revision; empty when the app is as desired."""
    props = app.get("properties") or {}
    config = props.get("configuration") or {}
    found = []
    if props.get("provisioningState") == "Failed":
        found.append("the app's last operation failed")
    if (config.get("activeRevisionsMode") or "Single").lower() != "multiple":
        found.append("activeRevisionsMode is not Multiple")
    ingress_now = config.get("ingress") or {}
    if not ingress_now.get("external"):
        found.append("ingress is not external")
    port = app_placement(desired).target_port
    if ingress_now.get("targetPort") != port:
        found.append(f"ingress targetPort is {ingress_now.get('targetPort')}, want {port}")
    cors = ingress_now.get("corsPolicy") or {}
    if sorted(cors.get("allowedOrigins") or []) != sorted(desired.allowed_origins):
        found.append(f"CORS allowedOrigins are {cors.get('allowedOrigins')}, want {list(desired.allowed_origins)}")
    if sorted(cors.get("allowedMethods") or []) != sorted(CORS_METHODS) or (cors.get("allowedHeaders") or []) != CORS_HEADERS:
        found.append("CORS methods or headers differ")
    present = {s.get("name") for s in config.get("secrets") or []}
    if present != {secret_name(s) for s in desired.secret_env}:
        found.append("secrets differ")
    return tuple(found) + template_drift(desired, props.get("template") or {})


def _essence(template_body: dict[str, Any]) -> tuple[Any, ...]:
    """What runs, as a comparable value: the image, env, resources and scale (not defaults the cloud fills in)."""
    containers = template_body.get("containers") or [{}]
    main = containers[0]
    env = sorted((e.get("name"), e.get("value"), e.get("secretRef")) for e in main.get("env") or [])
    resources = main.get("resources") or {}
    scale = template_body.get("scale") or {}
    return (len(containers), main.get("image"), tuple(env), float(resources.get("cpu") or 0), resources.get("memory"),
            scale.get("minReplicas"), scale.get("maxReplicas"))


def template_drift(desired: Desired, now: dict[str, Any]) -> tuple[str, ...]:
    """The app's template (what its next revision and a restart run) must be the template of one of our revisions.

    A template with a suffix we did not give was written by someone else (``az containerapp update --image``);
    one with our suffix for this spec must hold exactly what we sent. An older suffix of ours is a rollback.
    """
    key = revision_key(f"--{now.get('revisionSuffix') or ''}")
    image = ((now.get("containers") or [{}])[0]).get("image")
    if key is None:
        return (f"the app's template (image {image}, suffix {now.get('revisionSuffix') or 'none'}) was not written by "
                "this operator",)
    if desired.revision_hash.startswith(key.hash) and _essence(now) != _essence(template(desired, key)):
        return (f"the app's template of revision {key.number} was changed (image {image}, want {desired.image}, or its "
                "env, resources or scale)",)
    return ()


def _facts(state: str | None) -> dict[str, str]:
    return {"provisioningState": state} if state else {}


def _busy(state: str | None) -> str | None:
    return f"the app is {state}; waiting for it to finish" if state in ("InProgress", "Deleting") else None


def _phase(active: bool, provisioning: str, running: str) -> Phase:
    if provisioning == "Failed" or running == "Failed":
        return Phase.FAILED
    if provisioning == "Provisioned" and not active:
        return Phase.RETIRED
    if active and provisioning == "Provisioned" and running in RUNNING_STATES:
        return Phase.READY
    return Phase.PENDING


def _revision(name: str, phase: Phase, percent: int, message: str | None = None, created: str | None = None,
              fqdn: str | None = None) -> ObservedRevision:
    return ObservedRevision(cloud_id=name, key=revision_key(name), phase=phase, percent=percent, message=message,
                            created=created, url=f"https://{fqdn}/" if fqdn else None)


def _identity(app: dict[str, Any], resource_group: str) -> dict[str, Any]:
    """Who the app says made it, and how to name it in a message."""
    return {"owner_marks": dict(app.get("tags") or {}),
            "resource": f"container app {app.get('name')} in resource group {resource_group}"}


def shallow_observed(app: dict[str, Any], drift: tuple[str, ...], resource_group: str) -> Observed:
    """What the app body alone says about its revisions: the latest one, and those that receive traffic."""
    props = app.get("properties") or {}
    ingress_now = (props.get("configuration") or {}).get("ingress") or {}
    latest, latest_ready = props.get("latestRevisionName") or None, props.get("latestReadyRevisionName") or None
    state = props.get("provisioningState")
    traffic: dict[str, tuple[str, int]] = {}  # lower-case name -> (name, weight)
    for entry in ingress_now.get("traffic") or []:
        name = latest_ready if entry.get("latestRevision") else entry.get("revisionName")
        if name and entry.get("weight"):
            traffic[name.lower()] = (name, traffic.get(name.lower(), (name, 0))[1] + int(entry["weight"]))
    revisions = {lower: _revision(name, Phase.READY, weight) for lower, (name, weight) in traffic.items()}
    if latest:  # traffic only ever goes to active revisions; the latest one is active too
        if latest == latest_ready:
            phase = Phase.READY
        elif state == "Failed":
            phase = Phase.FAILED
        else:
            phase = Phase.PENDING
        revisions[latest.lower()] = _revision(latest, phase, traffic.get(latest.lower(), (latest, 0))[1],
                                              fqdn=props.get("latestRevisionFqdn") or None)
    return Observed(exists=True, revisions=tuple(revisions.values()), busy=_busy(state), host=ingress_now.get("fqdn"),
                    facts=_facts(state), config_drift=drift, complete=False, **_identity(app, resource_group))


def observed_from(app: dict[str, Any], revisions: list[dict[str, Any]], drift: tuple[str, ...],
                  resource_group: str) -> Observed:
    props = app.get("properties") or {}
    ingress_now = (props.get("configuration") or {}).get("ingress") or {}
    observed = []
    for revision in revisions:
        rp = revision.get("properties") or {}
        active = bool(rp.get("active"))
        phase = _phase(active, str(rp.get("provisioningState", "")), str(rp.get("runningState", "")))
        percent = int(rp.get("trafficWeight") or 0) if active else 0
        message = (rp.get("provisioningError") or "the revision failed to provision") if phase is Phase.FAILED else None
        observed.append(_revision(revision["name"], phase, percent, message, rp.get("createdTime"), rp.get("fqdn")))
    state = props.get("provisioningState")
    return Observed(exists=True, revisions=tuple(observed), busy=_busy(state), host=ingress_now.get("fqdn"),
                    facts=_facts(state), config_drift=drift, **_identity(app, resource_group))
