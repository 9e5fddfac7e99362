"""The ingress of simulated apps: every revision URL is answered by a real MCP server.

One HTTPS port serves every host a simulated cloud gives out (an app's URL, a revision's own URL). The
simulator says which image serves a host (``Lookup``); the image reference chooses the behaviour, so a
test asks for a broken server by naming its image:

==========================  ===========================================================================
image reference contains    the server behind the ingress
==========================  ===========================================================================
(anything else)             a healthy MCP server (official SDK, streamable HTTP at ``/`` and ``/mcp``)
                            named after the image's repository, version = the tag, tools add/echo/now
``mcp-host-guard``          the SDK's DNS-rebinding guard allowing only localhost: the ingress Host is
                            answered ``421 Invalid Host header``, as pmcp answers 403 without
                            ``allowed_origins``
``mcp-loopback``            bound to 127.0.0.1 inside its container: the ingress cannot reach it and
                            answers 503 ``upstream connect error ... connection failure`` (Envoy's words)
``mcp-slow-start-<N>``      the same 503 for the first N seconds after the revision was created
``mcp-crash-after-<K>``     healthy for K requests, then the 503 of a server that is gone
``mcp-auth-required``       healthy, but only with ``Authorization: Bearer sim-token`` (else 401)
==========================  ===========================================================================

TLS: a certificate for ``*.<parent domain>`` of each requested name, issued on the fly by the simulator's
CA (SNI), so clients verify the ingress exactly as they verify the real one with a private CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import PlainTextResponse

from .certs import CertificateAuthority

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AUTH_TOKEN = "sim-token"  # noqa: S105 - a test fixture: what a server of an ``mcp-auth-required`` image accepts
UPSTREAM_FAILURE = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"


@dataclass(frozen=True)
class Backend:
    image: str
    created: float  # when the revision was created (time.time())
    refusal: tuple[int, str] | None = None  # the cloud's own answer before any server is reached (e.g. 403 of a URL policy)
    bearer: str | None = None  # a token the cloud's gateway asks for (Authorization: Bearer) before any server is reached


Lookup = Callable[[str], Backend | None]  # host name (no port) -> what serves it, or None


def _server(name: str, version: str) -> MCPServer:
    server = MCPServer(name, version=version)

    @server.tool()
    def add(a: float, b: float) -> float:
        """Adds two numbers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Returns the text it was given."""
        return text

    @server.tool()
    def now() -> str:
        """The server's current time (UTC, ISO 8601)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    return server


def _identity(image: str) -> tuple[str, str]:
    """(server name, version) from an image reference: its repository's last part and its tag."""
    reference = image.split("@", 1)[0]
    path, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "latest")
    return path.rsplit("/", 1)[-1] or "server", tag or "latest"


class McpIngress:
    """HTTPS on one port for every simulated host; a real MCP server behind each."""

    def __init__(self, authority: CertificateAuthority, lookup: Lookup, directory: Path | None = None):
        self.authority, self.lookup = authority, lookup
        self.directory = directory or Path(tempfile.mkdtemp(prefix="mcp-ingress-"))
        self.port = 0
        self.requests: dict[str, int] = {}  # host -> requests answered (for crash-after-K)
        self._servers: dict[str, tuple[MCPServer, Any]] = {}  # (name, version, guard) key -> (server, ASGI app)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._uvicorn: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        # A server's session manager runs an anyio task group, which must be left by the task that entered it:
        # one keeper task enters them all, when asked, and leaves them all at stop.
        self._to_run: asyncio.Queue[tuple[MCPServer, asyncio.Event] | None] = asyncio.Queue()
        self._keeper: asyncio.Task[None] | None = None
        self._creating = asyncio.Lock()

    # ----- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        # The servers' own request logs (sessions, rejected hosts) are what the ingress answers already says.
        logging.getLogger("mcp.server").setLevel(logging.ERROR)
        default_cert, default_key = self.authority.issue("ingress", ("127.0.0.1", "localhost"))
        cert_file, key_file = self.directory / "ingress.crt", self.directory / "ingress.key"
        cert_file.write_bytes(default_cert)
        key_file.write_bytes(default_key)
        config = uvicorn.Config(self._asgi, host="127.0.0.1", port=0, log_level="critical", lifespan="off", interface="asgi3",
                                timeout_graceful_shutdown=1,
                                ssl_certfile=str(cert_file), ssl_keyfile=str(key_file), access_log=False)
        config.load()
        assert config.ssl is not None
        config.ssl.sni_callback = self._sni
        self._keeper = asyncio.create_task(self._keep_running())
        self._uvicorn = uvicorn.Server(config)
        self._task = asyncio.create_task(self._uvicorn.serve())
        while not self._uvicorn.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self._uvicorn.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._uvicorn is not None and self._task is not None:
            self._uvicorn.should_exit = True
            await self._task
        if self._keeper is not None:
            await self._to_run.put(None)
            await self._keeper

    async def _keep_running(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            while (item := await self._to_run.get()) is not None:
                server, running = item
                await stack.enter_async_context(server.session_manager.run())
                running.set()

    # ----- TLS ----------------------------------------------------------------------------------
    def _sni(self, connection: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        if not server_name or "." not in server_name:
            return
        parent = server_name.split(".", 1)[1]
        if parent not in self._contexts:
            cert, key = self.authority.issue(f"*.{parent}", (f"*.{parent}", parent))
            cert_file, key_file = self.directory / f"{parent}.crt", self.directory / f"{parent}.key"
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert_file, key_file)
            self._contexts[parent] = context
        connection.context = self._contexts[parent]

    # ----- routing ------------------------------------------------------------------------------
    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode().rsplit(":", 1)[0].lower()
        backend = self.lookup(host)
        if backend is None:
            await PlainTextResponse(f"no app answers at {host}", status_code=404)(scope, receive, send)
            return
        if backend.refusal is not None:
            status, text = backend.refusal
            await PlainTextResponse(text, status_code=status)(scope, receive, send)
            return
        if backend.bearer is not None and headers.get(b"authorization") != f"Bearer {backend.bearer}".encode():
            await PlainTextResponse("Unauthorized", status_code=401,
                                    headers={"WWW-Authenticate": f'Bearer resource_metadata="https://{host}/.well-known/'
                                                                 'oauth-protected-resource"'})(scope, receive, send)
            return
        count = self.requests[host] = self.requests.get(host, 0) + 1
        if self._unreachable(backend, count):
            await PlainTextResponse(UPSTREAM_FAILURE, status_code=503)(scope, receive, send)
            return
        if "mcp-auth-required" in backend.image and headers.get(b"authorization") != f"Bearer {AUTH_TOKEN}".encode():
            await PlainTextResponse("unauthorized", status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        if scope["path"] in ("/mcp", "/mcp/"):  # the SDK's default path, served too
            scope = {**scope, "path": "/", "raw_path": b"/"}
        app = await self._app_for(backend.image)
        await app(scope, receive, send)

    @staticmethod
    def _unreachable(backend: Backend, count: int) -> bool:
        image = backend.image
        if "mcp-loopback" in image:
            return True
        slow = re.search(r"mcp-slow-start-(\d+)", image)
        if slow and time.time() < backend.created + int(slow[1]):
            return True
        crash = re.search(r"mcp-crash-after-(\d+)", image)
        return bool(crash and count > int(crash[1]))

    async def _app_for(self, image: str) -> Any:
        name, version = _identity(image)
        guard = "mcp-host-guard" in image
        key = f"{name}\0{version}\0{guard}"
        async with self._creating:
            if key not in self._servers:
                server = _server(name, version)
                security = (TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=["localhost:*"],
                                                      allowed_origins=["http://localhost:*"])
                            if guard else TransportSecuritySettings(enable_dns_rebinding_protection=False))
                inner = server.streamable_http_app(streamable_http_path="/", stateless_http=True, json_response=True,
                                                   transport_security=security)
                running = asyncio.Event()
                await self._to_run.put((server, running))
                await running.wait()
                self._servers[key] = (server, inner)
        return self._servers[key][1]
