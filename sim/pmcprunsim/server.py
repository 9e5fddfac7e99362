"""The HTTPS front of the pmcp.run simulator: discovery, a Cognito-style token endpoint, the GraphQL API, presigned
upload URLs, and the test controls.

Request pipeline for GraphQL, as AppSync applies it: the raw ``Authorization`` header (no ``Bearer``; a token this
simulator issued and that has not expired, or its fixed access token) -> parse and validate the document against
the reconstructed schema (schema.graphql; an unknown field is AppSync's ``Validation error of type FieldUndefined``)
-> execute -> ``{data, errors}``, each error with AppSync's ``errorType``. Every request is recorded, by the
GraphQL operation's name where it has one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, build_schema, execute_sync, parse, validate

from simcore.buckets import TokenBuckets
from simcore.controls import common_control
from simcore.faults import RecordedRequest, drop
from simcore.front import SimulatorFront
from simcore.schedule import Schedule

from .world import ApiError, Failure, S3Refusal, World

JSON = dict[str, Any]
SCHEMA_FILE = Path(__file__).with_name("schema.graphql")


def load_schema() -> GraphQLSchema:
    return build_schema(SCHEMA_FILE.read_text())


@dataclass
class PmcpRunSimulatorConfig:
    client_id: str = "sim-pmcp-client"
    client_secret: str = "sim-pmcp-client-secret"  # noqa: S105 - the simulator's own test credential
    access_token: str = "sim-pmcp-access-token"  # noqa: S105 - what PMCP_ACCESS_TOKEN would hold
    cognito_client_id: str = "sim-cognito-app-client"
    token_ttl: int = 3600  # seconds an issued token is valid (expires_in)
    latency: dict[str, float] = field(default_factory=dict)


class PmcpRunSimulator(SimulatorFront):
    world: World
    workdir_prefix = "pmcprunsim-"
    max_body = 80 * 1024 * 1024

    def __init__(self, config: PmcpRunSimulatorConfig | None = None, workdir: Path | None = None):
        super().__init__(workdir)
        self.config = config or PmcpRunSimulatorConfig()
        self.schema = load_schema()
        self.world = World(Schedule(time.time, dict(self.config.latency)), secrets.token_bytes(32))
        self.issued: dict[str, float] = {}  # token -> when it expires
        self.throttle = TokenBuckets({}, enabled=False)  # pmcp.run documents no rate limit
        self.tokens_issued = 0
        # What each GraphQL request carried besides its document (for the contract tests): the Authorization header as
        # sent, the Content-Type, the body's keys and the document itself.
        self.graphql_log: list[JSON] = []

    async def start(self, port: int = 0) -> None:
        await super().start(port)
        self.world.endpoint = self.endpoint

    def info(self) -> JSON:
        return {"endpoint": self.endpoint, "apiUrl": self.endpoint, "graphqlUrl": self.endpoint + "/graphql",
                "caBundle": str(self.certs.ca_file) if self.certs else None, "clientId": self.config.client_id,
                "clientSecret": self.config.client_secret, "accessToken": self.config.access_token,
                "controls": self.endpoint + "/_sim", "ingress": f"127.0.0.1:{self.ingress.port}" if self.ingress else None}

    # ----- dispatch -----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_sim"):
            return await self._controls(request)
        started = time.monotonic()
        record = RecordedRequest(started, request.method, request.path, _route_name(request), "reads", 0, "pmcp-run")
        self.requests.append(record)
        body = await request.read()
        if request.path == "/graphql":
            record.operation, record.klass = _operation_of(body)
        elif request.method == "PUT":
            record.klass = "writes"
        fault = self.faults.take(request.method, request.path, record.operation)
        if fault and fault.action == "drop" and fault.when == "before":
            return drop(request, record)
        self.world.schedule.settle()
        if self.world.schedule.latency.get("request"):
            await asyncio.sleep(self.world.schedule.latency["request"])
        if fault and fault.action == "status":
            response = web.json_response({"errors": [{"errorType": fault.code, "message": fault.message}]}, status=fault.status)
        else:
            response = await self._answer(request, body)
        self.world.schedule.settle()
        if fault and fault.action == "drop" and fault.when == "after":
            return drop(request, record)
        record.status = response.status
        record.seconds = time.monotonic() - started
        return response

    async def _answer(self, request: web.Request, body: bytes) -> web.Response:
        route = (request.method, request.path)
        if route == ("GET", "/.well-known/pmcp-config"):
            host = self.endpoint.removeprefix("https://")
            return web.json_response({"cognito_client_id": self.config.cognito_client_id, "cognito_domain": host,
                                      "graphql_url": self.endpoint + "/graphql", "mcp_url": "https://mcp.pmcp-sim.dev",
                                      "api_type": "graphql", "version": "sim-1"})
        if route == ("POST", "/oauth2/token"):
            return self._token(request, body)
        if route == ("POST", "/graphql"):
            return self._graphql(request, body)
        if request.method == "PUT" and request.path.startswith("/s3/"):
            return self._put_object(request, body)
        return web.json_response({"message": f"no route {request.method} {request.path}"}, status=404)

    # ----- the token endpoint (Cognito's /oauth2/token, client credentials) ----------------------------------------
    def _token(self, request: web.Request, body: bytes) -> web.Response:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        header = request.headers.get("Authorization", "")
        try:
            client_id, _, client_secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            client_id = client_secret = ""
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if not header.startswith("Basic ") or (client_id, client_secret) != (self.config.client_id, self.config.client_secret):
            return web.json_response({"error": "invalid_client"}, status=400)
        token = "sim-jwt-" + secrets.token_hex(16)
        self.issued[token] = time.time() + self.config.token_ttl
        self.tokens_issued += 1
        return web.json_response({"access_token": token, "expires_in": self.config.token_ttl, "token_type": "Bearer"})

    def _authorized(self, header: str) -> str | None:
        """Why the raw Authorization header is refused, or None."""
        if header == self.config.access_token:
            return None
        expires = self.issued.get(header)
        if expires is None:
            return "Valid authorization header not provided."
        if time.time() > expires:
            return "Token has expired."
        return None

    # ----- GraphQL ---------------------------------------------------------------------------------------------
    def _graphql(self, request: web.Request, body: bytes) -> web.Response:
        try:
            payload: JSON | None = _json(body)
        except ValueError:
            payload = None
        self.graphql_log.append({"authorization": request.headers.get("Authorization", ""), "bodyKeys": sorted(payload or {}),
                                 "contentType": request.headers.get("Content-Type", ""),
                                 "query": str((payload or {}).get("query", ""))})
        refused = self._authorized(request.headers.get("Authorization", ""))
        if refused:
            return web.json_response({"errors": [{"errorType": "UnauthorizedException", "message": refused}]}, status=401)
        try:
            if payload is None:
                raise ValueError("the body is not a JSON object")
            document = parse(str(payload["query"]))
        except (ValueError, KeyError, TypeError, GraphQLError) as error:
            return web.json_response({"errors": [{"errorType": "MalformedHttpRequestException",
                                                  "message": f"Invalid request: {error}"}]}, status=400)
        problems = validate(self.schema, document)
        if problems:
            return web.json_response({"data": None, "errors": [_validation_error(p) for p in problems]})
        result = execute_sync(self.schema, document, root_value=self._resolvers(),
                         variable_values=payload.get("variables") or {})
        answer: JSON = {"data": result.data}
        if result.errors:
            answer["errors"] = [_execution_error(e) for e in result.errors]
        return web.json_response(answer)

    def _resolvers(self) -> JSON:
        w = self.world

        def get_deployment(_info: Any, id: str) -> JSON | None:
            found = w.deployment(id)
            return w.deployment_body(found) if found else None

        def list_deployments(_info: Any) -> JSON:
            return {"items": [w.deployment_body(d) for s in w.servers.values() for d in s.deployments]}

        def create(_info: Any, **arguments: Any) -> JSON:
            deployment = w.create_deployment(arguments)
            return {"deploymentId": deployment.id, "status": deployment.status, "projectName": deployment.project,
                    "createdAt": w.deployment_body(deployment)["createdAt"]}

        def secrets_of(_info: Any, serverId: str, audience: str | None = None) -> JSON:
            server = w.server_by_id(serverId)
            names = [{"name": name, "hasValue": bool(value)} for (aud, name), value in server.secrets.items()
                     if aud == (audience or "mcp")]
            return {"serverId": serverId, "secrets": json.dumps(names)}

        def get_secret(_info: Any, serverId: str, secretName: str, audience: str | None = None) -> JSON:
            value = w.server_by_id(serverId).secrets.get((audience or "mcp", secretName))
            return {"serverId": serverId, "secretName": secretName, "secretValue": value, "exists": value is not None}

        def set_secret(_info: Any, serverId: str, secretName: str, secretValue: str, audience: str | None = None,
                       description: str | None = None) -> JSON:
            w.server_for_secret(serverId).secrets[(audience or "mcp", secretName)] = secretValue
            return {"success": True, "serverId": serverId, "secretName": secretName}

        def delete_secret(_info: Any, serverId: str, secretName: str, audience: str | None = None) -> JSON:
            found = w.server_by_id(serverId).secrets.pop((audience or "mcp", secretName), None)
            return {"success": found is not None, "error": None if found is not None else f"Secret {secretName} not found"}

        return {
            "getUploadUrls": lambda _i, projectName, templateSize, bootstrapSize: w.upload_urls(
                projectName, templateSize, bootstrapSize),
            "createDeploymentFromS3": create,
            "getDeployment": get_deployment,
            "listDeployments": list_deployments,
            "destroyDeployment": lambda _i, id: w.destroy(id),
            "getDeploymentOperationStatus": lambda _i, id: w.operation_status(id),
            "configureServerOAuth": lambda _i, **arguments: w.configure_oauth(arguments),
            "disableServerOAuth": lambda _i, serverId: w.disable_oauth(serverId),
            "fetchServerOAuthEndpoints": lambda _i, serverId: w.oauth_endpoints(serverId),
            "listServerSecrets": secrets_of, "getServerSecret": get_secret, "setServerSecret": set_secret,
            "deleteServerSecret": delete_secret,
        }

    # ----- presigned uploads -----------------------------------------------------------------------------------
    def _put_object(self, request: web.Request, body: bytes) -> web.Response:
        key = request.path.removeprefix("/s3/")
        try:
            self.world.put_object(key, request.query.get("X-Amz-Date", ""), request.query.get("X-Amz-Signature", ""),
                                  request.headers.get("Content-Type", ""), body)
        except S3Refusal as refusal:
            return web.Response(text=refusal.xml(), status=refusal.status, content_type="application/xml")
        return web.Response(status=200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})  # noqa: S324 - S3's ETag

    # ----- controls --------------------------------------------------------------------------------------------
    async def _controls(self, request: web.Request) -> web.StreamResponse:
        body: Any = await request.json() if request.can_read_body else {}
        common = common_control(self, request.method, request.path, request.query, body)
        if common is not None:
            return common
        if (request.method, request.path.rstrip("/")) == ("POST", "/_sim/failures"):
            self.world.failures.append(Failure(body["contains"], body.get("message", Failure.message)))
            return web.json_response({})
        return web.json_response({"error": f"no control {request.method} {request.path}"}, status=404)


def _json(body: bytes) -> JSON:
    value = json.loads(body or b"{}")
    if not isinstance(value, dict):
        raise ValueError("the body is not a JSON object")
    return value


def _route_name(request: web.Request) -> str:
    if request.path.startswith("/s3/"):
        return "PutObject"
    return {"/.well-known/pmcp-config": "Discovery", "/oauth2/token": "Token", "/graphql": "GraphQL"}.get(request.path,
                                                                                                     "Unknown")


def _operation_of(body: bytes) -> tuple[str, str]:
    """The GraphQL operation's name (else its first root field) and its class: a query reads, a mutation writes."""
    try:
        document = parse(str(_json(body).get("query", "")))
    except (ValueError, GraphQLError):
        return "GraphQL", "reads"
    operation = next((d for d in document.definitions if isinstance(d, OperationDefinitionNode)), None)
    if operation is None:
        return "GraphQL", "reads"
    name = operation.name.value if operation.name else "anonymous"
    return name, "writes" if operation.operation.value == "mutation" else "reads"


def _validation_error(error: GraphQLError) -> JSON:
    """AppSync's words for a document the schema refuses (what cargo-pmcp's schema-refresh retry looks for)."""
    text = error.message
    kind = ("FieldUndefined" if text.startswith("Cannot query field") else "UnknownType" if text.startswith("Unknown type")
            else "WrongType")
    locations = [{"line": loc.line, "column": loc.column, "sourceName": None} for loc in error.locations or []]
    return {"path": None, "locations": locations, "message": f"Validation error of type {kind}: {text}",
            "errorType": "ValidationError"}


def _execution_error(error: GraphQLError) -> JSON:
    cause = error.original_error
    kind = cause.error_type if isinstance(cause, ApiError) else "InternalFailure"
    return {"path": error.path, "data": None, "errorType": kind, "errorInfo": None, "message": error.message,
            "locations": [{"line": loc.line, "column": loc.column} for loc in error.locations or []]}
