"""The simulated cloud: resource groups, providers, managed environments, container apps and revisions.

Time is explicit: every state change that takes a while in Azure is scheduled on a heap and applied
lazily, the next time anyone looks (``settle``). That keeps the simulator cheap with thousands of
resources and makes tests deterministic: nothing moves unless the clock has passed the due time.
Resource names are case-insensitive, as in ARM; the casing of the first PUT is kept for responses.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simcore.mcp_ingress import Backend
from simcore.schedule import Schedule

JSON = dict[str, Any]

# Names of the simulated latencies; each is in seconds (see docs/simulator.md).
DEFAULT_LATENCY: dict[str, float] = {
    "provider.register": 0.5,
    "resourceGroup.delete": 0.5,
    "environment.create": 1.0,
    "environment.delete": 0.5,
    "containerApp.create": 1.0,
    "containerApp.update": 1.0,
    "containerApp.delete": 0.5,
    "revision.activate": 0.2,
    "request": 0.0,
}

_ADJECTIVES = ["happy", "polite", "brave", "calm", "lively", "gentle", "proud", "witty"]
_NOUNS = ["river", "hill", "stone", "meadow", "sea", "forest", "field", "sand"]


class ArmError(Exception):
    """An error ARM answers with ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target

    def body(self) -> JSON:
        error: JSON = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def region_of(location: str) -> str:
    """'East US' -> 'eastus', as ARM normalises locations."""
    return re.sub(r"\s+", "", location).lower()


def template_digest(template: JSON) -> str:
    """Identity of a revision template, ignoring the suffix (which only names it)."""
    essence = {k: v for k, v in template.items() if k != "revisionSuffix"}
    return hashlib.sha256(json.dumps(essence, sort_keys=True).encode()).hexdigest()


@dataclass
class Operation:
    """An asynchronous operation, as an operation-status monitor reports it."""

    id: str
    name: str
    kind: str
    resource_id: str
    region: str
    start: float
    status: str = "InProgress"
    end: float | None = None
    error: JSON | None = None
    final_status: int = 200  # status code of the Location monitor once done
    final_body: Callable[[], JSON | None] | None = None

    def as_status(self) -> JSON:
        body: JSON = {"id": self.id, "name": self.name, "status": self.status, "startTime": iso(self.start)}
        if self.end is not None:
            body["endTime"] = iso(self.end)
        if self.error:
            body["error"] = self.error
        return body


@dataclass
class Revision:
    name: str
    template: JSON
    digest: str
    created: float
    provisioning_state: str = "Provisioning"
    running_state: str = "Processing"
    health_state: str = "None"
    active: bool = True
    replicas: int = 0
    provisioning_error: str | None = None
    last_active: float | None = None
    restarts: int = 0
    replica_names: list[str] | None = None  # fixed names (test set-up); otherwise derived from the revision


@dataclass
class ContainerApp:
    id: str
    name: str
    resource_group: str
    body: JSON  # what the client sent, minus secret values and read-only fields
    secrets: dict[str, str]
    environment_key: tuple[str, str, str]
    created: float
    provisioning_state: str = "InProgress"
    running_status: str = "Progressing"
    revisions: dict[str, Revision] = field(default_factory=dict)  # lower-case name -> revision
    latest_revision: str | None = None
    latest_ready_revision: str | None = None
    deleting: bool = False
    log_lines: list[str] = field(default_factory=list)


@dataclass
class ManagedEnvironment:
    id: str
    name: str
    resource_group: str
    location: str
    body: JSON
    default_domain: str
    provisioning_state: str = "InitializationInProgress"


@dataclass
class ResourceGroup:
    id: str
    name: str
    location: str
    tags: JSON
    provisioning_state: str = "Succeeded"


@dataclass
class Subscription:
    id: str
    providers: dict[str, str]  # lower-case namespace -> registrationState
    provider_names: dict[str, str]  # lower-case namespace -> canonical casing
    groups: dict[str, ResourceGroup] = field(default_factory=dict)


@dataclass
class RevisionFailure:
    """Fault: revisions whose image contains ``image_contains`` fail to provision."""

    image_contains: str
    code: str = "ContainerAppOperationError"
    message: str = "Failed to provision revision: container exited with code 1"


class World(Schedule):
    """All simulated state of one ARM instance, with a scheduler for what takes time."""

    KNOWN_PROVIDERS = ("Microsoft.App", "Microsoft.OperationalInsights", "Microsoft.ContainerRegistry")

    def __init__(self, subscriptions: list[str], registered: tuple[str, ...] = (), clock: Callable[[], float] = time.time):
        super().__init__(clock, DEFAULT_LATENCY)
        self.subscriptions: dict[str, Subscription] = {}
        for sub in subscriptions:
            self.add_subscription(sub, registered)
        self.environments: dict[tuple[str, str, str], ManagedEnvironment] = {}
        self.apps: dict[tuple[str, str, str], ContainerApp] = {}
        self.operations: dict[str, Operation] = {}
        self.revision_failures: list[RevisionFailure] = []
        self.operation_failures: dict[str, list[ArmError]] = {}  # operation kind -> queued failures
        self.log_stream_base = "https://eastus.azurecontainerapps.dev"  # the server sets its own address


    # ----- subscriptions and providers ------------------------------------------------------------
    def add_subscription(self, sub: str, registered: tuple[str, ...] = ()) -> None:
        names = {p.lower(): p for p in (*self.KNOWN_PROVIDERS, "Microsoft.Resources")}
        states = {p: "NotRegistered" for p in names}
        states["microsoft.resources"] = "Registered"
        for p in registered:
            states[p.lower()] = "Registered"
            names.setdefault(p.lower(), p)
        self.subscriptions[sub.lower()] = Subscription(sub, states, names)

    def subscription(self, sub: str) -> Subscription:
        found = self.subscriptions.get(sub.lower())
        if not found:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        return found

    def require_registered(self, sub: str, namespace: str) -> None:
        state = self.subscription(sub).providers.get(namespace.lower(), "NotRegistered")
        if state != "Registered":
            raise ArmError(
                409,
                "MissingSubscriptionRegistration",
                f"The subscription is not registered to use namespace '{namespace}'. See "
                "https://aka.ms/rps-not-found for how to register subscriptions.",
            )

    def provider_body(self, sub: str, namespace: str) -> JSON:
        s = self.subscription(sub)
        key = namespace.lower()
        if key not in s.providers:
            raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
        canonical = s.provider_names[key]
        types = ["containerApps", "managedEnvironments", "operations"] if key == "microsoft.app" else ["operations"]
        return {
            "id": f"/subscriptions/{s.id}/providers/{canonical}",
            "namespace": canonical,
            "registrationState": s.providers[key],
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {"resourceType": t, "locations": ["East US", "West Europe"], "apiVersions": ["2026-07-01", "2025-07-01"],
                 "capabilities": "SupportsTags, SupportsLocation"} for t in types
            ],
        }

    def register_provider(self, sub: str, namespace: str) -> JSON:
        s = self.subscription(sub)
        key = namespace.lower()
        if key not in s.providers:
            raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
        if s.providers[key] == "NotRegistered":
            s.providers[key] = "Registering"
            self.later("provider.register", lambda: s.providers.__setitem__(key, "Registered"))
        return self.provider_body(sub, namespace)

    # ----- resource groups ----------------------------------------------------------------------
    def group(self, sub: str, name: str) -> ResourceGroup:
        found = self.subscription(sub).groups.get(name.lower())
        if not found:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        return found

    def put_group(self, sub: str, name: str, body: JSON) -> tuple[int, JSON]:
        s = self.subscription(sub)
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        existing = s.groups.get(name.lower())
        if existing and existing.provisioning_state == "Deleting":
            raise ArmError(409, "ResourceGroupBeingDeleted", f"The resource group '{name}' is in deprovisioning state.")
        if existing:
            existing.tags = body.get("tags", existing.tags) or {}
            return 200, self.group_body(existing)
        rg = ResourceGroup(f"/subscriptions/{s.id}/resourceGroups/{name}", name, body["location"], body.get("tags") or {})
        s.groups[name.lower()] = rg
        return 201, self.group_body(rg)

    @staticmethod
    def group_body(rg: ResourceGroup) -> JSON:
        return {
            "id": rg.id,
            "name": rg.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": region_of(rg.location),
            "tags": rg.tags,
            "properties": {"provisioningState": rg.provisioning_state},
        }

    def delete_group(self, sub: str, name: str, op: Operation) -> None:
        rg = self.group(sub, name)
        rg.provisioning_state = "Deleting"

        def finish() -> None:
            for key in [k for k in self.apps if k[:2] == (sub.lower(), name.lower())]:
                del self.apps[key]
            for key in [k for k in self.environments if k[:2] == (sub.lower(), name.lower())]:
                del self.environments[key]
            self.subscription(sub).groups.pop(name.lower(), None)
            self.finish(op)

        self.later("resourceGroup.delete", finish)

    def resources_in_group(self, sub: str, name: str) -> int:
        key = (sub.lower(), name.lower())
        return sum(1 for k in self.apps if k[:2] == key) + sum(1 for k in self.environments if k[:2] == key)

    # ----- operations ---------------------------------------------------------------------------
    def new_operation(self, kind: str, resource_id: str, region: str, final_status: int = 200,
                      final_body: Callable[[], JSON | None] | None = None) -> Operation:
        op_id = str(uuid.uuid4())
        op = Operation(op_id, op_id, kind, resource_id, region, self.clock(), final_status=final_status, final_body=final_body)
        self.operations[op_id] = op
        return op

    def finish(self, op: Operation, error: ArmError | None = None) -> None:
        op.end = self.clock()
        if error is None:
            op.status = "Succeeded"
        else:
            op.status = "Failed"
            op.error = {"code": error.code, "message": error.message}

    def queued_failure(self, kind: str) -> ArmError | None:
        queue = self.operation_failures.get(kind)
        return queue.pop(0) if queue else None

    # ----- managed environments ---------------------------------------------------------------------
    def environment(self, sub: str, rg: str, name: str) -> ManagedEnvironment:
        env = self.environments.get((sub.lower(), rg.lower(), name.lower()))
        if not env:
            raise ArmError(
                404, "ResourceNotFound",
                f"The Resource 'Microsoft.App/managedEnvironments/{name}' under resource group '{rg}' was not found.",
            )
        return env

    def put_environment(self, sub: str, rg: str, name: str, body: JSON) -> tuple[int, JSON, Operation]:
        group = self.group(sub, rg)
        key = (sub.lower(), rg.lower(), name.lower())
        existing = self.environments.get(key)
        stored = {k: v for k, v in copy.deepcopy(body).items() if k in ("location", "tags", "properties", "kind", "identity")}
        props = stored.setdefault("properties", {})
        for read_only in ("provisioningState", "defaultDomain", "staticIp", "eventStreamEndpoint", "deploymentErrors"):
            props.pop(read_only, None)
        if existing:
            existing.body = stored
            status = 200
            env = existing
        else:
            region = region_of(body["location"])
            word = _ADJECTIVES[len(self.environments) % len(_ADJECTIVES)] + _NOUNS[len(name) % len(_NOUNS)]
            suffix = hashlib.sha256(f"{sub}/{rg}/{name}".lower().encode()).hexdigest()[:8]
            env = ManagedEnvironment(
                f"/subscriptions/{self.subscription(sub).id}/resourceGroups/{group.name}/providers/Microsoft.App/managedEnvironments/{name}",
                name, group.name, body["location"], stored, f"{word}-{suffix}.{region}.azurecontainerapps.io",
            )
            self.environments[key] = env
            status = 201
        op = self.new_operation("environment.create", env.id, region_of(env.location), final_body=lambda: self.environment_body(env))
        failure = self.queued_failure("environment.create")

        def provisioned() -> None:
            env.provisioning_state = "Failed" if failure else "Succeeded"
            self.finish(op, failure)

        if status == 201:
            self.later("environment.create", provisioned)
        else:
            provisioned()
        return status, self.environment_body(env), op

    def environment_body(self, env: ManagedEnvironment) -> JSON:
        body = copy.deepcopy(env.body)
        # Write-only secrets of an environment are never returned.
        props_in = body.get("properties", {})
        ((props_in.get("appLogsConfiguration") or {}).get("logAnalyticsConfiguration") or {}).pop("sharedKey", None)
        for secret in ("certificatePassword", "certificateValue"):
            (props_in.get("customDomainConfiguration") or {}).pop(secret, None)
        for secret in ("daprAIConnectionString", "daprAIInstrumentationKey"):
            props_in.pop(secret, None)
        body.update({"id": env.id, "name": env.name, "type": "Microsoft.App/managedEnvironments", "location": env.location})
        body.setdefault("tags", {})
        props = body.setdefault("properties", {})
        props.update({
            "provisioningState": env.provisioning_state,
            "defaultDomain": env.default_domain,
            "staticIp": "20.1.2.3",
            "eventStreamEndpoint": f"https://{region_of(env.location)}.azurecontainerapps.dev/subscriptions/"
                                   f"{env.id.split('/')[2]}/resourceGroups/{env.resource_group}/managedEnvironments/{env.name}/eventstream",
        })
        return body

    def delete_environment(self, sub: str, rg: str, name: str, op: Operation) -> None:
        env = self.environment(sub, rg, name)
        in_use = [a.name for a in self.apps.values() if a.environment_key == (sub.lower(), rg.lower(), name.lower())]
        if in_use:
            raise ArmError(
                409, "ManagedEnvironmentHasContainerApps",
                f"Cannot delete managed environment '{name}' because it still has container apps: {', '.join(in_use)}.",
            )
        env.provisioning_state = "ScheduledForDelete"

        def finish() -> None:
            self.environments.pop((sub.lower(), rg.lower(), name.lower()), None)
            self.finish(op)

        self.later("environment.delete", finish)

    # ----- container apps ---------------------------------------------------------------------------
    def app(self, sub: str, rg: str, name: str) -> ContainerApp:
        self.group(sub, rg)
        app = self.apps.get((sub.lower(), rg.lower(), name.lower()))
        if not app:
            raise ArmError(
                404, "ResourceNotFound",
                f"The Resource 'Microsoft.App/containerApps/{name}' under resource group '{rg}' was not found.",
            )
        return app

    def _environment_for(self, sub: str, body: JSON) -> ManagedEnvironment:
        env_id = (body.get("properties") or {}).get("environmentId") or (body.get("properties") or {}).get("managedEnvironmentId")
        match = re.match(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.App/managedEnvironments/([^/]+)$",
                         env_id or "", re.IGNORECASE)
        if not match:
            raise ArmError(400, "InvalidParameterValue", "properties.environmentId must be the id of a managed environment.",
                           "properties.environmentId")
        try:
            env = self.environment(*match.groups())
        except ArmError as exc:
            raise ArmError(400, "ManagedEnvironmentNotFound", exc.message, "properties.environmentId") from exc
        if env.provisioning_state != "Succeeded":
            raise ArmError(409, "ManagedEnvironmentNotReadyForAppCreation",
                           f"Managed environment '{env.name}' is in state '{env.provisioning_state}'.")
        return env

    def put_app(self, sub: str, rg: str, name: str, body: JSON) -> tuple[int, JSON, Operation]:
        group = self.group(sub, rg)
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", name, re.IGNORECASE) or "--" in name:
            raise ArmError(400, "ContainerAppInvalidName",
                           f"Invalid ContainerApp name '{name}'. A name must consist of lower case alphanumeric characters "
                           "or '-', start with a letter, end with an alphanumeric character, cannot have '--', "
                           "and must be less than 32 characters.")
        env = self._environment_for(sub, body)
        key = (sub.lower(), rg.lower(), name.lower())
        existing = self.apps.get(key)
        if existing and (existing.deleting or existing.provisioning_state == "InProgress"):
            raise ArmError(409, "ContainerAppOperationInProgress",
                           f"Cannot modify container app '{name}' because another operation is in progress.")
        secrets, stored = self._split_secrets(body, existing)
        # Validate a candidate first, so a rejected request leaves the app exactly as it was.
        if existing:
            candidate = copy.copy(existing)
        else:
            candidate = ContainerApp(
                f"/subscriptions/{self.subscription(sub).id}/resourceGroups/{group.name}/providers/Microsoft.App/containerApps/{name}",
                name, group.name, stored, secrets, (sub.lower(), env.resource_group.lower(), env.name.lower()), self.clock(),
            )
        candidate.body, candidate.secrets = stored, secrets
        self._validate_secret_refs(candidate)
        new_revision = self._revision_for_template(candidate)
        self._validate_traffic(candidate, new_revision)
        if existing:
            app, status = existing, 200
            app.body, app.secrets = stored, secrets
        else:
            app, status = candidate, 201
            self.apps[key] = app
        kind = "containerApp.create" if status == 201 else "containerApp.update"
        op = self.new_operation(kind, app.id, region_of(env.location), final_body=lambda: self.app_body(app))
        self._start_app_operation(app, op, kind, new_revision)
        return status, self.app_body(app), op

    def patch_app(self, sub: str, rg: str, name: str, patch: JSON) -> tuple[JSON, Operation]:
        app = self.app(sub, rg, name)
        env = self.environments[app.environment_key]
        merged = _merge_patch(self.app_body(app, with_secrets=True), patch)
        merged.setdefault("properties", {})["environmentId"] = env.id
        _, body, op = self.put_app(sub, rg, name, merged)
        return body, op

    @staticmethod
    def _split_secrets(body: JSON, existing: ContainerApp | None) -> tuple[dict[str, str], JSON]:
        stored = copy.deepcopy({k: v for k, v in body.items() if k in ("location", "tags", "identity", "properties", "kind")})
        props = stored.setdefault("properties", {})
        for read_only in ("provisioningState", "runningStatus", "latestRevisionName", "latestReadyRevisionName",
                          "latestRevisionFqdn", "outboundIpAddresses", "eventStreamEndpoint", "customDomainVerificationId",
                          "deploymentErrors"):
            props.pop(read_only, None)
        if "managedEnvironmentId" in props and "environmentId" not in props:
            props["environmentId"] = props["managedEnvironmentId"]
        props.pop("managedEnvironmentId", None)
        config = props.setdefault("configuration", {})
        config.setdefault("activeRevisionsMode", "Single")
        secrets: dict[str, str] = {}
        previous = existing.secrets if existing else {}
        for secret in config.get("secrets") or []:
            if "value" in secret and secret["value"] is not None:
                secrets[secret["name"]] = secret["value"]
            elif secret["name"] in previous:
                secrets[secret["name"]] = previous[secret["name"]]
            elif not secret.get("keyVaultUrl"):
                raise ArmError(400, "ContainerAppSecretInvalid", f"Secret '{secret['name']}' has no value.",
                               "properties.configuration.secrets")
            secret.pop("value", None)
        _apply_template_defaults(props.get("template"))
        ingress = config.get("ingress")
        if ingress is not None:
            ingress.pop("fqdn", None)
            ingress.setdefault("transport", "auto")
            ingress.setdefault("allowInsecure", False)
        return secrets, stored

    def _validate_secret_refs(self, app: ContainerApp) -> None:
        template = app.body.get("properties", {}).get("template") or {}
        declared = {s["name"] for s in app.body["properties"]["configuration"].get("secrets") or []}
        for container in template.get("containers") or []:
            for env in container.get("env") or []:
                if env.get("secretRef") and env["secretRef"] not in declared:
                    raise ArmError(400, "ContainerAppSecretRefNotFound",
                                   f"Env var '{env['name']}' references secret '{env['secretRef']}', which is not defined.",
                                   "properties.template.containers.env")

    def _revision_for_template(self, app: ContainerApp) -> Revision | None:
        """The revision a PUT creates, or None when the template is unchanged."""
        template = copy.deepcopy(app.body.get("properties", {}).get("template") or {})
        digest = template_digest(template)
        suffix = template.get("revisionSuffix")
        if suffix:
            name = f"{app.name}--{suffix}"
            same_name = app.revisions.get(name.lower())
            if same_name:
                if same_name.digest == digest:
                    return None
                raise ArmError(400, "ContainerAppRevisionSuffixConflict",
                               f"Revision with suffix '{suffix}' already exists with a different template. "
                               "Choose a new revisionSuffix.", "properties.template.revisionSuffix")
        else:
            latest = app.revisions.get((app.latest_revision or "").lower())
            if latest and latest.digest == digest:
                return None
            name = f"{app.name}--{uuid.uuid4().hex[:7]}"
        if not template.get("containers"):
            raise ArmError(400, "ContainerAppInvalidTemplate", "properties.template.containers must not be empty.",
                           "properties.template.containers")
        return Revision(name, template, digest, self.clock())

    def _validate_traffic(self, app: ContainerApp, new_revision: Revision | None) -> None:
        config = app.body["properties"]["configuration"]
        traffic = (config.get("ingress") or {}).get("traffic")
        if config.get("activeRevisionsMode", "Single").lower() != "multiple" or not traffic:
            return
        total = sum(int(t.get("weight") or 0) for t in traffic)
        if any("weight" in t for t in traffic) and total != 100:
            raise ArmError(400, "ContainerAppInvalidTrafficWeight",
                           f"The sum of traffic weights must be 100, but was {total}.", "properties.configuration.ingress.traffic")
        for entry in traffic:
            target = entry.get("revisionName")
            if not target or (entry.get("weight") or 0) == 0:
                continue
            if new_revision and target.lower() == new_revision.name.lower():
                continue
            known = app.revisions.get(target.lower())
            if not known:
                raise ArmError(400, "ContainerAppRevisionNotFound", f"Revision '{target}' does not exist.",
                               "properties.configuration.ingress.traffic")
            if not known.active:
                raise ArmError(400, "ContainerAppRevisionNotActive",
                               f"Traffic cannot be sent to inactive revision '{target}'. Activate it first.",
                               "properties.configuration.ingress.traffic")

    def _start_app_operation(self, app: ContainerApp, op: Operation, kind: str, new_revision: Revision | None) -> None:
        app.provisioning_state = "InProgress"
        app.running_status = "Progressing"
        failure = self.queued_failure(kind)
        if new_revision:
            app.revisions[new_revision.name.lower()] = new_revision
            app.latest_revision = new_revision.name
            new_revision.last_active = self.clock()
            app.log_lines.append(f"Revision {new_revision.name} created with image {_image(new_revision.template)}")
            for rule in self.revision_failures:
                if rule.image_contains in _image(new_revision.template):
                    failure = ArmError(400, rule.code,
                                       f"Failed to provision revision for container app '{app.name}'. Error details: {rule.message}")

        def done() -> None:
            if new_revision:
                if failure:
                    new_revision.provisioning_state = "Failed"
                    new_revision.running_state = "Failed"
                    new_revision.health_state = "Unhealthy"
                    new_revision.provisioning_error = failure.message
                else:
                    new_revision.provisioning_state = "Provisioned"
                    new_revision.running_state = "Running"
                    new_revision.health_state = "Healthy"
                    new_revision.replicas = max(1, int(_scale(new_revision.template).get("minReplicas", 0) or 0))
                    app.latest_ready_revision = new_revision.name
                    app.log_lines.append(f"Revision {new_revision.name} is running")
                self._apply_revision_mode(app)
            app.provisioning_state = "Failed" if failure else "Succeeded"
            app.running_status = "Running" if app.latest_ready_revision else "Stopped"
            self.finish(op, failure)

        self.later(kind, done)

    def _apply_revision_mode(self, app: ContainerApp) -> None:
        config = app.body["properties"]["configuration"]
        if config.get("activeRevisionsMode", "Single").lower() == "single" and app.latest_ready_revision:
            for rev in app.revisions.values():
                if rev.name != app.latest_ready_revision and rev.active:
                    self._deactivate(rev)
        limit = int(config.get("maxInactiveRevisions", 100))
        inactive = sorted((r for r in app.revisions.values() if not r.active and r.name != app.latest_revision),
                          key=lambda r: r.created)
        for rev in inactive[: max(0, len(inactive) - limit)]:
            del app.revisions[rev.name.lower()]

    def _deactivate(self, rev: Revision) -> None:
        rev.active = False
        rev.replicas = 0
        rev.running_state = "Stopped"
        rev.health_state = "None"

    def traffic_weights(self, app: ContainerApp) -> dict[str, int]:
        config = app.body["properties"]["configuration"]
        ready = app.latest_ready_revision
        if config.get("activeRevisionsMode", "Single").lower() == "single":
            return {ready.lower(): 100} if ready else {}
        weights: dict[str, int] = {}
        traffic = (config.get("ingress") or {}).get("traffic") or [{"latestRevision": True, "weight": 100}]
        for entry in traffic:
            target = ready if entry.get("latestRevision") else entry.get("revisionName")
            if target:
                weights[target.lower()] = weights.get(target.lower(), 0) + int(entry.get("weight") or 0)
        return weights

    def app_body(self, app: ContainerApp, with_secrets: bool = False) -> JSON:
        env = self.environments.get(app.environment_key)
        domain = env.default_domain if env else "unknown.azurecontainerapps.io"
        body = copy.deepcopy(app.body)
        body.update({"id": app.id, "name": app.name, "type": "Microsoft.App/containerApps"})
        body.setdefault("tags", {})
        props = body["properties"]
        props["managedEnvironmentId"] = props.get("environmentId")
        props.update({
            "provisioningState": app.provisioning_state,
            "runningStatus": app.running_status,
            "latestRevisionName": app.latest_revision or "",
            "latestReadyRevisionName": app.latest_ready_revision or "",
            "latestRevisionFqdn": f"{app.latest_revision}.{domain}" if app.latest_revision else "",
            "outboundIpAddresses": ["20.1.2.3"],
            "eventStreamEndpoint": f"{self.log_stream_base}/subscriptions/{app.id.split('/')[2]}/"
                                   f"resourceGroups/{app.resource_group}/containerApps/{app.name}/eventstream",
        })
        config = props["configuration"]
        if with_secrets:
            for secret in config.get("secrets") or []:
                if secret["name"] in app.secrets:
                    secret["value"] = app.secrets[secret["name"]]
        if config.get("ingress") is not None:
            config["ingress"]["fqdn"] = f"{app.name}.{domain}"
        return body

    def revision_body(self, app: ContainerApp, rev: Revision) -> JSON:
        env = self.environments.get(app.environment_key)
        domain = env.default_domain if env else "unknown.azurecontainerapps.io"
        weights = self.traffic_weights(app)
        props: JSON = {
            "active": rev.active,
            "createdTime": iso(rev.created),
            "fqdn": f"{rev.name}.{domain}",
            "template": rev.template,
            "trafficWeight": weights.get(rev.name.lower(), 0) if rev.active else 0,
            "replicas": rev.replicas,
            "provisioningState": rev.provisioning_state,
            "runningState": rev.running_state,
            "healthState": rev.health_state,
        }
        if rev.last_active:
            props["lastActiveTime"] = iso(rev.last_active)
        if rev.provisioning_error:
            props["provisioningError"] = rev.provisioning_error
        return {"id": f"{app.id}/revisions/{rev.name}", "name": rev.name,
                "type": "Microsoft.App/containerApps/revisions", "properties": props}

    def backend_for_host(self, host: str) -> Backend | None:
        """What answers at a host name the ingress is asked for: an app's URL goes where its traffic goes (the
        revision with the largest weight), a revision's own URL to that revision while it is active and running."""
        self.settle()
        for env_key, env in self.environments.items():
            domain = env.default_domain.lower()
            if not host.endswith("." + domain):
                continue
            label = host[: -len(domain) - 1]
            for app in self.apps.values():
                if app.environment_key != env_key or app.deleting:
                    continue
                if label == app.name.lower():
                    weights = self.traffic_weights(app)
                    label = max(weights, key=lambda name: weights[name]) if weights else ""
                revision = app.revisions.get(label)
                if revision is not None:
                    running = revision.active and revision.running_state in ("Running", "RunningAtMaxScale")
                    image = revision.template["containers"][0]["image"]
                    return Backend(image, revision.created) if running else None
        return None

    def revision(self, app: ContainerApp, name: str) -> Revision:
        rev = app.revisions.get(name.lower())
        if not rev:
            raise ArmError(404, "ContainerAppRevisionNotFound", f"Revision '{name}' of container app '{app.name}' was not found.")
        return rev

    def activate(self, app: ContainerApp, name: str) -> None:
        rev = self.revision(app, name)
        if rev.provisioning_state != "Provisioned":
            raise ArmError(400, "ContainerAppRevisionNotProvisioned", f"Revision '{name}' is {rev.provisioning_state}.")
        if rev.active:
            return
        rev.active, rev.running_state, rev.last_active = True, "Processing", self.clock()

        def running() -> None:
            if rev.active:
                rev.running_state, rev.health_state = "Running", "Healthy"
                rev.replicas = max(1, int(_scale(rev.template).get("minReplicas", 0) or 0))

        self.later("revision.activate", running)

    def deactivate(self, app: ContainerApp, name: str) -> None:
        rev = self.revision(app, name)
        if self.traffic_weights(app).get(rev.name.lower(), 0) > 0:
            raise ArmError(400, "ContainerAppRevisionHasTraffic",
                           f"Revision '{name}' still receives traffic; move its traffic before deactivating it.")
        self._deactivate(rev)
        self._apply_revision_mode(app)

    def restart(self, app: ContainerApp, name: str) -> None:
        rev = self.revision(app, name)
        if not rev.active:
            raise ArmError(400, "ContainerAppRevisionNotActive", f"Revision '{name}' is not active.")
        rev.restarts += 1

    def replicas(self, app: ContainerApp, rev: Revision) -> list[JSON]:
        containers = rev.template.get("containers") or []
        result = []
        for index in range(rev.replicas):
            replica = (rev.replica_names or [])[index] if index < len(rev.replica_names or []) else \
                f"{rev.name}-{rev.digest[:9]}-{index:05d}"
            result.append({
                "id": f"{app.id}/revisions/{rev.name}/replicas/{replica}",
                "name": replica,
                "type": "Microsoft.App/containerApps/revisions/replicas",
                "properties": {
                    "createdTime": iso(rev.last_active or rev.created),
                    "runningState": "Running" if rev.running_state == "Running" else "NotRunning",
                    "containers": [
                        {"name": c.get("name", app.name), "ready": rev.running_state == "Running", "started": True,
                         "restartCount": rev.restarts, "runningState": "Running"} for c in containers
                    ],
                    "initContainers": [],
                },
            })
        return result

    def seed_revision(self, app: ContainerApp, name: str, template: JSON | None = None, active: bool = True) -> Revision:
        """Puts a provisioned revision with an arbitrary name in place (test set-up: 'the cloud already has it')."""
        template = copy.deepcopy(template or app.body.get("properties", {}).get("template") or {})
        _apply_template_defaults(template)
        rev = Revision(name, template, template_digest(template), self.clock(), "Provisioned", "Running", "Healthy",
                       active, max(1, int(_scale(template).get("minReplicas", 0) or 0)) if active else 0)
        rev.last_active = self.clock()
        app.revisions[name.lower()] = rev
        return rev

    def delete_app(self, sub: str, rg: str, name: str, op: Operation) -> None:
        app = self.app(sub, rg, name)
        app.deleting = True
        app.provisioning_state = "Deleting"

        def finish() -> None:
            self.apps.pop((sub.lower(), rg.lower(), name.lower()), None)
            self.finish(op)

        self.later("containerApp.delete", finish)


def _apply_template_defaults(template: JSON | None) -> None:
    """What the service fills in when a template leaves it out (and then returns on GET)."""
    if not template:
        return
    for container in template.get("containers") or []:
        resources = container.setdefault("resources", {})
        resources.setdefault("cpu", 0.5)
        resources.setdefault("memory", "1Gi")
        resources.setdefault("ephemeralStorage", "2Gi")
    scale = template.setdefault("scale", {})
    scale.setdefault("maxReplicas", 10)
    # The service turns custom rules of KEDA's http/tcp scalers into its first-class http/tcp rules.
    for rule in scale.get("rules") or []:
        custom = rule.get("custom") or {}
        if custom.get("type") in ("http", "tcp"):
            rule[custom["type"]] = {k: v for k, v in custom.items() if k != "type"}
            del rule["custom"]


def _image(template: JSON) -> str:
    containers = template.get("containers") or [{}]
    return str(containers[0].get("image", ""))


def _scale(template: JSON) -> JSON:
    return template.get("scale") or {}


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch, as ARM applies PATCH bodies."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result
