"""A misconfigured operator says what is wrong in one line at start, naming the variable, and exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("MCP_DRIFT_INTERVAL", "5x", "MCP_DRIFT_INTERVAL must be a positive number, got '5x'"),
    ("MCP_METRICS_PORT", "abc", "MCP_METRICS_PORT must be a port number 0-65535"),
    ("MCP_AWS_CONNECTIONS", "0", "MCP_AWS_CONNECTIONS must be"),
    ("KUBECONFIG", "/nonexistent/kubeconfig", "no kubeconfig found (looked at /nonexistent/kubeconfig): set KUBECONFIG"),
])
def test_bad_configuration_exits_at_start_in_one_line(variable: str, value: str, words: str, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "absent"), variable: value}
    ran = subprocess.run([sys.executable, "-m", "mcp_operator"], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcp-operator: invalid configuration: ") and words in lines[0], ran.stderr
