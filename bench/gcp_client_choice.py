"""What each way of speaking to Cloud Run costs the operator's process:
``python -m bench.gcp_client_choice gapic|rest [REQUESTS]``.

``gapic``: google-cloud-run's REST clients (services, revisions) and Secret Manager's, in a 16-thread pool (its
async client is gRPC-only); ``rest``: google-auth with aiohttp, what the operator uses. Both start from a process that
has aiohttp and requests imported already (the operator always has). Printed as one JSON line: the RSS growth and CPU
seconds of importing and building the clients, then of REQUESTS service reads against the simulator (a separate
process, started here), 16 at a time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_simulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([sys.executable, "-m", "runsim"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    text = ""
    while not text.rstrip().endswith("}"):
        text += process.stdout.readline()
    return process, json.loads(text)


def key_file(info: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(info["controls"] + "/service-account-keys", json={"account": "bench"}, verify=info["caBundle"],
                           timeout=30)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def with_gapic(info: dict[str, Any], key: dict[str, Any], service: str, count: int) -> None:
    from google.api_core.client_options import ClientOptions
    from google.cloud import run_v2
    from google.oauth2 import service_account

    os.environ["REQUESTS_CA_BUNDLE"] = info["caBundle"]  # the REST transport takes its CA bundle from here only
    credentials = service_account.Credentials.from_service_account_info(key, scopes=SCOPES)
    client = run_v2.ServicesClient(transport="rest", credentials=credentials,
                                   client_options=ClientOptions(api_endpoint=info["endpoint"]))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: client.get_service(name=service), range(count)))


def with_rest(info: dict[str, Any], key: dict[str, Any], service: str, count: int) -> None:
    import asyncio

    from mcp_operator.settings import Settings
    from mcp_operator.targets.google_cloud_run.client import GoogleClient, TokenSource, load_credentials
    from mcp_operator.targets.google_cloud_run.settings import GcpSettings

    async def run() -> None:
        settings = GcpSettings(Settings(ca_bundle=info["caBundle"]), endpoint=info["endpoint"])
        client = GoogleClient(settings, TokenSource(load_credentials(key)[0], info["caBundle"]))
        gate = asyncio.Semaphore(16)

        async def one() -> None:
            async with gate:
                await client.call("run", "GET", f"v2/{service}")
        await asyncio.gather(*(one() for _ in range(count)))
        await client.close()
    asyncio.run(run())


def main() -> None:
    import aiohttp  # noqa: F401 - the operator's baseline

    mode, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
    simulator, info = start_simulator() if count else (None, {})
    before, cpu = rss_mb(), time.process_time()
    if mode == "gapic":
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import run_v2, secretmanager_v1

        options = ClientOptions(api_endpoint="https://127.0.0.1:1")
        clients = [kind(transport="rest", credentials=AnonymousCredentials(), client_options=options)
                   for kind in (run_v2.ServicesClient, run_v2.RevisionsClient, secretmanager_v1.SecretManagerServiceClient)]
        assert clients
    else:
        import google.auth
        import google.auth.external_account
        import google.auth.transport.requests
        import google.oauth2.service_account

        assert google.auth and google.oauth2.service_account
    measured: dict[str, Any] = {"mode": mode, "import_rss_mb": round(rss_mb() - before, 1),
                                "import_cpu_seconds": round(time.process_time() - cpu, 3)}
    if simulator is not None:
        try:
            key = key_file(info)
            service = f"projects/{info['project']}/locations/{info['region']}/services/bench"
            created = with_rest if mode == "rest" else with_gapic
            before, cpu, started = rss_mb(), time.process_time(), time.monotonic()
            _create(info, key, service)
            created(info, key, service, count)
            measured.update(requests=count, requests_rss_mb=round(rss_mb() - before, 1),
                            requests_cpu_seconds=round(time.process_time() - cpu, 3),
                            requests_seconds=round(time.monotonic() - started, 2))
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)
    measured["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(measured))


def _create(info: dict[str, Any], key: dict[str, Any], service: str) -> None:
    """The service both modes read, made through the API as any client would (not counted apart: one request)."""
    from google.auth.transport.requests import AuthorizedSession, Request
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_info(key, scopes=SCOPES)
    session = requests.Session()
    session.trust_env, session.verify = False, info["caBundle"]
    credentials.refresh(Request(session))
    authorised = AuthorizedSession(credentials)
    authorised.trust_env, authorised.verify = False, info["caBundle"]
    parent, _, name = service.rpartition("/services/")
    authorised.post(f"{info['endpoint']}/v2/{parent}/services", params={"serviceId": name},
                    json={"template": {"containers": [{"image": "ghcr.io/acme/calc:1"}]}}).raise_for_status()


if __name__ == "__main__":
    main()
