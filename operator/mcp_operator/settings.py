"""Operator-wide configuration, read once from the environment (the Helm chart and manifests set it).

These are the settings every target shares; each target reads its own section (its account
defaults, endpoints, connection bounds) in its own folder under ``targets/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .scope import Scope

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def proxies_configured() -> bool:
    """Whether HTTP clients must read proxy settings from the environment (aiohttp's trust_env).

    trust_env also makes aiohttp look up ~/.netrc in a thread for every request: a profile of a
    1,000-resource fleet spent a sixth of the operator's CPU there, so it is only on when needed.
    """
    return any(os.environ.get(name) for name in PROXY_VARIABLES)


def positive_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a positive number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def port_number(name: str, default: int) -> int:
    """A port from the environment (0 turns the endpoint off), or a ValueError naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"{name} must be a port number 0-65535 (0: off), got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    ca_bundle: str | None = None  # for clouds behind a private CA, and the simulators
    drift_interval: float = 300.0  # seconds between drift checks of an in-sync resource
    poll_interval: float = 5.0  # fallback delay while a cloud operation runs (the cloud's Retry-After wins)
    max_backoff: float = 300.0
    namespaces: tuple[str, ...] = field(default_factory=tuple)  # empty: cluster-wide
    resolve: str = ""  # MCP_RESOLVE: "host-pattern=address[:port],..." for the MCP check (verify.Resolver)
    metrics_port: int = 9090  # 0: no metrics endpoint
    max_concurrent_reconciles: int = 32  # passes in flight at once, over all resources
    kube_connections: int = 8  # concurrent connections to the Kubernetes API for status and Secrets
    # kopf's own requests (finalizers, Events) besides its watch streams; measured at 1,000 new resources:
    # 8 left kopf's backlog holding bodies (219 MB peak), 17 and more gave 204-206 MB and no slower.
    kopf_request_connections: int = 24

    def kopf_connections(self) -> int:
        """The bound of kopf's connection pool (0: none), leaving room for the watch streams it holds open.

        kopf's own pool is unbounded: a burst of a thousand new resources opened a TLS connection per
        concurrent finalizer patch, ~100 MB at once. Each watch stream holds a connection for minutes, so
        the bound counts them: one for McpDeployments, one for Secrets and one for peering per watched
        namespace (one of each when kopf watches cluster-wide, as it does for glob patterns: see scope.py),
        one for namespaces.
        """
        scope = Scope(self.namespaces)
        streams = 3 * (1 if scope.clusterwide else len(scope.patterns)) + 1
        return streams + self.kopf_request_connections

    @classmethod
    def from_env(cls) -> Settings:
        namespaces = tuple(n.strip() for n in os.environ.get("MCP_WATCH_NAMESPACES", "").split(",") if n.strip())
        return cls(
            ca_bundle=os.environ.get("MCP_CA_BUNDLE", "").strip() or None,
            drift_interval=positive_number("MCP_DRIFT_INTERVAL", 300.0),
            poll_interval=positive_number("MCP_POLL_INTERVAL", 5.0),
            max_backoff=positive_number("MCP_MAX_BACKOFF", 300.0),
            namespaces=namespaces,
            resolve=os.environ.get("MCP_RESOLVE", "").strip(),
            metrics_port=port_number("MCP_METRICS_PORT", 9090),
            kube_connections=int(positive_number("MCP_KUBE_CONNECTIONS", 8)),
            max_concurrent_reconciles=int(positive_number("MCP_MAX_CONCURRENT_RECONCILES", 32)),
        )


@dataclass(frozen=True)
class TargetSettings:
    """The base of a target's own section of the configuration: the operator-wide settings it also follows."""

    common: Settings

    @property
    def ca_bundle(self) -> str | None:
        return self.common.ca_bundle

    @property
    def poll_interval(self) -> float:
        return self.common.poll_interval
