"""Run the operator: ``mcp-operator [--namespace NS ...] [--liveness URL] [--peering NAME] [--verbose] [--log-format F]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

# kopf imports the official Kubernetes clients whenever they are installed (for its optional login
# helpers), loading every API model: ~40 MB the operator never uses (it logs in through
# mcp_operator.kubeconfig). Marking them absent keeps the process lean wherever it is installed.
for _unused in ("kubernetes", "kubernetes_asyncio", "pykube"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]

import kopf  # noqa: E402 - after the block above

from . import handlers, metrics  # noqa: E402 - handlers: imported for its kopf registrations
from .kubeconfig import KubeconfigError, login  # noqa: E402
from .scope import Scope  # noqa: E402
from .settings import Settings  # noqa: E402
from .targets import registry  # noqa: E402


def check_configuration() -> str | None:
    """What is wrong with the operator's configuration, in one line naming the variable, or None.

    Checked before kopf starts: kopf would otherwise retry a failing start-up handler for a minute and
    print a traceback for a typo in an environment variable."""
    try:
        settings = Settings.from_env()
        for connector in registry.factories().values():
            connector(settings)  # each target reads (and checks) its own section of the environment
        handlers.started_with = login()
    except (ValueError, KubeconfigError) as error:
        return str(error)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(prog="mcp-operator", description="Reconciles McpDeployment resources.")
    parser.add_argument("-n", "--namespace", action="append", default=[],
                        help="watch only this namespace (repeatable; default: MCP_WATCH_NAMESPACES, else all)")
    parser.add_argument("--liveness", default=os.environ.get("MCP_LIVENESS", ""),
                        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--peering", default=os.environ.get("MCP_PEERING", ""),
                        help="kopf peering name for several replicas (needs kopf's peering CRDs); default standalone")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log-format", choices=("plain", "full", "json"), default=os.environ.get("MCP_LOG_FORMAT") or "full",
                        help="log lines as plain messages, full lines (time, logger, level), or JSON objects for a log "
                             "collector (default: MCP_LOG_FORMAT, else full)")
    args = parser.parse_args()
    namespaces: list[str] = args.namespace or [n for n in os.environ.get("MCP_WATCH_NAMESPACES", "").split(",") if n.strip()]
    os.environ["MCP_WATCH_NAMESPACES"] = ",".join(namespaces)  # so that Settings.from_env() agrees with the flags
    problem = check_configuration()
    if problem is not None:
        parser.exit(2, f"mcp-operator: invalid configuration: {problem}\n")
    metrics.record_build(registry.supported())
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()],
                   log_refkey="object" if args.log_format == "json" else None)
    logging.getLogger("mcp_operator").info("mcp-operator starting (%s)", ", ".join(namespaces) or "all namespaces")
    scope = Scope(tuple(n.strip() for n in namespaces))
    asyncio.run(kopf.operator(
        clusterwide=scope.clusterwide,
        namespaces=scope.kopf_namespaces,
        liveness_endpoint=args.liveness or None,
        standalone=not args.peering,
        peering_name=args.peering or None,
    ))


if __name__ == "__main__":
    main()
