"""The few Kubernetes API calls made besides kopf's own: status patches and Secret reads (the operator);
get, apply, patch and delete of one McpDeployment (kubectl-mcp).

A thin aiohttp client authenticated by ``kubeconfig.login``: see there for why not the official client.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf
from pydantic import BaseModel

from . import metrics
from .api.models import GROUP, KIND, PLURAL, VERSION, McpDeploymentStatus
from .kubeconfig import Login, login
from .settings import proxies_configured

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class KubeError(Exception):
    """A refused request: the HTTP status, and the API server's reason and message."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


class SecretMissing(Exception):
    def __init__(self, namespace: str, name: str, key: str | None = None):
        what = f"key {key!r} of Secret {namespace}/{name}" if key else f"Secret {namespace}/{name}"
        super().__init__(f"{what} not found")
        self.namespace, self.name, self.key = namespace, name, key


def status_patch(status: McpDeploymentStatus) -> dict[str, Any]:
    """A JSON merge patch that makes the stored status equal ``status`` (None fields are removed, also inside the
    objects of status, such as a target's own: a merge patch keeps every key it does not name)."""
    body = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    for name, field in McpDeploymentStatus.model_fields.items():
        alias = field.alias or name
        value = getattr(status, name)
        if isinstance(value, BaseModel):
            body[alias] = value.model_dump(by_alias=True, exclude_none=False, mode="json")
        elif alias not in body:
            body[alias] = None
    return {"status": body}


def decode_secret_data(data: dict[str, str] | None, errors: str = "strict") -> dict[str, str]:
    """A Secret's ``data`` (base64, as the API returns it) as text."""
    return {key: base64.b64decode(value).decode(errors=errors) for key, value in (data or {}).items()}


def _collection_path(namespace: str, kind: str = PLURAL) -> str:
    if kind in ("secrets", "events"):
        return f"/api/v1/namespaces/{quote(namespace)}/{kind}"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/{kind}"


def _object_path(namespace: str, name: str, kind: str = PLURAL) -> str:
    return f"{_collection_path(namespace, kind)}/{quote(name)}"


def session_for(info: kopf.ConnectionInfo, connections: int, **options: Any) -> aiohttp.ClientSession:
    """An HTTP session for ``info``'s server and credentials, with at most ``connections`` open connections.

    The bound matters for memory: each TLS connection costs ~200 kB, and a burst of a thousand
    resources would otherwise open a connection per concurrent request.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=info.as_ssl_context(), limit=connections),
        headers={**info.as_http_headers(), "User-Agent": "mcp-operator"},
        proxy=info.proxy_url, trust_env=proxies_configured(), **options)


class Kube:
    def __init__(self, log_in: Callable[[], Login], connections: int = 8):
        self._log_in, self._connections = log_in, connections
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._renewing = asyncio.Lock()

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None,
                      connections: int = 8) -> tuple[Kube, str]:
        """A client, and the namespace of the chosen context (in-cluster: the pod's service account namespace)."""
        kube = cls(lambda: login(kubeconfig, context), connections)
        return kube, await kube._renew(None)

    async def _renew(self, stale: aiohttp.ClientSession | None) -> str:
        """Logs in (again): at start, and when the API server refuses our credentials (rotated tokens, expiry)."""
        async with self._renewing:
            if self._session is not stale:  # another request renewed it meanwhile
                return ""
            fresh = await asyncio.to_thread(self._log_in)  # exec plugins and file reads block
            info = fresh.info
            session = session_for(info, self._connections, timeout=aiohttp.ClientTimeout(total=60))
            old, self._session, self._server = self._session, session, info.server.rstrip("/")
            if old is not None:
                await old.close()
            return fresh.namespace

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                       params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """One call; a 401 logs in again and retries once. Returns the JSON body, or None for 404."""
        for attempt in (1, 2):
            session = self._session
            assert session is not None, "connect() first"
            data = None if body is None else json.dumps(body)
            async with session.request(method, self._server + path, data=data, params=params,
                                       headers={"Content-Type": content_type} if data else None) as response:
                metrics.KUBE_REQUESTS.labels(method, metrics.http_outcome(response.status)).inc()
                if response.status == 401 and attempt == 1:
                    await self._renew(session)
                    continue
                if response.status == 404:
                    return None
                payload = await response.json(content_type=None) if response.content_length != 0 else {}
                if response.status >= 400:
                    payload = payload if isinstance(payload, dict) else {}
                    raise KubeError(response.status, str(payload.get("reason") or response.reason),
                                    str(payload.get("message") or response.reason))
                return payload if isinstance(payload, dict) else {}
        raise KubeError(401, "Unauthorized", "the API server refused the credentials after a fresh login")

    async def patch_status(self, namespace: str, name: str, status: McpDeploymentStatus) -> None:
        found = await self._request("PATCH", _object_path(namespace, name) + "/status", status_patch(status), MERGE_PATCH)
        if found is None:
            raise KubeError(404, "NotFound", f"mcpdeployment {namespace}/{name} is gone")

    async def patch_spec(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        if await self._request("PATCH", _object_path(namespace, name), {"spec": patch}, MERGE_PATCH) is None:
            raise KubeError(404, "NotFound", f"mcpdeployment {namespace}/{name} not found")

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._request("GET", _object_path(namespace, name))

    async def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Events about one McpDeployment, oldest first."""
        found = await self._request("GET", _collection_path(namespace, "events"),
                                    params={"fieldSelector": f"involvedObject.name={name},involvedObject.kind={KIND}"}) or {}
        return sorted(found.get("items", []), key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    async def names(self, namespace: str) -> list[str]:
        """The McpDeployments of a namespace, by name."""
        found = await self._request("GET", _collection_path(namespace)) or {}
        return sorted(str(item["metadata"]["name"]) for item in found.get("items", []))

    async def delete(self, namespace: str, name: str) -> None:
        if await self._request("DELETE", _object_path(namespace, name)) is None:
            raise KubeError(404, "NotFound", f"mcpdeployment {namespace}/{name} not found")

    async def server_side_apply(self, namespace: str, document: dict[str, Any], manager: str, force: bool = False) -> None:
        """Server-side apply of an McpDeployment or a Secret. Fields another manager owns (Argo CD, Flux, kubectl) are a
        409 conflict unless ``force``, as with kubectl apply --server-side."""
        kind = "secrets" if document.get("kind") == "Secret" else PLURAL
        # JSON is YAML: the apply content type takes either.
        applied = await self._request("PATCH", _object_path(namespace, document["metadata"]["name"], kind), document,
                                      APPLY_PATCH, params={"fieldManager": manager, "fieldValidation": "Strict",
                                                           **({"force": "true"} if force else {})})
        if applied is None:
            raise KubeError(404, "NotFound", f'namespace "{namespace}" does not exist (create it, or set '
                                             "metadata.namespace / -n to one that does)")

    async def protect_secret(self, namespace: str, name: str, finalizer: str, protect: bool) -> None:
        """Adds (or removes) a finalizer on a Secret; a strategic merge leaves other finalizers as they are."""
        finalizers: dict[str, Any] = ({"finalizers": [finalizer]} if protect
                                      else {"$deleteFromPrimitiveList/finalizers": [finalizer]})
        await self._request("PATCH", _object_path(namespace, name, "secrets"), {"metadata": finalizers},
                            "application/strategic-merge-patch+json")

    async def secret_data(self, namespace: str, name: str) -> tuple[dict[str, str], str]:
        """A Secret's decoded data and its resourceVersion."""
        secret = await self._request("GET", _object_path(namespace, name, "secrets"))
        if secret is None:
            raise SecretMissing(namespace, name)
        return decode_secret_data(secret.get("data")), str(secret["metadata"]["resourceVersion"])
