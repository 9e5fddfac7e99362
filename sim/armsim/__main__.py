"""Run the simulator on its own: ``python -m armsim [--port N] [--throttling] [--registered Microsoft.App]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from simcore.front import serve_until_signalled

from .server import Simulator, SimulatorConfig

SPEC_DIR = Path(__file__).resolve().parent / "spec"
OFFICIAL_OPENAPI = (SPEC_DIR / "azure-rest-api-specs/specification/app/resource-manager/Microsoft.App/"
                    "ContainerApps/stable/2026-07-01/openapi.json")


def default_openapi() -> Path:
    """The official OpenAPI document: $ARMSIM_OPENAPI if set, else the copy kept in this package (see spec/NOTICE)."""
    if os.environ.get("ARMSIM_OPENAPI"):
        return Path(os.environ["ARMSIM_OPENAPI"])
    return OFFICIAL_OPENAPI


async def serve(args: argparse.Namespace) -> None:
    latency = json.loads(args.latency) if args.latency else {}
    config = SimulatorConfig(registered_providers=tuple(args.registered), retry_after=args.retry_after,
                             throttling=args.throttling, openapi=default_openapi(), latency=latency)
    await serve_until_signalled(Simulator(config, Path(args.workdir) if args.workdir else None), args.port, args.info_file)


def main() -> None:
    parser = argparse.ArgumentParser(prog="armsim", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--registered", action="append", default=[], help="provider namespace registered from the start")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds on long-running operations")
    parser.add_argument("--throttling", action="store_true", help="enforce ARM's documented token buckets")
    parser.add_argument("--latency", help='JSON object of latencies in seconds, e.g. {"containerApp.create": 2}')
    parser.add_argument("--workdir", help="where the CA and serving certificate are written")
    parser.add_argument("--info-file", help="also write the connection details as JSON to this file")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
