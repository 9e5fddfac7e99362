"""Run the Workers simulator on its own: ``python -m workerssim [--port N] [--rate-limit]``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from simcore.front import serve_until_signalled

from .server import WorkersSimulator, WorkersSimulatorConfig


async def serve(args: argparse.Namespace) -> None:
    config = WorkersSimulatorConfig(rate_limit=args.rate_limit)
    await serve_until_signalled(WorkersSimulator(config, Path(args.workdir) if args.workdir else None), args.port)


def main() -> None:
    parser = argparse.ArgumentParser(prog="workerssim", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--rate-limit", action="store_true", help="enforce 1,200 requests per 5 minutes, then a lockout")
    parser.add_argument("--workdir", help="where the CA and serving certificate are written")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
