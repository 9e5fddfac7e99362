"""Run the pmcp.run simulator on its own: ``python -m pmcprunsim [--port N]``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from simcore.front import serve_until_signalled

from .server import PmcpRunSimulator, PmcpRunSimulatorConfig
from .testing import FAST_LATENCY

DEMO_LATENCY = {"deployment.validate": 1.0, "deployment.deploy": 3.0, "destroy.start": 1.0, "destroy.finish": 2.0}


async def serve(args: argparse.Namespace) -> None:
    config = PmcpRunSimulatorConfig(latency=dict(FAST_LATENCY if args.fast else DEMO_LATENCY))
    await serve_until_signalled(PmcpRunSimulator(config, Path(args.workdir) if args.workdir else None), args.port,
                                args.info_file)


def main() -> None:
    parser = argparse.ArgumentParser(prog="pmcprunsim", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--fast", action="store_true", help="test timings (deployments in 0.3 s) instead of demo ones")
    parser.add_argument("--workdir", help="where the CA and serving certificate are written")
    parser.add_argument("--info-file", help="also write the connection details (JSON) to this file")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
