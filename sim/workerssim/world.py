"""What the simulated Cloudflare account holds, and the rules the Workers API applies to it.

The rules, as Cloudflare documents them (../docs/simulator.md lists the sources): the first upload of a Worker is
a PUT of the script, which makes version 1 and a deployment of it at 100%; later versions are uploaded without
traffic; a version is immutable, numbered per Worker from 1, with annotations (``workers/tag`` up to 100 bytes,
``workers/message``, ``workers/triggered_by``); only the 100 newest can be deployed. A deployment routes to one
or two versions by percentages summing to 100, and the newest deployment is the active one. A Worker whose
secrets were changed (PUT ``/secrets``) after a version was uploaded refuses a deployment of that version (code
10220) unless forced. Everything is synchronous: an answer is the new state.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simcore.mcp_ingress import Backend

JSON = dict[str, Any]
MAX_SIZE = 64 * 1024 * 1024  # a Worker's modules, at most (2026 limits page, both plans)
DEPLOYABLE = 100  # the newest versions that can be deployed or rolled back to
SCRIPT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
IMAGE_MARK = re.compile(r"mcp-sim-image:\s*(\S+)")
MODULE_TYPES = ("application/javascript+module", "application/wasm", "text/plain", "application/octet-stream",
                "application/source-map", "application/javascript", "application/json")


class CloudflareError(Exception):
    """An error as the API answers it: the HTTP status, Cloudflare's numeric code and its message."""

    def __init__(self, status: int, code: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(at or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Failure:
    """Uploads whose main module names an image containing ``contains`` fail at startup validation."""

    contains: str
    message: str = "Uncaught Error: the Worker threw at startup"


@dataclass
class Version:
    id: str
    number: int
    modules: dict[str, tuple[str, bytes]] = field(repr=False)  # name -> (content type, bytes)
    main_module: str
    bindings: list[JSON]  # as uploaded; secret_text values are kept here and never answered
    compatibility_date: str
    compatibility_flags: list[str]
    annotations: dict[str, str]
    created: float = field(default_factory=time.time)

    @property
    def image(self) -> str:
        """The MCP server the simulator answers this version's URLs with (see docs/simulator.md)."""
        found = IMAGE_MARK.search(self.modules[self.main_module][1].decode(errors="replace"))
        return found.group(1) if found else f"workers/worker:{self.number}"

    def secrets(self) -> dict[str, str]:
        return {b["name"]: str(b.get("text", "")) for b in self.bindings if b.get("type") == "secret_text"}


@dataclass
class Deployment:
    id: str
    versions: list[JSON]  # [{version_id, percentage}]
    annotations: dict[str, str]
    created: float = field(default_factory=time.time)
    source: str = "api"


@dataclass
class Script:
    name: str
    tags: list[str] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    subdomain_enabled: bool = False
    previews_enabled: bool = False
    secrets_changed: float = 0.0  # when PUT /secrets last changed a secret
    created: float = field(default_factory=time.time)
    etag: str = field(default_factory=lambda: uuid.uuid4().hex)

    def version(self, version_id: str) -> Version:
        found = next((v for v in self.versions if v.id == version_id), None)
        if found is None:
            raise CloudflareError(404, 10230, f"Version {version_id} not found for script {self.name}.")
        return found

    @property
    def active(self) -> Deployment | None:
        return self.deployments[-1] if self.deployments else None


@dataclass
class Tail:
    id: str
    script: str
    expires: float
    queue: list[JSON] = field(default_factory=list)


class World:
    def __init__(self, account: str, subdomain: str):
        self.account, self.subdomain = account, subdomain
        self.scripts: dict[str, Script] = {}
        self.failures: list[Failure] = []
        self.tails: dict[str, Tail] = {}
        self.rng = random.Random(11)  # noqa: S311 - traffic splitting, not security

    def script(self, name: str) -> Script:
        found = self.scripts.get(name)
        if found is None:
            raise CloudflareError(404, 10007, "This Worker does not exist on your account.")
        return found

    # ----- uploads ---------------------------------------------------------------------------------------------
    def upload(self, name: str, metadata: JSON, modules: dict[str, tuple[str, bytes]], create: bool) -> Version:
        """A new version from ``metadata`` and ``modules``; ``create`` is the PUT of the script (first upload, deploys)."""
        if not SCRIPT_NAME.fullmatch(name):
            raise CloudflareError(400, 10016, f"Invalid Worker name '{name}': lower-case letters, digits and dashes, at "
                                              "most 63 characters.")
        script = self.scripts.get(name)
        if script is None and not create:
            raise CloudflareError(404, 10007, "This Worker does not exist on your account. Upload it first with a PUT of "
                                              "the script.")
        main = metadata.get("main_module")
        if not main:
            raise CloudflareError(400, 10021, "main_module is required when uploading modules")
        if main not in modules:
            raise CloudflareError(400, 10021, f"Uncaught Error: No such module \"{main}\".")
        for module, (content_type, _data) in modules.items():
            if content_type.split(";")[0].strip() not in MODULE_TYPES:
                raise CloudflareError(400, 10021, f"Module {module} has an unsupported type {content_type}.")
        size = sum(len(data) for _type, data in modules.values())
        if size > MAX_SIZE:
            raise CloudflareError(400, 10027, f"Your Worker exceeded the size limit of 64 MiB ({size} bytes).")
        annotations = dict(metadata.get("annotations") or {})
        if len(annotations.get("workers/tag", "").encode()) > 100:
            raise CloudflareError(400, 10021, "annotations.workers/tag must be at most 100 bytes")
        bindings = self._bindings(script, metadata)
        version = Version(str(uuid.uuid4()), (script.versions[-1].number + 1) if script and script.versions else 1, modules,
                          main, bindings, str(metadata.get("compatibility_date") or "2021-01-01"),
                          list(metadata.get("compatibility_flags") or []),
                          {**{k: str(v)[:1000] for k, v in annotations.items()}, "workers/triggered_by": "upload"})
        failure = next((f for f in self.failures if f.contains in version.image), None)
        if failure is not None:
            raise CloudflareError(400, 10021, f"Uncaught Error: {failure.message}")
        if script is None:
            script = self.scripts[name] = Script(name)
        if create and metadata.get("tags") is not None:
            script.tags = [str(t) for t in metadata["tags"]]
        script.versions.append(version)
        script.etag = uuid.uuid4().hex
        if create:
            script.deployments.append(Deployment(str(uuid.uuid4()), [{"version_id": version.id, "percentage": 100}], {
                "workers/triggered_by": "upload"}))
        return version

    @staticmethod
    def _bindings(script: Script | None, metadata: JSON) -> list[JSON]:
        found: list[JSON] = []
        for binding in metadata.get("bindings") or []:
            kind = binding.get("type")
            if kind not in ("plain_text", "secret_text", "json", "inherit", "version_metadata"):
                raise CloudflareError(400, 10021, f"Unsupported binding type {kind} for binding {binding.get('name')}")
            if kind == "inherit":
                previous = script.versions[-1] if script and script.versions else None
                inherited = next((b for b in (previous.bindings if previous else []) if b["name"] == binding.get(
                    "old_name", binding["name"])), None)
                if inherited is None:
                    raise CloudflareError(400, 10021, f"Binding {binding['name']} cannot be inherited: the previous version "
                                                      "has none of that name")
                found.append({**inherited, "name": binding["name"]})
            else:
                found.append(dict(binding))
        names = [b["name"] for b in found]
        if len(names) != len(set(names)):
            raise CloudflareError(400, 10021, "Binding names must be unique")
        return found

    def put_secret(self, name: str, secret: JSON) -> Version:
        """PUT /secrets: a new version with the secret, deployed (refused mid gradual rollout)."""
        script = self.script(name)
        active = script.active
        latest = script.versions[-1]
        if active is None or active.versions != [{"version_id": latest.id, "percentage": 100}]:
            raise CloudflareError(400, 10215, "Secret edit failed. Your Worker's latest version isn't currently deployed. "
                                              "Please ensure that it is fully deployed first.")
        bindings = [b for b in latest.bindings if b["name"] != secret["name"]] + [
            {"type": "secret_text", "name": secret["name"], "text": secret.get("text", "")}]
        version = Version(str(uuid.uuid4()), latest.number + 1, latest.modules, latest.main_module, bindings,
                          latest.compatibility_date, latest.compatibility_flags, {"workers/triggered_by": "secret"})
        script.versions.append(version)
        script.secrets_changed = version.created
        script.deployments.append(Deployment(str(uuid.uuid4()), [{"version_id": version.id, "percentage": 100}],
                                             {"workers/triggered_by": "secret"}))
        return version

    # ----- deployments ---------------------------------------------------------------------------------------------
    def deploy(self, name: str, body: JSON, force: bool) -> Deployment:
        script = self.script(name)
        if body.get("strategy") != "percentage":
            raise CloudflareError(400, 10021, "strategy must be 'percentage'")
        targets = body.get("versions") or []
        if not 1 <= len(targets) <= 2:
            raise CloudflareError(400, 10021, "A deployment routes to one or two versions")
        if sum(float(t.get("percentage", 0)) for t in targets) != 100:
            raise CloudflareError(400, 10021, "Version percentages must add up to 100")
        deployable = {v.id for v in script.versions[-DEPLOYABLE:]}
        for target in targets:
            version = script.version(target["version_id"])
            if version.id not in deployable:
                raise CloudflareError(400, 10021, f"Version {version.id} is older than the {DEPLOYABLE} newest versions and "
                                                  "can no longer be deployed")
            if not force and version.created < script.secrets_changed:
                changed = sorted(n for n in script.versions[-1].secrets() if version.secrets().get(n) != script.versions[-1]
                                 .secrets().get(n))
                raise CloudflareError(400, 10220, "The following secrets have changed since version "
                                                  f"{version.id} was deployed: {', '.join(changed) or '(removed)'}. Please "
                                                  "confirm you wish to continue by passing force=true.")
        deployment = Deployment(str(uuid.uuid4()), [{"version_id": t["version_id"], "percentage": float(t["percentage"])}
                                                    for t in targets], dict(body.get("annotations") or {}))
        script.deployments.append(deployment)
        return deployment

    # ----- the ingress -------------------------------------------------------------------------------------------
    def backend_for_host(self, host: str) -> Backend | None:
        suffix = f".{self.subdomain}.workers.dev"
        if not host.endswith(suffix):
            return None
        label = host[: -len(suffix)]
        for script in self.scripts.values():
            if label == script.name and script.subdomain_enabled and script.active:
                version = self._route(script)
                self._tail(script, host, version)
                return Backend(version.image, version.created)
            if label.endswith(f"-{script.name}") and script.previews_enabled:
                prefix = label[: -len(script.name) - 1]
                previewed = next((v for v in script.versions if v.id.startswith(prefix) and len(prefix) == 8), None)
                if previewed is not None:
                    self._tail(script, host, previewed)
                    return Backend(previewed.image, previewed.created)
        return None

    def _route(self, script: Script) -> Version:
        assert script.active is not None
        roll = self.rng.uniform(0, 100)
        for target in script.active.versions:
            roll -= float(target["percentage"])
            if roll <= 0:
                return script.version(target["version_id"])
        return script.version(script.active.versions[-1]["version_id"])

    def _tail(self, script: Script, host: str, version: Version) -> None:
        now = time.time()
        for tail in self.tails.values():
            if tail.script == script.name and tail.expires > now:
                tail.queue.append({"outcome": "ok", "scriptName": script.name, "eventTimestamp": int(now * 1000),
                                   "scriptVersion": {"id": version.id},
                                   "event": {"request": {"url": f"https://{host}/", "method": "POST"}},
                                   "logs": [{"message": [f"request to version {version.number}"], "level": "log",
                                             "timestamp": int(now * 1000)}], "exceptions": []})

    # ----- answers -------------------------------------------------------------------------------------------------
    def version_body(self, script: Script, version: Version) -> JSON:
        bindings = [{k: v for k, v in b.items() if k != "text"} if b.get("type") == "secret_text" else dict(b)
                    for b in version.bindings]
        return {"id": version.id, "number": version.number,
                "metadata": {"author_email": "operator@example.com", "author_id": "sim", "created_on": stamp(version.created),
                             "modified_on": stamp(version.created), "source": "api",
                             "hasPreview": script.previews_enabled},
                "annotations": dict(version.annotations),
                "resources": {"bindings": bindings, "script": {"etag": version.id.replace("-", ""), "handlers": ["fetch"],
                                                               "last_deployed_from": "api"},
                              "script_runtime": {"compatibility_date": version.compatibility_date,
                                                 "compatibility_flags": version.compatibility_flags, "usage_model": "standard"}}}

    @staticmethod
    def deployment_body(deployment: Deployment) -> JSON:
        return {"id": deployment.id, "created_on": stamp(deployment.created), "source": deployment.source,
                "strategy": "percentage", "author_email": "operator@example.com",
                "annotations": dict(deployment.annotations),
                "versions": [{"version_id": v["version_id"], "percentage": v["percentage"]} for v in deployment.versions]}

    def script_body(self, script: Script) -> JSON:
        return {"id": script.name, "etag": script.etag, "handlers": ["fetch"], "has_modules": True,
                "created_on": stamp(script.created), "modified_on": stamp(script.versions[-1].created),
                "usage_model": "standard", "tags": list(script.tags),
                "compatibility_date": script.versions[-1].compatibility_date, "last_deployed_from": "api"}

    @staticmethod
    def to_json(value: Any) -> str:
        return json.dumps(value)
