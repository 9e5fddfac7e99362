"""What the simulated pmcp.run account holds, and the rules its API applies (docs/pmcp-run.md says which are
known from cargo-pmcp and which are this simulator's choice where nothing is known).

Known (from the client): uploads go to presigned PUT URLs that expire after ``expiresIn`` (900 s); a deployment is
made from the two uploaded keys and moves ``pending -> validating -> deploying -> success | failed``; its URL is
read from ``getDeployment.url``; destroy is asynchronous (``initiated -> deleting -> deleted | delete_failed``) and
followed by the deployment id; OAuth is configured per server id, secrets per server and audience.
Chosen here (unknown upstream): each ``createDeploymentFromS3`` makes a new deployment id; one server per
``projectName`` whose newest successful deployment serves (a failed one leaves the previous serving, as a rolled
back CloudFormation update does); the server id accepted by OAuth and secrets is the project name or any of its
deployment ids; a destroy removes the server and all its deployment records; each server gets a host of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simcore.mcp_ingress import Backend
from simcore.schedule import Schedule

JSON = dict[str, Any]
UPLOAD_EXPIRY = 900
IMAGE_MARK = re.compile(rb"mcp-sim-image:\s*(\S+)")
DEPLOYING = ("pending", "validating", "deploying")
SERVER_DOMAIN = "mcp.pmcp-sim.dev"


class ApiError(Exception):
    """A GraphQL error as AppSync answers it: ``errorType`` and ``message`` (and the HTTP status, 200 by AppSync's habit)."""

    def __init__(self, error_type: str, message: str, status: int = 200):
        super().__init__(message)
        self.error_type, self.message, self.status = error_type, message, status


def stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(at if at is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Failure:
    """Deployments whose bootstrap names an image containing ``contains`` fail while deploying, with ``message``."""

    contains: str
    message: str = "CREATE_FAILED: AWS::Lambda::Function McpServer: the function did not start (Runtime.ExitError)"


@dataclass
class Upload:
    key: str
    size: int
    content_type: str
    expires: float
    data: bytes | None = None


@dataclass
class Deployment:
    id: str
    project: str
    template: bytes = field(repr=False)
    bootstrap: bytes = field(repr=False)
    settings: JSON
    status: str = "pending"
    created: float = field(default_factory=time.time)
    completed: float | None = None
    error: str | None = None
    due: float = 0.0  # when its current step was due (the next one follows from it)

    @property
    def image(self) -> str:
        """The MCP server the simulator answers with (the bootstrap names it; see docs/simulator.md)."""
        found = IMAGE_MARK.search(self.bootstrap)
        return found.group(1).decode() if found else f"pmcp-run/{self.project}:{self.settings.get('serverVersion') or '1'}"


@dataclass
class Server:
    project: str
    deployments: list[Deployment] = field(default_factory=list)
    oauth: JSON | None = None
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)  # (audience, name) -> value
    destroy: JSON | None = None  # the destroy operation in flight: {status, message, updated}

    @property
    def serving(self) -> Deployment | None:
        return next((d for d in reversed(self.deployments) if d.status == "success"), None)

    @property
    def host(self) -> str:
        return f"{self.project}.{SERVER_DOMAIN}"

    @property
    def url(self) -> str:
        return f"https://{self.host}/mcp"


class World:
    def __init__(self, schedule: Schedule, signing_key: bytes, endpoint: str = ""):
        self.schedule = schedule
        self.signing_key = signing_key
        self.endpoint = endpoint  # set once the listener has a port
        self.servers: dict[str, Server] = {}
        self.uploads: dict[str, Upload] = {}
        self.failures: list[Failure] = []
        self.destroy_failures: set[str] = set()  # projects whose next destroy fails (delete_failed)
        self.finished_destroys: dict[tuple[str, ...], JSON] = {}  # deployment ids of a destroyed server -> its destroy

    # ----- lookups ---------------------------------------------------------------------------------------------
    def deployment(self, deployment_id: str) -> Deployment | None:
        for server in self.servers.values():
            found = next((d for d in server.deployments if d.id == deployment_id), None)
            if found is not None:
                return found
        return None

    def server_by_id(self, server_id: str) -> Server:
        """A server by its project name or one of its deployment ids (cargo-pmcp sends both)."""
        if server_id in self.servers:
            return self.servers[server_id]
        found = self.deployment(server_id)
        if found is None:
            raise ApiError("NotFound", f"Server {server_id} not found")
        return self.servers[found.project]

    def server_for_secret(self, server_id: str) -> Server:
        """Secrets may be set before a server's first deployment (this simulator's choice: the deploy reads them)."""
        try:
            return self.server_by_id(server_id)
        except ApiError:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", server_id):
                raise
            return self.servers.setdefault(server_id, Server(server_id))

    # ----- uploads ---------------------------------------------------------------------------------------------
    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self.signing_key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def upload_urls(self, project: str, template_size: int, bootstrap_size: int) -> JSON:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", project):
            raise ApiError("ValidationException", f"Invalid projectName '{project}': lower-case letters, digits and '-'")
        if template_size <= 0 or bootstrap_size <= 0:
            raise ApiError("ValidationException", "templateSize and bootstrapSize must be positive")
        folder = f"uploads/{project}/{uuid.uuid4().hex[:12]}"
        expires = int(time.time()) + UPLOAD_EXPIRY
        answer: JSON = {"expiresIn": UPLOAD_EXPIRY}
        for part, size, kind in (("template", template_size, "template.json"), ("bootstrap", bootstrap_size, "bootstrap")):
            key = f"{folder}/{kind}"
            self.uploads[key] = Upload(key, size, "", expires)
            answer[f"{part}S3Key"] = key
            answer[f"{part}UploadUrl"] = (f"{self.endpoint}/s3/{key}?X-Amz-Expires={UPLOAD_EXPIRY}&X-Amz-Date={expires}"
                                          f"&X-Amz-Signature={self.signature(key, expires)}")
        return answer

    def put_object(self, key: str, expires: str, signature: str, content_type: str, data: bytes) -> None:
        """A presigned PUT: S3's refusals as (status, code, message) in an S3Refusal."""
        upload = self.uploads.get(key)
        if upload is None or not expires.isdigit() or not hmac.compare_digest(signature, self.signature(key, int(expires))):
            raise S3Refusal(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                          "signature you provided.")
        if time.time() > upload.expires:
            raise S3Refusal(403, "AccessDenied", "Request has expired")
        if len(data) != upload.size:
            raise S3Refusal(403, "SignatureDoesNotMatch", f"The signed Content-Length ({upload.size}) does not match the "
                                                          f"body ({len(data)} bytes).")
        upload.data, upload.content_type = data, content_type

    # ----- deployments -----------------------------------------------------------------------------------------
    def create_deployment(self, arguments: JSON) -> Deployment:
        project = arguments["projectName"]
        template, bootstrap = (self.uploads.get(arguments[k]) for k in ("templateS3Key", "bootstrapS3Key"))
        for name, upload in (("template", template), ("bootstrap", bootstrap)):
            if upload is None or upload.data is None:
                raise ApiError("ValidationException", f"The {name} was not uploaded to S3 ({arguments[f'{name}S3Key']})")
            if f"uploads/{project}/" not in upload.key:
                raise ApiError("ValidationException", f"The {name} key does not belong to project {project}")
        assert template is not None and bootstrap is not None and template.data is not None and bootstrap.data is not None
        server = self.servers.get(project)
        if server is not None and server.destroy is not None:
            raise ApiError("ConflictException", f"Server {project} is being destroyed")
        server = self.servers.setdefault(project, Server(project))
        settings = {k: v for k, v in arguments.items() if k not in ("templateS3Key", "bootstrapS3Key", "projectName")}
        deployment = Deployment(f"dep_{uuid.uuid4().hex[:10]}", project, template.data, bootstrap.data, settings)
        server.deployments.append(deployment)
        deployment.due = self.schedule.later("deployment.validate", lambda: self._validate(deployment), deployment.created)
        return deployment

    def _validate(self, deployment: Deployment) -> None:
        if deployment.status != "pending":
            return
        deployment.status = "validating"
        deployment.due = self.schedule.later("deployment.validate", lambda: self._deploy(deployment), deployment.due)

    def _deploy(self, deployment: Deployment) -> None:
        if deployment.status != "validating":
            return
        problem = template_problem(deployment.template)
        if problem:
            self._finish(deployment, "failed", f"Template validation failed: {problem}")
            return
        deployment.status = "deploying"
        failure = next((f for f in self.failures if f.contains in deployment.image), None)

        def done() -> None:
            if deployment.status == "deploying":
                self._finish(deployment, "failed" if failure else "success", failure.message if failure else None)
        deployment.due = self.schedule.later("deployment.deploy", done, deployment.due)

    @staticmethod
    def _finish(deployment: Deployment, status: str, error: str | None) -> None:
        deployment.status, deployment.error, deployment.completed = status, error, min(deployment.due, time.time())

    def deployment_body(self, deployment: Deployment) -> JSON:
        server = self.servers[deployment.project]
        return {"id": deployment.id, "status": deployment.status, "projectName": deployment.project,
                "createdAt": stamp(deployment.created), "completedAt": stamp(deployment.completed) if deployment.completed
                else None, "errorMessage": deployment.error,
                "url": server.url if deployment.status == "success" else None}

    # ----- destroy ---------------------------------------------------------------------------------------------
    def destroy(self, deployment_id: str) -> JSON:
        found = self.deployment(deployment_id)
        if found is None:
            raise ApiError("NotFound", f"Deployment {deployment_id} not found")
        server = self.servers[found.project]
        if server.destroy is None or server.destroy["status"] in ("delete_failed",):
            server.destroy = {"status": "initiated", "message": "Destroy started", "updated": time.time(),
                              "arn": f"arn:aws:states:us-east-1:000000000000:execution:pmcp-destroy:{uuid.uuid4().hex[:8]}"}
            server.destroy["due"] = self.schedule.later("destroy.start", lambda: self._deleting(server))
        return {"id": deployment_id, "status": server.destroy["status"], "stackName": f"pmcp-{server.project}",
                "message": server.destroy["message"], "executionArn": server.destroy["arn"]}

    def _deleting(self, server: Server) -> None:
        if server.destroy is None or server.destroy["status"] != "initiated":
            return
        server.destroy.update(status="deleting", message="Deleting the stack", updated=time.time())
        server.destroy["due"] = self.schedule.later("destroy.finish", lambda: self._deleted(server), server.destroy["due"])

    def _deleted(self, server: Server) -> None:
        if server.destroy is None or server.destroy["status"] != "deleting":
            return
        if server.project in self.destroy_failures:
            self.destroy_failures.discard(server.project)
            server.destroy.update(status="delete_failed", updated=time.time(),
                                  message="DELETE_FAILED: the stack's log group could not be deleted (retry the destroy)")
            return
        server.destroy.update(status="deleted", message="Server destroyed", updated=time.time())
        self.servers.pop(server.project, None)
        self.finished_destroys[tuple(d.id for d in server.deployments)] = dict(server.destroy)

    def operation_status(self, deployment_id: str) -> JSON | None:
        """A destroy's progress by deployment id; without a destroy, the deployment's own status (as the client maps)."""
        for ids, destroyed in self.finished_destroys.items():
            if deployment_id in ids:
                return {"id": deployment_id, "status": "deleted", "message": destroyed["message"],
                        "executionArn": destroyed["arn"], "updatedAt": stamp(destroyed["updated"])}
        found = self.deployment(deployment_id)
        if found is None:
            return None
        server = self.servers[found.project]
        if server.destroy is not None:
            operation = server.destroy
            return {"id": deployment_id, "status": operation["status"], "message": operation["message"],
                    "executionArn": operation["arn"], "updatedAt": stamp(operation["updated"])}
        return {"id": deployment_id, "status": found.status, "message": found.error, "executionArn": None,
                "updatedAt": stamp(found.completed or found.created)}

    # ----- OAuth and secrets -----------------------------------------------------------------------------------
    def configure_oauth(self, arguments: JSON) -> JSON:
        server = self.server_by_id(arguments["serverId"])
        if not arguments.get("enabled"):
            server.oauth = None
            return {"serverId": arguments["serverId"], "oauthEnabled": False}
        pool = arguments.get("sharedPoolName") or f"pmcp-{server.project}"
        base = f"https://auth.{SERVER_DOMAIN}/{pool}"
        server.oauth = {"provider": "cognito", "userPoolId": f"us-east-1_{hashlib.sha256(pool.encode()).hexdigest()[:9]}",
                        "userPoolRegion": "us-east-1", "scopes": list(arguments.get("scopes") or ["openid"]),
                        "dcrEnabled": bool(arguments.get("dcrEnabled", True)),
                        "publicClientPatterns": list(arguments.get("publicClientPatterns") or []),
                        "discoveryUrl": f"https://{server.host}/.well-known/oauth-authorization-server",
                        "registrationEndpoint": f"{base}/register", "authorizationEndpoint": f"{base}/oauth2/authorize",
                        "tokenEndpoint": f"{base}/oauth2/token", "token": f"sim-oauth-{server.project}"}
        return {"serverId": arguments["serverId"], "oauthEnabled": True,
                **{k: server.oauth[k] for k in ("userPoolId", "userPoolRegion", "discoveryUrl", "registrationEndpoint",
                                                "authorizationEndpoint", "tokenEndpoint")}}

    def disable_oauth(self, server_id: str) -> JSON:
        self.server_by_id(server_id).oauth = None
        return {"serverId": server_id, "oauthEnabled": False}

    def oauth_endpoints(self, server_id: str) -> JSON | None:
        try:
            server = self.server_by_id(server_id)
        except ApiError:
            return None
        if server.oauth is None:
            return {"serverId": server_id, "oauthEnabled": False}
        return {"serverId": server_id, "oauthEnabled": True, **{k: v for k, v in server.oauth.items() if k != "token"}}

    # ----- the ingress -----------------------------------------------------------------------------------------
    def backend_for_host(self, host: str) -> Backend | None:
        for server in self.servers.values():
            if host == server.host and server.serving is not None:
                serving = server.serving
                return Backend(serving.image, serving.completed or serving.created,
                               bearer=server.oauth["token"] if server.oauth else None)
        return None


class S3Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def xml(self) -> str:
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code><Message>{self.message}</Message>'
                f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>")


def template_problem(template: bytes) -> str | None:
    """Why a CloudFormation template cannot deploy an MCP server, or None (JSON with at least one Lambda function)."""
    try:
        document = json.loads(template)
    except ValueError as error:
        return f"the template is not JSON ({error})"
    resources = document.get("Resources") if isinstance(document, dict) else None
    if not isinstance(resources, dict) or not any(isinstance(r, dict) and r.get("Type") == "AWS::Lambda::Function"
                                                  for r in resources.values()):
        return "the template declares no AWS::Lambda::Function"
    return None
