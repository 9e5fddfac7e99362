"""The Lambda target: the Target interface over aiobotocore (asyncio-native botocore).

A revision is a published version; traffic is the alias ``live`` and its function URL; the newest version
also gets the alias ``candidate`` with a URL of its own, where the MCP check reaches it before traffic moves.
Every call is one request: Lambda's state machine (Pending, InProgress) is followed by looking again on
later passes, never by the SDK's waiters, so no worker is held while Lambda works.

Retries of single requests (dropped connections, 5xx) are botocore's standard retry mode; 429s are left to
the ThrottlePacer, which shares them among every resource of the account and region and paces the waiting
ones at Lambda's documented quotas.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from ... import metrics
from ...contract import (
    CREATED_BY_TAG,
    OPERATOR_NAME,
    OWNER_TAG,
    Accepted,
    Capabilities,
    Deletion,
    Observed,
    Prepared,
    RevisionKey,
    TerminalError,
    TransientError,
)
from ...pacing import ThrottlePacer
from ...reconcile import ownership
from ...reconcile.desired import Desired
from . import bodies
from .placement import CANDIDATE_ALIAS, LIVE_ALIAS, function_placement
from .settings import AwsSettings

log = logging.getLogger(__name__)
TARGET_LABEL = "aws-lambda"
# Lambda's control-plane quotas per account and region: GetFunction 100/s, GetPolicy 15/s, all others together 15/s.
QUOTAS = {"GetFunction": 100.0, "GetPolicy": 15.0, "control": 15.0}
ALIAS_DESCRIPTIONS = {LIVE_ALIAS: "receives the traffic (mcp-operator)",
                      CANDIDATE_ALIAS: "the newest version, for the MCP check before traffic moves (mcp-operator)"}
SEEN_FOR = 2.0  # seconds an observe's reads stand in for fresh ones (RevisionId preconditions catch what changed)
BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
TRUST_POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},'
                '"Action":"sts:AssumeRole"}]}')
_CREDENTIAL_OPERATIONS = ("AssumeRoleWithWebIdentity", "AssumeRole", "GetCallerIdentity")
_CREDENTIAL_CODES = ("UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId", "ExpiredToken",
                     "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidIdentityToken", "MissingAuthenticationTokenException")


def classify(error: Exception) -> Exception:
    """Maps an SDK error to TransientError (retry as is) or TerminalError (needs a change)."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return TerminalError("CredentialsInvalid", "no AWS credentials: give the operator a web identity (IRSA / EKS Pod "
                                                   "Identity) or keys, or set spec.credentials")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", str(error))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error.operation_name in _CREDENTIAL_OPERATIONS or code in _CREDENTIAL_CODES:
            return TerminalError("CredentialsInvalid", f"AWS refused the credentials ({code}): {message}. Check the "
                                                       "operator's web identity role or the spec.credentials Secret.")
        if status == 429 or code in ("TooManyRequestsException", "ThrottlingException"):
            retry = error.response.get("retryAfterSeconds") or error.response.get("ResponseMetadata", {}).get(
                "HTTPHeaders", {}).get("retry-after")
            return TransientError("Throttled", f"{code}: {message}", float(retry) if retry else None)
        if code == "ResourceConflictException" and "in progress" in message:
            return TransientError("OperationInProgress", f"{code}: {message}")
        if code == "PreconditionFailedException":
            return TransientError("ConcurrentChange", f"the function changed meanwhile, reading it again: {message}")
        if status >= 500:
            return TransientError("CloudServerError", f"{code}: {message}")
        if "cannot be assumed by Lambda" in message:
            return TransientError("RoleNotAssumable", f"{message} (a new role takes seconds to be usable; a role that "
                                                      "does not trust lambda.amazonaws.com never is)")
        if status in (401, 403) or code == "AccessDeniedException":
            return TerminalError("AuthorizationFailed", f"AWS refused the request ({code}): {message}. The identity needs "
                                                        "the Lambda actions, iam:PassRole on the execution role, and IAM "
                                                        "role actions when the operator creates the role.")
        return TerminalError(code, message)
    if isinstance(error, BotoCoreError | aiohttp.ClientError | asyncio.TimeoutError | OSError):
        metrics.count_cloud_connection_error(TARGET_LABEL)
        return TransientError("ConnectionError", f"connection to AWS failed: {error}")
    return error


def _not_found(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
        "ResourceNotFoundException", "NoSuchEntity", "NoSuchKey", "404", "ProvisionedConcurrencyConfigNotFoundException")


def _leave_throttling_to_the_pacer(response: Any = None, **_: Any) -> bool | None:
    """A needs-retry handler run before botocore's own: a 429 is not retried here (False ends the retries)."""
    if response is not None and response[0] is not None and response[0].status_code == 429:
        return False
    return None


@dataclasses.dataclass
class _Seen:
    """What the last observe of a function read, for the create or route that follows it in the same pass."""

    at: float
    function: dict[str, Any]
    versions: list[dict[str, Any]]
    aliases: dict[str, dict[str, Any]]
    urls: dict[str, dict[str, Any]]
    policies: dict[str, str | None] = dataclasses.field(default_factory=dict)  # alias -> its resource policy, where read
    provisioned: dict[str, Any] | None = None  # the live alias's provisioned concurrency, where looked for


class LambdaTarget:
    capabilities = Capabilities(cloud_named_revisions=False, max_traffic_split=2, idle_revisions_cost=False,
                                deletes_beyond_history=True)

    def __init__(self, settings: AwsSettings, region: str, keys: Mapping[str, str] | None, where: str = ""):
        self.settings, self.region = settings, region
        self.session = AioSession()
        self.session.set_config_variable("region", region)
        if settings.ca_bundle:  # also for the STS client the web-identity provider builds itself
            self.session.set_config_variable("ca_bundle", settings.ca_bundle)
        if keys is not None:
            if not keys.get("AWS_ACCESS_KEY_ID") or not keys.get("AWS_SECRET_ACCESS_KEY"):
                raise TerminalError("CredentialsInvalid", f"Secret {where} must hold AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            self.session.set_credentials(keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"], keys.get("AWS_SESSION_TOKEN"))
        self.pacer = ThrottlePacer(QUOTAS)
        self.throttle_patience = 120.0
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._client_lock = asyncio.Lock()
        self._ready_roles: set[str] = set()
        self._role_arns: dict[str, str] = {}
        self._zip_digests: dict[tuple[str, str, str], str] = {}  # (bucket, key, ETag) -> base64 SHA-256
        # Lambda's 15 control-plane requests per second are shared by every function of the region: the reads of
        # an observe serve the write that follows in the same pass, until any write to that function.
        self._seen: dict[str, _Seen] = {}

    async def close(self) -> None:
        await self._stack.aclose()
        self._clients.clear()

    async def _client(self, service: str) -> Any:
        if service not in self._clients:
            async with self._client_lock:
                if service not in self._clients:
                    config = AioConfig(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=30,
                                       max_pool_connections=self.settings.connections,
                                       s3={"addressing_style": "path"})
                    client = await self._stack.enter_async_context(self.session.create_client(
                        service, region_name=self.region, verify=self.settings.ca_bundle or True, config=config))
                    client.meta.events.register_first(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}",
                                                      _leave_throttling_to_the_pacer)
                    self._clients[service] = client
        return self._clients[service]

    async def _call(self, service: str, operation: str, **params: Any) -> Any:
        """One request, paced while Lambda throttles, counted, its errors classified."""
        client = await self._client(service)
        klass = (operation if operation in QUOTAS else "control") if service == "lambda" else None
        method = client.meta.service_model.operation_model(operation).http.get("method", "POST")
        if service == "lambda" and method != "GET":
            self._seen.pop(params.get("FunctionName", ""), None)
        deadline = time.monotonic() + self.throttle_patience
        while True:
            if klass:
                await self.pacer.admit(klass)
            try:
                result = await getattr(client, xform_name(operation))(**params)
                metrics.count_cloud_response(TARGET_LABEL, method, 200)
                return result
            except ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                metrics.count_cloud_response(TARGET_LABEL, method, status)
                classified = classify(error)
                if klass and isinstance(classified, TransientError) and classified.reason == "Throttled":
                    wait = classified.retry_after or 1.0
                    self.pacer.throttled(klass, wait)
                    if time.monotonic() + wait < deadline:
                        continue
                raise classified from error
            except (TimeoutError, BotoCoreError, aiohttp.ClientError, OSError) as error:
                raise classify(error) from error

    async def _maybe(self, service: str, operation: str, **params: Any) -> Any:
        """The call's answer, or None when what it asks for does not exist."""
        try:
            return await self._call(service, operation, **params)
        except TerminalError as error:
            if error.__cause__ is not None and _not_found(error.__cause__):
                return None
            raise

    def revision_id(self, desired: Desired, key: RevisionKey) -> str | None:
        return None  # Lambda numbers versions itself

    # ----- reading ------------------------------------------------------------------------------------------
    async def observe(self, desired: Desired, detailed: bool = True) -> Observed:
        name = function_placement(desired).function_name
        self._seen.pop(name, None)
        function = await self._maybe("lambda", "GetFunction", FunctionName=name)
        if function is None:
            return Observed(exists=False)
        shallow = bodies.shallow(desired, function)
        if ownership.claim(shallow, desired.owner) is not ownership.Claim.OURS:
            return shallow  # not ours (yet): its versions are none of our business
        busy = bodies.busy(desired, function)
        if busy is not None:  # nothing can be done until Lambda finishes: the function alone says so
            return dataclasses.replace(shallow, busy=busy)
        seen = await self._read(name, function)
        where = function_placement(desired)
        if LIVE_ALIAS in seen.urls and where.url_auth_type == "NONE":
            await self._policy(seen, LIVE_ALIAS)
        if LIVE_ALIAS in seen.aliases and (where.provisioned_concurrency or where.provisioned_recorded):
            # Looked for only when asked for (or once was): one control-plane read that most functions need not pay.
            seen.provisioned = await self._maybe("lambda", "GetProvisionedConcurrencyConfig", FunctionName=name,
                                                 Qualifier=LIVE_ALIAS)
        self._seen[name] = seen
        return bodies.observed_from(desired, function, seen.versions, seen.aliases, seen.urls, seen.policies.get(LIVE_ALIAS),
                                    seen.provisioned)

    async def _read(self, name: str, function: dict[str, Any]) -> _Seen:
        versions = await self._versions(name)
        aliases = {a["Name"]: a for a in (await self._call("lambda", "ListAliases", FunctionName=name))["Aliases"]}
        return _Seen(time.monotonic(), function, versions, aliases, await self._urls(name))

    async def _snapshot(self, name: str) -> _Seen | None:
        """What a write starts from: the reads of this pass's observe when nothing was written since, else fresh
        ones. The writes that follow keep it up to date themselves. None: the function does not exist."""
        seen = self._seen.pop(name, None)
        if seen is not None and time.monotonic() - seen.at < SEEN_FOR:
            return seen
        function = await self._maybe("lambda", "GetFunction", FunctionName=name)
        return await self._read(name, function) if function is not None else None

    async def _policy(self, seen: _Seen, alias: str) -> str | None:
        """An alias's resource policy (read once per snapshot)."""
        if alias not in seen.policies:
            found = await self._maybe("lambda", "GetPolicy", FunctionName=seen.function["Configuration"]["FunctionName"],
                                      Qualifier=alias)
            seen.policies[alias] = str(found["Policy"]) if found else None
        return seen.policies[alias]

    async def _versions(self, name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            page = await self._call("lambda", "ListVersionsByFunction", FunctionName=name,
                                    **({"Marker": marker} if marker else {}))
            found += [v for v in page["Versions"] if v["Version"] != bodies.LATEST]
            marker = page.get("NextMarker")
            if not marker:
                return found

    async def _urls(self, name: str) -> dict[str, dict[str, Any]]:
        page = await self._call("lambda", "ListFunctionUrlConfigs", FunctionName=name)
        return {config["FunctionArn"].rsplit(":", 1)[-1]: config for config in page["FunctionUrlConfigs"]
                if config["FunctionArn"].count(":") == 7}

    # ----- infrastructure: the execution role ---------------------------------------------------------------
    async def prepare(self, desired: Desired) -> Prepared:
        where = function_placement(desired)
        if where.role_arn or where.role_name in self._ready_roles:
            return Prepared(True)
        role = await self._maybe("iam", "GetRole", RoleName=where.role_name)
        created: tuple[str, ...] = ()
        if role is None:
            tags = [{"Key": k, "Value": v} for k, v in bodies.tags(desired).items()]
            role = await self._call("iam", "CreateRole", RoleName=where.role_name, AssumeRolePolicyDocument=TRUST_POLICY,
                                    Tags=tags, Description=f"Execution role of Lambda function {where.function_name} "
                                                          "(mcp-operator)")
            created = (f"role/{where.role_name}",)
        elif {t["Key"]: t["Value"] for t in role["Role"].get("Tags", [])}.get(OWNER_TAG) != desired.owner:
            raise TerminalError("RoleNotOurs", f"IAM role {where.role_name} exists and was not created by this "
                                               "McpDeployment: set spec.aws.executionRoleArn to use it, or delete it")
        attached = await self._call("iam", "ListAttachedRolePolicies", RoleName=where.role_name)
        if not any(p["PolicyArn"] == BASIC_EXECUTION_POLICY for p in attached["AttachedPolicies"]):
            await self._call("iam", "AttachRolePolicy", RoleName=where.role_name, PolicyArn=BASIC_EXECUTION_POLICY)
        self._ready_roles.add(where.role_name)
        self._role_arns[where.role_name] = str(role["Role"]["Arn"])  # what the first CreateFunction needs: no GetRole
        return Prepared(True, created_infrastructure=created)

    async def _role_arn(self, desired: Desired) -> str:
        where = function_placement(desired)
        if where.role_arn:
            return where.role_arn
        if where.role_name not in self._role_arns:
            role = await self._call("iam", "GetRole", RoleName=where.role_name)
            self._role_arns[where.role_name] = str(role["Role"]["Arn"])
        return self._role_arns[where.role_name]

    # ----- writing ----------------------------------------------------------------------------------------
    async def create_revision(self, desired: Desired, secrets: Mapping[str, str], key: RevisionKey,
                              serving: str | None) -> Accepted:
        """One step towards version ``key`` behind the candidate alias; called again until it is there.

        create -> (Active) configuration -> (Successful) code -> (Successful) publish -> candidate alias and URL
        (the live alias for the first version, when nothing serves).
        Each step is taken only when the one before shows in Lambda, so a repeated call repeats nothing."""
        where = function_placement(desired)
        wait = Accepted(retry_after=min(self.settings.poll_interval, 2.0))
        seen = await self._snapshot(where.function_name)
        if seen is None:
            role = await self._role_arn(desired)
            await self._call("lambda", "CreateFunction", **bodies.create_function(desired, secrets, key, role))
            if where.reserved_concurrency is not None:
                await self._call("lambda", "PutFunctionConcurrency", FunctionName=where.function_name,
                                 ReservedConcurrentExecutions=where.reserved_concurrency)
            return wait
        function, versions = seen.function, seen.versions
        latest = function["Configuration"]
        version = next((v["Version"] for v in versions if bodies.is_key(v.get("Description"), key)), None)
        if version is None:
            if latest.get("State") == "Failed" and not versions:
                # A function that never started cannot be updated into one that does: Lambda's remedy is a new one.
                await self._call("lambda", "DeleteFunction", FunctionName=where.function_name)
                return wait
            if bodies.busy(desired, function):
                return wait
            if not bodies.is_key(latest.get("Description"), key):
                await self._call("lambda", "UpdateFunctionConfiguration", FunctionName=where.function_name,
                                 RevisionId=latest["RevisionId"],
                                 **bodies.configuration(desired, secrets, key, await self._role_arn(desired)))
                return wait
            if latest.get("LastUpdateStatus") == "Failed" or latest.get("State") == "Failed":
                return wait  # observe reports this revision Failed, with Lambda's reason
            if not await self._code_is_current(desired, function):
                await self._call("lambda", "UpdateFunctionCode", FunctionName=where.function_name,
                                 RevisionId=latest["RevisionId"], Architectures=[where.architecture], **bodies.code(where))
                return wait
            published = await self._call("lambda", "PublishVersion", FunctionName=where.function_name,
                                         CodeSha256=latest["CodeSha256"], RevisionId=latest["RevisionId"],
                                         Description=bodies.marker(key))
            version = published["Version"]
        if serving is None and LIVE_ALIAS not in seen.aliases:
            # Nothing serves yet: the first version takes the traffic at once, and its check runs on the live URL,
            # which reaches it alone (the candidate alias, four writes, waits for the first update).
            await self._point(desired, seen, LIVE_ALIAS, str(version), {})
        else:
            await self._point(desired, seen, CANDIDATE_ALIAS, str(version), {})
        return wait

    async def _code_is_current(self, desired: Desired, function: Mapping[str, Any]) -> bool:
        where = function_placement(desired)
        latest = function["Configuration"]
        if latest.get("Architectures", ["x86_64"]) != [where.architecture]:
            return False
        if where.image is not None:
            return bool(function.get("Code", {}).get("ImageUri") == where.image)
        return bool(latest.get("CodeSha256") == await self._zip_digest(desired))

    async def _zip_digest(self, desired: Desired) -> str:
        """Lambda's CodeSha256 (base64) of the zip: from spec.aws.s3.sha256, else by reading the object once."""
        where = function_placement(desired)
        if where.sha256:
            return base64.b64encode(bytes.fromhex(where.sha256)).decode()
        head = await self._call("s3", "HeadObject", Bucket=where.s3_bucket, Key=where.s3_key)
        cache_key = (str(where.s3_bucket), str(where.s3_key), str(head.get("ETag")))
        if cache_key not in self._zip_digests:
            found = await self._call("s3", "GetObject", Bucket=where.s3_bucket, Key=where.s3_key)
            digest = hashlib.sha256()
            async with found["Body"] as stream:
                while chunk := await stream.read(1 << 20):
                    digest.update(chunk)
            self._zip_digests[cache_key] = base64.b64encode(digest.digest()).decode()
        return self._zip_digests[cache_key]

    async def _point(self, desired: Desired, seen: _Seen, alias: str, version: str, weights: Mapping[str, float]) -> None:
        """``alias`` on ``version`` (and ``weights``), with its function URL as the spec wants it and, for NONE,
        exactly the permissions such a URL needs. Writes only what differs from ``seen``, and keeps it current."""
        name = function_placement(desired).function_name
        found = seen.aliases.get(alias)
        routing = {"AdditionalVersionWeights": dict(weights)}
        if found is None:
            seen.aliases[alias] = await self._call("lambda", "CreateAlias", FunctionName=name, Name=alias,
                                                   FunctionVersion=version, RoutingConfig=routing,
                                                   Description=ALIAS_DESCRIPTIONS[alias])
        elif found["FunctionVersion"] != version or bodies.weights(found) != dict(weights):
            seen.aliases[alias] = await self._call("lambda", "UpdateAlias", FunctionName=name, Name=alias,
                                                   FunctionVersion=version, RoutingConfig=routing,
                                                   RevisionId=found["RevisionId"])
        await self._ensure_url(desired, seen, alias)

    async def _ensure_url(self, desired: Desired, seen: _Seen, alias: str) -> None:
        where = function_placement(desired)
        want = bodies.url_config(desired)
        found = seen.urls.get(alias)
        if found is None:
            seen.urls[alias] = await self._call("lambda", "CreateFunctionUrlConfig", FunctionName=where.function_name,
                                                Qualifier=alias, **want)
        elif bodies.url_drift(desired, found):
            seen.urls[alias] = await self._call("lambda", "UpdateFunctionUrlConfig", FunctionName=where.function_name,
                                                Qualifier=alias, **want)
        missing = bodies.missing_statements(await self._policy(seen, alias))
        if where.url_auth_type == "NONE":
            for sid in missing:
                await self._call("lambda", "AddPermission", FunctionName=where.function_name, Qualifier=alias,
                                 StatementId=sid, Principal="*", **bodies.PUBLIC_STATEMENTS[sid])
        else:
            for sid in set(bodies.PUBLIC_STATEMENTS) - set(missing):
                await self._call("lambda", "RemovePermission", FunctionName=where.function_name, Qualifier=alias,
                                 StatementId=sid)
        seen.policies.pop(alias, None)

    async def route(self, desired: Desired, traffic: Mapping[str, int], revive: tuple[str, ...]) -> Accepted:
        """The live alias: the largest share as its version, at most one more by weight (Lambda's rule)."""
        seen = await self._snapshot(function_placement(desired).function_name)
        if seen is None:
            raise TransientError("FunctionMissing", f"Lambda function {function_placement(desired).function_name} is gone")
        ordered = sorted(traffic.items(), key=lambda item: -item[1])
        weights = {version: percent / 100 for version, percent in ordered[1:] if percent > 0}
        first = LIVE_ALIAS not in seen.aliases
        await self._point(desired, seen, LIVE_ALIAS, ordered[0][0], weights)
        if first:
            await self._ensure_concurrency(desired, seen)
        return Accepted()

    async def reconfigure(self, desired: Desired, secrets: Mapping[str, str], serving: str) -> Accepted:
        seen = await self._snapshot(function_placement(desired).function_name)
        if seen is not None:
            await self._ensure_url(desired, seen, LIVE_ALIAS)
            await self._ensure_concurrency(desired, seen)
        return Accepted()

    async def _ensure_concurrency(self, desired: Desired, seen: _Seen) -> None:
        """Reserved concurrency on the function, provisioned concurrency on the live alias, as the spec says."""
        where = function_placement(desired)
        name = where.function_name
        reserved = (seen.function.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        if reserved != where.reserved_concurrency:
            if where.reserved_concurrency is None:
                await self._call("lambda", "DeleteFunctionConcurrency", FunctionName=name)
            else:
                await self._call("lambda", "PutFunctionConcurrency", FunctionName=name,
                                 ReservedConcurrentExecutions=where.reserved_concurrency)
        if seen.provisioned is None and LIVE_ALIAS in seen.aliases and where.provisioned_concurrency:
            seen.provisioned = await self._maybe("lambda", "GetProvisionedConcurrencyConfig", FunctionName=name,
                                                 Qualifier=LIVE_ALIAS)
        found = seen.provisioned or {}
        if found.get("RequestedProvisionedConcurrentExecutions") == where.provisioned_concurrency and \
                found.get("Status") != "FAILED":
            return
        if where.provisioned_concurrency:
            await self._call("lambda", "PutProvisionedConcurrencyConfig", FunctionName=name, Qualifier=LIVE_ALIAS,
                             ProvisionedConcurrentExecutions=where.provisioned_concurrency)
        elif found:
            await self._call("lambda", "DeleteProvisionedConcurrencyConfig", FunctionName=name, Qualifier=LIVE_ALIAS)

    async def retire(self, desired: Desired, cloud_ids: tuple[str, ...]) -> None:
        """Deletes versions the history no longer holds (they count against the account's code storage)."""
        name = function_placement(desired).function_name
        for version in cloud_ids:
            try:
                await self._call("lambda", "DeleteFunction", FunctionName=name, Qualifier=version)
            except TerminalError as error:
                if error.reason != "ResourceConflictException":  # an alias still points at it: kept until it moves
                    raise

    # ----- deleting -------------------------------------------------------------------------------------------
    async def delete(self, desired: Desired) -> Deletion:
        """The URLs first (they stop answering at once), then the function with all its versions, then the role
        when this McpDeployment created it."""
        where = function_placement(desired)
        notes: list[str] = []
        if await self._maybe("lambda", "GetFunction", FunctionName=where.function_name) is not None:
            for alias in await self._urls(where.function_name):
                await self._call("lambda", "DeleteFunctionUrlConfig", FunctionName=where.function_name, Qualifier=alias)
            await self._call("lambda", "DeleteFunction", FunctionName=where.function_name)
            notes.append(f"deleted Lambda function {where.function_name} and its versions")
        if not where.role_arn:
            notes.append(await self._delete_role(desired))
        return Deletion(done=True, notes=tuple(notes))

    async def _delete_role(self, desired: Desired) -> str:
        name = function_placement(desired).role_name
        role = await self._maybe("iam", "GetRole", RoleName=name)
        if role is None:
            return f"IAM role {name} is gone"
        marks = {t["Key"]: t["Value"] for t in role["Role"].get("Tags", [])}
        if marks.get(CREATED_BY_TAG) != OPERATOR_NAME or marks.get(OWNER_TAG) != desired.owner:
            return f"kept IAM role {name}: not created by this McpDeployment"
        attached = await self._call("iam", "ListAttachedRolePolicies", RoleName=name)
        for policy in attached["AttachedPolicies"]:
            await self._call("iam", "DetachRolePolicy", RoleName=name, PolicyArn=policy["PolicyArn"])
        await self._call("iam", "DeleteRole", RoleName=name)
        self._ready_roles.discard(name)
        self._role_arns.pop(name, None)
        return f"deleted IAM role {name}"

    # ----- logs ---------------------------------------------------------------------------------------------
    async def logs(self, desired: Desired, revision: str | None, tail: int, follow: bool) -> AsyncIterator[str]:
        """CloudWatch Logs of the function; ``revision`` (a version number) keeps its streams only."""
        group = function_placement(desired).log_group
        since: int | None = None
        first = True
        while True:
            found = await self._call("logs", "FilterLogEvents", logGroupName=group,
                                     **({"startTime": since} if since is not None else {}))
            events = [e for e in found["events"] if not revision or f"[{revision}]" in e["logStreamName"]]
            for event in events[-tail:] if first else events:
                yield f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(event['timestamp'] / 1000))} {event['message']}"
            if events:
                since = max(e["timestamp"] for e in events) + 1
            first = False
            if not follow:
                return
            await asyncio.sleep(2.0)
