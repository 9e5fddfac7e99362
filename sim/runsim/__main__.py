"""Run the Google Cloud simulator on its own: ``python -m runsim [--port N] [--throttling] [--latency JSON]``."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from simcore.front import serve_until_signalled

from .server import GcpSimulator, GcpSimulatorConfig


async def serve(args: argparse.Namespace) -> None:
    config = GcpSimulatorConfig(throttling=args.throttling, latency=json.loads(args.latency) if args.latency else {})
    await serve_until_signalled(GcpSimulator(config, Path(args.workdir) if args.workdir else None), args.port)


def main() -> None:
    parser = argparse.ArgumentParser(prog="runsim", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--throttling", action="store_true", help="enforce the Admin API's per-minute rate quotas")
    parser.add_argument("--latency", help='JSON object of latencies in seconds, e.g. {"revision.ready": 2}')
    parser.add_argument("--workdir", help="where the CA and serving certificate are written")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
