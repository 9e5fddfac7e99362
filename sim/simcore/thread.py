"""Run a simulator on a background thread, for synchronous callers (pytest, the demo, benchmarks)."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class BackgroundSimulator:
    """A simulator serving from its own event loop; ``call`` runs a function on that loop's thread."""

    def __init__(self, simulator: Any, name: str):
        self.simulator = simulator
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self) -> Any:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.simulator.start(), self.loop).result(timeout=30)
        return self

    created_workdir: Path | None = None  # a temporary directory the harness made: removed on stop

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.simulator.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if self.created_workdir is not None:
            shutil.rmtree(self.created_workdir, ignore_errors=True)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs ``function`` on the simulator's loop, so it never races a request being served."""

        async def run() -> T:
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)
