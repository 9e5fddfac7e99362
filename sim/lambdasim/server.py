"""The HTTPS front of the AWS simulator: Lambda (rest-json), CloudWatch Logs (json), IAM and STS (query),
the S3 object reads Lambda makes, and the test controls.

Request pipeline, in the order AWS applies it: which service (the SigV4 credential scope) -> signature ->
throttling (per account and region, Lambda's control-plane quotas) -> parameters parsed and checked against
botocore's model -> the operation -> the answer, checked against the model too. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web
from botocore.model import OperationModel

from simcore.buckets import TokenBuckets
from simcore.controls import common_control
from simcore.faults import RecordedRequest, drop
from simcore.front import SimulatorFront

from . import model, sigv4
from .world import LATEST, AwsError, Failure, Key, World

JSON = dict[str, Any]
LAMBDA_OPERATIONS = (
    "CreateFunction", "GetFunction", "GetFunctionConfiguration", "UpdateFunctionCode", "UpdateFunctionConfiguration",
    "PublishVersion", "ListVersionsByFunction", "CreateAlias", "GetAlias", "UpdateAlias", "DeleteAlias", "ListAliases",
    "DeleteFunction", "CreateFunctionUrlConfig", "GetFunctionUrlConfig", "UpdateFunctionUrlConfig", "DeleteFunctionUrlConfig",
    "ListFunctionUrlConfigs", "AddPermission", "GetPolicy", "RemovePermission", "TagResource", "ListTags", "UntagResource",
    "PutFunctionConcurrency", "DeleteFunctionConcurrency", "PutProvisionedConcurrencyConfig", "GetProvisionedConcurrencyConfig",
    "DeleteProvisionedConcurrencyConfig",
)
# Lambda's control-plane quotas per account and region (requests per second; not raisable).
QUOTAS = {"GetFunction": (100.0, 100.0), "GetPolicy": (15.0, 15.0), "control": (15.0, 15.0)}


@dataclass
class AwsSimulatorConfig:
    account: str = "123456789012"
    region: str = "us-east-1"
    access_key: str = "AKIASIMULATOR0000001"
    secret_key: str = "sim-secret-access-key"  # noqa: S105 - the simulator's own test credential
    web_identity_role: str = "mcp-operator"
    web_identity_token: str = "sim-web-identity-token"  # noqa: S105
    throttling: bool = False
    latency: dict[str, float] = field(default_factory=dict)


Handler = Callable[[JSON, str], Awaitable[JSON]]


class AwsSimulator(SimulatorFront):
    world: World
    workdir_prefix = "awssim-"
    max_body = 80 * 1024 * 1024

    def __init__(self, config: AwsSimulatorConfig | None = None, workdir: Path | None = None):
        super().__init__(workdir)
        self.config = config or AwsSimulatorConfig()
        self.world = World(self.config.account)
        self.world.schedule.latency.update(self.config.latency)
        self.world.keys[self.config.access_key] = Key(self.config.secret_key, self.config.account)
        self.world.web_identity_tokens.add(self.config.web_identity_token)
        self.world.create_role(self.config.web_identity_role, '{"Statement":[{"Action":"sts:AssumeRoleWithWebIdentity"}]}', [])
        self.throttle = TokenBuckets(dict(QUOTAS), enabled=self.config.throttling)
        self._lambda_routes = model.routes("lambda", LAMBDA_OPERATIONS)

    # ----- lifecycle ----------------------------------------------------------------------------
    def info(self) -> JSON:
        return {"endpoint": self.endpoint, "caBundle": str(self.certs.ca_file) if self.certs else None,
                "account": self.config.account, "region": self.config.region, "accessKeyId": self.config.access_key,
                "secretAccessKey": self.config.secret_key,
                "webIdentityRoleArn": f"arn:aws:iam::{self.config.account}:role/{self.config.web_identity_role}",
                "webIdentityToken": self.config.web_identity_token, "controls": self.endpoint + "/_sim",
                "ingress": f"127.0.0.1:{self.ingress.port}" if self.ingress else None}

    # ----- controls ---------------------------------------------------------------------------------
    async def _controls(self, request: web.Request) -> web.StreamResponse:
        if request.method == "PUT" and request.path.startswith("/_sim/objects/"):  # an S3 object, as its bytes
            bucket, _, key = request.path[len("/_sim/objects/"):].partition("/")
            self.world.objects[(bucket, key)] = await request.read()
            return web.json_response({})
        body: Any = await request.json() if request.can_read_body else {}
        common = common_control(self, request.method, request.path, request.query, body)
        if common is not None:
            return common
        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/_sim/failures"):
            self.world.failures.append(Failure(body["contains"], body.get("message", Failure.message),
                                               body.get("code", Failure.code)))
            return web.json_response({})
        return web.json_response({"error": f"no control {request.method} {request.path}"}, status=404)

    # ----- dispatch -----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_sim"):
            return await self._controls(request)
        started = time.monotonic()
        body = await request.read()
        scope = sigv4.scope_of(request.headers)
        service = scope.service if scope else "sts"
        klass = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(request.method, "writes")
        record = RecordedRequest(started, request.method, request.path, "Unknown", klass, 0, self.config.account)
        self.requests.append(record)
        self.world.settle()
        try:
            operation, params, answer = self._operation(service, request, body)
        except AwsError as error:
            return self._finish(record, self._error(service, error), started)
        record.operation = f"{service}:{operation.name}" if operation else service
        fault = self.faults.take(request.method, request.path, record.operation)
        if fault and fault.action == "drop" and fault.when == "before":
            return drop(request, record)
        try:
            if scope is not None or operation is None or operation.name != "AssumeRoleWithWebIdentity":
                self._authenticate(request, body, scope)
            if service == "lambda" and scope is not None:
                self._throttle(scope.region, operation.name if operation else "")
            if self.world.schedule.latency.get("request"):
                await asyncio.sleep(self.world.schedule.latency["request"])
            if fault and fault.action == "status":
                raise AwsError(fault.status, fault.code, fault.message,
                               {"retryAfterSeconds": str(fault.retry_after)} if fault.retry_after else None)
            if operation is not None and operation.input_shape is not None:
                found = model.problems(operation.input_shape, params)
                if found:
                    raise AwsError(400, "ValidationException" if service != "lambda" else "InvalidParameterValueException",
                                   "; ".join(found[:5]))
            response = await answer(params, scope.region if scope else self.config.region)
        except AwsError as error:
            response = self._error(service, error)
        if fault and fault.action == "drop" and fault.when == "after":
            return drop(request, record)
        return self._finish(record, response, started)

    @staticmethod
    def _finish(record: RecordedRequest, response: web.StreamResponse, started: float) -> web.StreamResponse:
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        record.status = response.status
        record.seconds = time.monotonic() - started
        return response

    def _operation(self, service: str, request: web.Request, body: bytes) -> tuple[
            OperationModel | None, JSON, Callable[[JSON, str], Awaitable[web.StreamResponse]]]:
        if service == "lambda":
            for method, pattern, operation in self._lambda_routes:
                found = pattern.match(request.raw_path.split("?", 1)[0])
                if found and method == request.method:
                    uri = {k: unquote(v) for k, v in found.groupdict().items()}
                    params = model.parse_rest_json(operation, uri, request.query, request.headers, body)
                    return operation, params, self._lambda_answer(operation)
            raise AwsError(404, "UnknownOperationException", f"Unknown operation {request.method} {request.path}")
        if service == "logs":
            name = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
            operation = model.service("logs").operation_model(name) if name == "FilterLogEvents" else None
            if operation is None:
                raise AwsError(400, "UnknownOperationException", f"Unknown operation {name}")
            return operation, json.loads(body or b"{}"), self._logs_answer(operation)
        if service in ("iam", "sts"):
            form = dict(parse_qsl(body.decode()))
            action = form.get("Action", "")
            names = {"iam": ("CreateRole", "GetRole", "DeleteRole", "AttachRolePolicy", "DetachRolePolicy",
                             "ListAttachedRolePolicies"), "sts": ("AssumeRoleWithWebIdentity", "GetCallerIdentity")}[service]
            if action not in names:
                raise AwsError(400, "InvalidAction", f"Could not find operation {action} for version {form.get('Version')}")
            operation = model.service(service).operation_model(action)
            return operation, model.parse_query(operation.input_shape, form), self._query_answer(service, operation)
        if service == "s3":
            return None, {}, self._s3_answer(request)
        raise AwsError(400, "UnknownService", f"The simulator does not serve {service}")

    def _authenticate(self, request: web.Request, body: bytes, scope: sigv4.Scope | None) -> None:
        if scope is None:
            raise AwsError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        key = self.world.keys.get(scope.access_key)
        if key is None or (key.expires is not None and key.expires < time.time()):
            raise AwsError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        url = f"https://{request.host}{request.raw_path}"
        try:
            sigv4.verify(request.method, url, request.headers, body, key.secret, key.session_token)
        except sigv4.SignatureError as error:
            raise AwsError(403, error.code, error.message) from error

    def _throttle(self, region: str, operation: str) -> None:
        klass = operation if operation in QUOTAS else "control"
        allowed, _, retry_after = self.throttle.take(f"{self.config.account}:{region}", klass)
        if not allowed:
            raise AwsError(429, "TooManyRequestsException", "Rate exceeded",
                           {"retryAfterSeconds": str(retry_after), "Reason": "CallerRateLimitExceeded"})

    def _error(self, service: str, error: AwsError) -> web.Response:
        if service in ("iam", "sts"):
            kind = "Sender" if error.status < 500 else "Receiver"
            text = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{error.code}</Code><Message>{error.message}</Message>"
                    f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
            return web.Response(status=error.status, text=text, content_type="text/xml")
        if service == "logs":
            return web.json_response({"__type": error.code, "message": error.message}, status=error.status)
        headers = {"x-amzn-ErrorType": error.code}
        if "retryAfterSeconds" in error.extra:
            headers["Retry-After"] = error.extra["retryAfterSeconds"]
        kind = "User" if error.status < 500 else "Service"
        return web.json_response({"Type": kind, "message": error.message, **error.extra}, status=error.status, headers=headers)

    # ----- Lambda -------------------------------------------------------------------------------------
    def _lambda_answer(self, operation: OperationModel) -> Callable[[JSON, str], Awaitable[web.StreamResponse]]:
        async def answer(params: JSON, region: str) -> web.StreamResponse:
            result = self._lambda(operation.name, params, region)
            status, headers, payload = model.rest_json_answer(operation, result)
            return web.Response(status=status, headers=headers, body=payload)
        return answer

    def _lambda(self, name: str, p: JSON, region: str) -> JSON:
        w = self.world
        if name == "CreateFunction":
            return w.configuration(w.create_function(region, p))
        if name == "TagResource" or name == "ListTags" or name == "UntagResource":
            function = w.function(region, p["Resource"].split(":function:", 1)[-1])
            if name == "TagResource":
                function.tags.update(p["Tags"])
            elif name == "UntagResource":
                for key in p["TagKeys"]:
                    function.tags.pop(key, None)
            return {"Tags": dict(function.tags)} if name == "ListTags" else {}
        function = w.function(region, p["FunctionName"])
        qualifier = p.get("Qualifier")
        if name == "GetFunction":
            concurrency = {"ReservedConcurrentExecutions": function.reserved} if function.reserved is not None else None
            return {"Configuration": w.configuration(function, qualifier), "Code": w.code_location(function),
                    "Tags": dict(function.tags) or None, "Concurrency": concurrency}
        if name == "PutFunctionConcurrency":
            w.put_reserved(function, p["ReservedConcurrentExecutions"])
            return {"ReservedConcurrentExecutions": function.reserved}
        if name == "DeleteFunctionConcurrency":
            function.reserved = None
            return {}
        if name == "PutProvisionedConcurrencyConfig":
            return w.provisioned_body(w.put_provisioned(function, p["Qualifier"], p["ProvisionedConcurrentExecutions"]))
        if name == "GetProvisionedConcurrencyConfig":
            return w.provisioned_body(w.provisioned(function, p["Qualifier"]))
        if name == "DeleteProvisionedConcurrencyConfig":
            function.provisioned.pop(p["Qualifier"], None)
            return {}
        if name == "GetFunctionConfiguration":
            return w.configuration(function, qualifier)
        if name == "UpdateFunctionConfiguration":
            w.update_configuration(function, p)
            return w.configuration(function)
        if name == "UpdateFunctionCode":
            w.update_code(function, p)
            return w.configuration(function)
        if name == "PublishVersion":
            return w.configuration(function, str(w.publish(function, p).number))
        if name == "ListVersionsByFunction":
            versions = [w.configuration(function)] + [w.configuration(function, str(n)) for n in sorted(function.versions)]
            return {"Versions": versions}
        if name in ("CreateAlias", "UpdateAlias"):
            alias = (w.create_alias if name == "CreateAlias" else w.update_alias)(function, p)
            return w.alias_body(function, alias)
        if name == "GetAlias":
            return w.alias_body(function, w.alias(function, p["Name"]))
        if name == "DeleteAlias":
            w.delete_alias(function, p["Name"])
            return {}
        if name == "ListAliases":
            return {"Aliases": [w.alias_body(function, a) for a in function.aliases.values()]}
        if name == "DeleteFunction":
            w.delete_function(function, qualifier)
            return {}
        if name == "CreateFunctionUrlConfig":
            created = w.url_body(function, w.create_url(function, p), created=True)
            return {k: v for k, v in created.items() if k != "LastModifiedTime"}
        if name == "GetFunctionUrlConfig":
            return w.url_body(function, w.url(function, qualifier))
        if name == "UpdateFunctionUrlConfig":
            return w.url_body(function, w.update_url(function, p))
        if name == "DeleteFunctionUrlConfig":
            w.url(function, qualifier)
            function.urls.pop(qualifier or LATEST, None)
            return {}
        if name == "ListFunctionUrlConfigs":
            return {"FunctionUrlConfigs": [w.url_body(function, u) for u in function.urls.values()]}
        if name == "AddPermission":
            return {"Statement": json.dumps(w.add_permission(function, p))}
        if name == "GetPolicy":
            return {"Policy": json.dumps(w.policy(function, qualifier)), "RevisionId": function.revision_id}
        if name == "RemovePermission":
            w.remove_permission(function, p["StatementId"], qualifier)
            return {}
        raise AwsError(404, "UnknownOperationException", name)

    # ----- CloudWatch Logs ------------------------------------------------------------------------------
    def _logs_answer(self, operation: OperationModel) -> Callable[[JSON, str], Awaitable[web.StreamResponse]]:
        async def answer(p: JSON, region: str) -> web.StreamResponse:
            events = self.world.log_events(p.get("logGroupName", ""), p.get("logStreamNamePrefix"), p.get("startTime"),
                                           p.get("endTime"), p.get("filterPattern"))
            result = {"events": events, "searchedLogStreams": []}
            model.check_output(operation, result)
            return web.json_response(result, content_type="application/x-amz-json-1.1")
        return answer

    # ----- IAM and STS ------------------------------------------------------------------------------------
    def _query_answer(self, service: str, operation: OperationModel) -> Callable[[JSON, str], Awaitable[web.StreamResponse]]:
        async def answer(p: JSON, region: str) -> web.StreamResponse:
            result = self._iam(operation.name, p)
            return web.Response(body=model.query_answer(service, operation, result, str(uuid.uuid4())), content_type="text/xml")
        return answer

    def _iam(self, name: str, p: JSON) -> JSON:
        w = self.world
        if name == "AssumeRoleWithWebIdentity":
            credentials = w.assume_role_with_web_identity(p["RoleArn"], p["WebIdentityToken"], int(p.get("DurationSeconds", 3600)))
            return {"Credentials": credentials, "SubjectFromWebIdentityToken": "system:serviceaccount:mcp-system:mcp-operator",
                    "AssumedRoleUser": {"AssumedRoleId": f"AROA:{p['RoleSessionName']}", "Arn": p["RoleArn"]}}
        if name == "GetCallerIdentity":
            return {"Account": w.account, "Arn": f"arn:aws:iam::{w.account}:user/simulator", "UserId": "AIDASIMULATOR"}
        if name == "CreateRole":
            return {"Role": w.role_body(w.create_role(p["RoleName"], p["AssumeRolePolicyDocument"], p.get("Tags") or []))}
        if name == "GetRole":
            return {"Role": w.role_body(w.role(p["RoleName"]))}
        if name == "DeleteRole":
            w.delete_role(p["RoleName"])
            return {}
        role = w.role(p["RoleName"])
        if name == "AttachRolePolicy":
            if p["PolicyArn"] not in role.policies:
                role.policies.append(p["PolicyArn"])
            return {}
        if name == "DetachRolePolicy":
            if p["PolicyArn"] not in role.policies:
                raise AwsError(404, "NoSuchEntity", f"Policy {p['PolicyArn']} was not found.")
            role.policies.remove(p["PolicyArn"])
            return {}
        return {"AttachedPolicies": [{"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn} for arn in role.policies],
                "IsTruncated": False}

    # ----- S3 (the objects CreateFunction reads; GET and HEAD) ------------------------------------------------
    def _s3_answer(self, request: web.Request) -> Callable[[JSON, str], Awaitable[web.StreamResponse]]:
        async def answer(_p: JSON, _region: str) -> web.StreamResponse:
            bucket, _, key = request.path.lstrip("/").partition("/")
            body = self.world.objects.get((bucket, key))
            if body is None or request.method not in ("GET", "HEAD"):
                return web.Response(status=404, content_type="application/xml", text=(
                    "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"))
            return web.Response(body=body if request.method == "GET" else None, content_type="application/zip",
                                headers={"ETag": f'"{abs(hash(body)):x}"', "Content-Length": str(len(body))})
        return answer
