"""Every simulated cloud's harness, by ``target.type``: what the demo, the benchmarks and the conformance suite
start when they are asked for a target. A new cloud's simulator adds itself here (and nowhere else)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from armsim import SimulatorConfig
from armsim.__main__ import default_openapi
from armsim.testing import SimulatorThread
from lambdasim import AwsSimulatorConfig
from lambdasim.testing import FAST_LATENCY as LAMBDA_FAST
from lambdasim.testing import LambdaSimulatorThread
from pmcprunsim import PmcpRunSimulatorConfig
from pmcprunsim.__main__ import DEMO_LATENCY as PMCP_DEMO
from pmcprunsim.testing import FAST_LATENCY as PMCP_FAST
from pmcprunsim.testing import PmcpRunSimulatorThread
from runsim import GcpSimulatorConfig
from runsim.testing import FAST_LATENCY as RUN_FAST
from runsim.testing import RunSimulatorThread
from workerssim import WorkersSimulatorConfig
from workerssim.testing import WorkersSimulatorThread

# Simulated operation times: "fast" for tests, "demo" slow enough to watch, close to the clouds' own.
AZURE_LATENCY = {
    "fast": {"provider.register": 0.2, "resourceGroup.delete": 0.2, "environment.create": 0.3, "environment.delete": 0.2,
             "containerApp.create": 0.3, "containerApp.update": 0.3, "containerApp.delete": 0.2, "revision.activate": 0.1},
    "demo": {"provider.register": 1.0, "environment.create": 2.0, "containerApp.create": 2.0, "containerApp.update": 2.0,
             "containerApp.delete": 1.0, "environment.delete": 1.0, "resourceGroup.delete": 1.0, "revision.activate": 0.5},
}
LAMBDA_LATENCY = {"fast": LAMBDA_FAST, "demo": {"function.create": 2.0, "function.update": 1.5, "version.publish": 1.0}}
RUN_LATENCY = {"fast": RUN_FAST, "demo": {"revision.ready": 3.0, "service.update": 1.5, "service.delete": 1.5}}


def _azure(pace: str, **options: Any) -> SimulatorThread:
    config = SimulatorConfig(openapi=default_openapi(), retry_after=0 if pace == "fast" else 1,
                             latency=dict(AZURE_LATENCY[pace]), **options)
    thread = SimulatorThread(config)
    thread.start()
    return thread


def _lambda(pace: str, **options: Any) -> LambdaSimulatorThread:
    thread = LambdaSimulatorThread(AwsSimulatorConfig(latency=dict(LAMBDA_LATENCY[pace]), **options))
    thread.start()
    return thread


def _cloud_run(pace: str, **options: Any) -> RunSimulatorThread:
    thread = RunSimulatorThread(GcpSimulatorConfig(latency=dict(RUN_LATENCY[pace]), **options))
    thread.start()
    return thread


def _workers(pace: str, throttling: bool = False, **options: Any) -> WorkersSimulatorThread:
    # The Workers API is synchronous: no operation times; "demo" only slows each answer a little.
    latency = {"request": 0.05} if pace == "demo" else {}
    thread = WorkersSimulatorThread(WorkersSimulatorConfig(rate_limit=throttling, latency=latency, **options))
    thread.start()
    return thread


def _pmcp_run(pace: str, throttling: bool = False, **options: Any) -> PmcpRunSimulatorThread:
    # pmcp.run documents no rate limit: there is nothing to throttle with.
    latency = dict(PMCP_FAST if pace == "fast" else PMCP_DEMO)
    thread = PmcpRunSimulatorThread(PmcpRunSimulatorConfig(latency=latency, **options))
    thread.start()
    return thread


STARTERS: dict[str, Callable[..., Any]] = {"azure-container-apps": _azure, "aws-lambda": _lambda,
                                           "google-cloud-run": _cloud_run, "cloudflare-workers": _workers,
                                           "pmcp-run": _pmcp_run}


def server_fields(harness: Any, image: str) -> dict[str, Any]:
    """The spec.server fields that make a revision answer as ``image``: the image itself, or (for a target that runs
    a bundle) a bundle the harness built and pushed for it."""
    own = getattr(harness, "server_fields", None)
    return own(image) if own is not None else {"image": image}


def start(target_type: str, pace: str = "fast", **options: Any) -> Any:
    """A running simulator harness for ``target_type``; stop it with ``.stop()``."""
    if target_type not in STARTERS:
        raise SystemExit(f"no simulator for target {target_type!r}; simulated targets: {', '.join(sorted(STARTERS))}")
    return STARTERS[target_type](pace, **options)
