"""What every simulator's front is: one HTTPS listener on loopback with the simulator's own CA, the MCP
ingress that answers the URLs it gives out, and the process that serves until it is signalled."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from .certs import ServingCerts, make_serving_certs
from .mcp_ingress import Lookup, McpIngress

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve_https(handler: Handler, directory: Path, port: int, max_body: int) -> tuple[web.AppRunner, ServingCerts, int]:
    """Serves every path with ``handler`` on 127.0.0.1:``port`` (0: a free one); the certificate is issued by a new
    CA written to ``directory``. Returns the runner (to clean up), the certificates and the port."""
    certs = make_serving_certs(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    app = web.Application(client_max_size=max_body)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context, backlog=1024).start()
    return runner, certs, int(runner.addresses[0][1])


async def start_ingress(certs: ServingCerts, lookup: Lookup, directory: Path) -> McpIngress:
    assert certs.authority is not None
    ingress = McpIngress(certs.authority, lookup, directory)
    await ingress.start()
    return ingress


async def stop_serving(ingress: McpIngress | None, runner: web.AppRunner | None, created: Path | None = None) -> None:
    """Stops both, and removes ``created`` (a temporary directory the simulator made for its CA and keys)."""
    if ingress is not None:
        await ingress.stop()
    if runner is not None:
        await runner.cleanup()
    if created is not None:
        import shutil

        shutil.rmtree(created, ignore_errors=True)


class Servable(Protocol):
    async def start(self, port: int = 0) -> None: ...

    async def stop(self) -> None: ...

    def info(self) -> dict[str, Any]: ...


async def serve_until_signalled(simulator: Servable, port: int, info_file: str | None = None) -> None:
    """``python -m <cloud>sim``: start, print the connection details (and write them to ``info_file``), serve until
    SIGINT or SIGTERM."""
    import json

    await simulator.start(port)
    info = json.dumps(simulator.info(), indent=2)
    if info_file:
        Path(info_file).write_text(info)  # noqa: ASYNC240 - once, at start-up
    print(info, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await simulator.stop()


class SimulatorFront:
    """What each cloud's simulator has in common: one HTTPS listener with the request record and injected faults,
    the MCP ingress for the URLs its world gives out, and the controls of simcore's ``Controllable``. A subclass sets
    ``world`` (with ``backend_for_host``, ``failures`` and, where operations take time, ``schedule``) and
    ``_dispatch``."""

    workdir_prefix = "sim-"
    max_body = 32 * 1024 * 1024
    world: Any  # the simulated cloud's state, set by the subclass

    def __init__(self, workdir: Path | None):
        from .faults import Faults, RecordedRequest

        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.workdir = workdir
        self.certs: ServingCerts | None = None
        self.port = 0
        self.ingress: McpIngress | None = None
        self._runner: web.AppRunner | None = None
        self._created: Path | None = None  # a temporary directory start() made for the CA and keys: removed on stop

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def start(self, port: int = 0) -> None:
        import tempfile

        directory = self.workdir or Path(tempfile.mkdtemp(prefix=self.workdir_prefix))
        self._created = None if self.workdir else directory
        self._runner, self.certs, self.port = await serve_https(self._dispatch, directory, port, self.max_body)
        self.ingress = await start_ingress(self.certs, self.world.backend_for_host, directory)

    async def stop(self) -> None:
        await stop_serving(self.ingress, self._runner, self._created)
        self.ingress, self._runner = None, None

    # ----- controls (simcore's Controllable) ------------------------------------------------------------------
    @property
    def schedule(self) -> Any:
        return self.world.schedule

    def add_fault(self, **kwargs: Any) -> Any:
        return self.faults.add(**kwargs)

    def clear_faults(self) -> None:
        self.faults.clear()
        self.world.failures.clear()

    def counts(self, since: float = 0.0) -> dict[str, int]:
        from .faults import counts

        return counts(self.requests, ("reads", "writes", "deletes"), since)
