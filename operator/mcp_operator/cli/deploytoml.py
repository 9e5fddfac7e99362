"""`.pmcp/deploy.toml` -> McpDeployment, with `cargo pmcp deploy`'s precedence rules. No I/O but reading the file.

Azure: `AZURE_*` environment variable > `[azure]` key > built-in default. Google Cloud Run the other way
round: `[gcp]`/`[server]` key > `CLOUD_RUN_*` variable > default. Two deliberate deviations from the CLI:
port 0 is rejected, and a variable set to the empty string counts as unset (the CLI lets it override
the file with nothing).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from ..api.models import GROUP, KIND, VERSION, McpDeploymentSpec, TargetType

KNOWN_KEYS: dict[str, set[str] | None] = {  # None: any key (a free-form table)
    "target": {"type", "version"},
    "server": {"name", "image", "memory_mb", "timeout_seconds", "memory", "cpu", "min_instances", "max_instances"},
    "environment": None,
    "secrets": None,
    "azure": {"resource_group", "location", "environment", "target_port", "min_replicas", "subscription_id"},
    "aws": {"region", "account_id"},
    "gcp": {"project_id", "region", "repository"},
    "auth": None,
    "composition": {"tier", "allow_composition", "internal_only", "description"},
    "observability": None,
    # cargo-pmcp's post-deploy verification (its source: deployment/post_deploy_tests.rs).
    "post_deploy_tests": {"enabled", "checks", "apps_mode", "on_failure", "timeout_seconds", "warmup_grace_ms"},
}
NOT_CARRIED = ("auth", "composition", "observability")  # sections an McpDeployment has no field for (but pmcp-run's)
CARRIED_BY = {"auth": "pmcp-run", "composition": "pmcp-run"}  # the target whose spec section carries them
POST_DEPLOY_CHECKS = ("connectivity", "conformance", "apps")

# (env var, [azure] key, spec.azure field, kind)
AZURE_SETTINGS = [
    ("AZURE_RESOURCE_GROUP", "resource_group", "resourceGroup", "text"),
    ("AZURE_CONTAINERAPP_ENV", "environment", "environment", "text"),
    ("AZURE_LOCATION", "location", "location", "text"),
    ("AZURE_TARGET_PORT", "target_port", "targetPort", "port"),
    ("AZURE_MIN_REPLICAS", "min_replicas", "minReplicas", "count"),
]
# (env var, table, key, spec.gcp field, kind, default)
GCP_SETTINGS = [
    ("CLOUD_RUN_REGION", "gcp", "region", "region", "text", "us-central1"),
    ("CLOUD_RUN_MEMORY", "server", "memory", "memory", "text", "512Mi"),
    ("CLOUD_RUN_CPU", "server", "cpu", "cpu", "text", "1"),
    ("CLOUD_RUN_MIN_INSTANCES", "server", "min_instances", "minInstances", "count", 0),
    ("CLOUD_RUN_MAX_INSTANCES", "server", "max_instances", "maxInstances", "count", 10),
]
AZURE_DEFAULTS = {"location": "eastus", "targetPort": 8080, "minReplicas": 1}

# init without --from: the deploy.toml target a manifest gets, and flags that stand for deploy.toml keys.
DEFAULT_TARGET = "azure-container-apps"
INIT_FLAGS = {  # flag -> (deploy.toml table, key)
    "--location": ("azure", "location"),
    "--resource-group": ("azure", "resource_group"),
    "--environment": ("azure", "environment"),
    "--target-port": ("azure", "target_port"),
    "--min-replicas": ("azure", "min_replicas"),
}


def document_from_flags(target: str, name: str, values: Mapping[str, str | None]) -> dict[str, Any]:
    """The deploy.toml document that ``init --name ... --<flag> ...`` stands for (``values`` by flag)."""
    document: dict[str, Any] = {"target": {"type": target}, "server": {"name": name}}
    for flag, (table, key) in INIT_FLAGS.items():
        if values.get(flag) is not None:
            document.setdefault(table, {})[key] = values[flag]
    return document


class InitError(Exception):
    """A problem with the input; the CLI prints it and exits 2."""


@dataclass
class Conversion:
    manifest: dict[str, Any]
    secret: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


def locate(path: Path) -> Path:
    """The deploy.toml itself, or the one in a project directory's .pmcp/."""
    if path.is_dir():
        candidate = path / ".pmcp" / "deploy.toml"
        if not candidate.is_file():
            raise InitError(f"{path} has no .pmcp/deploy.toml (run `cargo pmcp deploy init` there, or pass the file)")
        return candidate
    if not path.is_file():
        raise InitError(f"{path}: no such file or directory")
    return path


FLAG_OF = {**{pair: flag for flag, pair in INIT_FLAGS.items()}, ("server", "name"): "--name", ("target", "type"): "--target"}


def _at(text: str, where: str, section: str, key: str) -> str:
    """Where a value came from, for a message: the flag (init without --from), else file:line: [section] key."""
    if where == "flags":
        return FLAG_OF.get((section, key), f"[{section}] {key}")
    return f"{where}:{_line_of(text, section, key)}: [{section}] {key}"


def _line_of(text: str, section: str, key: str | None = None) -> int:
    """The 1-based line of ``[section]`` (or of ``key`` inside it) in the TOML text, 0 if not found."""
    in_section = False
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            in_section = header.group(1) == section
            if in_section and key is None:
                return number
            continue
        if in_section and key and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line):
            return number
    return 0


def _validated_number(raw: Any, kind: str, where: str) -> int:
    """Ports must be 1-65535, counts non-negative integers; strings are trimmed first."""
    text = raw.strip() if isinstance(raw, str) else raw
    try:
        if isinstance(text, bool):
            raise ValueError
        value = int(text)
        if isinstance(text, float) or (isinstance(text, str) and not re.fullmatch(r"[+-]?\d+", text)):
            raise ValueError
    except (TypeError, ValueError):
        value = -1
    if kind == "port" and not 1 <= value <= 65535:
        raise InitError(f"{where} must be a port number 1-65535, got {raw!r}")
    if kind == "count" and value < 0:
        raise InitError(f"{where} must be a non-negative integer, got {raw!r}")
    return value


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return None if value is None or value.strip() == "" else value


def convert(path: Path, environ: Mapping[str, str], image: str | None = None, namespace: str | None = None,
            with_secret: bool = False, artifact: str | None = None) -> Conversion:
    # Numeric environment overrides are validated before anything else, as the CLI does.
    for variable, _, _, kind in AZURE_SETTINGS:
        if kind != "text" and _env(environ, variable) is not None:
            _validated_number(environ[variable], kind, variable)
    source = locate(path)
    text = source.read_text()
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InitError(f"{source}: malformed TOML: {error}") from error
    conversion = from_document(document, text, str(source), environ, image, namespace, with_secret, artifact)
    if document.get("target", {}).get("type") == "cloudflare-workers":
        _from_wrangler(conversion, source.parent.parent / "deploy" / "cloudflare" / "wrangler.toml")
    if document.get("target", {}).get("type") == "pmcp-run":
        _server_version(conversion, source.parent.parent / "Cargo.toml")
    return conversion


def _server_version(conversion: Conversion, cargo: Path) -> None:
    """pmcp.run's serverVersion is the crate's version, as cargo pmcp deploy sends it."""
    try:
        version = tomllib.loads(cargo.read_text()).get("package", {}).get("version") if cargo.is_file() else None
    except tomllib.TOMLDecodeError as error:
        raise InitError(f"{cargo}: malformed TOML: {error}") from error
    if isinstance(version, str):
        conversion.manifest["spec"].setdefault("pmcpRun", {})["serverVersion"] = version
    else:
        conversion.warnings.append(f"no [package] version in {cargo}: spec.pmcpRun.serverVersion is not set")


# wrangler.toml key -> spec.cloudflare field, for a project `cargo pmcp deploy init --target cloudflare-workers` set up.
WRANGLER_KEYS = {"compatibility_date": "compatibilityDate", "compatibility_flags": "compatibilityFlags",
                 "account_id": "accountId", "workers_dev": "workersDev", "preview_urls": "previewUrls"}


def _from_wrangler(conversion: Conversion, path: Path) -> None:
    """What wrangler.toml carries: the Worker's name, main module, compatibility settings, account, workers.dev, [vars]."""
    if not path.is_file():
        conversion.warnings.append(f"no {path} (cargo pmcp deploy init --target cloudflare-workers writes it): "
                                   "spec.cloudflare keeps its defaults")
        return
    try:
        wrangler = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise InitError(f"{path}: malformed TOML: {error}") from error
    spec = conversion.manifest["spec"]
    cloudflare: dict[str, Any] = {field: wrangler[key] for key, field in WRANGLER_KEYS.items() if key in wrangler}
    if wrangler.get("name") and wrangler["name"] != spec["server"]["name"]:
        cloudflare["scriptName"] = wrangler["name"]
    if wrangler.get("main"):
        cloudflare["mainModule"] = PurePosixPath(str(wrangler["main"])).name  # build/worker/shim.mjs -> shim.mjs
    spec["cloudflare"] = {**spec.get("cloudflare", {}), **cloudflare}
    known = {e["name"] for e in spec["server"].get("env", [])}
    variables = [{"name": k, "value": str(v)} for k, v in (wrangler.get("vars") or {}).items() if k not in known]
    if variables:
        spec["server"]["env"] = [*spec["server"].get("env", []), *variables]
    _check(spec, "", str(path))


def from_document(document: dict[str, Any], text: str, where: str, environ: Mapping[str, str], image: str | None = None,
                  namespace: str | None = None, with_secret: bool = False, artifact: str | None = None) -> Conversion:
    for section, value in document.items():
        if section not in KNOWN_KEYS:
            raise InitError(f"{where}:{_line_of(text, section)}: unknown section [{section}] "
                            f"(known: {', '.join(sorted(KNOWN_KEYS))})")
        allowed = KNOWN_KEYS[section]
        if not isinstance(value, dict):
            raise InitError(f"{where}:{_line_of(text, section)}: [{section}] must be a table")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise InitError(f"{where}:{_line_of(text, section, key)}: unknown key '{key}' in [{section}] "
                                    f"(known: {', '.join(sorted(allowed))})")
    for section in ("target", "server"):
        if section not in document:
            raise InitError(f"{where}: missing required section [{section}]")
    target_type = document["target"].get("type")
    if target_type not in {t.value for t in TargetType}:
        raise InitError(f"{where}:{_line_of(text, 'target', 'type')}: [target] type must be one of "
                        f"{', '.join(t.value for t in TargetType)}, got {target_type!r}")
    server = document["server"]
    if not server.get("name"):
        raise InitError(f"{where}:{_line_of(text, 'server')}: [server] name is required")
    conversion = Conversion(manifest={})
    spec: dict[str, Any] = {"target": {"type": target_type}, "server": {"name": server["name"]}}
    chosen_image = image or server.get("image")
    if target_type in ("cloudflare-workers", "pmcp-run"):
        if image:
            raise InitError(f"--image: {target_type} runs a bundle, not an image: pass --artifact REGISTRY/REPO@sha256:... "
                            "(`kubectl mcp bundle push` prints it)")
        if artifact:
            spec["server"]["artifact"] = {"oci": artifact}
        else:
            conversion.warnings.append("no bundle: push the built bundle with `kubectl mcp bundle push DIR REPO:TAG` and "
                                       "pass --artifact with the reference it prints (spec.server.artifact)")
    elif artifact:
        raise InitError(f"--artifact: {target_type} runs an image: pass --image")
    elif chosen_image:
        spec["server"]["image"] = chosen_image
    elif target_type in ("azure-container-apps", "google-cloud-run"):
        raise InitError(f"--image is required for {target_type}: deploy.toml names no image (the CLI builds one from "
                        "source; an McpDeployment runs a built one)")
    elif target_type == "aws-lambda":
        conversion.warnings.append("no code: pass --image (an ECR image with the Lambda Web Adapter), or set spec.aws.s3 "
                                   "to the zip of the bootstrap that `cargo pmcp deploy` builds")
    if "PORT" in (document.get("environment") or {}):
        raise InitError(f"{_at(text, where, 'environment', 'PORT')}: the operator sets PORT (the target's port setting, "
                        "e.g. azure.targetPort) so that server and ingress agree; remove it")
    env: list[dict[str, Any]] = [{"name": k, "value": str(v)} for k, v in (document.get("environment") or {}).items()]
    secrets = document.get("secrets") or {}
    secret_name = f"{server['name']}-secrets"
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": k}}} for k in secrets]
    if env:
        spec["server"]["env"] = env
    if target_type == "azure-container-apps":
        spec["azure"] = _azure(document.get("azure") or {}, server["name"], environ, text, where)
    elif target_type == "google-cloud-run":
        spec["gcp"] = _gcp(document, environ, text, where)
    elif target_type == "aws-lambda":
        spec["aws"] = _aws(document, text, where)
    elif target_type == "pmcp-run":
        spec["pmcpRun"] = _pmcp_run(document, text, where)
    if "post_deploy_tests" in document:
        spec["verify"] = _verify(document["post_deploy_tests"], text, where, conversion.warnings)
    for section in NOT_CARRIED:
        if section in document and CARRIED_BY.get(section) != target_type:
            conversion.warnings.append(f"[{section}] is not carried over: McpDeployment has no field for it yet")
    conversion.manifest = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
                           "metadata": {"name": server["name"], **({"namespace": namespace} if namespace else {})},
                           "spec": spec}
    _check(spec, text, where)
    if secrets and with_secret:
        conversion.secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                             "metadata": {"name": secret_name, **({"namespace": namespace} if namespace else {})},
                             "stringData": {k: str(v) for k, v in secrets.items()}}
    elif secrets:
        conversion.warnings.append(f"[secrets] became references to Secret {secret_name}; create it "
                                   "(or rerun with --with-secret to get a Secret manifest)")
    return conversion


def _pmcp_run(document: Mapping[str, Any], text: str, where: str) -> dict[str, Any]:
    """[auth] (with [auth.dcr]) and [composition], as cargo pmcp deploy sends them to pmcp.run."""
    auth, composition = document.get("auth") or {}, document.get("composition") or {}
    dcr = auth.get("dcr") or {}
    if not isinstance(dcr, dict):
        raise InitError(f"{where}:{_line_of(text, 'auth', 'dcr')}: [auth] dcr must be a table ([auth.dcr])")
    oauth: dict[str, Any] = {"enabled": bool(auth.get("enabled", False))}
    for key, field_name in (("default_scopes", "scopes"), ("enabled", "dcrEnabled"),
                            ("public_client_patterns", "publicClientPatterns")):
        if key in dcr:
            oauth[field_name] = dcr[key]
    run: dict[str, Any] = {"oauth": oauth}
    for key, field_name in (("tier", "tier"), ("allow_composition", "allowComposition"), ("internal_only", "internalOnly"),
                            ("description", "compositionDescription")):
        if key in composition:
            run[field_name] = composition[key]
    return run


def _check(spec: dict[str, Any], text: str, where: str) -> None:
    """The rules the API server applies, checked before anything is written; the first broken one names the field and
    where its value came from (a deploy.toml key, a variable, a flag)."""
    try:
        McpDeploymentSpec.model_validate(spec)
    except ValidationError as error:
        first = error.errors()[0]
        field = "spec." + ".".join(str(p) for p in first["loc"])
        raise InitError(f"{'' if where == 'flags' else where + ': '}{_source_of(field, text, where)}{field}: {first['msg']}") from error


def _source_of(field: str, text: str, where: str) -> str:
    """Where in deploy.toml (the flag, or which variable) a refused spec field came from, as a prefix for the message."""
    origins: dict[str, tuple[str, str, str | None]] = {
        f"spec.gcp.{field_name}": (table, key, variable) for variable, table, key, field_name, _, _ in GCP_SETTINGS}
    origins.update({f"spec.azure.{field_name}": ("azure", key, variable) for variable, key, field_name, _ in AZURE_SETTINGS})
    origins["spec.server.name"] = ("server", "name", None)
    if field not in origins:
        return ""
    table, key, variable = origins[field]
    if where == "flags":
        return f"{FLAG_OF.get((table, key), f'[{table}] {key}')} -> "
    return f"line {_line_of(text, table, key)}: [{table}] {key}{f' (or {variable})' if variable else ''} -> "


def _azure(section: dict[str, Any], name: str, environ: Mapping[str, str], text: str, where: str) -> dict[str, Any]:
    azure: dict[str, Any] = {}
    defaults = {**AZURE_DEFAULTS, "resourceGroup": f"{name}-rg", "environment": f"{name}-env"}
    for variable, key, field_name, kind in AZURE_SETTINGS:
        from_env = _env(environ, variable)
        if from_env is not None:
            raw, origin = from_env, variable
        elif key in section:
            raw, origin = section[key], _at(text, where, "azure", key)
        else:
            azure[field_name] = defaults[field_name]
            continue
        azure[field_name] = raw.strip() if kind == "text" and isinstance(raw, str) else (
            _validated_number(raw, kind, origin) if kind != "text" else raw)
        if kind == "text" and not isinstance(raw, str):
            raise InitError(f"{origin} must be a string, got {raw!r}")
    if "subscription_id" in section:
        azure["subscriptionId"] = section["subscription_id"]
    return azure


def _gcp(document: dict[str, Any], environ: Mapping[str, str], text: str, where: str) -> dict[str, Any]:
    gcp: dict[str, Any] = {}
    for variable, table, key, field_name, kind, default in GCP_SETTINGS:
        section = document.get(table) or {}
        if key in section:
            raw: Any = section[key]
            origin = _at(text, where, table, key)
        elif _env(environ, variable) is not None:
            raw, origin = environ[variable].strip(), variable
        else:
            gcp[field_name] = default
            continue
        gcp[field_name] = _validated_number(raw, kind, origin) if kind == "count" else str(raw)
    for key in ("project_id", "repository"):
        if key in (document.get("gcp") or {}):
            gcp["projectId" if key == "project_id" else key] = document["gcp"][key]
    return gcp


def _verify(section: dict[str, Any], text: str, where: str, warnings: list[str]) -> dict[str, Any]:
    """[post_deploy_tests] -> spec.verify. The CLI tests a revision after traffic moved to it; the operator checks it
    before (MCP handshake on the revision's own URL), so what maps is whether to check, and for how long."""
    def origin(key: str) -> str:
        return f"{where}:{_line_of(text, 'post_deploy_tests', key)}: [post_deploy_tests] {key}"

    verify: dict[str, Any] = {}
    if "enabled" in section:
        if not isinstance(section["enabled"], bool):
            raise InitError(f"{origin('enabled')} must be true or false, got {section['enabled']!r}")
        verify["enabled"] = section["enabled"]
    if "timeout_seconds" in section:
        seconds = _validated_number(section["timeout_seconds"], "count", origin("timeout_seconds"))
        if not 5 <= seconds <= 1800:
            raise InitError(f"{origin('timeout_seconds')} must be 5-1800 for spec.verify.timeoutSeconds, got {seconds}")
        verify["timeoutSeconds"] = seconds
    checks = section.get("checks", list(POST_DEPLOY_CHECKS))
    unknown = [c for c in checks if c not in POST_DEPLOY_CHECKS] if isinstance(checks, list) else [checks]
    if unknown:
        raise InitError(f"{origin('checks')}: unknown check {unknown[0]!r} (known: {', '.join(POST_DEPLOY_CHECKS)})")
    if "apps" in checks:
        warnings.append("[post_deploy_tests] checks 'apps' (widget validation) is not run by the operator: its check is "
                        "the MCP handshake (connectivity, initialize, tools/list) before traffic moves")
    on_failure = section.get("on_failure", "fail")
    if on_failure not in ("fail", "warn"):
        raise InitError(f"{origin('on_failure')} must be 'fail' or 'warn', got {on_failure!r}")
    if on_failure == "warn":
        warnings.append("[post_deploy_tests] on_failure='warn' is not carried: the operator never moves traffic to a "
                        "revision that fails its check (set spec.verify.enabled: false to skip the check)")
    for key in ("apps_mode", "warmup_grace_ms"):
        if key in section:
            warnings.append(f"[post_deploy_tests] {key} is not carried: the operator's check has no such setting")
    return verify


def _aws(document: dict[str, Any], text: str, where: str) -> dict[str, Any]:
    aws: dict[str, Any] = {}
    server, section = document["server"], document.get("aws") or {}
    for key, field_name, kind in (("memory_mb", "memoryMb", "count"), ("timeout_seconds", "timeoutSeconds", "count")):
        if key in server:
            aws[field_name] = _validated_number(server[key], kind, f"{where}:{_line_of(text, 'server', key)}: [server] {key}")
    aws.setdefault("memoryMb", 512)
    aws.setdefault("timeoutSeconds", 30)
    if "region" in section:
        aws["region"] = section["region"]
    if "account_id" in section:
        aws["accountId"] = str(section["account_id"])
    return aws
