"""Azure credentials: a per-resource Secret, or the operator's own identity (workload identity on AKS)."""

from __future__ import annotations

import os
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientAssertionCredential, ClientSecretCredential, DefaultAzureCredential, WorkloadIdentityCredential

from ...contract import TerminalError
from .settings import AzureSettings

TENANT, CLIENT, SECRET, FEDERATED = "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN"


def _options(settings: AzureSettings, transport: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"authority": settings.authority_host, **transport}
    if settings.disable_instance_discovery:
        options["disable_instance_discovery"] = True
    if settings.ca_bundle and not transport:
        options["connection_verify"] = settings.ca_bundle
    return options


def from_secret(settings: AzureSettings, data: dict[str, str], where: str, transport: dict[str, Any]) -> AsyncTokenCredential:
    missing = [key for key in (TENANT, CLIENT) if not data.get(key)]
    if missing or not (data.get(SECRET) or data.get(FEDERATED)):
        wanted = missing + ([] if data.get(SECRET) or data.get(FEDERATED) else [f"{SECRET} or {FEDERATED}"])
        raise TerminalError("CredentialsInvalid", f"Secret {where} (spec.credentials.secretRef) lacks {', '.join(wanted)}")
    if data.get(SECRET):
        return ClientSecretCredential(data[TENANT], data[CLIENT], data[SECRET], **_options(settings, transport))
    token = data[FEDERATED]
    return ClientAssertionCredential(data[TENANT], data[CLIENT], lambda: token, **_options(settings, transport))


def operator_identity(settings: AzureSettings, transport: dict[str, Any]) -> AsyncTokenCredential:
    """The operator's own identity, as DefaultAzureCredential finds it, with the configured cloud endpoints."""
    tenant, client = os.environ.get(TENANT), os.environ.get(CLIENT)
    if tenant and client and os.environ.get(SECRET):
        return ClientSecretCredential(tenant, client, os.environ[SECRET], **_options(settings, transport))
    if tenant and client and os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
        return WorkloadIdentityCredential(tenant_id=tenant, client_id=client,
                                          token_file_path=os.environ["AZURE_FEDERATED_TOKEN_FILE"], **_options(settings, transport))
    return DefaultAzureCredential(**_options(settings, transport))
