"""Mapping between the desired state and Container Apps' ARM bodies (wire format, camelCase). No I/O."""

from __future__ import annotations

from typing import Any

from ...reconcile.desired import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Desired
from ..base import Observed, ObservedRevision

CORS_METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
CORS_HEADERS = ["*"]
CONTAINER_NAME = "mcp-server"


def tags(desired: Desired) -> dict[str, str]:
    return {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: desired.owner}


def environment_id(desired: Desired) -> str:
    return (f"/subscriptions/{desired.subscription_id}/resourceGroups/{desired.resource_group}"
            f"/providers/Microsoft.App/managedEnvironments/{desired.environment}")


def ingress(desired: Desired, traffic_to: str) -> dict[str, Any]:
    return {
        "external": True,
        "targetPort": desired.target_port,
        "transport": "auto",
        "allowInsecure": False,
        "traffic": [{"revisionName": traffic_to, "weight": 100}],
        "corsPolicy": {"allowedOrigins": list(desired.allowed_origins), "allowedMethods": CORS_METHODS,
                       "allowedHeaders": CORS_HEADERS},
    }


def configuration(desired: Desired, secrets: dict[str, str], traffic_to: str) -> dict[str, Any]:
    return {
        "activeRevisionsMode": "Multiple",
        "ingress": ingress(desired, traffic_to),
        "secrets": [{"name": name, "value": value} for name, value in sorted(secrets.items())],
    }


def template(desired: Desired, suffix: str) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": "PORT", "value": str(desired.target_port)}]
    env += [{"name": name, "value": value} for name, value in desired.literal_env]
    env += [{"name": s.env_name, "secretRef": s.cloud_secret_name} for s in desired.secret_env]
    return {
        "revisionSuffix": suffix,
        "containers": [{
            "name": CONTAINER_NAME,
            "image": desired.image,
            "env": env,
            "resources": {"cpu": float(desired.cpu), "memory": desired.memory},
        }],
        "scale": {"minReplicas": desired.min_replicas, "maxReplicas": desired.max_replicas},
    }


def app_body(desired: Desired, secrets: dict[str, str], suffix: str, traffic_to: str) -> dict[str, Any]:
    return {
        "location": desired.location,
        "tags": tags(desired),
        "properties": {
            "environmentId": environment_id(desired),
            "configuration": configuration(desired, secrets, traffic_to),
            "template": template(desired, suffix),
        },
    }


def config_drift(desired: Desired, app: dict[str, Any], secret_names: set[str]) -> tuple[str, ...]:
    """Differences in settings that do not make a revision; empty when the app is as desired."""
    config = app.get("properties", {}).get("configuration") or {}
    found = []
    if (config.get("activeRevisionsMode") or "Single").lower() != "multiple":
        found.append("activeRevisionsMode is not Multiple")
    ingress_now = config.get("ingress") or {}
    if not ingress_now.get("external"):
        found.append("ingress is not external")
    if ingress_now.get("targetPort") != desired.target_port:
        found.append(f"ingress targetPort is {ingress_now.get('targetPort')}, want {desired.target_port}")
    cors = ingress_now.get("corsPolicy") or {}
    if sorted(cors.get("allowedOrigins") or []) != sorted(desired.allowed_origins):
        found.append(f"CORS allowedOrigins are {cors.get('allowedOrigins')}, want {list(desired.allowed_origins)}")
    if sorted(cors.get("allowedMethods") or []) != sorted(CORS_METHODS) or (cors.get("allowedHeaders") or []) != CORS_HEADERS:
        found.append("CORS methods or headers differ")
    present = {s.get("name") for s in config.get("secrets") or []}
    if present != secret_names:
        found.append("secrets differ")
    return tuple(found)


def shallow_observed(app: dict[str, Any], config_drift_found: tuple[str, ...]) -> Observed:
    """What the app body alone says about its revisions: the latest one, and those that receive traffic."""
    props = app.get("properties") or {}
    config = props.get("configuration") or {}
    ingress_now = config.get("ingress") or {}
    latest, latest_ready = props.get("latestRevisionName") or None, props.get("latestReadyRevisionName") or None
    state = props.get("provisioningState")
    image = str(((props.get("template") or {}).get("containers") or [{}])[0].get("image", ""))
    traffic: dict[str, int] = {}
    for entry in ingress_now.get("traffic") or []:
        target = latest_ready if entry.get("latestRevision") else entry.get("revisionName")
        if target and entry.get("weight"):
            traffic[target.lower()] = traffic.get(target.lower(), 0) + int(entry["weight"])
    revisions: dict[str, ObservedRevision] = {}
    for name in traffic:  # traffic only ever goes to active revisions
        revisions[name] = ObservedRevision(name=name, image="", active=True, provisioning="Provisioned", running="Running",
                                           traffic_weight=traffic[name])
    if latest:
        if latest == latest_ready:
            provisioning, running = "Provisioned", "Running"
        elif state == "Failed":
            provisioning, running = "Failed", "Failed"
        else:
            provisioning, running = "Provisioning", "Processing"
        revisions[latest.lower()] = ObservedRevision(name=latest, image=image, active=True, provisioning=provisioning,
                                                     running=running, traffic_weight=traffic.get(latest.lower(), 0))
    return Observed(exists=True, provisioning_state=state, fqdn=ingress_now.get("fqdn"),
                    revisions=revisions, traffic=traffic, config_drift=config_drift_found, complete=False)


def observed_from(app: dict[str, Any], revisions: list[dict[str, Any]], config_drift_found: tuple[str, ...]) -> Observed:
    props = app.get("properties") or {}
    ingress_now = (props.get("configuration") or {}).get("ingress") or {}
    observed_revisions = {}
    traffic: dict[str, int] = {}
    for revision in revisions:
        rp = revision.get("properties") or {}
        containers = (rp.get("template") or {}).get("containers") or [{}]
        name = revision["name"]
        observed_revisions[name.lower()] = ObservedRevision(
            name=name, image=str(containers[0].get("image", "")), active=bool(rp.get("active")),
            provisioning=str(rp.get("provisioningState", "")), running=str(rp.get("runningState", "")),
            traffic_weight=int(rp.get("trafficWeight") or 0), created=rp.get("createdTime"), error=rp.get("provisioningError"),
        )
        if rp.get("active") and rp.get("trafficWeight"):
            traffic[name.lower()] = int(rp["trafficWeight"])
    return Observed(
        exists=True,
        provisioning_state=props.get("provisioningState"),
        fqdn=ingress_now.get("fqdn"),
        revisions=observed_revisions,
        traffic=traffic,
        config_drift=config_drift_found,
    )
