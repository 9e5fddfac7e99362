"""The McpDeployment API: the single source of truth for the CRD schema, the docs and the operator.

Field descriptions become `kubectl explain` text; ``x-kubernetes-validations`` (CEL) rules attached
here are enforced by the API server at admission. `crds/` and `docs/api.md` are generated from
this module by ``python -m mcp_operator.api.generate`` (``make generate``), and a test fails when
they drift.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

RECONCILE_REQUESTED_AT = "mcp.deploy.dev/reconcile-requested-at"  # Flux's requestedAt, for a pass now
GROUP = "mcp.deploy.dev"
VERSION = "v1alpha1"
KIND = "McpDeployment"
PLURAL = "mcpdeployments"
SHORT_NAMES = ["mcpd"]

# Container Apps names: lower-case letters, digits and '-', starting with a letter, ending with a
# letter or digit, at most 32 characters, and no '--' (which separates app and revision names).
CONTAINER_APP_NAME = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
# The CPU/memory pairs Container Apps accepts on the consumption plan: memory is twice the CPU.
RESOURCE_COMBINATIONS = [f"{q / 4:g}/{q / 2:g}Gi" for q in range(1, 17)]
CONTAINER_TARGETS = ("azure-container-apps", "google-cloud-run")
# An image reference as the OCI distribution grammar defines it: [registry[:port]/]path[:tag][@algorithm:hex].
_REGISTRY = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = (rf"^{_REGISTRY}{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
                   r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$")


def _rule(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> JsonDict:
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    if reason:
        validation["reason"] = reason
    return validation


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=True)


class TargetType(enum.StrEnum):
    AZURE_CONTAINER_APPS = "azure-container-apps"
    AWS_LAMBDA = "aws-lambda"
    GOOGLE_CLOUD_RUN = "google-cloud-run"
    CLOUDFLARE_WORKERS = "cloudflare-workers"
    PMCP_RUN = "pmcp-run"


class Target(ApiModel):
    """Where the MCP server runs, as `[target] type` in `.pmcp/deploy.toml`. Immutable once set."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("self.type == oldSelf.type", "target.type is immutable; create a new McpDeployment to move to another target",
              reason="FieldValueForbidden"),
    ]})

    type: TargetType = Field(description="The cloud target: azure-container-apps, aws-lambda, google-cloud-run, "
                                         "cloudflare-workers or pmcp-run.")


class SecretKeySelector(ApiModel):
    """A key of a Secret in the McpDeployment's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key within the Secret.")


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeySelector = Field(description="A Secret key. Its value is passed to the cloud as a secret "
                                                          "(Container Apps secret) and never written to status, events or logs.")


class EnvVar(ApiModel):
    """An environment variable of the MCP server, as a `[environment]` or `[secrets]` entry of deploy.toml."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("has(self.value) != has(self.valueFrom)", "set exactly one of value or valueFrom"),
    ]})

    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
                      description="Variable name. PORT is reserved: the operator sets it (azure.targetPort, aws.port, gcp.port).")
    value: str | None = Field(default=None, max_length=32768, description="A literal value (not secret).")
    value_from: EnvVarSource | None = Field(default=None, description="Take the value from a Secret key instead.")


class Resources(ApiModel):
    """CPU and memory of one replica. Container Apps accepts CPU in steps of 0.25 (0.25-4) with twice as many GiB."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("(self.cpu + '/' + self.memory) in " + str(RESOURCE_COMBINATIONS).replace('"', "'"),
              "cpu/memory must be a Container Apps combination: " + ", ".join(RESOURCE_COMBINATIONS)),
    ]})

    cpu: str = Field(default="0.5", pattern=r"^[0-9]+(\.[0-9]+)?$", description="vCPU per replica, e.g. \"0.5\".")
    memory: str = Field(default="1Gi", pattern=r"^[0-9]+(\.[0-9]+)?Gi$", description="Memory per replica, e.g. \"1Gi\".")


ARTIFACT_TARGETS = ("cloudflare-workers", "pmcp-run")
OCI_BY_DIGEST = (rf"^{_REGISTRY}{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*@sha256:[0-9a-f]{{64}}$")


class Artifact(ApiModel):
    """A built bundle that is not a container image (a Worker's modules; pmcp.run's template and bootstrap), pinned
    so that a revision is reproducible: an OCI artifact by digest, or an HTTPS URL with its SHA-256."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("has(self.oci) != has(self.url)", "set exactly one of artifact.oci and artifact.url"),
        _rule("!has(self.url) || has(self.sha256)", "artifact.url needs artifact.sha256: the bundle is pinned by its checksum",
              field_path=".sha256"),
    ]})

    oci: str | None = Field(default=None, max_length=1024, pattern=OCI_BY_DIGEST,
                            description="An OCI artifact by digest, e.g. ghcr.io/acme/calc-worker@sha256:<64 hex> (one "
                                        "layer per file, named by its org.opencontainers.image.title annotation, as "
                                        "`kubectl mcp bundle push` and ORAS make them).")
    url: str | None = Field(default=None, max_length=2048, pattern=r"^https://[^\s]+$",
                            description="An HTTPS URL of a .tar.gz of the bundle's files.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the file at url.")

    @property
    def reference(self) -> str:
        """One line naming it, for status and messages."""
        return self.oci or f"{self.url}#sha256={self.sha256}"


class Server(ApiModel):
    """The MCP server, as `[server]` in deploy.toml."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("!has(self.env) || !self.env.exists(e, e.name == 'PORT')",
              "server.env must not set PORT: the operator sets PORT (azure.targetPort, aws.port, gcp.port) so server and ingress agree",
              field_path=".env"),
        _rule("!has(self.name) || !self.name.contains('--')", "server.name must not contain '--' (Container Apps naming rules)",
              field_path=".name"),
    ]})

    name: str | None = Field(default=None, min_length=1, max_length=32, pattern=CONTAINER_APP_NAME,
                             description="App name in the cloud (default: metadata.name). Container Apps rules: lower-case "
                                         "letters, digits and '-', start with a letter, end with a letter or digit, "
                                         "at most 32 characters, no '--'.")
    image: str | None = Field(default=None, min_length=1, max_length=1024, pattern=IMAGE_REFERENCE,
                              description="Container image, e.g. ghcr.io/acme/calculator:1.2.0 (required for container "
                                          "targets). Prefer a digest or an immutable tag: the image is part of the revision.")
    artifact: Artifact | None = Field(default=None, description="The built bundle, for targets that run no container "
                                                                 "image (cloudflare-workers, pmcp-run).")
    env: list[EnvVar] = Field(default_factory=list, max_length=256,
                              json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
                              description="Environment variables passed to the container.")
    resources: Resources = Field(default=Resources(), description="CPU and memory per replica.")
    allowed_origins: list[str] = Field(default=["*"], min_length=1, max_length=64,
                                       json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 512}},
                                       description="Origins allowed by the ingress CORS policy (default [\"*\"], like the pmcp "
                                                   "scaffold). Restrict it to your clients' origins in production.")


class Azure(ApiModel):
    """Azure Container Apps settings, as `[azure]` in deploy.toml. Unset fields take the operator's defaults, then built-ins."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("self.maxReplicas >= self.minReplicas", "azure.maxReplicas must be greater than or equal to azure.minReplicas",
              field_path=".maxReplicas"),
    ]})

    subscription_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
                                        description="Azure subscription id (a UUID). Default: the operator's configured "
                                                    "subscription.")
    resource_group: str | None = Field(default=None, min_length=1, max_length=90, pattern=r"^[-\w._()]*[-\w_()]$",
                                       description="Resource group (default: <server name>-rg). Created when missing.")
    location: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9 ]+$",
                                 description="Azure region (default: the operator's configured location, else eastus).")
    environment: str | None = Field(default=None, min_length=2, max_length=60, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
                                    description="Container Apps managed environment (default: <server name>-env). "
                                                "Created when missing.")
    target_port: int = Field(default=8080, ge=1, le=65535,
                             description="Ingress target port; the container also gets PORT set to it.")
    min_replicas: int = Field(default=1, ge=0, le=1000,
                              description="Minimum replicas (default 1: MCP clients suffer from cold starts).")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="Maximum replicas (default 10).")


class AwsS3Code(ApiModel):
    """A zip package in S3: the `bootstrap` that cargo-pmcp builds for a `provided.al2023` function."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$", description="S3 bucket.")
    key: str = Field(min_length=1, max_length=1024, description="Object key of the zip.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                               description="Hex SHA-256 of the zip. Pins the revision to these bytes (Lambda refuses to "
                                           "publish other code); without it the operator reads the object to hash it.")


class Aws(ApiModel):
    """AWS Lambda settings, as `[aws]` and the Lambda keys of `[server]` in deploy.toml.

    Each revision is a published Lambda version; traffic is the alias `live`, reached through its function URL.
    The code is either `server.image` (a container image in ECR; an HTTP server needs the Lambda Web Adapter in
    the image) or `aws.s3` (a zip)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("!has(self.provisionedConcurrency) || !has(self.reservedConcurrency) || "
              "self.provisionedConcurrency <= self.reservedConcurrency",
              "aws.provisionedConcurrency must not exceed aws.reservedConcurrency", field_path=".provisionedConcurrency"),
    ]})

    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+$",
                               description="AWS region, e.g. us-east-1 (default: the operator's AWS_REGION).")
    account_id: str | None = Field(default=None, pattern=r"^[0-9]{12}$", description="AWS account id (12 digits), for "
                                                                                       "the execution role's ARN.")
    memory_mb: int = Field(default=512, ge=128, le=10240, description="Lambda memory in MB (default 512).")
    timeout_seconds: int = Field(default=30, ge=1, le=900, description="Lambda timeout in seconds (default 30).")
    s3: AwsS3Code | None = Field(default=None, description="A zip in S3 instead of server.image.")
    runtime: str = Field(default="provided.al2023", pattern=r"^[a-z0-9.]+$",
                         description="Runtime of a zip package (default provided.al2023, what cargo-pmcp targets).")
    handler: str = Field(default="bootstrap", min_length=1, max_length=128, description="Handler of a zip package.")
    architecture: Literal["x86_64", "arm64"] | None = Field(default=None,
                                     description="x86_64 or arm64 (default: arm64 for a zip, as cargo-pmcp builds it; "
                                                 "x86_64 for an image).")
    execution_role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-zA-Z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$",
                                           description="The function's execution role. Default: a role the operator "
                                                       "creates (<function>-mcp-exec) with only the basic logging policy, "
                                                       "tagged as its own, and deletes with the function.")
    url_auth_type: Literal["NONE", "AWS_IAM"] = Field(default="NONE",
                               description="Function URL auth: NONE (public; the server does its own OAuth) or AWS_IAM "
                                           "(callers sign with SigV4; the MCP check is then skipped).")
    invoke_mode: Literal["BUFFERED", "RESPONSE_STREAM"] = Field(default="BUFFERED",
                             description="BUFFERED, or RESPONSE_STREAM for servers that stream (SSE).")
    port: int = Field(default=8080, ge=1, le=65535,
                      description="The port the server listens on inside the function (PORT and AWS_LWA_PORT).")
    reserved_concurrency: int | None = Field(default=None, ge=1, le=10000,
                                             description="Concurrent executions reserved for the function (and its "
                                                         "ceiling). Unset: the account's unreserved pool.")
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=10000,
                                                description="Execution environments kept initialised for the alias live "
                                                            "(a warm server; billed while allocated). Unset: none.")


class Gcp(ApiModel):
    """Google Cloud Run settings, as `[gcp]` and the Cloud Run keys of `[server]` in deploy.toml.

    Each revision is a Cloud Run revision named `<service>-<revision key>`, with a traffic tag of the same key that
    gives it a URL of its own (where the MCP check reaches it before traffic moves). Scaling, ingress and public
    access are service settings: changing them makes no revision."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("self.maxInstances >= self.minInstances", "gcp.maxInstances must be greater than or equal to gcp.minInstances",
              field_path=".maxInstances"),
        _rule("quantity(self.memory).compareTo(quantity('128Mi')) >= 0 && "
              "quantity(self.memory).compareTo(quantity(self.cpu == '1' ? '4Gi' : self.cpu == '2' ? '8Gi' : "
              "self.cpu == '4' ? '16Gi' : self.cpu == '6' ? '24Gi' : '32Gi')) <= 0 && "
              "quantity(self.memory).compareTo(quantity(self.cpu == '4' ? '2Gi' : (self.cpu == '6' || self.cpu == '8') ? "
              "'4Gi' : '128Mi')) >= 0",
              "gcp.memory does not suit gcp.cpu; Cloud Run accepts 1 CPU with 128Mi-4Gi, 2 with 128Mi-8Gi, 4 with 2Gi-16Gi, "
              "6 with 4Gi-24Gi, 8 with 4Gi-32Gi", field_path=".memory"),
    ]})

    project_id: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
                                   description="Google Cloud project id (default: the operator's GOOGLE_CLOUD_PROJECT, else "
                                               "the project of its credentials).")
    region: str = Field(default="us-central1", pattern=r"^[a-z]+-[a-z]+[0-9]+$", description="Cloud Run region (default us-central1).")
    repository: str | None = Field(default=None, max_length=256, description="Artifact Registry repository the CLI pushes "
                                                                              "images to (kept from deploy.toml; the operator "
                                                                              "deploys server.image as given).")
    memory: str = Field(default="512Mi", pattern=r"^[0-9]+(Mi|Gi)$", description="Memory per instance (default 512Mi).")
    cpu: Literal["1", "2", "4", "6", "8"] = Field(default="1", description="vCPU per instance: 1, 2, 4, 6 or 8 (default 1).")
    min_instances: int = Field(default=0, ge=0, le=1000, description="Minimum instances of the service (default 0). A "
                                                                      "service setting: no new revision.")
    max_instances: int = Field(default=10, ge=1, le=1000, description="Maximum instances of the service (default 10). A "
                                                                       "service setting: no new revision.")
    ingress: Literal["all", "internal", "internal-and-cloud-load-balancing"] = Field(
        default="all", description="Who may reach the service: all (the internet), internal, or "
                                   "internal-and-cloud-load-balancing. The MCP check needs all.")
    allow_unauthenticated: bool = Field(default=True, description="Grant roles/run.invoker to allUsers (public, as "
                                                                  "`gcloud run deploy --allow-unauthenticated`; the server "
                                                                  "does its own OAuth). false removes the binding; callers "
                                                                  "then need an identity token and the MCP check is skipped.")
    concurrency: int = Field(default=80, ge=1, le=1000, description="Requests one instance serves at once (default 80).")
    timeout_seconds: int = Field(default=300, ge=1, le=3600, description="Request timeout in seconds; SSE streams end "
                                                                          "there (default 300).")
    service_account: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com$",
                                        description="The revision's service account (default: the project's compute "
                                                    "default). It needs secretmanager.secretAccessor on the secrets.")
    execution_environment: Literal["gen1", "gen2"] | None = Field(default=None, description="gen1 or gen2 (default: "
                                                                                              "Cloud Run's choice).")
    port: int = Field(default=8080, ge=1, le=65535, description="The container port; PORT is set to it (default 8080).")


class Cloudflare(ApiModel):
    """Cloudflare Workers settings, as the Workers keys of deploy.toml and wrangler.toml.

    Each revision is an immutable Worker version uploaded from `server.artifact`; traffic is the Worker's
    deployment (one or two versions by percentage), served at its workers.dev URL."""

    account_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$",
                                   description="Cloudflare account id (32 hex; default: the operator's CLOUDFLARE_ACCOUNT_ID).")
    script_name: str | None = Field(default=None, min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
                                    description="The Worker's name (default: server.name, else metadata.name): lower-case "
                                                "letters, digits and '-', at most 63 characters.")
    compatibility_date: str = Field(default="2025-09-01", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                    description="The Workers runtime's compatibility date (default 2025-09-01).")
    compatibility_flags: list[str] = Field(default_factory=list, max_length=32,
                                           description="Compatibility flags, e.g. nodejs_compat.")
    workers_dev: bool = Field(default=True, description="Serve at https://<script>.<account subdomain>.workers.dev "
                                                        "(status.url). Off: no URL the operator can give or check.")
    preview_urls: bool = Field(default=True, description="Version preview URLs, where the MCP check reaches a version "
                                                         "before traffic moves. Off: the check is skipped.")
    main_module: str | None = Field(default=None, min_length=1, max_length=256,
                                    description="The bundle's main module (default: the artifact's own annotation, else "
                                                "its only .mjs file, else shim.mjs as worker-build names it).")


class PmcpRunOAuth(ApiModel):
    """OAuth for the MCP endpoint, as `[auth]` in deploy.toml: pmcp.run runs the authorization server (a user pool per
    server, or a shared one) and asks MCP clients for a token. Applied after a deployment succeeds; no new deployment."""

    enabled: bool = Field(default=False, description="Require OAuth tokens at the MCP URL (configureServerOAuth); false "
                                                     "disables it (disableServerOAuth).")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "mcp/read"], max_length=32,
                              json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 128}},
                              description="Scopes clients may ask for ([auth.dcr] default_scopes).")
    dcr_enabled: bool = Field(default=True, description="Dynamic client registration, so MCP clients register themselves.")
    public_client_patterns: list[str] = Field(default_factory=list, max_length=32,
                                              json_schema_extra={"items": {"type": "string", "minLength": 1,
                                                                           "maxLength": 128}},
                                              description="Client names allowed as public clients (e.g. claude, cursor).")
    shared_pool_name: str | None = Field(default=None, min_length=1, max_length=128,
                                         description="A shared user pool of the organisation instead of one per server.")


class PmcpRun(ApiModel):
    """pmcp.run settings, as the pmcp-run keys of deploy.toml. pmcp.run keeps no revisions: each revision is a new
    deployment (a CloudFormation stack update) that replaces the serving one when it succeeds."""

    api_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[^\s]+$",
                                description="pmcp.run's API base URL (default: the operator's PMCP_API_URL, else "
                                            "https://api.pmcp.run); its /.well-known/pmcp-config names the GraphQL endpoint.")
    project_name: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
                                     description="The server's name at pmcp.run (default: server.name, else metadata.name).")
    server_version: str | None = Field(default=None, min_length=1, max_length=64,
                                       description="The version sent with each deployment (cargo-pmcp sends the crate's).")
    memory_size: int = Field(default=512, ge=128, le=10240, description="Lambda memory in MB (cargo-pmcp sends 512).")
    timeout: int = Field(default=30, ge=1, le=900, description="Lambda timeout in seconds (cargo-pmcp sends 30).")
    tier: str | None = Field(default=None, min_length=1, max_length=64, description="[composition] tier.")
    allow_composition: bool | None = Field(default=None, description="[composition] allow_composition.")
    internal_only: bool | None = Field(default=None, description="[composition] internal_only.")
    composition_description: str | None = Field(default=None, max_length=1024, description="[composition] description.")
    oauth: PmcpRunOAuth = Field(default_factory=PmcpRunOAuth, description="OAuth at the MCP endpoint ([auth]).")


class SecretReference(ApiModel):
    """A Secret in the McpDeployment's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")


class Credentials(ApiModel):
    """Cloud credentials for this resource. Without it the operator's own identity is used (workload identity).
    azure-container-apps: the Secret holds AZURE_TENANT_ID and AZURE_CLIENT_ID, plus either AZURE_CLIENT_SECRET or
    AZURE_FEDERATED_TOKEN. aws-lambda: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for
    temporary keys). google-cloud-run: credentials.json, a service-account key file or an external-account
    (workload identity federation) configuration. cloudflare-workers: CLOUDFLARE_API_TOKEN. pmcp-run: PMCP_CLIENT_ID
    and PMCP_CLIENT_SECRET (client credentials), or PMCP_ACCESS_TOKEN."""

    secret_ref: SecretReference = Field(description="The Secret with the credential.")


class SmokeTest(ApiModel):
    """One tool call a new revision must answer as expected before it takes traffic."""

    tool: str = Field(min_length=1, max_length=128, description="The tool to call, e.g. add.")
    arguments: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
                                      description="Its arguments, as a JSON object, e.g. {a: 2, b: 3}.")
    expect: str | None = Field(default=None, max_length=1024,
                               description="Text the result must contain, e.g. \"5\". Unset: any result that is not an "
                                           "error passes.")


class Verify(ApiModel):
    """The MCP handshake a new revision must pass on its own URL before it takes traffic."""

    enabled: bool = Field(default=True, description="Check each new revision with the MCP handshake (initialize and "
                                                    "tools/list) on its own URL before traffic moves to it.")
    path: str = Field(default="/", pattern=r"^/[-._~/a-zA-Z0-9]*$", max_length=256,
                      description="The server's MCP endpoint path (pmcp serves /; many servers use /mcp).")
    timeout_seconds: int = Field(default=60, ge=5, le=1800,
                                 description="How long a new revision may take to answer the handshake (checks are "
                                             "repeated meanwhile, e.g. while it starts) before the rollout stalls.")
    expected_tools: list[str] = Field(default_factory=list, max_length=100,
                                      description="Tools the server must list (deploy.toml [post_deploy_tests]); a "
                                                  "missing one fails the check.")
    periodic: bool = Field(default=False, description="Also check the serving revision at each drift check "
                                                      "(MCP_DRIFT_INTERVAL): a failure sets the condition Degraded, with "
                                                      "the reason; traffic is not moved on its own.")
    smoke_test: SmokeTest | None = Field(default=None, description="A tool call the revision must answer as expected "
                                                                   "(after initialize and tools/list).")
    token_secret_ref: SecretKeySelector | None = Field(default=None,
                                                       description="A bearer token for servers that require "
                                                                   "authentication, sent as Authorization: Bearer.")


class RolloutStep(ApiModel):
    """One step of a progressive rollout: this share of traffic on the new revision, held this long."""

    percent: int = Field(ge=1, le=99, description="Percent of traffic the new revision receives in this step.")
    pause_seconds: int = Field(default=60, ge=0, le=86400,
                               description="How long the step is held before the next one (default 60).")


class Rollout(ApiModel):
    """How traffic moves to a new revision that passed its MCP check: at once (no steps), or in steps."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("self.steps.map(s, s.percent).isSorted() && self.steps.all(s, self.steps.filter(t, t.percent == s.percent)"
              ".size() == 1)", "rollout.steps must have strictly increasing percents", field_path=".steps"),
    ]})

    steps: list[RolloutStep] = Field(default_factory=list, max_length=10,
                                     description="Shares of traffic for the new revision before it gets 100%, e.g. 10% "
                                                 "for 2 minutes, then 50% for 2 minutes. A revision that fails meanwhile "
                                                 "loses its share at once. Empty: 100% at once. Only for targets that "
                                                 "can split traffic (not pmcp-run). The first revision of a resource, "
                                                 "with nothing to share with, gets 100% at once.")


class DeletionPolicy(enum.StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


class AdoptionPolicy(enum.StrEnum):
    REFUSE = "Refuse"
    ADOPT = "Adopt"


class McpDeploymentSpec(ApiModel):
    """The desired state of an MCP server deployment: the settings of `.pmcp/deploy.toml`, declaratively."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _rule("!(self.target.type in " + str(list(CONTAINER_TARGETS)).replace('"', "'") + ") || has(self.server.image)",
              "server.image is required for container targets (azure-container-apps, google-cloud-run)",
              field_path=".server.image", reason="FieldValueRequired"),
        _rule("!has(self.azure) || self.target.type == 'azure-container-apps'",
              "spec.azure applies only to target.type azure-container-apps", field_path=".azure"),
        _rule("self.target.type != 'aws-lambda' || (has(self.server.image) != (has(self.aws) && has(self.aws.s3)))",
              "aws-lambda needs exactly one of server.image (a container image in ECR) and aws.s3 (a zip in S3)",
              field_path=".server.image"),
        _rule("!has(self.rollout) || !has(self.rollout.steps) || size(self.rollout.steps) == 0 || "
              "self.target.type != 'pmcp-run'", "pmcp-run cannot split traffic between deployments: remove rollout.steps",
              field_path=".rollout.steps"),
        _rule("!has(self.aws) || self.target.type == 'aws-lambda'", "spec.aws applies only to target.type aws-lambda",
              field_path=".aws"),
        _rule("!has(self.gcp) || self.target.type == 'google-cloud-run'",
              "spec.gcp applies only to target.type google-cloud-run", field_path=".gcp"),
        _rule("!has(self.cloudflare) || self.target.type == 'cloudflare-workers'",
              "spec.cloudflare applies only to target.type cloudflare-workers", field_path=".cloudflare"),
        _rule("self.target.type != 'cloudflare-workers' || (has(self.server.artifact) && !has(self.server.image))",
              "cloudflare-workers runs a bundle, not an image: set server.artifact (an OCI artifact by digest, or an "
              "HTTPS URL with sha256) and no server.image", field_path=".server.artifact"),
        _rule("!has(self.pmcpRun) || self.target.type == 'pmcp-run'", "spec.pmcpRun applies only to target.type pmcp-run",
              field_path=".pmcpRun"),
        _rule("self.target.type != 'pmcp-run' || (has(self.server.artifact) && !has(self.server.image))",
              "pmcp-run deploys the template and bootstrap cargo pmcp builds, not an image: set server.artifact (an OCI "
              "artifact by digest, or an HTTPS URL with sha256) and no server.image", field_path=".server.artifact"),
        _rule("!has(self.server.artifact) || self.target.type in " + str(list(ARTIFACT_TARGETS)).replace('"', "'"),
              "server.artifact applies only to cloudflare-workers and pmcp-run", field_path=".server.artifact"),
    ]})

    target: Target = Field(description="Where the server runs.")
    server: Server = Field(description="The MCP server: name, image, environment, resources and CORS origins.")
    azure: Azure | None = Field(default=None, description="Settings for target.type azure-container-apps.")
    aws: Aws | None = Field(default=None, description="Settings for target.type aws-lambda.")
    gcp: Gcp | None = Field(default=None, description="Settings for target.type google-cloud-run.")
    cloudflare: Cloudflare | None = Field(default=None, description="Settings for target.type cloudflare-workers.")
    pmcp_run: PmcpRun | None = Field(default=None, description="Settings for target.type pmcp-run.")
    credentials: Credentials | None = Field(default=None, description="Per-resource cloud credentials (optional).")
    rollout: Rollout = Field(default_factory=Rollout, description="How traffic moves to a new revision (at once by "
                                                                   "default, or in steps).")
    verify: Verify = Field(default_factory=Verify, description="The MCP check a revision passes before it takes "
                                                               "traffic (on by default).")
    revision_history_limit: int = Field(default=10, ge=1, le=100,
                                        description="How many revisions status.revisions keeps (default 10). Older "
                                                    "revisions can no longer be rolled back to by a spec edit.")
    deletion_policy: DeletionPolicy = Field(default=DeletionPolicy.DELETE,
                                            description="Delete: deleting the McpDeployment deletes the app, and the "
                                                        "environment and resource group when this operator created them "
                                                        "and they are empty. Retain: leave everything in the cloud.")
    adoption_policy: AdoptionPolicy = Field(default=AdoptionPolicy.REFUSE,
                                            description="What to do when the cloud resource already exists and was "
                                                        "not created by this McpDeployment. Refuse: leave it untouched and "
                                                        "report Stalled (AdoptionRefused). Adopt: take it over; its "
                                                        "template and tags are overwritten, and deletionPolicy Delete then "
                                                        "deletes it. A resource of another McpDeployment is never adopted.")
    suspend: bool = Field(default=False, description="Observe only: report status but make no cloud writes "
                                                     "(no create, update, traffic change or delete).")


# ----- status ---------------------------------------------------------------------------------------


class Condition(ApiModel):
    """A metav1.Condition."""

    type: str = Field(description="Ready, Reconciling, Stalled or InsecureIngress.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason, machine-readable.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, description="The metadata.generation the condition is about.")


class TargetSnapshot(ApiModel):
    """The target's own spec fields that make a revision, as the spec had them (defaults filled in)."""

    section: str = Field(description="The spec key they belong to (the target's section of the spec).")
    settings: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
                                     description="Those fields, verbatim: a rollback merges them back into that section.")


class RevisionSnapshot(ApiModel):
    """The spec fields that make a revision: restoring them restores the revision, whatever the target."""

    image: str = Field(description="server.image (for an artifact, its reference)")
    artifact: Artifact | None = Field(default=None, description="server.artifact, where the revision was built from one")
    env: list[EnvVar] = Field(default_factory=list, description="server.env (secret references, never values)")
    resources: Resources = Field(default_factory=Resources, description="server.resources")
    target: TargetSnapshot | None = Field(default=None, description="The target's own fields that make a revision.")
    secrets_digest: str | None = Field(default=None, description="Short digest of the Secret values the revision was "
                                       "given (never the values): it changes when a referenced key is rotated, and "
                                       "tells which key generation each revision ran.")


class McpCheck(ApiModel):
    """What the MCP handshake on the revision's own URL found."""

    result: str = Field(description="Passed or Failed.")
    url: str = Field(description="Where it was checked: the revision's own URL and spec.verify.path.")
    checked_at: str = Field(description="When the last check ran (RFC 3339).")
    first_checked_at: str = Field(description="When the first check of this revision ran (RFC 3339).")
    protocol_version: str | None = Field(default=None, description="The MCP protocol version the server chose.")
    server_name: str | None = Field(default=None, description="serverInfo.name")
    server_version: str | None = Field(default=None, description="serverInfo.version")
    tool_count: int | None = Field(default=None, description="How many tools tools/list returned.")
    latency_ms: int | None = Field(default=None, description="Time of initialize + tools/list, in milliseconds.")
    smoke_test: str | None = Field(default=None, description="What the spec.verify.smokeTest call returned (its text, "
                                                             "shortened).")
    reason: str | None = Field(default=None, description="Why it failed (McpHostRejected, McpUnreachable, ...).")
    final: bool | None = Field(default=None, description="True: the failure is not checked again (it failed with a share "
                                                         "of traffic during a progressive rollout, which went back).")
    message: str | None = Field(default=None, description="What failed, in the server's words, and what to change.")


class RevisionRecord(ApiModel):
    """One revision this resource created, newest last."""

    number: int = Field(description="Monotonically increasing revision number of this McpDeployment.")
    name: str = Field(description="The revision's name in the cloud.")
    image: str = Field(description="The container image of the revision.")
    created_at: str = Field(description="When the operator asked for the revision (RFC 3339).")
    ready_at: str | None = Field(default=None, description="When the cloud first showed it ready (RFC 3339).")
    state: str = Field(description="Pending, Provisioning, Ready, Failed, Inactive or Gone.")
    traffic_weight: int = Field(default=0, description="Percent of traffic it receives.")
    hash: str = Field(description="Hash of the snapshot; equal hashes mean equal revisions.")
    snapshot: RevisionSnapshot = Field(description="The spec fields needed to restore this revision.")
    message: str | None = Field(default=None, description="Why it failed, when it did.")
    mcp: McpCheck | None = Field(default=None, description="The MCP handshake on its own URL, before it took traffic.")


class PendingOperation(ApiModel):
    """A cloud operation in flight, so that a restarted operator resumes it instead of starting over."""

    kind: str = Field(description="What is in progress: Infrastructure, Rollout, Traffic, Delete.")
    revision_number: int | None = Field(default=None, description="The revision the operation is about.")
    started_at: str = Field(description="When it started (RFC 3339).")
    token: str | None = Field(default=None, description="The SDK poller's continuation token.")
    attempts: int = Field(default=0, description="How many times the operation was (re)issued.")
    step: int | None = Field(default=None, description="A progressive rollout's step in effect (0 is the first).")
    step_started_at: str | None = Field(default=None, description="When that step's traffic was sent (RFC 3339).")


class AzureStatus(ApiModel):
    """What the Container Apps target resolved and saw: where the app is, and ARM's word for its state."""

    subscription_id: str | None = None
    resource_group: str | None = None
    environment: str | None = None
    location: str | None = None
    app_name: str | None = None
    provisioning_state: str | None = Field(default=None, description="The app's provisioningState in ARM.")


class AwsStatus(ApiModel):
    """What the Lambda target resolved and saw: the function, its alias and Lambda's word for their state."""

    region: str | None = None
    function_name: str | None = None
    function_arn: str | None = None
    alias: str | None = Field(default=None, description="The alias that receives traffic (live).")
    execution_role_arn: str | None = None
    state: str | None = Field(default=None, description="The function's State ($LATEST).")
    last_update_status: str | None = Field(default=None, description="LastUpdateStatus of $LATEST.")
    reserved_concurrency: int | None = Field(default=None, description="The function's reserved concurrency, as set.")
    provisioned_concurrency: int | None = Field(default=None, description="Provisioned concurrency requested on live.")
    provisioned_concurrency_status: str | None = Field(default=None, description="IN_PROGRESS, READY or FAILED.")


class GcpStatus(ApiModel):
    """What the Cloud Run target resolved and saw: the service and Cloud Run's word for its rollout."""

    project_id: str | None = None
    region: str | None = None
    service: str | None = None
    uri: str | None = Field(default=None, description="The service's URI.")
    latest_ready_revision: str | None = None
    latest_created_revision: str | None = None
    observed_generation: str | None = Field(default=None, description="The service's observedGeneration in Cloud Run.")
    public: bool | None = Field(default=None, description="Whether allUsers holds roles/run.invoker.")


class CloudflareStatus(ApiModel):
    """What the Workers target resolved and saw: the Worker, its deployment and the bundle it runs."""

    account_id: str | None = None
    script_name: str | None = None
    subdomain: str | None = Field(default=None, description="The account's workers.dev subdomain.")
    deployment_id: str | None = Field(default=None, description="The active deployment.")
    version_ids: str | None = Field(default=None, description="The versions the active deployment routes to, comma-separated.")
    bundle_digest: str | None = Field(default=None, description="The digest of the bundle the newest version was built from.")


class PmcpRunStatus(ApiModel):
    """What the pmcp.run target resolved and saw: the server, its newest deployment and its OAuth endpoints."""

    api_url: str | None = None
    project_name: str | None = None
    deployment_id: str | None = Field(default=None, description="The deployment that serves.")
    deployment_status: str | None = Field(default=None, description="pmcp.run's status of the newest deployment.")
    health_url: str | None = Field(default=None, description="The server's health URL.")
    bundle_digest: str | None = Field(default=None, description="The digest of the artifact the newest deployment was made from.")
    oauth_enabled: bool | None = None
    discovery_url: str | None = Field(default=None, description="OAuth discovery document (when OAuth is on).")
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    registration_endpoint: str | None = None
    user_pool_id: str | None = None


class TrafficTarget(ApiModel):
    """One revision's share of traffic, as the cloud routes it now (Knative's status.traffic)."""

    revision_name: str = Field(description="The revision's name or id in the cloud.")
    revision_number: int | None = Field(default=None, description="Its number in status.revisions (absent: not ours).")
    percent: int = Field(description="Percent of traffic it receives.")
    url: str | None = Field(default=None, description="Where this revision alone answers (a traffic tag's URL), where "
                                                      "the target gives one.")


class McpDeploymentStatus(ApiModel):
    """The observed state, written only by the operator."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = Field(default=None, description="The metadata.generation last reconciled.")
    last_handled_reconcile_at: str | None = Field(default=None, description="The value of the annotation "
                                                  "mcp.deploy.dev/reconcile-requested-at that the last pass answered (set "
                                                  "the annotation to any new value, e.g. a time, to ask for a pass now).")
    fqdn: str | None = Field(default=None, description="Fully qualified domain name the server answers on.")
    url: str | None = Field(default=None, description="The MCP endpoint: https://<fqdn>/.")
    traffic: list[TrafficTarget] = Field(default_factory=list, description="How traffic is split now, by revision.")
    traffic_summary: str | None = Field(default=None, description="The same in one line, largest share first, e.g. "
                                                                  "\"#1 90%, #2 10%\" (kubectl get's Traffic column).")
    azure: AzureStatus | None = Field(default=None, description="Container Apps' own facts (target azure-container-apps).")
    aws: AwsStatus | None = Field(default=None, description="Lambda's own facts (target aws-lambda).")
    gcp: GcpStatus | None = Field(default=None, description="Cloud Run's own facts (target google-cloud-run).")
    cloudflare: CloudflareStatus | None = Field(default=None, description="Cloudflare's own facts (target cloudflare-workers).")
    pmcp_run: PmcpRunStatus | None = Field(default=None, description="pmcp.run's own facts (target pmcp-run).")
    latest_revision: str | None = Field(default=None, description="The newest revision created for the current spec.")
    serving_check: McpCheck | None = Field(default=None, description="The last periodic MCP check of the serving revision "
                                                                     "(spec.verify.periodic).")
    serving_revision: str | None = Field(default=None, description="The revision that receives the largest share of "
                                                                    "traffic (all of it, but during a progressive rollout).")
    revision_counter: int = Field(default=0, description="The last revision number handed out.")
    revisions: list[RevisionRecord] = Field(default_factory=list, description="Revision history, newest last, at most "
                                                                               "spec.revisionHistoryLimit entries.")
    pending: PendingOperation | None = Field(default=None, description="A cloud operation in flight.")
    created_infrastructure: list[str] = Field(default_factory=list, description="Cloud resources this operator created for "
                                                                                 "this McpDeployment (resource group, "
                                                                                 "environment).")
    conditions: list[Condition] = Field(default_factory=list,
                                        json_schema_extra={"x-kubernetes-list-type": "map",
                                                           "x-kubernetes-list-map-keys": ["type"]},
                                        description="Ready, Reconciling, Stalled (kstatus), InsecureIngress, and "
                                                    "Degraded with spec.verify.periodic.")


# status.<section> of each target: the same key as its spec section (camelCase, as in the resource).
TARGET_STATUS_SECTIONS = ("azure", "aws", "gcp", "cloudflare", "pmcpRun")


def _status_field(section: str) -> str:
    """The status model's attribute for a section key (pmcpRun -> pmcp_run)."""
    if section not in TARGET_STATUS_SECTIONS:
        raise ValueError(f"no status section {section!r}")
    return next(name for name, info in McpDeploymentStatus.model_fields.items() if (info.alias or name) == section)


def set_target_status(status: McpDeploymentStatus, section: str, facts: dict[str, Any]) -> None:
    """Sets a target's own status object from its facts (camelCase keys), leaving the others untouched."""
    attribute = _status_field(section)
    kind = McpDeploymentStatus.model_fields[attribute].annotation
    model = next(t for t in getattr(kind, "__args__", (kind,)) if isinstance(t, type) and issubclass(t, ApiModel))
    setattr(status, attribute, model.model_validate(facts))


def target_status(status: McpDeploymentStatus) -> dict[str, Any]:
    """The target's own status object, whichever target it is, as JSON (camelCase)."""
    for section in TARGET_STATUS_SECTIONS:
        value = getattr(status, _status_field(section))
        if value is not None:
            return value.model_dump(by_alias=True, exclude_none=True, mode="json")  # type: ignore[no-any-return]
    return {}


def status_to_k8s(status: McpDeploymentStatus) -> dict[str, Any]:
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")
