"""Google's token endpoints, as google-auth's real code paths call them.

- ``POST /token``: OAuth 2.0 JWT-bearer grant of a service-account key. The assertion is checked as Google
  checks it: RS256 signature by the key's private half (we keep the public half), ``aud`` = the token URI,
  ``iss`` = the account's email, not expired.
- ``POST /v1/token``: STS token exchange of workload identity federation (an ``external_account``
  configuration): the projected token we issued, for the pool provider it was configured with.

Each answers an opaque access token, accepted as ``Authorization: Bearer`` by the APIs until it expires.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .world import GoogleError

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a grant type, not a secret


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class ServiceAccountKey:
    email: str
    key_id: str
    private_pem: str = field(repr=False)
    public: rsa.RSAPublicKey = field(repr=False)


@dataclass
class Identity:
    project: str
    pool_audience: str  # //iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/providers/<p>
    subject_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    token_lifetime: int = 3600
    keys: dict[str, ServiceAccountKey] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)  # token -> (principal, expiry)

    def new_key(self, account: str) -> ServiceAccountKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        key = ServiceAccountKey(f"{account}@{self.project}.iam.gserviceaccount.com", secrets.token_hex(20), pem,
                                private.public_key())
        self.keys[key.key_id] = key
        return key

    def key_file(self, key: ServiceAccountKey, token_uri: str) -> dict[str, Any]:
        """The JSON key file Google hands out for a service account, with its token URI pointed here."""
        return {"type": "service_account", "project_id": self.project, "private_key_id": key.key_id,
                "private_key": key.private_pem, "client_email": key.email, "client_id": "1" + key.key_id[:20],
                "token_uri": token_uri}

    def _issue(self, principal: str) -> dict[str, Any]:
        token = "ya29.sim-" + secrets.token_urlsafe(24)
        self.tokens[token] = (principal, time.time() + self.token_lifetime)
        return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def _verified(self, token: str) -> tuple[ServiceAccountKey, dict[str, Any]]:
        """The key that signed a JWT and its claims; a GoogleError when no registered key did."""
        parts = token.split(".")
        if len(parts) != 3:
            raise GoogleError(400, "invalid_grant", "Invalid JWT: not three parts")
        header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
        key = self.keys.get(header.get("kid", ""))
        if key is None or header.get("alg") != "RS256":
            raise GoogleError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            key.public.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as error:
            raise GoogleError(400, "invalid_grant", "Invalid JWT Signature.") from error
        return key, claims

    def jwt_bearer(self, assertion: str, token_uri: str) -> dict[str, Any]:
        key, claims = self._verified(assertion)
        # google-auth always addresses the assertion to Google's token endpoint, whichever URI it posts it to.
        if claims.get("iss") != key.email or claims.get("aud") not in (token_uri, GOOGLE_TOKEN_ENDPOINT):
            raise GoogleError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        if int(claims.get("exp", 0)) < time.time():
            raise GoogleError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in "
                                                    "a reasonable timeframe.")
        return self._issue(key.email)

    def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != TOKEN_EXCHANGE:
            raise GoogleError(400, "invalid_request", f"Invalid value for \"grant_type\": {form.get('grant_type')}")
        if form.get("audience") != self.pool_audience:
            raise GoogleError(400, "invalid_target", "The target service indicated by the \"audience\" parameters is "
                                                     "invalid. This might either be because the pool or provider is "
                                                     "disabled or deleted or because it doesn't exist.")
        if form.get("subject_token") != self.subject_token:
            raise GoogleError(400, "invalid_grant", "The audience in ID Token does not match the expected audience.")
        return {**self._issue("principal://federated/mcp-operator"),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}

    def principal(self, authorization: str | None) -> str:
        if not authorization:
            raise GoogleError(401, "UNAUTHENTICATED", "Request is missing required authentication credential. Expected "
                                                      "OAuth 2 access token, login cookie or other valid authentication "
                                                      "credential.")
        token = authorization.removeprefix("Bearer ").strip()
        if token.count(".") == 2:
            return self._self_signed(token)
        found = self.tokens.get(token)
        if found is None or found[1] < time.time():
            raise GoogleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 "
                                                      "access token, login cookie or other valid authentication credential.")
        return found[0]

    def _self_signed(self, token: str) -> str:
        """A service account's self-signed JWT, which Google's APIs accept in place of an access token (google-auth
        sends one when a client allows it): signed by the account's key, for an API audience or scope, unexpired."""
        try:
            key, claims = self._verified(token)
        except (GoogleError, ValueError) as error:
            raise GoogleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials: the JWT is not "
                                                      "signed by a key of a known service account.") from error
        if claims.get("iss") != key.email or not (claims.get("aud") or claims.get("scope")) or \
                int(claims.get("exp", 0)) < time.time():
            raise GoogleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials: the JWT's issuer, "
                                                      "audience or expiry is wrong.")
        return key.email
