"""The Lambda target's SDK choice, measured: aiobotocore (asyncio-native) against boto3 in a thread pool.

Run as ``python -m bench.sdk_choice {aio|threads} N``: the same N x 3 GetAlias-shaped requests (ListAliases)
against the AWS simulator, 16 connections either way; prints the RSS growth and the time. The simulator runs
in the same process and is started before the baseline is taken, so the growth is the SDK's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lambdasim.testing import LambdaSimulatorThread


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def requests_with_aiobotocore(options: dict[str, Any], count: int) -> None:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

    async def main() -> None:
        async with AioSession().create_client("lambda", config=AioConfig(max_pool_connections=16), **options) as client:
            async def one(index: int) -> None:
                with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                    await client.list_aliases(FunctionName=f"fn-{index}")
            for _ in range(3):
                await asyncio.gather(*(one(i) for i in range(count)))

    asyncio.run(main())


def requests_with_threads(options: dict[str, Any], count: int) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client("lambda", config=Config(max_pool_connections=16), **options)

    def one(index: int) -> None:
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.list_aliases(FunctionName=f"fn-{index}")

    with ThreadPoolExecutor(16) as pool:
        for _ in range(3):
            list(pool.map(one, range(count)))


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    sim = LambdaSimulatorThread()
    sim.start()
    info = sim.info
    options = {"endpoint_url": info["endpoint"], "region_name": info["region"], "verify": info["caBundle"],
               "aws_access_key_id": info["accessKeyId"], "aws_secret_access_key": info["secretAccessKey"]}
    before, started = rss_mb(), time.monotonic()
    (requests_with_aiobotocore if mode == "aio" else requests_with_threads)(options, count)
    print(json.dumps({"mode": mode, "requests": count * 3, "rss_growth_mb": rss_mb() - before,
                      "seconds": time.monotonic() - started}))
    sim.stop()


if __name__ == "__main__":
    main()
