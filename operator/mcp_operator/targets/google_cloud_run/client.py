"""Google's REST APIs over aiohttp, with google-auth's credentials.

Why not google-cloud-run's client: it has no asyncio REST transport (its async client is gRPC-only), and its sync
REST client in a thread pool costs 38 MB more at import than aiohttp + google-auth's 10 MB and about six times the
CPU per request, spent in proto-plus marshalling (BENCHMARKS.md §13, bench/gcp_client_choice.py). The simulator
checks every request this module sends against the discovery documents, and contract tests drive the same simulator
with Google's own clients.

Credentials come from google-auth (Application Default Credentials or a key/configuration from a Secret); a token
is refreshed in a thread when it expires (google-auth's refresh is synchronous), through a requests session that
trusts the operator's CA bundle and ignores the machine's CA-bundle variables.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import google.auth
import google.auth.credentials
import google.auth.exceptions
import requests
from google.auth.transport.requests import Request

from ... import metrics
from ...contract import TerminalError, TransientError
from ...pacing import ThrottlePacer
from ...settings import proxies_configured
from .settings import GcpSettings

log = logging.getLogger(__name__)
TARGET_LABEL = "google-cloud-run"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# The Admin API's rate quotas per project and region, per second: 60 writes and 1000 reads a minute (docs/targets.md).
QUOTAS = {"reads": 1000 / 60, "writes": 60 / 60}


class GoogleApiError(Exception):
    """An answer other than 2xx: the HTTP status, Google's status name (NOT_FOUND, ABORTED ...) and its message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def classify(error: GoogleApiError) -> Exception:
    """HTTP-level classes, as the REST transport itself maps them (the status decides, not the RPC code)."""
    text = f"{error.code}: {error.message}"
    if error.status == 429:
        return TransientError("Throttled", text)
    if error.status >= 500:
        return TransientError("CloudServerError", text)
    if error.status == 409 and error.code == "ABORTED":
        return TransientError("ConcurrentChange", f"the service changed meanwhile, reading it again: {error.message}")
    if error.status == 401:
        return TerminalError("CredentialsInvalid", f"Google refused the credentials ({text}). Check the operator's workload "
                                                   "identity or the spec.credentials Secret.")
    if error.status == 403:
        return TerminalError("AuthorizationFailed", f"Google refused the request ({text}). The identity needs roles/run.admin, "
                                                    "iam.serviceAccounts.actAs on the runtime service account, and Secret "
                                                    "Manager admin when server.env uses secrets.")
    return TerminalError(error.code.title().replace("_", "") or str(error.status), error.message)


class TokenSource:
    """google-auth credentials, refreshed once when expired however many requests wait for them."""

    def __init__(self, credentials: google.auth.credentials.Credentials, ca_bundle: str | None):
        self.credentials = credentials
        self._lock = asyncio.Lock()
        self._session = requests.Session()
        # Without proxies, the environment is not read: REQUESTS_CA_BUNDLE (set machine-wide here) would override verify.
        self._session.trust_env = proxies_configured()
        self._session.verify = ca_bundle or True

    async def token(self) -> str:
        if not self.credentials.valid:
            async with self._lock:
                if not self.credentials.valid:
                    await asyncio.to_thread(self._refresh)
        return str(self.credentials.token)

    def _refresh(self) -> None:
        try:
            self.credentials.refresh(Request(self._session))  # type: ignore[no-untyped-call]
        except google.auth.exceptions.TransportError as error:
            raise TransientError("ConnectionError", f"could not reach Google's token endpoint: {error}") from error
        except google.auth.exceptions.RefreshError as error:
            raise TerminalError("CredentialsInvalid", f"Google refused the credentials: {_refusal(error)}. Check the "
                                                      "operator's workload identity or the spec.credentials Secret.") from error


def _refusal(error: google.auth.exceptions.RefreshError) -> str:
    """The token endpoint's own words, without the request google-auth echoes (it may hold an assertion)."""
    for part in error.args:
        if isinstance(part, Mapping) and part.get("error"):
            return f"{part.get('error')}: {part.get('error_description', '')}".rstrip(": ")
    return str(error.args[0]) if error.args else "refused"


def load_credentials(info: Mapping[str, Any] | None) -> tuple[google.auth.credentials.Credentials, str | None]:
    """Credentials and their project: from a key file or federation configuration (``info``), else ADC."""
    try:
        if info is None:
            credentials, project = google.auth.default(scopes=SCOPES)
        else:
            credentials, project = google.auth.load_credentials_from_dict(  # type: ignore[no-untyped-call]
                dict(info), scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as error:
        raise TerminalError("CredentialsInvalid", f"no usable Google credentials: {error}") from error
    return credentials, project


class GoogleClient:
    """One identity's requests to Google's APIs: authorised, paced while the Admin API throttles, counted."""

    def __init__(self, settings: GcpSettings, tokens: TokenSource):
        self.settings, self.tokens = settings, tokens
        self.pacer = ThrottlePacer(QUOTAS)
        self.throttle_patience = 120.0
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context = ssl.create_default_context(cafile=self.settings.ca_bundle) if self.settings.ca_bundle else None
            connector = aiohttp.TCPConnector(limit=self.settings.connections, ssl=context if context else True)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=proxies_configured(),
                                                  timeout=aiohttp.ClientTimeout(total=60, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, api: str, method: str, path: str, body: Mapping[str, Any] | None = None,
                   params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One request (``path`` relative to the API's base, e.g. ``v2/projects/...``); errors as contract errors."""
        try:
            return await self.request(api, method, path, body, params)
        except GoogleApiError as error:
            raise classify(error) from error

    async def maybe(self, api: str, method: str, path: str, body: Mapping[str, Any] | None = None,
                    params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """The answer, or None when what it asks for does not exist."""
        try:
            return await self.request(api, method, path, body, params)
        except GoogleApiError as error:
            if error.status == 404:
                return None
            raise classify(error) from error

    async def request(self, api: str, method: str, path: str, body: Mapping[str, Any] | None = None,
                      params: Mapping[str, str] | None = None) -> dict[str, Any]:
        klass = ("reads" if method == "GET" else "writes") if api == "run" else None
        deadline = time.monotonic() + self.throttle_patience
        url = f"{self.settings.api(api)}/{path}"
        while True:
            if klass:
                await self.pacer.admit(klass)
            headers = {"Authorization": f"Bearer {await self.tokens.token()}", "Content-Type": "application/json"}
            try:
                async with self._http().request(method, url, params=dict(params or {}), headers=headers,
                                                data=json.dumps(body) if body is not None else None) as response:
                    payload = await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                metrics.count_cloud_connection_error(TARGET_LABEL, method)
                raise TransientError("ConnectionError", f"connection to Google failed: {error}") from error
            # An existence check that finds nothing is an answer, not a client error (see metrics.http_outcome).
            metrics.count_cloud_response(TARGET_LABEL, method, response.status)
            if response.status < 300:
                return json.loads(payload or b"{}")  # type: ignore[no-any-return]
            refused = _error_of(response.status, payload)
            if klass and response.status == 429:
                wait = 1 / QUOTAS[klass]
                self.pacer.throttled(klass, wait)
                if time.monotonic() + wait < deadline:
                    continue
            raise refused


def _error_of(status: int, payload: bytes) -> GoogleApiError:
    try:
        found = json.loads(payload).get("error", {})
    except (ValueError, AttributeError):
        found = {}
    if not isinstance(found, dict):
        found = {"message": str(found)}
    return GoogleApiError(status, str(found.get("status") or status), str(found.get("message") or payload[:200].decode(
        errors="replace")))
