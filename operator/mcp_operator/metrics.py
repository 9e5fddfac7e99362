"""Prometheus metrics of the operator (served on MCP_METRICS_PORT, default 9090; 0 turns them off)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

RECONCILES = Counter("mcp_reconciles_total", "Reconcile passes by target and outcome.", ["target", "outcome"])
CLOUD_REQUESTS = Counter("mcp_cloud_requests_total", "Requests to a target's cloud API by target, method and outcome.",
                         ["target", "method", "outcome"])
OPERATION_SECONDS = Histogram("mcp_cloud_operation_seconds", "Time from a cloud write to its observed completion.",
                              ["kind"], buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
KUBE_REQUESTS = Counter("mcp_kube_requests_total", "Requests of the operator's own Kubernetes client (status patches, "
                        "Secret reads; kopf's watches and finalizers not included) by method and outcome.", ["method", "outcome"])
DRIFT_CORRECTIONS = Counter("mcp_drift_corrections_total", "Changes made behind the operator's back that it undid, by "
                            "target and kind (traffic, settings: ingress, CORS, secrets, the app's template).",
                            ["target", "kind"])
MCP_CHECKS = Counter("mcp_verifications_total", "MCP handshakes on new revisions' own URLs, by target and outcome "
                     "(passed, or the failure reason).", ["target", "outcome"])
MCP_CHECK_SECONDS = Histogram("mcp_verification_seconds", "Time of one MCP handshake (initialize + tools/list).",
                              ["target"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
RESOURCES = Gauge("mcp_resources", "McpDeployments by state, as this replica last saw them.", ["state"])
_STATES: dict[str, str] = {}  # uid -> state
BUILD = Info("mcp_build", "The operator's version, the Python it runs on, and the targets it reconciles.")


def record_build(targets: tuple[str, ...]) -> None:
    try:
        own = version("mcp-operator")
    except PackageNotFoundError:  # run from a source tree that was not installed
        own = "unknown"
    BUILD.info({"version": own, "python": platform.python_version(), "targets": ",".join(targets)})


def http_outcome(status: int) -> str:
    """404 is an answer (most often to an existence check), not an error of ours."""
    if status == 404:
        return "not_found"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"


def count_cloud_response(target: str, method: str, status: int) -> None:
    CLOUD_REQUESTS.labels(target, method, http_outcome(status)).inc()


def count_cloud_connection_error(target: str, method: str = "unknown") -> None:
    CLOUD_REQUESTS.labels(target, method, "connection_error").inc()


def record_state(uid: str, state: str | None) -> None:
    """Keeps mcp_resources in step: one state per resource, forgotten when it is deleted."""
    if state is None:
        _STATES.pop(uid, None)
    else:
        _STATES[uid] = state
    for known in ("Ready", "Progressing", "Stalled", "Suspended"):
        RESOURCES.labels(known).set(sum(1 for s in _STATES.values() if s == known))


def serve(port: int) -> None:
    if port:
        start_http_server(port)
