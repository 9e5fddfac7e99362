"""The cloudflare-workers target's pure parts, the bundle rules, the request budget and a rollback to a bundle. No I/O."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from cloudflare import APIStatusError

from mcp_operator.api.models import McpDeploymentSpec, McpDeploymentStatus
from mcp_operator.artifacts import MAIN_MODULE, Bundle, BundleFile
from mcp_operator.cli.main import rollback_patch
from mcp_operator.contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Phase, RevisionKey, TerminalError
from mcp_operator.pacing import RequestBudget
from mcp_operator.reconcile.desired import Desired, SpecError, resolve
from mcp_operator.settings import Settings
from mcp_operator.targets.cloudflare_workers import bodies
from mcp_operator.targets.cloudflare_workers.connect import WorkersConnector
from mcp_operator.targets.cloudflare_workers.placement import REFUSED
from mcp_operator.targets.cloudflare_workers.settings import CloudflareSettings
from mcp_operator.targets.cloudflare_workers.target import classify

ACCOUNT = "0123456789abcdef0123456789abcdef"
CONNECTOR = WorkersConnector(Settings(), CloudflareSettings(Settings(), default_account=ACCOUNT))
OCI = "ghcr.io/acme/calc-worker@sha256:" + "a" * 64
KEY1, KEY2 = RevisionKey(1, "aaaaaaaa11111111"), RevisionKey(2, "bbbbbbbb22222222")


def want(**spec: Any) -> Desired:
    body: dict[str, Any] = {"target": {"type": "cloudflare-workers"}, "server": {"artifact": {"oci": OCI}}}
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value}
    return resolve(McpDeploymentSpec.model_validate(body), "calc", "team", CONNECTOR)


def bundle(*names: str, annotations: dict[str, str] | None = None, size: int = 10) -> Bundle:
    return Bundle(OCI, "sha256:" + "a" * 64, tuple(BundleFile(n, "application/javascript+module", b"x" * size) for n in names),
                  annotations or {})


def test_without_an_account_the_error_names_the_field_and_the_setting() -> None:
    connector = WorkersConnector(Settings(), CloudflareSettings(Settings()))
    spec = McpDeploymentSpec.model_validate({"target": {"type": "cloudflare-workers"}, "server": {"artifact": {"oci": OCI}}})
    with pytest.raises(SpecError, match="CLOUDFLARE_ACCOUNT_ID") as refused:
        resolve(spec, "calc", "team", connector)
    assert refused.value.field == "spec.cloudflare.accountId"


@pytest.mark.parametrize(("names", "annotations", "main", "expected"), [
    (("shim.mjs", "index.wasm"), {}, None, "shim.mjs"),
    (("worker.mjs", "index.wasm"), {}, None, "worker.mjs"),  # the only module
    (("a.mjs", "b.mjs"), {MAIN_MODULE: "b.mjs"}, None, "b.mjs"),  # the artifact says
    (("a.mjs", "b.mjs"), {MAIN_MODULE: "b.mjs"}, "a.mjs", "a.mjs"),  # the spec says
])
def test_the_main_module_is_the_specs_the_artifacts_the_only_one_or_worker_builds(
        names: tuple[str, ...], annotations: dict[str, str], main: str | None, expected: str) -> None:
    desired = want(cloudflare={"mainModule": main}) if main else want()
    assert bodies.main_module(desired, bundle(*names, annotations=annotations)) == expected


@pytest.mark.parametrize(("found", "reason"), [
    (bundle("a.mjs", "b.mjs"), "BundleInvalid"),  # two modules, no shim.mjs, nothing says which
    (bundle("shim.mjs", size=bodies.MAX_SIZE + 1), "BundleTooLarge"),
])
def test_a_bundle_workers_cannot_run_is_a_clear_terminal_reason(found: Bundle, reason: str) -> None:
    with pytest.raises(TerminalError) as refused:
        bodies.main_module(want(), found)
    assert refused.value.reason == reason and "spec.server.artifact" in refused.value.message


def test_an_upload_carries_the_key_the_bindings_and_on_the_first_the_ownership_tags() -> None:
    desired = want(server={"env": [{"name": "LOG_LEVEL", "value": "info"}]}, cloudflare={"compatibilityFlags": ["nodejs_compat"]})
    first = bodies.metadata(desired, {"API_TOKEN": "s3cr3t"}, KEY1, bundle("shim.mjs"), "shim.mjs", first=True)
    assert first["annotations"][bodies.TAG] == KEY1.label and "sha256:" in first["annotations"][bodies.MESSAGE]
    assert first["bindings"] == [{"type": "plain_text", "name": "LOG_LEVEL", "text": "info"},
                                 {"type": "secret_text", "name": "API_TOKEN", "text": "s3cr3t"}]
    assert first["tags"] == [f"{CREATED_BY_TAG}={OPERATOR_NAME}", f"{OWNER_TAG}=team.calc"]
    assert first["compatibility_flags"] == ["nodejs_compat"]
    assert "tags" not in bodies.metadata(desired, {}, KEY2, bundle("shim.mjs"), "shim.mjs", first=False)


def version(version_id: str, key: RevisionKey | None) -> dict[str, Any]:
    return {"id": version_id, "number": 1, "annotations": {bodies.TAG: key.label} if key else {},
            "metadata": {"created_on": "2026-12-06T00:00:00Z"}}


def test_an_answer_reads_as_versions_with_shares_preview_urls_and_refused_uploads() -> None:
    v1, v2 = "11111111-0000-0000-0000-000000000000", "22222222-0000-0000-0000-000000000000"
    deployments = [{"id": "d2", "versions": [{"version_id": v1, "percentage": 90.0}, {"version_id": v2, "percentage": 10.0}]}]
    seen = bodies.observed_from(want(), deployments, [version(v2, KEY2), version(v1, KEY1)],
                                {"enabled": True, "previews_enabled": True}, "acme", bodies.tags(want()),
                                {"r3-cccccccc": "Cloudflare refused the upload: 10021: Uncaught Error"}, complete=True)
    assert [(r.cloud_id, r.percent) for r in seen.revisions[:2]] == [(v2, 10), (v1, 90)]
    assert seen.revisions[0].url == "https://22222222-calc.acme.workers.dev/"
    refused = seen.revisions[2]
    assert (refused.cloud_id, refused.phase, refused.key) == (REFUSED, Phase.FAILED, RevisionKey(3, "cccccccc"))
    assert seen.host == "calc.acme.workers.dev" and seen.facts["deploymentId"] == "d2" and seen.config_drift == ()


def test_workers_dev_turned_off_is_drift_and_takes_the_urls_away() -> None:
    seen = bodies.observed_from(want(), [], [version("11111111-x", KEY1)], {"enabled": False, "previews_enabled": False},
                                "acme", [], {}, complete=True)
    assert seen.host is None and seen.revisions[0].url is None
    assert seen.config_drift == ("workers.dev is off (previews off), not on (previews on)",)


def refusal(status: int, code: int, headers: dict[str, str] | None = None) -> APIStatusError:
    response = httpx.Response(status, json={"success": False, "errors": [{"code": code, "message": "words"}]},
                              headers=headers or {}, request=httpx.Request("POST", "https://api.cloudflare.com/x"))
    return APIStatusError("refused", response=response, body=None)


@pytest.mark.parametrize(("status", "code", "reason"), [
    (403, 10000, "AuthorizationFailed"),
    (400, 10220, "SecretsChangedSinceVersion"),
    (400, 10021, "CloudflareRefused"),
    (429, 971, "Throttled"),
    (502, 10013, "CloudServerError"),
])
def test_refusals_are_classified_by_status_and_cloudflares_code(status: int, code: int, reason: str) -> None:
    classified = classify(refusal(status, code, {"retry-after": "300"} if status == 429 else None))
    assert classified.reason == reason  # type: ignore[attr-defined]
    if status == 429:
        assert classified.retry_after == 300.0  # type: ignore[attr-defined]
    if reason == "AuthorizationFailed":
        assert "Workers Scripts > Edit" in classified.message  # type: ignore[attr-defined]


def test_the_request_budget_never_allows_more_than_its_limit_in_a_window() -> None:
    """A sliding window: the whole budget at once, then one more as each spent one ages out; never more per second."""
    budget = RequestBudget(limit=6, window=0.5, per_second=100)
    stamps: list[float] = []

    async def spend(count: int) -> None:
        for _ in range(count):
            await budget.spend()
            stamps.append(time.monotonic())

    started = time.monotonic()
    asyncio.run(spend(14))
    assert stamps[5] - started < 0.05, "the first window's budget goes at once"
    assert stamps[6] - started >= 0.45, "then none before the first ages out"
    assert all(sum(1 for t in stamps if start <= t < start + 0.5) <= 6 for start in stamps), "no window sees more than 6"
    capped = RequestBudget(limit=1000, window=300.0, per_second=3)
    stamps.clear()
    budget = capped
    asyncio.run(spend(4))
    assert stamps[3] - stamps[0] >= 0.95, "at most 3 in any second"


def test_a_rollback_to_a_bundle_revision_restores_the_artifact_and_clears_the_image() -> None:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "cloudflare-workers"}, "server": {"artifact": {"oci": OCI}}})
    desired = resolve(spec, "calc", "team", CONNECTOR)
    record = {"number": 1, "name": "v1", "image": OCI, "createdAt": "t", "state": "Ready", "hash": desired.revision_hash,
              "snapshot": desired.snapshot.model_dump(by_alias=True, exclude_none=True, mode="json")}
    status = McpDeploymentStatus.model_validate({"revisions": [record, {**record, "number": 2, "name": "v2"}],
                                                 "servingRevision": "v2"})
    body = {"metadata": {"name": "calc"}, "spec": {}, "status": status.model_dump(by_alias=True, exclude_none=True)}
    number, patch = rollback_patch(body, None)
    assert number == 1 and patch["server"]["artifact"] == {"oci": OCI} and patch["server"]["image"] is None
    assert patch["cloudflare"]["compatibilityDate"] == "2025-09-01"


def test_a_rollback_after_a_failed_rollout_returns_to_the_revision_that_kept_serving() -> None:
    """As kubectl rollout undo: the revision before the current spec's (3, failed) is 2, which still serves; not 1."""
    spec = McpDeploymentSpec.model_validate({"target": {"type": "cloudflare-workers"}, "server": {"artifact": {"oci": OCI}}})
    snapshot = resolve(spec, "calc", "team", CONNECTOR).snapshot.model_dump(by_alias=True, exclude_none=True, mode="json")
    records = [{"number": n, "name": f"v{n}", "image": OCI, "createdAt": "t", "state": state, "hash": f"h{n}",
                "snapshot": snapshot} for n, state in ((1, "Ready"), (2, "Ready"), (3, "Failed"))]
    status = McpDeploymentStatus.model_validate({"revisions": records, "servingRevision": "v2", "latestRevision": "v3"})
    number, _patch = rollback_patch({"metadata": {"name": "calc"}, "spec": {},
                                     "status": status.model_dump(by_alias=True, exclude_none=True)}, None)
    assert number == 2
