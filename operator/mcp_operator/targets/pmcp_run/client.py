"""pmcp.run's API as cargo-pmcp speaks it: discovery, a client-credentials token, GraphQL over aiohttp, presigned PUTs.

pmcp.run has no client library but cargo-pmcp (Rust) and no published schema, so this module sends cargo-pmcp's own
documents (documents.py, parsed by graphql-core) with its headers: ``Authorization: <token>`` with no ``Bearer`` (the
AppSync way), ``Content-Type: application/json``, no ``operationName``. Like cargo-pmcp it finds the GraphQL endpoint
at ``/.well-known/pmcp-config`` (cached for an hour) and, when the API answers that a field or type is unknown,
discovers again and retries once if the endpoint moved. Tokens are cached until a minute before they expire.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from ... import metrics
from ...contract import TerminalError, TransientError
from ...settings import proxies_configured
from .documents import DOCUMENTS

TARGET_LABEL = "pmcp-run"
DISCOVERY_TTL = 3600.0
TOKEN_MARGIN = 60.0
SCHEMA_MISMATCH = ("FieldUndefined", "UnknownType", "Validation error")  # what makes cargo-pmcp discover again


class ApiRefusal(Exception):
    """The API answered with GraphQL errors: their ``errorType``s and messages."""

    def __init__(self, errors: list[Mapping[str, Any]]):
        self.types = [str(e.get("errorType") or "") for e in errors]
        self.text = "; ".join(str(e.get("message")) for e in errors) or "an error without a message"
        super().__init__(self.text)

    @property
    def not_found(self) -> bool:
        return any("NotFound" in kind for kind in self.types)


class Credentials:
    """Client id and secret (a token from the user pool's token endpoint), or an access token used as it is."""

    def __init__(self, where: str, client_id: str | None = None, client_secret: str | None = None,
                 access_token: str | None = None):
        self.where, self.client_id, self.access_token = where, client_id, access_token
        self._secret = client_secret

    def __repr__(self) -> str:
        return f"Credentials({self.where}, client_id={self.client_id!r})"

    @property
    def usable(self) -> bool:
        return bool(self.access_token or (self.client_id and self._secret))

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode()


class PmcpRunClient:
    def __init__(self, api_url: str, credentials: Credentials, ca_bundle: str | None, graphql_url: str | None = None):
        self.api_url, self.credentials, self.ca_bundle = api_url.rstrip("/"), credentials, ca_bundle
        self.graphql_override = graphql_url
        self._config: tuple[float, dict[str, Any]] | None = None
        self._token: tuple[float, str] | None = None
        self._session: aiohttp.ClientSession | None = None
        # A fleet's first passes all need the discovery document and a token at once: one fetch each, not one per pass.
        self._fetching = asyncio.Lock()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context if context else True),
                                                  trust_env=proxies_configured(),
                                                  timeout=aiohttp.ClientTimeout(total=120, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
        try:
            async with self._http().request(method, url, **kwargs) as response:
                payload = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            metrics.count_cloud_connection_error(TARGET_LABEL, method)
            raise TransientError("ConnectionError", f"connection to pmcp.run failed ({url.split('?')[0]}): {error}") from error
        metrics.count_cloud_response(TARGET_LABEL, method, response.status)
        return response.status, payload

    # ----- discovery and tokens --------------------------------------------------------------------------------
    async def config(self, fresh: bool = False) -> dict[str, Any]:
        """``/.well-known/pmcp-config``, cached for an hour; one retry after a second on a transport error or a 5xx."""
        if self._config is not None and not fresh and time.monotonic() - self._config[0] < DISCOVERY_TTL:
            return self._config[1]
        asked = time.monotonic()
        async with self._fetching:
            if self._config is not None and self._config[0] >= asked:  # fetched meanwhile by another pass
                return self._config[1]
            return await self._discover()

    async def _discover(self) -> dict[str, Any]:
        url = f"{self.api_url}/.well-known/pmcp-config"
        for attempt in (1, 2):
            try:
                status, payload = await self._request("GET", url, timeout=aiohttp.ClientTimeout(total=10))
            except TransientError:
                if attempt == 2:
                    raise
                await asyncio.sleep(1)
                continue
            if status >= 500 and attempt == 1:
                await asyncio.sleep(1)
                continue
            if status >= 400:
                kind = TransientError if status >= 500 else TerminalError
                raise kind("DiscoveryFailed", f"{url} answered HTTP {status}: {payload[:200].decode(errors='replace')}. "
                                              "Is spec.pmcpRun.apiUrl (or the operator's PMCP_API_URL) pmcp.run's API?")
            found = json.loads(payload or b"{}")
            if found.get("api_type") not in (None, "graphql"):
                raise TerminalError("DiscoveryFailed", f"{url} says api_type {found.get('api_type')!r}; only graphql is "
                                                       "spoken (as by cargo-pmcp)")
            self._config = (time.monotonic(), found)
            return found  # type: ignore[no-any-return]
        raise AssertionError("unreachable")

    async def graphql_url(self) -> str:
        if self.graphql_override:
            return self.graphql_override
        return str((await self.config()).get("graphql_url") or f"{self.api_url}/graphql")

    async def token(self) -> str:
        if self.credentials.access_token:
            return self.credentials.access_token
        if self._token is not None and time.monotonic() < self._token[0]:
            return self._token[1]
        config = await self.config()
        async with self._fetching:
            if self._token is not None and time.monotonic() < self._token[0]:  # fetched meanwhile by another pass
                return self._token[1]
            return await self._new_token(config)

    async def _new_token(self, config: Mapping[str, Any]) -> str:
        domain = str(config.get("cognito_domain") or "")
        url = (domain if domain.startswith("https://") else f"https://{domain}").rstrip("/") + "/oauth2/token"
        status, payload = await self._request("POST", url, data={"grant_type": "client_credentials"},
                                              headers={"Authorization": self.credentials.basic()})
        if status >= 500:
            raise TransientError("CloudServerError", f"pmcp.run's token endpoint answered HTTP {status}")
        if status >= 400:
            error = _json_or_text(payload)
            raise TerminalError("CredentialsInvalid", f"pmcp.run's token endpoint refused the client credentials from "
                                                      f"{self.credentials.where} ({error}): check PMCP_CLIENT_ID and "
                                                      "PMCP_CLIENT_SECRET")
        answer = json.loads(payload)
        self._token = (time.monotonic() + float(answer.get("expires_in") or 3600) - TOKEN_MARGIN, str(answer["access_token"]))
        return self._token[1]

    # ----- GraphQL ---------------------------------------------------------------------------------------------
    async def execute(self, operation: str, variables: Mapping[str, Any] | None = None) -> Any:
        """The operation's root field, as answered; GraphQL errors raise ApiRefusal (after the one schema retry)."""
        url = await self.graphql_url()
        try:
            return await self._post(url, operation, variables)
        except ApiRefusal as refusal:
            if not any(mark in refusal.text for mark in SCHEMA_MISMATCH) or self.graphql_override:
                raise
            await self.config(fresh=True)
            moved = await self.graphql_url()
            if moved == url:
                raise TerminalError("PmcpRunSchemaMismatch", f"pmcp.run does not know operation {operation} as cargo-pmcp "
                                                             f"0.21 sends it: {refusal.text}") from refusal
            return await self._post(moved, operation, variables)

    async def _post(self, url: str, operation: str, variables: Mapping[str, Any] | None, again: bool = True) -> Any:
        body = json.dumps({"query": DOCUMENTS[operation], "variables": dict(variables or {})})
        status, payload = await self._request("POST", url, data=body, headers={
            "Authorization": await self.token(), "Content-Type": "application/json"})
        if status == 401 and again and not self.credentials.access_token:
            self._token = None  # revoked or expired early: one new token
            return await self._post(url, operation, variables, again=False)
        if status in (401, 403):
            raise TerminalError("CredentialsInvalid", f"pmcp.run refused the credentials from {self.credentials.where} "
                                                      f"(HTTP {status}: {_json_or_text(payload)})")
        if status == 429 or status >= 500:
            raise TransientError("Throttled" if status == 429 else "CloudServerError",
                                 f"pmcp.run answered HTTP {status}: {_json_or_text(payload)}")
        if status >= 400:
            raise TerminalError("PmcpRunRefused", f"pmcp.run answered HTTP {status} to {operation}: {_json_or_text(payload)}")
        answer = json.loads(payload or b"{}")
        if answer.get("errors"):  # as cargo-pmcp: any error fails the call, even with data
            raise ApiRefusal(answer["errors"])
        data = answer.get("data") or {}
        return next(iter(data.values()), None) if isinstance(data, dict) else None

    # ----- presigned uploads -------------------------------------------------------------------------------------
    async def put(self, url: str, data: bytes, content_type: str) -> None:
        status, payload = await self._request("PUT", url, data=data, headers={
            "Content-Type": content_type, "Content-Length": str(len(data))})
        if status >= 300:
            code = re.search(rb"<Code>([^<]+)</Code>", payload)
            message = re.search(rb"<Message>([^<]+)</Message>", payload)
            what = f"{(code[1] if code else b'HTTP %d' % status).decode()}: {(message[1] if message else b'').decode()}"
            raise TransientError("UploadFailed", f"the upload to pmcp.run's storage was refused ({what}); the next pass "
                                                 "asks for new upload URLs")


def _json_or_text(payload: bytes) -> str:
    try:
        found = json.loads(payload)
    except ValueError:
        return payload[:200].decode(errors="replace")
    if isinstance(found, dict) and found.get("errors"):
        return "; ".join(f"{e.get('errorType', '')}: {e.get('message', '')}".strip(": ") for e in found["errors"])
    if isinstance(found, dict) and "error" in found:
        return str(found["error"])
    return json.dumps(found)[:200]
