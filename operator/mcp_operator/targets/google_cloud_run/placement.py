"""Where a Cloud Run service goes and what makes one of its revisions: spec.gcp with the defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import RevisionKey
from ...reconcile.desired import Desired, where_of

INGRESS = {"all": "INGRESS_TRAFFIC_ALL", "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
           "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}


@dataclass(frozen=True)
class ServicePlacement:
    project: str
    region: str
    service: str
    image: str
    cpu: str
    memory: str
    port: int
    concurrency: int
    timeout_seconds: int
    service_account: str | None
    execution_environment: str | None
    min_instances: int
    max_instances: int
    ingress: str  # the API's enum name
    public: bool

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def path(self) -> str:
        return f"{self.parent}/services/{self.service}"

    def revision_name(self, key: RevisionKey) -> str:
        """``<service>-<key>``: Cloud Run wants the service's name as the prefix, and a revision name is forever."""
        return f"{self.service}-{key.label}"

    def secret_id(self, variable: str) -> str:
        """The Secret Manager secret that holds one environment variable's value for this service."""
        return f"{self.service}-{variable.lower().replace('_', '-')}"

    @property
    def checkable(self) -> bool:
        """Whether the MCP check can reach a revision's URL anonymously from outside."""
        return self.public and self.ingress == INGRESS["all"]


def service_placement(desired: Desired) -> ServicePlacement:
    return where_of(desired, ServicePlacement)
