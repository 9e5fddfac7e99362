"""A stand-in for the Microsoft identity platform: OIDC discovery and the v2.0 token endpoint.

Supports the two grants an operator uses: client credentials with a client secret, and a client
assertion (the federated token of AKS workload identity). Tokens are JWTs signed with a key only
this process knows, so ARM can check signature, audience, tenant and expiry as the real one does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_unverified(token: str) -> dict[str, Any]:
    """The claims of a JWT, without checking its signature (for client assertions we did not sign)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    claims = json.loads(_unb64(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("JWT claims are not an object")
    return claims


@dataclass
class Identity:
    tenant: str
    clients: dict[str, str] = field(default_factory=dict)  # client id -> client secret
    federated_clients: set[str] = field(default_factory=set)  # client ids that accept a federated assertion
    token_lifetime: int = 3600
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    issued: int = 0

    def issue(self, client_id: str, scope: str) -> dict[str, Any]:
        resource = scope.split()[0]
        if resource.endswith("/.default"):
            resource = resource[: -len("/.default")]
        now = int(time.time())
        claims = {"aud": resource.rstrip("/") + "/", "tid": self.tenant, "appid": client_id, "oid": client_id,
                  "iss": f"https://sts.windows.net/{self.tenant}/", "iat": now, "nbf": now, "exp": now + self.token_lifetime}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self.key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        self.issued += 1
        return {"token_type": "Bearer", "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime,
                "access_token": f"{header}.{payload}.{signature}"}

    def grant(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answers a token request: (HTTP status, body) in the identity platform's own error format."""
        if tenant.lower() not in (self.tenant.lower(), "organizations"):
            return 400, _aad_error("invalid_request", "AADSTS90002", f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return 400, _aad_error("unsupported_grant_type", "AADSTS70003", "Only client_credentials is supported here.")
        client_id = form.get("client_id", "")
        scope = form.get("scope", "")
        if not scope:
            return 400, _aad_error("invalid_scope", "AADSTS70011", "The 'scope' parameter is required.")
        if "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER or client_id not in self.federated_clients:
                return 401, _aad_error("invalid_client", "AADSTS700016", f"Application '{client_id}' has no federated credential.")
            try:
                assertion = decode_unverified(form["client_assertion"])
            except ValueError:
                return 400, _aad_error("invalid_client", "AADSTS50027", "The client assertion is not a valid JWT.")
            if assertion.get("aud") != FEDERATED_AUDIENCE and FEDERATED_AUDIENCE not in (assertion.get("aud") or []):
                return 401, _aad_error("invalid_client", "AADSTS700212", "The federated token's audience must be "
                                       f"'{FEDERATED_AUDIENCE}'.")
            if int(assertion.get("exp", 0)) < time.time():
                return 401, _aad_error("invalid_client", "AADSTS700024", "The client assertion has expired.")
        elif self.clients.get(client_id) is None or not hmac.compare_digest(self.clients[client_id], form.get("client_secret", "")):
            return 401, _aad_error("invalid_client", "AADSTS7000215", "Invalid client secret provided.")
        return 200, self.issue(client_id, scope)

    def verify(self, token: str, audiences: tuple[str, ...]) -> str | None:
        """None when ``token`` is valid for one of ``audiences``; otherwise why it is not."""
        parts = token.split(".")
        if len(parts) != 3:
            return "The access token is not a JWT."
        expected = _b64(hmac.new(self.key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return "The access token signature is invalid."
        claims = json.loads(_unb64(parts[1]))
        if claims.get("aud", "").rstrip("/") not in {a.rstrip("/") for a in audiences}:
            return f"The access token has an invalid audience '{claims.get('aud')}'."
        if claims.get("exp", 0) < time.time():
            return "The access token expiry UTC time is earlier than current UTC time."
        return None

    def openid_configuration(self, base: str, tenant: str) -> dict[str, Any]:
        root = f"{base}/{tenant}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/{self.tenant}/v2.0",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "NA",
        }


def _aad_error(error: str, code: str, description: str) -> dict[str, Any]:
    return {"error": error, "error_description": f"{code}: {description}", "error_codes": [int(code[6:])],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "trace_id": secrets.token_hex(8)}


def federated_token(client_id: str, tenant: str, lifetime: int = 3600) -> str:
    """A Kubernetes-style projected service-account token for tests (the identity platform checks aud/exp)."""
    now = int(time.time())
    claims = {"aud": [FEDERATED_AUDIENCE], "iss": "https://oidc.simulated.local/", "sub": f"system:serviceaccount:{client_id}",
              "iat": now, "exp": now + lifetime, "tid": tenant}
    return f"{_b64(json.dumps({'alg': 'RS256'}).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(b'unsigned')}"
