"""The few Kubernetes API calls the operator makes besides kopf's own: status patches and Secret reads."""

from __future__ import annotations

import base64
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from .api.models import GROUP, PLURAL, VERSION, McpDeploymentStatus


class SecretMissing(Exception):
    def __init__(self, namespace: str, name: str, key: str | None = None):
        what = f"key {key!r} of Secret {namespace}/{name}" if key else f"Secret {namespace}/{name}"
        super().__init__(f"{what} not found")
        self.namespace, self.name, self.key = namespace, name, key


def status_patch(status: McpDeploymentStatus) -> dict[str, Any]:
    """A JSON merge patch that makes the stored status equal ``status`` (None fields are removed)."""
    body = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    for name, field in McpDeploymentStatus.model_fields.items():
        alias = field.alias or name
        if alias not in body:
            body[alias] = None
    return {"status": body}


class Kube:
    def __init__(self, api: client.ApiClient):
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    @classmethod
    async def connect(cls) -> Kube:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return cls(client.ApiClient())
        configuration = client.Configuration()
        await config.load_kube_config(client_configuration=configuration)
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()

    async def patch_status(self, namespace: str, name: str, status: McpDeploymentStatus) -> None:
        await self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, status_patch(status), _content_type="application/merge-patch+json")  # type: ignore[call-arg]

    async def patch_spec(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, patch, _content_type="application/merge-patch+json")  # type: ignore[call-arg]

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return found

    async def secret_data(self, namespace: str, name: str) -> tuple[dict[str, str], str]:
        """A Secret's decoded data and its resourceVersion."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                raise SecretMissing(namespace, name) from error
            raise
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        return data, str(secret.metadata.resource_version)

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        data, _ = await self.secret_data(namespace, name)
        if key not in data:
            raise SecretMissing(namespace, name, key)
        return data[key]
