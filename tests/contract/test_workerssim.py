"""The Workers simulator through the official cloudflare SDK (and wrangler's upload format, sent by hand).

Cloudflare ships no machine-readable contract in a package; the SDK's typed models are generated from its OpenAPI
document, so every answer below is parsed into them by the SDK itself (where 5.9's parsing works) and the fields the
operator reads are checked. Where 5.9 mis-parses (versions, deployments lists) the raw answer is read, as the target
reads it, and the defect itself is shown (so that a fixed SDK is noticed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cloudflare import Cloudflare, RateLimitError
from cloudflare import NotFoundError as CloudflareNotFound

from workerssim import WorkersSimulatorConfig
from workerssim.testing import WorkersSimulatorThread

pytestmark = pytest.mark.contract
SHIM = b'// mcp-sim-image: ghcr.io/acme/calc:1.0.0\nimport w from "./index.wasm";\nexport default {};\n'
FILES = [("shim.mjs", SHIM, "application/javascript+module"), ("index.wasm", b"\x00asm\x01\x00\x00\x00", "application/wasm")]


@pytest.fixture(scope="module")
def sim() -> Iterator[WorkersSimulatorThread]:
    running = WorkersSimulatorThread(WorkersSimulatorConfig(rate_limit_requests=40)).start()
    yield running
    running.stop()


def client(sim: WorkersSimulatorThread, token: str | None = None) -> Cloudflare:
    return Cloudflare(api_token=token or sim.info["apiToken"], base_url=sim.info["apiBase"], max_retries=0,
                      http_client=httpx.Client(verify=sim.info["caBundle"]))


def metadata(tag: str, **extra: Any) -> dict[str, Any]:
    return {"main_module": "shim.mjs", "compatibility_date": "2025-09-01", "annotations": {"workers/tag": tag}, **extra}


def test_a_worker_is_created_by_a_put_of_the_script_which_deploys_it(sim: WorkersSimulatorThread) -> None:
    cf, account = client(sim), sim.info["accountId"]
    script = cf.workers.scripts.update("contract-put", account_id=account, metadata=metadata("r1-aaaaaaaa"), files=FILES)
    assert script.id == "contract-put" and script.etag
    deployments = cf.workers.scripts.deployments.with_raw_response.list("contract-put", account_id=account).http_response.json()
    active = deployments["result"]["deployments"][0]
    assert active["strategy"] == "percentage" and active["versions"][0]["percentage"] == 100
    assert cf.workers.subdomains.get(account_id=account).subdomain == sim.info["subdomain"]
    enabled = cf.workers.scripts.subdomain.create("contract-put", account_id=account, enabled=True, previews_enabled=True)
    assert enabled.enabled and enabled.previews_enabled


def test_versions_are_uploaded_without_traffic_numbered_and_immutable(sim: WorkersSimulatorThread) -> None:
    cf, account = client(sim), sim.info["accountId"]
    cf.workers.scripts.update("contract-versions", account_id=account, metadata=metadata("r1-aaaaaaaa"), files=FILES)
    with pytest.raises(Exception) as broken:  # SDK 5.7-5.9: the upload is accepted, then parsing its answer raises
        cf.workers.scripts.versions.create("contract-versions", account_id=account, metadata=metadata("r2-bbbbbbbb"),
                                           files=FILES)
    assert "Pydantic" in type(broken.value).__name__ or "schema" in str(broken.value).lower()
    raw = cf.workers.scripts.versions.with_raw_response.create("contract-versions", account_id=account,
                                                               metadata=metadata("r3-cccccccc"), files=FILES)
    created = raw.http_response.json()["result"]
    assert created["number"] == 3 and created["annotations"]["workers/tag"] == "r3-cccccccc"
    listed = list(cf.workers.scripts.versions.list("contract-versions", account_id=account))  # pages until an empty one
    assert [v.number for v in listed] == [3, 2, 1], "latest first; the uploads the SDK failed to parse exist"
    deployments = cf.workers.scripts.deployments.with_raw_response.list("contract-versions", account_id=account)
    assert [v["percentage"] for v in deployments.http_response.json()["result"]["deployments"][0]["versions"]] == [100]
    typed = cf.workers.scripts.deployments.list("contract-versions", account_id=account)
    assert list(typed) == [], "5.8+ reads result.items where the API answers result.deployments (kept in view)"


def test_a_deployment_routes_to_one_or_two_versions_summing_to_100(sim: WorkersSimulatorThread) -> None:
    cf, account = client(sim), sim.info["accountId"]
    cf.workers.scripts.update("contract-deploy", account_id=account, metadata=metadata("r1-aaaaaaaa"), files=FILES)
    first = cf.workers.scripts.versions.with_raw_response.list("contract-deploy", account_id=account).http_response.json()
    second = cf.workers.scripts.versions.with_raw_response.create("contract-deploy", account_id=account,
                                                                  metadata=metadata("r2-bbbbbbbb"), files=FILES)
    one, two = first["result"]["items"][0]["id"], second.http_response.json()["result"]["id"]
    split = cf.workers.scripts.deployments.create("contract-deploy", account_id=account, strategy="percentage",
                                                  versions=[{"version_id": one, "percentage": 70},
                                                            {"version_id": two, "percentage": 30}])
    assert split.id and sorted(v.percentage for v in split.versions) == [30, 70]
    with pytest.raises(Exception, match="add up to 100"):
        cf.workers.scripts.deployments.create("contract-deploy", account_id=account, strategy="percentage",
                                              versions=[{"version_id": one, "percentage": 70}])


def test_a_changed_secret_blocks_deploying_an_older_version_unless_forced(sim: WorkersSimulatorThread) -> None:
    cf, account = client(sim), sim.info["accountId"]
    cf.workers.scripts.update("contract-secret", account_id=account, metadata=metadata("r1-aaaaaaaa"), files=FILES)
    old = cf.workers.scripts.versions.with_raw_response.list("contract-secret", account_id=account).http_response.json()
    cf.workers.scripts.secrets.update("contract-secret", account_id=account, name="API_TOKEN", text="new", type="secret_text")
    old_id = old["result"]["items"][0]["id"]
    with pytest.raises(Exception, match="API_TOKEN") as refused:
        cf.workers.scripts.deployments.create("contract-secret", account_id=account, strategy="percentage",
                                              versions=[{"version_id": old_id, "percentage": 100}])
    assert json.loads(refused.value.response.text)["errors"][0]["code"] == 10220  # type: ignore[attr-defined]
    forced = cf.workers.scripts.deployments.create("contract-secret", account_id=account, strategy="percentage",
                                                   versions=[{"version_id": old_id, "percentage": 100}], force=True)
    assert forced.versions[0].version_id == old_id


def test_wranglers_upload_format_is_accepted_too(sim: WorkersSimulatorThread) -> None:
    """wrangler names each part after its module and sends metadata as a plain field."""
    info = sim.info
    answer = httpx.put(f"{info['apiBase']}/accounts/{info['accountId']}/workers/scripts/contract-wrangler",
                       headers={"Authorization": f"Bearer {info['apiToken']}"}, verify=info["caBundle"],
                       files=[("shim.mjs", ("shim.mjs", SHIM, "application/javascript+module"))],
                       data={"metadata": json.dumps(metadata("r1-aaaaaaaa"))})
    assert answer.status_code == 200 and answer.json()["success"] is True


def test_refusals_come_in_the_envelope_with_cloudflares_codes(sim: WorkersSimulatorThread) -> None:
    cf, account = client(sim), sim.info["accountId"]
    with pytest.raises(CloudflareNotFound) as missing:
        cf.workers.scripts.settings.get("contract-nothing", account_id=account)
    assert missing.value.response.json()["errors"][0]["code"] == 10007
    with pytest.raises(Exception, match="No such module"):
        cf.workers.scripts.update("contract-nomain", account_id=account, metadata=metadata("r1-aaaaaaaa", main_module="x.mjs"),
                                  files=FILES)
    with pytest.raises(Exception, match="Authentication error"):  # a read-only token cannot upload
        client(sim, sim.info["readOnlyToken"]).workers.scripts.update("contract-ro", account_id=account,
                                                                      metadata=metadata("r1-aaaaaaaa"), files=FILES)


def test_past_the_rate_limit_every_request_is_refused_for_the_window(sim: WorkersSimulatorThread) -> None:
    cf, account = client(sim), sim.info["accountId"]
    sim.call(lambda: setattr(sim.simulator.throttle, "enabled", True))
    try:
        with pytest.raises(RateLimitError) as limited:
            for _ in range(50):  # this simulator's limit is 40 (Cloudflare's: 1,200 per five minutes)
                cf.workers.subdomains.get(account_id=account)
        assert int(limited.value.response.headers["retry-after"]) >= 299
        with pytest.raises(RateLimitError):  # locked out, not merely throttled
            cf.workers.subdomains.get(account_id=account)
    finally:
        sim.call(lambda: (setattr(sim.simulator.throttle, "enabled", False), sim.simulator._locked_until.clear(),
                          sim.simulator._seen.clear()))
