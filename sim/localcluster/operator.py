"""Runs mcp-operator as a real process against a cluster and a simulator (tests, demo, bench)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from . import Cluster


def operator_environment(cluster: Cluster, cloud: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """The environment of an operator that uses ``cluster``, and a cloud (a simulator harness's
    ``operator_environment()``)."""
    env = cluster.env()
    env.update(cloud)
    env.update({
        "MCP_POLL_INTERVAL": "0.5",
        "MCP_DRIFT_INTERVAL": "30",
        "MCP_MAX_BACKOFF": "5",
        "PYTHONUNBUFFERED": "1",
        "MCP_METRICS_PORT": "0",  # several operators may run at once in tests; a test that scrapes sets a port
    })
    env.update(overrides)
    return env


class OperatorProcess:
    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()):
        self.env, self.log_path, self.args = env, log_path, args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        self.process = subprocess.Popen([sys.executable, "-m", "mcp_operator", *self.args], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye, as when a node dies."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 15) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_started(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "mcp-operator" not in self.logs() and time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("the operator exited:\n" + self.logs()[-3000:])
            time.sleep(0.1)
