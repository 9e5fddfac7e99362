"""Signature Version 4, checked as AWS checks it: the signature is computed again from the request with the
secret key the simulator holds for the access key id, and must be equal. A wrong secret key, a stale
session token or an edited request is refused with the error codes AWS gives.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
                            r"/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})")


@dataclass(frozen=True)
class Scope:
    access_key: str
    region: str
    service: str


class SignatureError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def scope_of(headers: Mapping[str, str]) -> Scope | None:
    """Who signed and for which region and service, as the Authorization header says (None: unsigned)."""
    found = _AUTHORIZATION.match(headers.get("Authorization", ""))
    return Scope(found["key"], found["region"], found["service"]) if found else None


def verify(method: str, url: str, headers: Mapping[str, str], body: bytes, secret_key: str,
           session_token: str | None) -> None:
    """Raises SignatureError unless the request carries a valid signature made with ``secret_key``."""
    found = _AUTHORIZATION.match(headers.get("Authorization", ""))
    if not found:
        raise SignatureError("MissingAuthenticationToken", "Missing Authentication Token")
    timestamp = headers.get("X-Amz-Date", "")
    if not timestamp.startswith(found["date"]):
        raise SignatureError("InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                                          "version of date from HTTP")
    if session_token is not None and headers.get("X-Amz-Security-Token") != session_token:
        raise SignatureError("UnrecognizedClientException", "The security token included in the request is invalid.")
    signed = found["signed"].split(";")
    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: headers.get(name, "") for name in signed})
    request.context["timestamp"] = timestamp
    auth = SigV4Auth(Credentials(found["key"], secret_key, session_token), found["service"], found["region"])
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, found["signature"]):
        raise SignatureError("InvalidSignatureException",
                             "The request signature we calculated does not match the signature you provided. Check your "
                             "AWS Secret Access Key and signing method. Consult the service documentation for details.")
