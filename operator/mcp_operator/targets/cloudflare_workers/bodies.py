"""Pure translations between the neutral desired state and the Workers API's bodies. No I/O.

A revision is an immutable Worker version. Its key travels in the version's ``workers/tag`` annotation (at most
100 bytes, kept by the version forever), so that a restarted operator, or one whose upload answer was lost,
finds the version it made instead of uploading a second one (the SDK would even retry a POST by itself).
Ownership is the Worker's tags (``mcp.deploy.dev/created-by=mcp-operator``, ``mcp.deploy.dev/owner=<ns>.<name>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from ...artifacts import MAIN_MODULE, Bundle
from ...contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Observed, ObservedRevision, Phase, RevisionKey, TerminalError
from ...reconcile.desired import Desired
from .placement import REFUSED, worker_placement

TAG = "workers/tag"
MESSAGE = "workers/message"
MAX_SIZE = 64 * 1024 * 1024  # a Worker's modules, at most (Workers limits, 2026)
DEFAULT_MAIN = "shim.mjs"  # what worker-build writes


def tags(desired: Desired) -> list[str]:
    return [f"{CREATED_BY_TAG}={OPERATOR_NAME}", f"{OWNER_TAG}={desired.owner}"]


def owner_marks(script_tags: Sequence[str]) -> dict[str, str]:
    return dict(tag.partition("=")[::2] for tag in script_tags)


def main_module(desired: Desired, bundle: Bundle) -> str:
    """The bundle's main module: the spec's, the artifact's annotation, its only .mjs, or worker-build's shim.mjs."""
    where = worker_placement(desired)
    modules = [f.name for f in bundle.files if PurePosixPath(f.name).suffix in (".mjs", ".js")]
    found = where.main_module or bundle.annotations.get(MAIN_MODULE) or (modules[0] if len(modules) == 1 else DEFAULT_MAIN)
    if bundle.file(found) is None:
        raise TerminalError("BundleInvalid", f"spec.server.artifact: {bundle.reference} has no main module {found!r} (it "
                                             f"holds {', '.join(f.name for f in bundle.files) or 'no files'}); set "
                                             "spec.cloudflare.mainModule, or push the worker-build output (build/worker)")
    if bundle.size > MAX_SIZE:
        raise TerminalError("BundleTooLarge", f"spec.server.artifact: {bundle.reference} is {bundle.size} bytes; a Worker "
                                              f"may be at most {MAX_SIZE} bytes (64 MiB)")
    return found


def metadata(desired: Desired, secrets: Mapping[str, str], key: RevisionKey, bundle: Bundle, main: str,
             first: bool) -> dict[str, Any]:
    """The upload's metadata: the main module, runtime settings, bindings and the annotations that name the revision.
    Secrets are secret_text bindings of this version alone (never a script-wide secret, which would redeploy)."""
    where = worker_placement(desired)
    bindings: list[dict[str, Any]] = [{"type": "plain_text", "name": name, "text": value}
                                      for name, value in sorted(desired.literal_env)]
    bindings += [{"type": "secret_text", "name": name, "text": value} for name, value in sorted(secrets.items())]
    body: dict[str, Any] = {"main_module": main, "compatibility_date": where.compatibility_date,
                            "compatibility_flags": list(where.compatibility_flags), "bindings": bindings,
                            "annotations": {TAG: key.label, MESSAGE: f"mcp-operator {desired.owner} revision {key.number} "
                                                                     f"from {bundle.digest}"}}
    if first:
        body["tags"] = tags(desired)
    return body


def files(bundle: Bundle) -> list[tuple[str, bytes, str]]:
    """The modules as the SDK uploads them: (name, bytes, content type); an explicit type, never the SDK's guess."""
    return [(f.name, f.data, f.media_type) for f in bundle.files]


def key_of(version: Mapping[str, Any]) -> RevisionKey | None:
    return RevisionKey.from_label(str((version.get("annotations") or {}).get(TAG, "")))


def is_key(version: Mapping[str, Any], key: RevisionKey) -> bool:
    found = key_of(version)
    return found is not None and found.matches(key.number, key.hash)


def preview_url(version_id: str, script: str, subdomain: str) -> str:
    return f"https://{version_id[:8]}-{script}.{subdomain}.workers.dev/"


def observed_from(desired: Desired, deployments: Sequence[Mapping[str, Any]], versions: Sequence[Mapping[str, Any]],
                  script_subdomain: Mapping[str, Any], subdomain: str, script_tags: Sequence[str],
                  refused: Mapping[str, str], complete: bool) -> Observed:
    where = worker_placement(desired)
    active = deployments[0] if deployments else None
    shares = {str(v["version_id"]): round(float(v["percentage"])) for v in (active or {}).get("versions", [])}
    previews = bool(script_subdomain.get("previews_enabled")) and where.preview_urls
    revisions = [ObservedRevision(
        cloud_id=str(v["id"]), key=key_of(v), phase=Phase.READY, percent=shares.get(str(v["id"]), 0),
        created=(v.get("metadata") or {}).get("created_on"),
        url=preview_url(str(v["id"]), where.script, subdomain) if previews and subdomain else None) for v in versions]
    known = {r.key.label for r in revisions if r.key is not None}
    revisions += [ObservedRevision(cloud_id=REFUSED, key=RevisionKey.from_label(label), phase=Phase.FAILED, message=message)
                  for label, message in refused.items() if label not in known]
    enabled = bool(script_subdomain.get("enabled"))
    drift = []
    if enabled != where.workers_dev or (enabled and bool(script_subdomain.get("previews_enabled")) != where.preview_urls):
        drift.append(f"workers.dev is {'on' if enabled else 'off'} (previews "
                     f"{'on' if script_subdomain.get('previews_enabled') else 'off'}), not "
                     f"{'on' if where.workers_dev else 'off'} (previews {'on' if where.preview_urls else 'off'})")
    newest = versions[0] if versions else {}
    message = str((newest.get("annotations") or {}).get(MESSAGE, ""))
    facts = {"accountId": where.account, "scriptName": where.script, "subdomain": subdomain or None,
             "deploymentId": (active or {}).get("id"), "versionIds": ",".join(shares) or None,
             "bundleDigest": message.rpartition(" from ")[2] if " from " in message else None}
    return Observed(exists=True, revisions=tuple(revisions),
                    host=f"{where.script}.{subdomain}.workers.dev" if enabled and subdomain else None,
                    facts={k: str(v) for k, v in facts.items() if v}, config_drift=tuple(drift), complete=complete,
                    owner_marks=owner_marks(script_tags), resource=f"Worker {where.script} in account {where.account}")
