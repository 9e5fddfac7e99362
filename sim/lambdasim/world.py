"""What the simulated AWS account holds, and the rules Lambda applies to it.

The state machine is Lambda's: a function is ``Pending`` until ``Active`` (or ``Failed``), an update is
``InProgress`` until ``Successful`` (or ``Failed``), and while either runs, updates and PublishVersion are
refused with 409. ``RevisionId`` changes on every change and a stale one is refused with 412. A version
is immutable and its number never reused; publishing with nothing changed returns the last version.
An alias routes to one version plus at most one more by weight; a function URL belongs to one qualifier.
Times come from the latency model (``function.create``, ``function.update``, ``version.publish``,
``role.propagate``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simcore.mcp_ingress import Backend
from simcore.schedule import Schedule

JSON = dict[str, Any]
LATEST = "$LATEST"
DEFAULT_LATENCY = {"function.create": 1.0, "function.update": 1.0, "version.publish": 0.5, "role.propagate": 0.0,
                   "provisioned.allocate": 1.0}
ACCOUNT_CONCURRENCY, UNRESERVED_MINIMUM = 1000, 100
URL_SUFFIX = "lambda-url.{region}.on.aws"


class AwsError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: JSON | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


def not_found(what: str) -> AwsError:
    return AwsError(404, "ResourceNotFoundException", f"{what} not found: {what}")


def _stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(at or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Failure:
    """Code whose image (or S3 key) contains ``contains`` will not start, with ``message``."""

    contains: str
    message: str = "container exited with code 1"
    code: str = "InvalidImage"


@dataclass
class Version:
    number: int
    config: JSON  # the FunctionConfiguration it was published with (immutable)
    code: JSON
    created: float
    state: str = "Pending"


@dataclass
class Alias:
    name: str
    version: str
    weights: dict[str, float] = field(default_factory=dict)
    description: str = ""
    revision_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class FunctionUrl:
    qualifier: str
    url_id: str
    auth_type: str
    cors: JSON | None
    invoke_mode: str
    created: str
    modified: str


@dataclass
class Provisioned:
    requested: int
    status: str = "IN_PROGRESS"
    reason: str | None = None
    modified: str = field(default_factory=lambda: _stamp())


@dataclass
class Function:
    account: str
    region: str
    name: str
    config: JSON  # $LATEST: what the user set (Role, Runtime, Handler, MemorySize, Environment, ...)
    code: JSON  # {"ImageUri": ...} or {"S3Bucket", "S3Key"} with "CodeSha256" and "CodeSize"
    tags: dict[str, str]
    created: float = field(default_factory=time.time)
    state: str = "Pending"
    state_reason: tuple[str, str] | None = ("The function is being created.", "Creating")
    update_status: str | None = None
    update_reason: tuple[str, str | None] | None = None
    revision_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    last_modified: str = field(default_factory=_stamp)
    versions: dict[int, Version] = field(default_factory=dict)
    last_version: int = 0
    published_revision: str | None = None  # $LATEST's RevisionId when the last version was published
    aliases: dict[str, Alias] = field(default_factory=dict)
    urls: dict[str, FunctionUrl] = field(default_factory=dict)  # qualifier -> its URL
    policies: dict[str, list[JSON]] = field(default_factory=dict)  # qualifier -> statements
    logs: list[tuple[int, str, str]] = field(default_factory=list)  # (ms, stream, message)
    reserved: int | None = None  # reserved concurrency
    provisioned: dict[str, Provisioned] = field(default_factory=dict)  # qualifier -> provisioned concurrency

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    def touch(self) -> None:
        self.revision_id = str(uuid.uuid4())
        self.last_modified = _stamp()

    @property
    def busy(self) -> bool:
        return self.state == "Pending" or self.update_status == "InProgress"


@dataclass
class Role:
    account: str
    name: str
    trust: str
    tags: list[JSON]
    created: float = field(default_factory=time.time)
    policies: list[str] = field(default_factory=list)
    role_id: str = field(default_factory=lambda: "AROA" + uuid.uuid4().hex[:17].upper())

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.name}"


@dataclass
class Key:
    secret: str
    account: str
    session_token: str | None = None
    expires: float | None = None


class World:
    def __init__(self, account: str, clock: Callable[[], float] = time.monotonic):
        self.account = account
        self.schedule = Schedule(clock, DEFAULT_LATENCY)
        self.functions: dict[tuple[str, str], Function] = {}  # (region, name) -> function
        self.roles: dict[str, Role] = {}
        self.keys: dict[str, Key] = {}
        self.web_identity_tokens: set[str] = set()
        self.objects: dict[tuple[str, str], bytes] = {}  # (bucket, key) -> zip
        self.failures: list[Failure] = []
        self.rng = random.Random(7)  # noqa: S311 - traffic weights, not security

    def settle(self) -> None:
        self.schedule.settle()

    # ----- identity ---------------------------------------------------------------------------------
    def assume_role_with_web_identity(self, role_arn: str, token: str, duration: int) -> JSON:
        if token not in self.web_identity_tokens:
            raise AwsError(400, "InvalidIdentityToken", "Couldn't verify the web identity token.")
        name = role_arn.rsplit("/", 1)[-1]
        if f":{self.account}:" not in role_arn or name not in self.roles:
            raise AwsError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        key_id = "ASIA" + uuid.uuid4().hex[:16].upper()
        key = Key(uuid.uuid4().hex + uuid.uuid4().hex[:8], self.account, uuid.uuid4().hex * 4, time.time() + duration)
        self.keys[key_id] = key
        return {"AccessKeyId": key_id, "SecretAccessKey": key.secret, "SessionToken": key.session_token,
                "Expiration": datetime.fromtimestamp(key.expires or 0, UTC)}

    # ----- IAM ----------------------------------------------------------------------------------------
    def role(self, name: str) -> Role:
        if name not in self.roles:
            raise AwsError(404, "NoSuchEntity", f"The role with name {name} cannot be found.")
        return self.roles[name]

    def create_role(self, name: str, trust: str, tags: list[JSON]) -> Role:
        if name in self.roles:
            raise AwsError(409, "EntityAlreadyExists", f"Role with name {name} already exists.")
        self.roles[name] = Role(self.account, name, trust, tags)
        return self.roles[name]

    def delete_role(self, name: str) -> None:
        if self.role(name).policies:
            raise AwsError(409, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
        del self.roles[name]

    def role_body(self, role: Role) -> JSON:
        return {"Path": "/", "RoleName": role.name, "RoleId": role.role_id, "Arn": role.arn,
                "CreateDate": datetime.fromtimestamp(role.created, UTC), "AssumeRolePolicyDocument": role.trust,
                "MaxSessionDuration": 3600, "RoleLastUsed": {}, "Tags": role.tags or None}

    def _assumable(self, role_arn: str) -> None:
        name = role_arn.rsplit("/", 1)[-1]
        role = self.roles.get(name)
        propagated = role is not None and time.time() >= role.created + self.schedule.latency.get("role.propagate", 0.0)
        if role is None or not propagated or "lambda.amazonaws.com" not in role.trust or f":{self.account}:" not in role_arn:
            raise AwsError(400, "InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.")

    # ----- functions ----------------------------------------------------------------------------------
    def function(self, region: str, name: str) -> Function:
        name = name.rsplit(":", 1)[-1] if name.startswith("arn:") else name
        found = self.functions.get((region, name))
        if found is None:
            raise AwsError(404, "ResourceNotFoundException",
                           f"Function not found: arn:aws:lambda:{region}:{self.account}:function:{name}")
        return found

    def _code(self, request: JSON) -> JSON:
        if request.get("ImageUri"):
            digest = hashlib.sha256(request["ImageUri"].encode()).hexdigest()
            return {"ImageUri": request["ImageUri"], "CodeSha256": digest, "CodeSize": 0,
                    "ResolvedImageUri": request["ImageUri"].split(":")[0].split("@")[0] + "@sha256:" + digest}
        if request.get("S3Bucket"):
            body = self.objects.get((request["S3Bucket"], request.get("S3Key", "")))
            if body is None:
                raise AwsError(400, "InvalidParameterValueException",
                               "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified "
                               "key does not exist.")
            return {"S3Bucket": request["S3Bucket"], "S3Key": request["S3Key"], "CodeSize": len(body),
                    "CodeSha256": base64.b64encode(hashlib.sha256(body).digest()).decode()}
        if request.get("ZipFile"):
            body = base64.b64decode(request["ZipFile"])
            return {"ZipFile": True, "CodeSize": len(body), "CodeSha256": base64.b64encode(hashlib.sha256(body).digest()).decode()}
        raise AwsError(400, "InvalidParameterValueException", "Please provide a source for function code.")

    def _failure(self, code: JSON) -> Failure | None:
        source = code.get("ImageUri") or f"{code.get('S3Bucket', '')}/{code.get('S3Key', '')}"
        return next((f for f in self.failures if f.contains in source), None)

    def create_function(self, region: str, request: JSON) -> Function:
        name = request["FunctionName"]
        if (region, name) in self.functions:
            raise AwsError(409, "ResourceConflictException", f"Function already exist: {name}")
        self._assumable(request["Role"])
        package = request.get("PackageType", "Zip")
        if package == "Image" and not request["Code"].get("ImageUri"):
            raise AwsError(400, "InvalidParameterValueException", "Please provide ImageUri when PackageType is Image.")
        if package == "Zip" and not request.get("Runtime"):
            raise AwsError(400, "InvalidParameterValueException", "Runtime and Handler are mandatory parameters for functions "
                                                                  "created with deployment packages.")
        config = {k: v for k, v in request.items() if k not in ("FunctionName", "Code", "Tags", "Publish")}
        config.setdefault("PackageType", package)
        function = Function(self.account, region, name, config, self._code(request["Code"]), dict(request.get("Tags") or {}))
        self.functions[(region, name)] = function
        failure = self._failure(function.code)

        def settle() -> None:
            if failure:
                function.state, function.state_reason = "Failed", (failure.message, failure.code)
            else:
                function.state, function.state_reason, function.update_status = "Active", None, "Successful"
        self.schedule.later("function.create", settle)
        return function

    def _ready_for_update(self, function: Function, revision_id: str | None) -> None:
        if function.busy:
            raise AwsError(409, "ResourceConflictException", f"The operation cannot be performed at this time. An update is "
                                                             f"in progress for resource: {function.arn}")
        if revision_id and revision_id != function.revision_id:
            raise AwsError(412, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. "
                                                               "Call the GetFunction/GetAlias API to retrieve the latest "
                                                               "Revision Id")

    def _start_update(self, function: Function, failure: Failure | None) -> None:
        # The model has no reason code for an update in progress (its enum lists failures only): the text alone.
        function.update_status, function.update_reason = "InProgress", ("The function is being updated.", None)
        function.touch()

        def settle() -> None:
            if failure:
                function.update_status, function.update_reason = "Failed", (failure.message, failure.code)
            else:
                function.update_status, function.update_reason = "Successful", None
        self.schedule.later("function.update", settle)

    def update_configuration(self, function: Function, request: JSON) -> None:
        self._ready_for_update(function, request.get("RevisionId"))
        if request.get("Role"):
            self._assumable(request["Role"])
        for key, value in request.items():
            if key not in ("FunctionName", "RevisionId"):
                function.config[key] = value
        self._start_update(function, None)

    def update_code(self, function: Function, request: JSON) -> None:
        self._ready_for_update(function, request.get("RevisionId"))
        function.code = self._code(request)
        self._start_update(function, self._failure(function.code))

    def publish(self, function: Function, request: JSON) -> Version:
        self._ready_for_update(function, request.get("RevisionId"))
        if request.get("CodeSha256") and request["CodeSha256"] != function.code["CodeSha256"]:
            raise AwsError(412, "PreconditionFailedException", "CodeSHA256 (" + request["CodeSha256"] + ") is different from "
                           "current CodeSHA256 in $LATEST (" + function.code["CodeSha256"] + "). Please try again with the "
                           "current CodeSHA256.")
        if function.state == "Failed" or function.update_status == "Failed":
            raise AwsError(400, "InvalidParameterValueException", "The function's last update failed; it cannot be published.")
        if function.published_revision == function.revision_id and function.last_version:
            return function.versions[function.last_version]  # nothing changed since: that version again
        function.last_version += 1
        config = json.loads(json.dumps(function.config))
        if request.get("Description") is not None:
            config["Description"] = request["Description"]
        version = Version(function.last_version, config, dict(function.code), time.time())
        function.versions[version.number] = version
        function.published_revision = function.revision_id

        def settle() -> None:
            version.state = "Active"
        self.schedule.later("version.publish", settle)
        return version

    def delete_function(self, function: Function, qualifier: str | None) -> None:
        if qualifier is None:
            del self.functions[(function.region, function.name)]
            return
        if not qualifier.isdigit():
            raise AwsError(400, "InvalidParameterValueException", "Deletion of aliases is not supported by DeleteFunction.")
        users = sorted(a.name for a in function.aliases.values() if a.version == qualifier or qualifier in a.weights)
        if users:
            raise AwsError(409, "ResourceConflictException", "Unable to delete version because the following aliases "
                                                             f"reference it: [{', '.join(users)}]")
        function.versions.pop(int(qualifier), None)

    def configuration(self, function: Function, qualifier: str | None = None) -> JSON:
        """FunctionConfiguration of $LATEST, a version number or an alias."""
        if qualifier and qualifier != LATEST:
            number = int(qualifier) if qualifier.isdigit() else int(self.alias(function, qualifier).version)
            version = function.versions.get(number)
            if version is None:
                raise not_found(f"{function.arn}:{qualifier}")
            return self._configuration(function, version.config, version.code, str(number), version.state, None, "Successful",
                                       None, f"{function.arn}:{number}", function.revision_id)
        return self._configuration(function, function.config, function.code, LATEST, function.state, function.state_reason,
                                   function.update_status, function.update_reason, function.arn, function.revision_id)

    @staticmethod
    def _configuration(function: Function, config: JSON, code: JSON, version: str, state: str,
                       state_reason: tuple[str, str] | None, update: str | None, update_reason: tuple[str, str | None] | None,
                       arn: str, revision_id: str) -> JSON:
        body = {**{k: v for k, v in config.items() if k not in ("ImageConfig",)},
                "FunctionName": function.name, "FunctionArn": arn, "Version": version, "CodeSha256": code["CodeSha256"],
                "CodeSize": code["CodeSize"], "RevisionId": revision_id, "State": state, "LastModified": function.last_modified,
                "LastUpdateStatus": update}
        body.setdefault("MemorySize", 128)
        body.setdefault("Timeout", 3)
        body.setdefault("Architectures", ["x86_64"])
        body.setdefault("LoggingConfig", {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function.name}"})
        body.setdefault("EphemeralStorage", {"Size": 512})
        body.setdefault("TracingConfig", {"Mode": "PassThrough"})
        body.setdefault("SnapStart", {"ApplyOn": "None", "OptimizationStatus": "Off"})
        if state_reason:
            body["StateReason"], body["StateReasonCode"] = state_reason
        if update_reason:
            body["LastUpdateStatusReason"], body["LastUpdateStatusReasonCode"] = update_reason
            if update_reason[1] is None:
                del body["LastUpdateStatusReasonCode"]
        if config.get("ImageConfig"):
            body["ImageConfigResponse"] = {"ImageConfig": config["ImageConfig"]}
        return body

    def code_location(self, function: Function) -> JSON:
        if "ImageUri" in function.code:
            return {"RepositoryType": "ECR", "ImageUri": function.code["ImageUri"],
                    "ResolvedImageUri": function.code["ResolvedImageUri"]}
        return {"RepositoryType": "S3", "Location": f"https://awslambda-{function.region}-tasks.s3.amazonaws.com/snapshots/"
                                                    f"{function.account}/{function.name}-{uuid.uuid4()}"}

    # ----- aliases --------------------------------------------------------------------------------------
    def alias(self, function: Function, name: str) -> Alias:
        if name not in function.aliases:
            raise not_found(f"{function.arn}:{name}")
        return function.aliases[name]

    def _check_routing(self, function: Function, version: str, weights: dict[str, float]) -> None:
        for number in (version, *weights):
            if number == LATEST:
                raise AwsError(400, "InvalidParameterValueException", "$LATEST is not supported for an alias pointing to "
                                                                      "more than 1 version" if weights else
                                                                      "Alias cannot point to $LATEST with routing config")
            if not number.isdigit() or int(number) not in function.versions:
                raise not_found(f"{function.arn}:{number}")
        if len(weights) > 1:
            raise AwsError(400, "InvalidParameterValueException", "Number of items in AdditionalVersionWeights cannot be "
                                                                  "greater than 1")
        if version in weights:
            raise AwsError(400, "InvalidParameterValueException", "Alias primary version cannot be the same as the additional "
                                                                  "version in the routing configuration")

    def create_alias(self, function: Function, request: JSON) -> Alias:
        name = request["Name"]
        if name in function.aliases:
            raise AwsError(409, "ResourceConflictException", f"Alias already exists: {function.arn}:{name}")
        weights = (request.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if request["FunctionVersion"] != LATEST:
            self._check_routing(function, request["FunctionVersion"], weights)
        function.aliases[name] = Alias(name, request["FunctionVersion"], dict(weights), request.get("Description") or "")
        return function.aliases[name]

    def update_alias(self, function: Function, request: JSON) -> Alias:
        alias = self.alias(function, request["Name"])
        if request.get("RevisionId") and request["RevisionId"] != alias.revision_id:
            raise AwsError(412, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id.")
        version = request.get("FunctionVersion") or alias.version
        weights = alias.weights
        if "RoutingConfig" in request:
            weights = (request["RoutingConfig"] or {}).get("AdditionalVersionWeights") or {}
        self._check_routing(function, version, weights)
        alias.version, alias.weights = version, dict(weights)
        if request.get("Description") is not None:
            alias.description = request["Description"]
        alias.revision_id = str(uuid.uuid4())
        return alias

    def delete_alias(self, function: Function, name: str) -> None:
        function.aliases.pop(name, None)
        function.provisioned.pop(name, None)
        function.urls.pop(name, None)
        function.policies.pop(name, None)

    def alias_body(self, function: Function, alias: Alias) -> JSON:
        body: JSON = {"AliasArn": f"{function.arn}:{alias.name}", "Name": alias.name, "FunctionVersion": alias.version,
                      "Description": alias.description, "RevisionId": alias.revision_id}
        if alias.weights:
            body["RoutingConfig"] = {"AdditionalVersionWeights": alias.weights}
        return body

    # ----- concurrency ----------------------------------------------------------------------------------
    def put_reserved(self, function: Function, count: int) -> None:
        others = sum(f.reserved or 0 for f in self.functions.values() if f is not function and f.region == function.region)
        if others + count > ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM:
            raise AwsError(400, "InvalidParameterValueException", "Specified ReservedConcurrentExecutions for function "
                           f"decreases account's UnreservedConcurrentExecution below its minimum value of [{UNRESERVED_MINIMUM}].")
        function.reserved = count

    def put_provisioned(self, function: Function, qualifier: str, count: int) -> Provisioned:
        if qualifier == LATEST or (not qualifier.isdigit() and qualifier not in function.aliases) or (
                qualifier.isdigit() and int(qualifier) not in function.versions):
            raise AwsError(404 if qualifier != LATEST else 400, "ResourceNotFoundException" if qualifier != LATEST else
                           "InvalidParameterValueException", f"Cannot provision concurrency for {function.arn}:{qualifier}")
        if function.reserved is not None and count > function.reserved:
            raise AwsError(400, "InvalidParameterValueException", "Requested Provisioned Concurrency should not be greater "
                           "than the reservedConcurrentExecution for function")
        config = function.provisioned[qualifier] = Provisioned(count)

        def allocate() -> None:
            if function.provisioned.get(qualifier) is config:
                config.status = "READY"
        self.schedule.later("provisioned.allocate", allocate)
        return config

    def provisioned(self, function: Function, qualifier: str) -> Provisioned:
        found = function.provisioned.get(qualifier)
        if found is None:
            raise AwsError(404, "ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config found "
                                                                                 "for this function")
        return found

    @staticmethod
    def provisioned_body(config: Provisioned) -> JSON:
        allocated = config.requested if config.status == "READY" else 0
        return {"RequestedProvisionedConcurrentExecutions": config.requested, "Status": config.status,
                "AllocatedProvisionedConcurrentExecutions": allocated, "AvailableProvisionedConcurrentExecutions": allocated,
                "StatusReason": config.reason, "LastModified": config.modified}

    # ----- function URLs and permissions -----------------------------------------------------------------
    def _qualifier(self, function: Function, qualifier: str | None) -> str:
        if qualifier in (None, LATEST):
            return LATEST
        assert qualifier is not None
        self.alias(function, qualifier)
        return qualifier

    def url(self, function: Function, qualifier: str | None) -> FunctionUrl:
        found = function.urls.get(self._qualifier(function, qualifier))
        if found is None:
            raise AwsError(404, "ResourceNotFoundException", "The resource you requested does not exist.")
        return found

    def create_url(self, function: Function, request: JSON) -> FunctionUrl:
        qualifier = self._qualifier(function, request.get("Qualifier"))
        if qualifier in function.urls:
            raise AwsError(409, "ResourceConflictException", f"Failed to create function url config for [functionArn = "
                                                             f"{function.arn}]. Error message:  FunctionUrlConfig exists for "
                                                             f"this Lambda function")
        stamp = _stamp()
        function.urls[qualifier] = FunctionUrl(qualifier, uuid.uuid4().hex[:26] + uuid.uuid4().hex[:6], request["AuthType"],
                                               request.get("Cors"), request.get("InvokeMode") or "BUFFERED", stamp, stamp)
        return function.urls[qualifier]

    def update_url(self, function: Function, request: JSON) -> FunctionUrl:
        found = self.url(function, request.get("Qualifier"))
        if request.get("AuthType"):
            found.auth_type = request["AuthType"]
        if "Cors" in request:
            found.cors = request["Cors"]
        if request.get("InvokeMode"):
            found.invoke_mode = request["InvokeMode"]
        found.modified = _stamp()
        return found

    def url_body(self, function: Function, found: FunctionUrl, created: bool = False) -> JSON:
        arn = function.arn if found.qualifier == LATEST else f"{function.arn}:{found.qualifier}"
        body: JSON = {"FunctionUrl": f"https://{found.url_id}.{URL_SUFFIX.format(region=function.region)}/", "FunctionArn": arn,
                      "AuthType": found.auth_type, "Cors": found.cors, "CreationTime": found.created,
                      "InvokeMode": found.invoke_mode}
        if not created:
            body["LastModifiedTime"] = found.modified
        return body

    def add_permission(self, function: Function, request: JSON) -> JSON:
        qualifier = self._qualifier(function, request.get("Qualifier"))
        statements = function.policies.setdefault(qualifier, [])
        if any(s["Sid"] == request["StatementId"] for s in statements):
            raise AwsError(409, "ResourceConflictException", f"The statement id ({request['StatementId']}) provided already "
                                                             "exists. Please provide a new statement id, or remove the "
                                                             "existing statement.")
        resource = function.arn if qualifier == LATEST else f"{function.arn}:{qualifier}"
        principal: Any = "*" if request["Principal"] == "*" else {"Service": request["Principal"]}
        statement: JSON = {"Sid": request["StatementId"], "Effect": "Allow", "Principal": principal,
                           "Action": request["Action"], "Resource": resource}
        if request.get("FunctionUrlAuthType"):
            statement["Condition"] = {"StringEquals": {"lambda:FunctionUrlAuthType": request["FunctionUrlAuthType"]}}
        if request.get("InvokedViaFunctionUrl"):
            statement["Condition"] = {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
        statements.append(statement)
        return statement

    def remove_permission(self, function: Function, sid: str, qualifier: str | None) -> None:
        statements = function.policies.get(self._qualifier(function, qualifier), [])
        if not any(s["Sid"] == sid for s in statements):
            raise AwsError(404, "ResourceNotFoundException", "The resource you requested does not exist.")
        statements[:] = [s for s in statements if s["Sid"] != sid]

    def policy(self, function: Function, qualifier: str | None) -> JSON:
        statements = function.policies.get(self._qualifier(function, qualifier))
        if not statements:
            raise AwsError(404, "ResourceNotFoundException", "The resource you requested does not exist.")
        return {"Version": "2012-10-17", "Id": "default", "Statement": statements}

    @staticmethod
    def public(function: Function, qualifier: str) -> bool:
        """Whether a URL with AuthType NONE may be called by anyone: both statements current Lambda requires."""
        statements = function.policies.get(qualifier, [])
        url = any(s["Action"] == "lambda:InvokeFunctionUrl" and s["Principal"] == "*" for s in statements)
        invoke = any(s["Action"] == "lambda:InvokeFunction" and s["Principal"] == "*"
                     and s.get("Condition", {}).get("Bool", {}).get("lambda:InvokedViaFunctionUrl") == "true"
                     for s in statements)
        return url and invoke

    # ----- what answers at a URL --------------------------------------------------------------------------
    def backend_for_host(self, host: str) -> Backend | None:
        self.settle()
        for function in self.functions.values():
            for found in function.urls.values():
                if host != f"{found.url_id}.{URL_SUFFIX.format(region=function.region)}":
                    continue
                if found.auth_type == "NONE" and not self.public(function, found.qualifier):
                    return Backend("", 0.0, refusal=(403, '{"Message":"Forbidden. For troubleshooting Function URL '
                                                          'authorization issues, see: https://docs.aws.amazon.com/lambda/'
                                                          'latest/dg/urls-auth.html"}'))
                if found.auth_type == "AWS_IAM":
                    return Backend("", 0.0, refusal=(403, '{"Message":"Forbidden"}'))
                return self._invoke(function, found.qualifier)
        return None

    def _invoke(self, function: Function, qualifier: str) -> Backend | None:
        if qualifier == LATEST:
            code, created, version = function.code, function.created, LATEST
        else:
            alias = function.aliases[qualifier]
            version = alias.version
            for extra, weight in alias.weights.items():
                if self.rng.random() < weight:
                    version = extra
            found = function.versions.get(int(version))
            if found is None or found.state != "Active":
                return None
            code, created = found.code, found.created
        now_ms = int(time.time() * 1000)
        stream = time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version}]" + uuid.uuid4().hex[:16]
        request_id = uuid.uuid4()
        function.logs += [(now_ms, stream, f"START RequestId: {request_id} Version: {version}"),
                          (now_ms, stream, f"END RequestId: {request_id}")]
        source = code.get("ImageUri") or f"{code.get('S3Bucket')}/{code.get('S3Key')}"
        return Backend(source, created)

    def log_events(self, group: str, prefix: str | None, start: int | None, end: int | None, pattern: str | None) -> list[JSON]:
        function = next((f for f in self.functions.values() if group == f"/aws/lambda/{f.name}"), None)
        if function is None or not function.logs:
            raise AwsError(400, "ResourceNotFoundException", "The specified log group does not exist.")
        return [{"logStreamName": stream, "timestamp": at, "message": message, "ingestionTime": at,
                 "eventId": str(index)}
                for index, (at, stream, message) in enumerate(function.logs)
                if (not prefix or stream.startswith(prefix)) and (start is None or at >= start)
                and (end is None or at <= end) and (not pattern or pattern.strip('"') in message)]
