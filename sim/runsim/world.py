"""What the simulated Google Cloud project holds, and the rules Cloud Run, Secret Manager and IAM apply to it.

Cloud Run's rules, as the Admin API v2 documents them: a service's ``generation`` counts its changes and
``observedGeneration`` catches up when the rollout is done (``reconciling`` false, ``terminalCondition``
Succeeded or Failed). A revision's name is unique in its service and immutable: the same name with another
template is refused (409), with the same template it makes no new revision. Traffic percents sum to 100,
name revisions of the service, and take effect only when every revision they name is Ready; a revision that
fails leaves the traffic as it was. A tag gives a revision a URL of its own. A revision that traffic names
cannot be deleted. Writes answer long-running operations, done later. Times come from the latency model
(``revision.ready``, ``service.update``, ``service.delete``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
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
DEFAULT_LATENCY = {"revision.ready": 1.0, "service.update": 0.5, "service.delete": 0.5}
SERVICE_ID = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")  # a letter first, under 50, no trailing hyphen
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SECRET_ID = re.compile(r"^[\w-]{1,255}$")
MEMORY = re.compile(r"^([0-9]+)(Mi|Gi|M|G)$")
# vCPU -> (least, most) memory in MiB Cloud Run accepts with it.
CPU_MEMORY = {"1": (128, 4096), "2": (128, 8192), "4": (2048, 16384), "6": (4096, 24576), "8": (4096, 32768)}
REGION_CODES = {"us-central1": "uc", "us-east1": "ue", "europe-west1": "ew", "europe-west4": "ez", "asia-northeast1": "an"}
INVOKER = "roles/run.invoker"
FORBIDDEN_PAGE = ("<html><head><title>403 Forbidden</title></head><body><h1>Error: Forbidden</h1><h2>Your client does not "
                  "have permission to get URL <code>/</code> from this server.</h2></body></html>")


class GoogleError(Exception):
    """An error as Google's APIs answer it: the HTTP status, the RPC code name and a message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(what: str) -> GoogleError:
    return GoogleError(404, "NOT_FOUND", f"Resource '{what}' was not found")


def invalid(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


def stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(at or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Failure:
    """Revisions whose image contains ``contains`` will not start, with ``message``."""

    contains: str
    message: str = "The user-provided container failed to start and listen on the port defined by the PORT environment variable."


@dataclass
class Revision:
    name: str  # the short name, unique in its service
    template: JSON  # the template it was made from (immutable)
    created: float
    generation: int
    state: str = "CONDITION_RECONCILING"  # CONDITION_SUCCEEDED when ready, CONDITION_FAILED when it will not start
    message: str = ""
    reason: str = ""
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Service:
    project: str
    region: str
    name: str
    spec: JSON  # the fields a client sets (template, traffic, ingress, scaling, labels, annotations, ...)
    created: float
    url_hash: str
    generation: int = 1
    observed_generation: int = 0
    reconciling: bool = True
    terminal: JSON = field(default_factory=dict)
    revisions: dict[str, Revision] = field(default_factory=dict)
    latest_created: str = ""
    latest_ready: str = ""
    traffic_statuses: list[JSON] = field(default_factory=list)
    etag: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    updated: float = 0.0
    deleted: float | None = None
    policy: JSON = field(default_factory=lambda: {"version": 1, "etag": "ACAB", "bindings": []})

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{self.name}"

    def host(self, tag: str | None = None) -> str:
        code = REGION_CODES.get(self.region, "".join(part[0] for part in self.region.split("-")))
        return f"{tag + '---' if tag else ''}{self.name}-{self.url_hash}-{code}.a.run.app"


@dataclass
class Operation:
    name: str
    service: Service
    done: bool = False
    error: GoogleError | None = None
    deleting: bool = False
    revision: Revision | None = None  # an operation on a revision reports the revision, not its service


@dataclass
class SecretVersion:
    number: int
    data: bytes = field(repr=False)
    created: float = field(default_factory=time.time)
    state: str = "ENABLED"


@dataclass
class Secret:
    project: str
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    created: float = field(default_factory=time.time)
    versions: list[SecretVersion] = field(default_factory=list)
    etag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def path(self) -> str:
        return f"projects/{self.project}/secrets/{self.name}"


class World:
    def __init__(self, project_number: str = "123456789012", clock: Callable[[], float] = time.monotonic):
        self.project_number = project_number
        self.schedule = Schedule(clock, dict(DEFAULT_LATENCY))
        self.services: dict[str, Service] = {}  # by path
        self.operations: dict[str, Operation] = {}
        self.secrets: dict[str, Secret] = {}  # by path
        self.failures: list[Failure] = []
        self.logs: list[JSON] = []
        self.rng = random.Random(7)  # noqa: S311 - traffic splitting, not security

    def settle(self) -> None:
        self.schedule.settle()

    # ----- services --------------------------------------------------------------------------------------
    def service(self, path: str) -> Service:
        self.settle()
        found = self.services.get(path)
        if found is None:
            raise not_found(path)
        return found

    def create_service(self, project: str, region: str, service_id: str, body: JSON) -> Operation:
        if not SERVICE_ID.fullmatch(service_id or ""):
            raise invalid(f"service_id '{service_id}' is invalid: it must start with a letter, contain only lowercase "
                          "letters, digits and hyphens, be under 50 characters and not end with a hyphen")
        path = f"projects/{project}/locations/{region}/services/{service_id}"
        if path in self.services:
            raise GoogleError(409, "ALREADY_EXISTS", f"Resource '{service_id}' already exists.")
        url_hash = hashlib.sha256(f"{project}/{region}".encode()).hexdigest()[:10]
        service = Service(project, region, service_id, {}, time.time(), url_hash)
        self._apply(service, body, None, creating=True)
        self.services[path] = service
        return self._rollout(service)

    def patch_service(self, path: str, body: JSON, mask: list[str] | None, allow_missing: bool) -> Operation:
        self.settle()
        service = self.services.get(path)
        if service is None:
            if not allow_missing:
                raise not_found(path)
            project, region, name = path.split("/")[1], path.split("/")[3], path.split("/")[5]
            return self.create_service(project, region, name, body)
        if service.deleted is not None:
            raise GoogleError(409, "FAILED_PRECONDITION", f"Service '{service.name}' is being deleted.")
        if body.get("etag") and body["etag"] != service.etag:
            raise GoogleError(409, "ABORTED", f"The service '{service.name}' has been modified: its etag is not "
                                              f"{body['etag']}. Read it again and retry.")
        if self._apply(service, body, mask, creating=False):
            service.generation += 1
            service.etag = uuid.uuid4().hex[:16]
        return self._rollout(service)

    def _apply(self, service: Service, body: JSON, mask: list[str] | None, creating: bool) -> bool:
        """Checks ``body`` and takes the fields ``mask`` names (all when None); whether anything changed."""
        wanted = {key: copy.deepcopy(value) for key, value in body.items()
                  if key in ("template", "traffic", "ingress", "scaling", "labels", "annotations", "invokerIamDisabled",
                             "description", "defaultUriDisabled") and (mask is None or key in mask)}
        for key in mask or ():
            wanted.setdefault(key, copy.deepcopy(body.get(key)))
        template = wanted.get("template", service.spec.get("template"))
        if not template or not template.get("containers"):
            raise invalid("service.template.containers: at least one container is required")
        self._check_template(service, template)
        name = template.get("revision") or f"{service.name}-{service.generation + (0 if creating else 1):05d}-" \
                                            f"{uuid.uuid4().hex[:3]}"
        existing = service.revisions.get(name)
        if existing is not None and _canonical(existing.template, name) != _canonical(template, name):
            raise GoogleError(409, "ALREADY_EXISTS", f"Revision named '{name}' with different configuration already "
                                                     "exists.")
        traffic = wanted.get("traffic", service.spec.get("traffic")) or [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
                                                                          "percent": 100}]
        self._check_traffic(service, traffic, name)
        for key, value in {"labels": wanted.get("labels"), "annotations": wanted.get("annotations")}.items():
            if value and any(k.startswith(("run.googleapis.com/", "cloud.googleapis.com/", "serving.knative.dev/"))
                             for k in value):
                raise invalid(f"service.{key}: keys prefixed run.googleapis.com, cloud.googleapis.com or "
                              "serving.knative.dev are reserved")
        before = json.dumps(service.spec, sort_keys=True)
        service.spec.update(wanted)
        service.spec["template"] = {**template, "revision": name}
        service.spec["traffic"] = traffic
        if existing is None:
            service.revisions[name] = Revision(name, copy.deepcopy(service.spec["template"]), time.time(),
                                               service.generation + (0 if creating else 1))
            service.latest_created = name
        return creating or before != json.dumps(service.spec, sort_keys=True)

    def _check_template(self, service: Service, template: JSON) -> None:
        name = template.get("revision")
        if name and not (name.startswith(service.name + "-") and DNS_LABEL.fullmatch(name) and len(name) <= 63):
            raise invalid(f"service.template.revision: Revision name '{name}' must be prefixed by the name of the enclosing "
                          f"Service with a trailing '-' ('{service.name}-'), and be a DNS label of at most 63 characters")
        if len(template["containers"]) != 1:
            raise invalid("service.template.containers: this simulator runs services of exactly one container")
        container = template["containers"][0]
        if not container.get("image"):
            raise invalid("service.template.containers[0].image: an image is required")
        limits = (container.get("resources") or {}).get("limits") or {}
        cpu, memory = str(limits.get("cpu", "1")), str(limits.get("memory", "512Mi"))
        found = MEMORY.fullmatch(memory)
        if cpu not in CPU_MEMORY or found is None:
            raise invalid(f"service.template.containers[0].resources.limits: cpu '{cpu}' or memory '{memory}' is not "
                          "supported (cpu: 1, 2, 4, 6 or 8; memory like 512Mi or 2Gi)")
        mib = int(found.group(1)) * (1024 if found.group(2).startswith("G") else 1)
        least, most = CPU_MEMORY[cpu]
        if not least <= mib <= most:
            raise invalid(f"service.template.containers[0].resources.limits.memory: {memory} with {cpu} CPU is not "
                          f"supported: with {cpu} CPU, memory must be between {least}Mi and {most}Mi")
        for variable in container.get("env") or []:
            if variable.get("name") == "PORT":
                raise invalid("service.template.containers[0].env: The following reserved env names were provided: PORT. "
                              "These values are automatically set by the system.")
        timeout = str(template.get("timeout", "300s")).rstrip("s")
        if not 1 <= float(timeout) <= 3600:
            raise invalid("service.template.timeout: must be between 1s and 3600s")
        concurrency = int(template.get("maxInstanceRequestConcurrency") or 80)
        if not 1 <= concurrency <= 1000:
            raise invalid("service.template.maxInstanceRequestConcurrency: must be between 1 and 1000")

    def _check_traffic(self, service: Service, traffic: list[JSON], new_revision: str) -> None:
        total, tags = 0, set()
        for index, target in enumerate(traffic):
            kind = target.get("type", "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION" if target.get("revision") else "")
            percent = int(target.get("percent") or 0)
            if not 0 <= percent <= 100:
                raise invalid(f"service.traffic[{index}].percent: must be between 0 and 100")
            total += percent
            if kind == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION":
                revision = target.get("revision", "")
                if revision != new_revision and revision not in service.revisions:
                    raise invalid(f"service.traffic[{index}].revision: Revision '{revision}' referenced in traffic not found.")
            tag = target.get("tag")
            if tag:
                if not DNS_LABEL.fullmatch(tag) or len(tag) + len(service.name) > 46 or tag in tags:
                    raise invalid(f"service.traffic[{index}].tag: '{tag}' is invalid or repeated: tags are DNS labels, "
                                  "unique in the service, whose length with the service name's is at most 46")
                tags.add(tag)
        if total != 100:
            raise invalid(f"service.traffic: Traffic percents must sum to 100, they sum to {total}.")

    def _rollout(self, service: Service) -> Operation:
        operation = Operation(f"projects/{service.project}/locations/{service.region}/operations/{uuid.uuid4()}", service)
        self.operations[operation.name] = operation
        service.reconciling = True
        service.updated = time.time()
        service.terminal = {"type": "Ready", "state": "CONDITION_RECONCILING", "lastTransitionTime": stamp()}
        generation = service.generation
        starting = [r for r in service.revisions.values() if r.state == "CONDITION_RECONCILING"]
        self.schedule.later("revision.ready" if starting else "service.update", lambda: self._finish(service, generation,
                                                                                                     operation))
        return operation

    def _finish(self, service: Service, generation: int, operation: Operation) -> None:
        for revision in service.revisions.values():
            if revision.state == "CONDITION_RECONCILING":
                self._start(service, revision)
        if service.generation != generation or service.deleted is not None:
            operation.done = True  # superseded: a newer generation's rollout reports
            return
        routed_failed = [service.revisions[t["revision"]] for t in service.spec["traffic"]
                         if service.revisions.get(t.get("revision", "")) is not None
                         and service.revisions[t["revision"]].state == "CONDITION_FAILED"]
        newest = service.revisions.get(service.latest_created)
        # As Knative's Route and Configuration: traffic that names only Ready revisions takes effect even when the
        # newest revision failed; the service is Ready only when both are.
        failed = routed_failed or ([newest] if newest is not None and newest.state == "CONDITION_FAILED" else [])
        service.reconciling = False
        service.observed_generation = generation
        if not routed_failed:
            service.traffic_statuses = self._statuses(service)
        if failed:
            message = failed[0].message
            service.terminal = {"type": "Ready", "state": "CONDITION_FAILED", "message": message, "reason": "REVISION_FAILED",
                                "severity": "ERROR", "lastTransitionTime": stamp()}
            operation.error = GoogleError(400, "FAILED_PRECONDITION", message)
        else:
            service.terminal = {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": stamp()}
        operation.done = True

    def _start(self, service: Service, revision: Revision) -> None:
        image = revision.template["containers"][0]["image"]
        failure = next((f for f in self.failures if f.contains in image), None)
        missing = [ref for ref in self._secret_refs(revision.template) if not self._secret_version(service.project, *ref)]
        if failure is not None:
            revision.state, revision.reason = "CONDITION_FAILED", "CONTAINER_MISSING"
            revision.message = f"Revision '{revision.name}' is not ready and cannot serve traffic. {failure.message}"
        elif missing:
            revision.state, revision.reason = "CONDITION_FAILED", "SECRETS_ACCESS_CHECK_FAILED"
            revision.message = (f"Revision '{revision.name}' is not ready and cannot serve traffic. Secret "
                                f"{missing[0][0]}/versions/{missing[0][1]} was not found")
        else:
            revision.state = "CONDITION_SUCCEEDED"
            service.latest_ready = revision.name
            port = revision.template["containers"][0].get("ports", [{}])[0].get("containerPort", 8080)
            self.logs.append(self._log_entry(service, revision, f"Default STARTUP TCP probe succeeded after 1 attempt for "
                                                                f"container \"{service.name}-1\" on port {port}."))

    def _statuses(self, service: Service) -> list[JSON]:
        statuses = []
        for target in service.spec["traffic"]:
            status = {key: value for key, value in target.items() if key in ("type", "revision", "percent", "tag")}
            if status.get("type", "").endswith("LATEST"):
                status["revision"] = service.latest_ready
            if target.get("tag"):
                status["uri"] = f"https://{service.host(target['tag'])}"
            statuses.append(status)
        return statuses

    def delete_service(self, path: str, etag: str | None) -> Operation:
        service = self.service(path)
        if etag and etag != service.etag:
            raise GoogleError(409, "ABORTED", f"The service '{service.name}' has been modified: its etag is not {etag}.")
        operation = Operation(f"projects/{service.project}/locations/{service.region}/operations/{uuid.uuid4()}", service,
                              deleting=True)
        self.operations[operation.name] = operation
        if service.deleted is None:
            service.deleted = time.time()
            service.reconciling = True

            def gone() -> None:
                self.services.pop(path, None)
                operation.done = True
            self.schedule.later("service.delete", gone)
        return operation

    def delete_revision(self, path: str) -> Operation:
        service_path, _, name = path.rpartition("/revisions/")
        service = self.service(service_path)
        revision = service.revisions.get(name)
        if revision is None:
            raise not_found(path)
        if name == service.spec["template"].get("revision") or any(t.get("revision") == name for t in service.spec["traffic"]):
            raise GoogleError(400, "FAILED_PRECONDITION", f"Revision '{name}' cannot be deleted: it is the service's "
                                                          "latest revision or is referenced by its traffic.")
        del service.revisions[name]
        operation = Operation(f"projects/{service.project}/locations/{service.region}/operations/{uuid.uuid4()}", service,
                              done=True, revision=revision)
        self.operations[operation.name] = operation
        return operation

    def operation(self, name: str) -> Operation:
        self.settle()
        found = self.operations.get(name)
        if found is None:
            raise not_found(name)
        return found

    # ----- IAM ------------------------------------------------------------------------------------------
    def set_policy(self, service: Service, policy: JSON) -> JSON:
        if policy.get("etag") and policy["etag"] != service.policy["etag"]:
            raise GoogleError(409, "ABORTED", "There were concurrent policy changes. Please retry the whole read-modify-"
                                              "write with exponential backoff.")
        for binding in policy.get("bindings", []):
            if not binding.get("role", "").startswith("roles/"):
                raise invalid(f"Role {binding.get('role')} is not a valid role name")
        service.policy = {"version": 1, "etag": base64.b64encode(uuid.uuid4().bytes[:6]).decode(),
                          "bindings": copy.deepcopy(policy.get("bindings", []))}
        return service.policy

    @staticmethod
    def public(service: Service) -> bool:
        return bool(service.spec.get("invokerIamDisabled")) or any(
            b["role"] == INVOKER and "allUsers" in b.get("members", []) for b in service.policy["bindings"])

    # ----- Secret Manager -----------------------------------------------------------------------------------
    def create_secret(self, project: str, secret_id: str, body: JSON) -> Secret:
        if not SECRET_ID.fullmatch(secret_id or ""):
            raise invalid(f"secret_id '{secret_id}' is invalid: letters, digits, '_' and '-', at most 255")
        path = f"projects/{project}/secrets/{secret_id}"
        if path in self.secrets:
            raise GoogleError(409, "ALREADY_EXISTS", f"Secret [{path}] already exists.")
        if "replication" not in body:
            raise invalid("secret.replication: a replication policy is required")
        self.secrets[path] = Secret(project, secret_id, dict(body.get("labels") or {}), dict(body.get("annotations") or {}))
        return self.secrets[path]

    def secret(self, path: str) -> Secret:
        found = self.secrets.get(path)
        if found is None:
            raise GoogleError(404, "NOT_FOUND", f"Secret [{path}] not found or has no versions.")
        return found

    def add_version(self, path: str, data: bytes) -> SecretVersion:
        secret = self.secret(path)
        secret.versions.append(SecretVersion(len(secret.versions) + 1, data))
        return secret.versions[-1]

    def version(self, path: str, version: str) -> tuple[Secret, SecretVersion]:
        secret = self.secret(path)
        enabled = [v for v in secret.versions if v.state == "ENABLED"]
        found = enabled[-1] if version == "latest" and enabled else next(
            (v for v in secret.versions if str(v.number) == version), None)
        if found is None:
            raise GoogleError(404, "NOT_FOUND", f"Secret Version [{path}/versions/{version}] not found.")
        return secret, found

    @staticmethod
    def _secret_refs(template: JSON) -> list[tuple[str, str]]:
        refs = []
        for variable in template["containers"][0].get("env") or []:
            ref = (variable.get("valueSource") or {}).get("secretKeyRef")
            if ref:
                refs.append((ref["secret"], str(ref.get("version", "latest"))))
        return refs

    def _secret_version(self, project: str, secret: str, version: str) -> bool:
        path = secret if secret.startswith("projects/") else f"projects/{project}/secrets/{secret}"
        try:
            self.version(path, version)
        except GoogleError:
            return False
        return True

    # ----- logs -------------------------------------------------------------------------------------------
    def _log_entry(self, service: Service, revision: Revision, text: str) -> JSON:
        return {"logName": f"projects/{service.project}/logs/run.googleapis.com%2Fvarlog%2Fsystem", "textPayload": text,
                "timestamp": stamp(), "receiveTimestamp": stamp(), "severity": "INFO", "insertId": uuid.uuid4().hex[:12],
                "resource": {"type": "cloud_run_revision", "labels": {
                    "project_id": service.project, "location": service.region, "service_name": service.name,
                    "revision_name": revision.name, "configuration_name": service.name}}}

    # ----- the ingress -------------------------------------------------------------------------------------
    def backend_for_host(self, host: str) -> Backend | None:
        self.settle()
        for service in self.services.values():
            if service.deleted is not None or not host.endswith(service.host()):
                continue
            tag = host[: -len(service.host())].removesuffix("---") or None
            chosen = self._route(service, tag)
            if chosen is None:
                return None if tag else Backend("", 0.0, refusal=(503, "Service Unavailable"))
            if service.spec.get("ingress") in ("INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
                                               "INGRESS_TRAFFIC_NONE"):
                return Backend("", 0.0, refusal=(404, "<html><body>Error: Page not found</body></html>"))
            if not self.public(service):
                return Backend("", 0.0, refusal=(403, FORBIDDEN_PAGE))
            return Backend(chosen.template["containers"][0]["image"], chosen.created)
        return None

    def _route(self, service: Service, tag: str | None) -> Revision | None:
        statuses = service.traffic_statuses
        if tag:
            name = next((s.get("revision") for s in statuses if s.get("tag") == tag), None)
        else:
            roll, name = self.rng.uniform(0, 100), None
            for status in statuses:
                roll -= int(status.get("percent") or 0)
                if status.get("percent") and roll <= 0:
                    name = status.get("revision")
                    break
        revision = service.revisions.get(name or "")
        return revision if revision is not None and revision.state == "CONDITION_SUCCEEDED" else None


def _canonical(template: JSON, name: str) -> str:
    return json.dumps({**template, "revision": name}, sort_keys=True)
