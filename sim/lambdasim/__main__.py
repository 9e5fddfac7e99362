"""Run the AWS simulator on its own: ``python -m lambdasim [--port N] [--throttling] [--latency JSON]``."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from simcore.front import serve_until_signalled

from .server import AwsSimulator, AwsSimulatorConfig


async def serve(args: argparse.Namespace) -> None:
    config = AwsSimulatorConfig(throttling=args.throttling, latency=json.loads(args.latency) if args.latency else {})
    await serve_until_signalled(AwsSimulator(config, Path(args.workdir) if args.workdir else None), args.port)


def main() -> None:
    parser = argparse.ArgumentParser(prog="lambdasim", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--throttling", action="store_true", help="enforce Lambda's control-plane quotas")
    parser.add_argument("--latency", help='JSON object of latencies in seconds, e.g. {"function.create": 2}')
    parser.add_argument("--workdir", help="where the CA and serving certificate are written")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
