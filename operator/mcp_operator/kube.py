"""The few Kubernetes API calls the operator makes besides kopf's own: status patches and Secret reads."""

from __future__ import annotations

import base64
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from .api.models import GROUP, PLURAL, VERSION, McpDeploymentStatus
from .settings import proxies_configured


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
        self.__post_init_session()

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None,
                      connections: int = 8) -> tuple[Kube, str]:
        """A client, and the namespace of the chosen context (in-cluster: the pod's service account namespace)."""
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        configuration = client.Configuration()
        configuration.connection_pool_maxsize = connections
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
            namespace = open(namespace_file).read().strip() if os.path.exists(namespace_file) else "default"  # noqa: ASYNC230, ASYNC240, SIM115 - once, at start-up
            return cls(client.ApiClient(configuration)), namespace
        await config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        return cls(client.ApiClient(configuration)), (chosen or {}).get("context", {}).get("namespace") or "default"

    def __post_init_session(self) -> None:
        """kubernetes_asyncio always sets aiohttp's trust_env (see settings.proxies_configured for its cost)."""
        session = getattr(getattr(self.api, "rest_client", None), "pool_manager", None)
        if session is not None and hasattr(session, "_trust_env") and not proxies_configured():
            session._trust_env = False

    async def close(self) -> None:
        await self.api.close()

    async def patch_status(self, namespace: str, name: str, status: McpDeploymentStatus) -> None:
        await self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, status_patch(status), _content_type="application/merge-patch+json")  # type: ignore[call-arg]

    async def patch_spec(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": patch},
            _content_type="application/merge-patch+json")  # type: ignore[call-arg]

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    async def delete(self, namespace: str, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    async def server_side_apply(self, namespace: str, document: dict[str, Any], manager: str) -> None:
        """Server-side apply of an McpDeployment or a Secret, taking ownership of conflicting fields."""
        name = document["metadata"]["name"]
        if document.get("kind") == "Secret":
            await self.core.patch_namespaced_secret(name, namespace, document, field_manager=manager, force=True,
                                                    _content_type="application/apply-patch+yaml")  # type: ignore[call-arg]
        else:
            await self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, document, field_manager=manager, force=True,
                _content_type="application/apply-patch+yaml")  # type: ignore[call-arg]
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

