"""The README's by-hand snippets run as written, so that they cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _section(title: str) -> str:
    text = (REPO_ROOT / "README.md").read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_control_plane_snippet_runs_and_leaves_nothing_running() -> None:
    snippet = re.search(r"```python\n(.*?)```", _section("Running the control plane and the simulator by hand"), re.S)
    assert snippet is not None, "the README has the snippet"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "sim"), os.environ.get("PYTHONPATH", "")])}
    ran = subprocess.run([sys.executable, "-c", snippet.group(1)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=180, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "customresourcedefinition.apiextensions.k8s.io/mcpdeployments.mcp.deploy.dev" in ran.stdout
    kubeconfig = ran.stdout.splitlines()[0].strip()
    assert not Path(kubeconfig).exists(), "its files are removed"
    left = subprocess.run(["pgrep", "-f", str(Path(kubeconfig).parent)], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", "no etcd or kube-apiserver of it is left running"
