"""The MCP handshake a revision must pass on its own URL before it takes traffic.

The official MCP SDK's client connects over streamable HTTP, sends ``initialize`` and ``tools/list``, and
what it learns (protocol version, server name and version, tools, latency) goes into status. A failure
is classified into a reason a person can act on: the two ways a server that runs still fails behind
ingress are a DNS-rebinding guard rejecting the ingress Host header, and a server bound to loopback.

``MCP_RESOLVE`` (off by default) maps host patterns to addresses as curl's ``--resolve`` does, for
private DNS, air-gapped clusters and simulated clouds; the TLS name checked stays the URL's host.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import httpcore2
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from .contract import MCP_HANDSHAKE_FAILED as HANDSHAKE_FAILED
from .contract import MCP_HOST_REJECTED as HOST_REJECTED
from .contract import MCP_SMOKE_TEST_FAILED as SMOKE_TEST_FAILED
from .contract import MCP_TOOLS_MISSING as TOOLS_MISSING
from .contract import MCP_UNAUTHORIZED as UNAUTHORIZED
from .contract import MCP_UNREACHABLE as UNREACHABLE

UPSTREAM_WORDS = ("upstream connect error", "no healthy upstream", "connection refused", "connection failure")


@dataclass(frozen=True)
class Handshake:
    """What one check found: the server's own account when it answered, else why it did not."""

    ok: bool
    reason: str = ""
    message: str = ""
    protocol_version: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    tools: tuple[str, ...] = ()
    latency_ms: int = 0
    smoke_test: str | None = None  # what the smoke test's tool call returned (its text, shortened)


@dataclass(frozen=True)
class ToolCall:
    """spec.verify.smokeTest: a tool, its arguments, and text its result must contain (None: any result but an error)."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    expect: str | None = None


@dataclass(frozen=True)
class Resolver:
    """Host pattern -> "address:port" (or "address"), first match wins; nothing matches: normal DNS."""

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Resolver:
        rules = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            pattern, separator, address = item.partition("=")
            if not separator or not pattern or not address:
                raise ValueError(f"MCP_RESOLVE entry {item!r} is not host-pattern=address[:port]")
            rules.append((pattern.strip().lower(), address.strip()))
        return cls(tuple(rules))

    def address_of(self, host: str, port: int) -> tuple[str, int]:
        for pattern, address in self.rules:
            if fnmatchcase(host.lower(), pattern):
                name, _, mapped_port = address.rpartition(":") if ":" in address else (address, "", "")
                return name, int(mapped_port) if mapped_port else port
        return host, port


@dataclass
class _ResolvingBackend(httpcore2.AsyncNetworkBackend):
    resolver: Resolver
    inner: httpcore2.AsyncNetworkBackend = field(default_factory=httpcore2.AnyIOBackend)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
        address, mapped = self.resolver.address_of(host, port)
        return await self.inner.connect_tcp(address, mapped, timeout=timeout, local_address=local_address,
                                            socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _ResolvingTransport(httpx2.AsyncHTTPTransport):
    """httpx's own transport, whose connection pool dials through the resolver (TLS still checks the URL's host)."""

    def __init__(self, resolver: Resolver, ssl_context: ssl.SSLContext):
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(ssl_context=ssl_context, network_backend=_ResolvingBackend(resolver))


@dataclass(frozen=True)
class Checker:
    """How the operator reaches servers: the resolver override and the CA bundle (None: the system's)."""

    resolver: Resolver = Resolver()
    ca_bundle: str | None = None

    def client(self, timeout: float, headers: Mapping[str, str], refused: list[tuple[int, str]]) -> httpx2.AsyncClient:
        """An HTTP client for one check; ``refused`` collects (status, body) of HTTP errors, which the SDK turns
        into a generic JSON-RPC error: the server's own words are what tell a person what to fix."""

        async def keep_refusals(response: httpx2.Response) -> None:
            if response.status_code >= 400:
                await response.aread()
                refused.append((response.status_code, response.text.strip()[:200]))

        return httpx2.AsyncClient(transport=_ResolvingTransport(self.resolver, _tls(self.ca_bundle)), timeout=timeout,
                                  headers=dict(headers), follow_redirects=False,
                                  event_hooks={"response": [keep_refusals]})

    async def handshake(self, url: str, timeout: float, expected_tools: tuple[str, ...] = (),  # noqa: ASYNC109 - per check
                        token: str | None = None, smoke: ToolCall | None = None) -> Handshake:
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        refused: list[tuple[int, str]] = []
        try:
            async with asyncio.timeout(timeout), self.client(timeout, headers, refused) as http, \
                    streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
                hello = await session.initialize()
                listed = await session.list_tools()
                called = await session.call_tool(smoke.tool, dict(smoke.arguments)) if smoke is not None else None
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError) and not isinstance(error.__context__, TimeoutError):
                raise
            reason, message = classify(error, url, timeout, refused)
            return Handshake(False, reason, message, latency_ms=_ms(started))
        tools = tuple(tool.name for tool in listed.tools)
        found = Handshake(True, "", "", hello.protocol_version, hello.server_info.name, hello.server_info.version, tools,
                          _ms(started))
        missing = [name for name in expected_tools if name not in tools]
        if missing:
            return dataclasses.replace(found, ok=False, reason=TOOLS_MISSING, message=(
                f"the server at {url} lists tools {', '.join(tools) or 'none'}, but spec.verify.expectedTools also names "
                f"{', '.join(missing)}"))
        if smoke is not None:
            return _judge(found, smoke, called, url)
        return found


def _judge(found: Handshake, smoke: ToolCall, called: Any, url: str) -> Handshake:
    """The smoke test's verdict: an error result, or a text without the expected words, fails the check for good."""
    text = " ".join(str(getattr(part, "text", "")) for part in getattr(called, "content", None) or []).strip()
    shown = text if len(text) <= 200 else text[:197] + "..."
    summary = f"{smoke.tool} returned {shown!r}"
    if getattr(called, "is_error", False):
        return dataclasses.replace(found, ok=False, reason=SMOKE_TEST_FAILED, smoke_test=summary, message=(
            f"the smoke test's call of {smoke.tool} at {url} returned an error: {shown!r}; fix the server or "
            "spec.verify.smokeTest"))
    if smoke.expect is not None and smoke.expect not in text:
        return dataclasses.replace(found, ok=False, reason=SMOKE_TEST_FAILED, smoke_test=summary, message=(
            f"the smoke test's call of {smoke.tool} at {url} returned {shown!r}, which does not contain "
            f"{smoke.expect!r} (spec.verify.smokeTest.expect)"))
    return dataclasses.replace(found, smoke_test=summary)


@functools.cache
def _tls(ca_bundle: str | None) -> ssl.SSLContext:
    """One TLS context per CA bundle, shared by every check: loading the CAs costs more than a handshake."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _causes(error: BaseException) -> list[BaseException]:
    """The error and whatever it wraps (exception groups, causes), flattened."""
    found, stack = [], [error]
    while stack:
        current = stack.pop()
        found.append(current)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None and linked not in found:
                stack.append(linked)
    return found


def classify(error: BaseException, url: str, timeout: float,
             refused: Sequence[tuple[int, str]] = ()) -> tuple[str, str]:
    """A failed handshake as (reason, message): what happened, in the server's words, and what to change."""
    for status, body in refused:
        if status in (403, 421) and ("host" in body.lower() or "origin" in body.lower()):
            return HOST_REJECTED, (f"the server answered {status} {body!r} at {url}: its DNS-rebinding guard rejects the "
                                   "ingress host. Set allowed_origins in the server (AllowedOrigins::any() or the "
                                   "deployment's FQDN) and deploy again")
        if status in (502, 503, 504) and any(word in body.lower() for word in UPSTREAM_WORDS):
            return UNREACHABLE, (f"the ingress could not reach the server ({status} {body!r}) at {url}: a server bound "
                                 "to 127.0.0.1 is unreachable from outside its container; bind 0.0.0.0:$PORT")
        if status == 401:
            return UNAUTHORIZED, (f"the server at {url} requires authentication (HTTP 401 {body!r}): put a bearer token "
                                  "in a Secret and name it in spec.verify.tokenSecretRef (or check that token)")
        if status == 404:
            return HANDSHAKE_FAILED, (f"nothing answers MCP at {url} (HTTP 404): set spec.verify.path to the server's "
                                      "MCP endpoint (pmcp serves /, other servers often /mcp)")
        return HANDSHAKE_FAILED, f"the server answered HTTP {status} {body!r} to the MCP handshake at {url}"
    causes = _causes(error)
    for cause in causes:
        if isinstance(cause, MCPError):
            return HANDSHAKE_FAILED, f"the server refused the MCP handshake at {url}: {cause.message} " \
                                     f"(JSON-RPC error {cause.code})"
    for cause in causes:
        if isinstance(cause, TimeoutError | httpx2.TimeoutException):
            return UNREACHABLE, (f"no MCP answer from {url} within {timeout:.0f}s: is the server listening on "
                                 "0.0.0.0:$PORT, and does spec.verify.path name its MCP endpoint?")
        if isinstance(cause, httpx2.ConnectError | OSError):
            return UNREACHABLE, (f"could not connect to {url} ({cause}): check that the name resolves from the "
                                 "operator (MCP_RESOLVE maps private names) and that the server binds 0.0.0.0:$PORT")
    return HANDSHAKE_FAILED, f"the MCP handshake at {url} failed: {type(error).__name__}: {error}"
