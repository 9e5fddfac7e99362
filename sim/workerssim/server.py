"""The HTTPS front of the Cloudflare Workers simulator: the Workers API under ``/client/v4``, tails over WebSocket,
and the test controls.

Request pipeline, in the order Cloudflare applies it: the API token -> the rate limit (1,200 requests per five
minutes per token; past it, every request is refused for the next five minutes) -> the token's permission -> the
operation -> the answer in Cloudflare's envelope (``success``, ``errors[]``, ``messages``, ``result``). Uploads are
multipart, accepting both the SDK's part naming (every module a part named ``files``) and wrangler's (each part
named after its module, metadata a plain field). Every request is recorded.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from simcore.buckets import TokenBuckets
from simcore.controls import common_control
from simcore.faults import RecordedRequest, drop
from simcore.front import SimulatorFront

from .world import CloudflareError, Failure, Tail, World

JSON = dict[str, Any]
WINDOW, LIMIT = 300.0, 1200  # requests per five minutes per token, then five minutes of 429s
WRITE = "workers_scripts:edit"
READ = "workers_scripts:read"


@dataclass
class WorkersSimulatorConfig:
    account: str = "0123456789abcdef0123456789abcdef"
    subdomain: str = "acme-sim"
    token: str = "sim-cloudflare-api-token"  # noqa: S105 - the simulator's own test credential
    read_only_token: str = "sim-read-only-token"  # noqa: S105 - a token without Workers Scripts: Edit
    rate_limit: bool = False
    rate_limit_requests: int = LIMIT  # per five minutes (smaller in tests that trip it)
    latency: dict[str, float] = field(default_factory=dict)


class WorkersSimulator(SimulatorFront):
    world: World
    workdir_prefix = "workerssim-"
    max_body = 80 * 1024 * 1024

    def __init__(self, config: WorkersSimulatorConfig | None = None, workdir: Path | None = None):
        super().__init__(workdir)
        self.config = config or WorkersSimulatorConfig()
        self.world = World(self.config.account, self.config.subdomain)
        self.tokens = {self.config.token: {READ, WRITE}, self.config.read_only_token: {READ}}
        self.throttle = TokenBuckets({"requests": (LIMIT, LIMIT / WINDOW)}, enabled=self.config.rate_limit)
        self._seen: dict[str, collections.deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self.latency = dict(self.config.latency)

    # ----- lifecycle ----------------------------------------------------------------------------
    def info(self) -> JSON:
        return {"endpoint": self.endpoint, "apiBase": self.endpoint + "/client/v4",
                "caBundle": str(self.certs.ca_file) if self.certs else None, "accountId": self.config.account,
                "subdomain": self.config.subdomain, "apiToken": self.config.token,
                "readOnlyToken": self.config.read_only_token, "controls": self.endpoint + "/_sim",
                "ingress": f"127.0.0.1:{self.ingress.port}" if self.ingress else None}

    # ----- controls (simcore's Controllable) --------------------------------------------------------
    @property
    def schedule(self) -> Any:
        return self  # the Workers API is synchronous: ``latency`` only delays answers ("request")

    async def _controls(self, request: web.Request) -> web.StreamResponse:
        body: Any = await request.json() if request.can_read_body else {}
        if (request.method, request.path.rstrip("/")) == ("PUT", "/_sim/throttling"):
            self.throttle.enabled = bool(body["enabled"])
            self._seen.clear()
            self._locked_until.clear()
            return web.json_response({"enabled": self.throttle.enabled})
        common = common_control(self, request.method, request.path, request.query, body)
        if common is not None:
            return common
        if (request.method, request.path.rstrip("/")) == ("POST", "/_sim/failures"):
            self.world.failures.append(Failure(body["contains"], body.get("message", Failure.message)))
            return web.json_response({})
        return web.json_response({"error": f"no control {request.method} {request.path}"}, status=404)

    # ----- dispatch -----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_sim"):
            return await self._controls(request)
        if request.path.startswith("/tail/"):
            return await self._tail_socket(request)
        started = time.monotonic()
        klass = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(request.method, "writes")
        record = RecordedRequest(started, request.method, request.path, "Unknown", klass, 0, self.config.account)
        self.requests.append(record)
        route = _ROUTES.match(request.path)
        record.operation = _operation_name(request.method, route)
        fault = self.faults.take(request.method, request.path, record.operation)
        if fault and fault.action == "drop" and fault.when == "before":
            return drop(request, record)
        try:
            token = self._authenticate(request)
            self._rate_limit(token)
            if route is None:
                raise CloudflareError(404, 7003, f"Could not route to {request.path}, perhaps your object identifier is invalid?")
            if route["account"] != self.config.account:
                raise CloudflareError(403, 10000, "Authentication error")
            if request.method != "GET" and WRITE not in self.tokens[token]:
                raise CloudflareError(403, 10000, "Authentication error")
            if self.latency.get("request"):
                await asyncio.sleep(self.latency["request"])
            if fault and fault.action == "status":
                raise CloudflareError(fault.status, 10013, fault.message, fault.retry_after)
            result, info = await self._operate(request, route)
            response = _envelope(result, info)
        except CloudflareError as error:
            response = _refusal(error)
        if fault and fault.action == "drop" and fault.when == "after":
            return drop(request, record)
        record.status = response.status
        record.seconds = time.monotonic() - started
        return response

    def _authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        if not header.startswith("Bearer ") or token not in self.tokens:
            raise CloudflareError(400 if not header else 403, 6003 if not header else 10000,
                                  "Invalid request headers" if not header else "Authentication error")
        return token

    def _rate_limit(self, token: str) -> None:
        if not self.throttle.enabled:
            return
        now = time.monotonic()
        locked = self._locked_until.get(token, 0.0)
        if now < locked:
            raise CloudflareError(429, 971, "Please wait and consider throttling your request speed", int(locked - now) + 1)
        seen = self._seen.setdefault(token, collections.deque())
        while seen and seen[0] < now - WINDOW:
            seen.popleft()
        if len(seen) >= self.config.rate_limit_requests:
            self._locked_until[token] = now + WINDOW
            raise CloudflareError(429, 971, "Please wait and consider throttling your request speed", int(WINDOW))
        seen.append(now)

    # ----- operations -------------------------------------------------------------------------------------
    async def _operate(self, request: web.Request, route: re.Match[str]) -> tuple[Any, JSON | None]:
        w, method = self.world, request.method
        name, rest = route["script"], route["rest"] or ""
        if route["what"] == "subdomain":
            if method == "PUT":
                w.subdomain = (await request.json())["subdomain"]
            return {"subdomain": w.subdomain}, None
        if name is None:
            if method == "GET":
                return [w.script_body(s) for s in w.scripts.values()], None
            raise CloudflareError(405, 10000, "Method not allowed")
        if rest == "" and method == "PUT":
            metadata, modules = await _upload(request)
            version = w.upload(name, metadata, modules, create=True)
            return {**w.script_body(w.script(name)), "version_id": version.id}, None
        if rest == "" and method == "DELETE":
            w.script(name)
            del w.scripts[name]
            return None, None
        script = w.script(name)
        if rest in ("/settings", "/script-settings"):
            if method == "PATCH":
                if request.content_type == "application/json":
                    settings = await request.json()
                else:
                    _metadata, modules = await _upload(request, settings=True)
                    settings = json.loads(modules.get("settings", ("", b"{}"))[1] or b"{}")
                if "tags" in settings:
                    script.tags = [str(t) for t in settings["tags"] or []]
            return {"tags": list(script.tags), "logpush": False, "tail_consumers": [], "observability": {"enabled": False}}, None
        if rest == "/versions":
            if method == "POST":
                metadata, modules = await _upload(request)
                return w.version_body(script, w.upload(name, metadata, modules, create=False)), None
            page, per_page = int(request.query.get("page", 1)), int(request.query.get("per_page", 10))
            newest = list(reversed(script.versions))
            items = newest[(page - 1) * per_page: page * per_page]
            return {"items": [w.version_body(script, v) for v in items]}, {
                "page": page, "per_page": per_page, "count": len(items), "total_count": len(newest)}
        if rest.startswith("/versions/"):
            return w.version_body(script, script.version(rest.removeprefix("/versions/"))), None
        if rest == "/deployments":
            if method == "POST":
                deployment = w.deploy(name, await request.json(), request.query.get("force") == "true")
                return w.deployment_body(deployment), None
            return {"deployments": [w.deployment_body(d) for d in reversed(script.deployments)]}, None
        if rest.startswith("/deployments/"):
            wanted = rest.removeprefix("/deployments/")
            found = next((d for d in script.deployments if d.id == wanted), None)
            if found is None:
                raise CloudflareError(404, 10220, f"Deployment {wanted} not found")
            if method == "DELETE":
                if found is script.active:
                    raise CloudflareError(400, 10221, "The active deployment cannot be deleted")
                script.deployments.remove(found)
                return None, None
            return w.deployment_body(found), None
        if rest == "/subdomain":
            if method == "POST":
                body = await request.json()
                script.subdomain_enabled = bool(body.get("enabled"))
                script.previews_enabled = bool(body.get("previews_enabled", body.get("enabled")))
            elif method == "DELETE":
                script.subdomain_enabled = script.previews_enabled = False
            return {"enabled": script.subdomain_enabled, "previews_enabled": script.previews_enabled}, None
        if rest == "/secrets":
            if method == "PUT":
                body = await request.json()
                w.put_secret(name, body)
                return {"name": body["name"], "type": "secret_text"}, None
            latest = script.versions[-1]
            return [{"name": n, "type": "secret_text"} for n in latest.secrets()], None
        if rest == "/tails":
            if method == "POST":
                tail = Tail(str(uuid.uuid4()), name, time.time() + 3600)
                w.tails[tail.id] = tail
                url = f"wss://127.0.0.1:{self.port}/tail/{tail.id}"
                return {"id": tail.id, "url": url, "expires_at": _iso(tail.expires)}, None
            return [{"id": t.id, "url": f"wss://127.0.0.1:{self.port}/tail/{t.id}", "expires_at": _iso(t.expires)}
                    for t in w.tails.values() if t.script == name], None
        if rest.startswith("/tails/") and method == "DELETE":
            w.tails.pop(rest.removeprefix("/tails/"), None)
            return None, None
        raise CloudflareError(404, 7003, f"No route for {method} {request.path}")

    async def _tail_socket(self, request: web.Request) -> web.StreamResponse:
        """A tail's WebSocket (subprotocol trace-v1): each request a version served, as one JSON message."""
        tail = self.world.tails.get(request.path.removeprefix("/tail/"))
        if tail is None:
            return web.Response(status=404)
        socket = web.WebSocketResponse(protocols=("trace-v1",))
        await socket.prepare(request)
        try:
            while not socket.closed and tail.id in self.world.tails:
                while tail.queue:
                    await socket.send_str(json.dumps(tail.queue.pop(0)))
                await asyncio.sleep(0.1)
        finally:
            await socket.close()
        return socket


_ROUTES = re.compile(r"^/client/v4/accounts/(?P<account>[^/]+)/workers/(?P<what>subdomain|scripts)"
                     r"(?:/(?P<script>[^/]+)(?P<rest>/.*)?)?$")


def _operation_name(method: str, route: re.Match[str] | None) -> str:
    if route is None:
        return "unknown"
    if route["what"] == "subdomain":
        return f"subdomain.{method.lower()}"
    rest = re.sub(r"/[0-9a-f-]{36}$", "/{id}", route["rest"] or "")
    return f"scripts{rest.replace('/', '.')}.{method.lower()}" if route["script"] else f"scripts.{method.lower()}"


async def _upload(request: web.Request, settings: bool = False) -> tuple[JSON, dict[str, tuple[str, bytes]]]:
    """metadata and modules of a multipart upload, named the SDK's way (parts ``files``) or wrangler's (by module)."""
    if not request.content_type.startswith("multipart/form-data"):
        raise CloudflareError(400, 10021, "Expected a multipart/form-data upload")
    reader = await request.multipart()
    metadata: JSON = {}
    modules: dict[str, tuple[str, bytes]] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise CloudflareError(400, 10021, "nested multipart parts are not accepted")
        data = await part.read()
        name = part.name or ""
        if name == "metadata":
            try:
                metadata = json.loads(data)
            except ValueError as error:
                raise CloudflareError(400, 10021, f"metadata is not JSON: {error}") from error
            continue
        module = part.filename or name
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        modules[module] = (content_type, bytes(data))
    if not metadata and not settings:
        raise CloudflareError(400, 10021, "A metadata part is required")
    return metadata, modules


def _envelope(result: Any, info: JSON | None) -> web.Response:
    body: JSON = {"success": True, "errors": [], "messages": [], "result": result}
    if info is not None:
        body["result_info"] = info
    return web.json_response(body)


def _refusal(error: CloudflareError) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    return web.json_response({"success": False, "errors": [{"code": error.code, "message": error.message}], "messages": [],
                              "result": None}, status=error.status, headers=headers)


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


__all__ = ["WorkersSimulator", "WorkersSimulatorConfig"]
