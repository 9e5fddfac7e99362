"""docs/simulator.md's "Run it by hand" steps work as written: `make sim` (python -m armsim) prints the connection
details, and the documented SDK snippet, given them, talks to it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.contract


def test_make_sim_and_the_documented_sdk_snippet(tmp_path: Path) -> None:
    doc = (REPO_ROOT / "docs" / "simulator.md").read_text().split("## Run it by hand", 1)[1].split("\n## ", 1)[0]
    snippet = re.search(r"```python\n(.*?)```", doc, re.S)
    assert snippet is not None and "ContainerAppsAPIClient" in snippet.group(1)
    info_file = tmp_path / "info.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "sim"), os.environ.get("PYTHONPATH", "")])}
    sim = subprocess.Popen([sys.executable, "-m", "armsim", "--registered", "Microsoft.App", "--info-file", str(info_file)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not info_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        info = json.loads(info_file.read_text())
        names = {"tenant": info["tenantId"], "client_id": info["clientId"], "client_secret": info["clientSecret"],
                 "authority_host": info["authorityHost"], "ca_bundle": info["caBundle"],
                 "subscription": info["subscriptionId"], "arm_endpoint": info["armEndpoint"]}
        scope: dict[str, object] = dict(names)
        exec(snippet.group(1), scope)  # noqa: S102 - the documentation's own code, run as a reader would
        from azure.core.exceptions import ResourceNotFoundError

        with pytest.raises(ResourceNotFoundError, match="ResourceGroupNotFound"):  # signed in, over TLS, answered by ARM
            scope["client"].container_apps.get("no-such-rg", "calc")  # type: ignore[attr-defined]
        ca_dir = Path(info["caBundle"]).parent
        assert ca_dir.exists()
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=20)
    assert not ca_dir.exists(), "stopped, it leaves no CA key behind"
