"""Prometheus metrics of the operator (served on MCP_METRICS_PORT, default 9090; 0 turns them off)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("mcp_reconciles_total", "Reconcile passes by outcome.", ["outcome"])
ARM_REQUESTS = Counter("mcp_arm_requests_total", "Azure Resource Manager requests by method and outcome.",
                       ["method", "outcome"])
OPERATION_SECONDS = Histogram("mcp_cloud_operation_seconds", "Time from a cloud write to its observed completion.",
                              ["kind"], buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
KUBE_REQUESTS = Counter("mcp_kube_requests_total", "Requests of the operator's own Kubernetes client (status patches, "
                        "Secret reads; kopf's watches and finalizers not included) by method and outcome.", ["method", "outcome"])
RESOURCES = Gauge("mcp_resources", "McpDeployments by state, as this replica last saw them.", ["state"])
_STATES: dict[str, str] = {}  # uid -> state


def http_outcome(status: int) -> str:
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"


def count_arm_response(response: Any) -> None:
    """azure-core's raw_response_hook: called with every pipeline response of the management clients."""
    http = response.http_response
    ARM_REQUESTS.labels(http.request.method, http_outcome(http.status_code)).inc()


def count_arm_connection_error(method: str = "unknown") -> None:
    ARM_REQUESTS.labels(method, "connection_error").inc()


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
