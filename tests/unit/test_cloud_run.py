"""The google-cloud-run target's pure parts: reading a spec, request bodies, and Cloud Run's answers read as neutral
revisions. No I/O."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcp_operator.api.models import McpDeploymentSpec
from mcp_operator.contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Phase, RevisionKey
from mcp_operator.reconcile.desired import Desired, SpecError, resolve
from mcp_operator.settings import Settings
from mcp_operator.targets.google_cloud_run import bodies
from mcp_operator.targets.google_cloud_run.client import GoogleApiError, classify
from mcp_operator.targets.google_cloud_run.connect import CloudRunConnector
from mcp_operator.targets.google_cloud_run.settings import GcpSettings

CONNECTOR = CloudRunConnector(Settings(), GcpSettings(Settings(), default_project="team-project"))
KEY1, KEY2 = RevisionKey(1, "aaaaaaaa11111111"), RevisionKey(2, "bbbbbbbb22222222")
R1, R2 = "calc-r1-aaaaaaaa", "calc-r2-bbbbbbbb"
URI = "https://calc-abc-uc.a.run.app"


def want(**spec: Any) -> Desired:
    body: dict[str, Any] = {"target": {"type": "google-cloud-run"}, "server": {"image": "gcr.io/p/calc:1"}}
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value}
    return resolve(McpDeploymentSpec.model_validate(body), "calc", "team", CONNECTOR)


def service(statuses: list[dict[str, Any]], reconciling: bool = False, generation: int = 2, **extra: Any) -> dict[str, Any]:
    return {"name": "projects/team-project/locations/us-central1/services/calc", "generation": str(generation),
            "observedGeneration": str(generation if not reconciling else generation - 1), "reconciling": reconciling,
            "uri": URI, "annotations": {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: "team.calc"}, "ingress": "INGRESS_TRAFFIC_ALL",
            "scaling": {"minInstanceCount": 0, "maxInstanceCount": 10}, "trafficStatuses": statuses,
            "latestCreatedRevision": f"projects/team-project/locations/us-central1/services/calc/revisions/{R2}",
            "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED"}, **extra}


def revision(name: str, state: str = "CONDITION_SUCCEEDED", message: str | None = None) -> dict[str, Any]:
    condition = {"type": "Ready", "state": state, **({"message": message} if message else {})}
    return {"name": f"projects/team-project/locations/us-central1/services/calc/revisions/{name}", "conditions": [condition]}


PUBLIC_POLICY = {"etag": "e1", "bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}


def test_a_spec_cloud_run_cannot_take_names_the_field() -> None:
    with pytest.raises(SpecError) as refused:
        want(server={"env": [{"name": "K_SERVICE", "value": "x"}]})
    assert refused.value.field == "spec.server.env"


@pytest.mark.parametrize("name", ["calc.v2", "c" * 41])
def test_a_metadata_name_that_cannot_name_a_service_asks_for_server_name(name: str) -> None:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "google-cloud-run"}, "server": {"image": "gcr.io/p/c:1"}})
    with pytest.raises(SpecError, match="at most 40 characters") as refused:
        resolve(spec, name, "team", CONNECTOR)
    assert refused.value.field == "spec.server.name"


def test_without_a_project_anywhere_the_error_names_the_field_and_the_setting() -> None:
    connector = CloudRunConnector(Settings(), GcpSettings(Settings()))
    spec = McpDeploymentSpec.model_validate({"target": {"type": "google-cloud-run"}, "server": {"image": "gcr.io/p/c:1"}})
    with pytest.raises(SpecError, match="GOOGLE_CLOUD_PROJECT") as refused:
        resolve(spec, "calc", "team", connector)
    assert refused.value.field == "spec.gcp.projectId"
    recorded = resolve(spec, "calc", "team", connector, {"projectId": "kept-project"})  # the status remembers it
    assert recorded.placement.where.project == "kept-project"


@pytest.mark.parametrize(("cpu", "memory", "accepted"), [
    ("1", "512Mi", True), ("1", "4Gi", True), ("1", "8Gi", False), ("2", "8Gi", True), ("4", "1Gi", False),
    ("4", "2Gi", True), ("8", "32Gi", True), ("0.5", "512Mi", False),
])
def test_the_cpu_field_takes_only_what_cloud_run_offers(cpu: str, memory: str, accepted: bool) -> None:
    """The pydantic model holds the CPU values; the memory ranges per CPU are CEL (tests/e2e/test_admission.py)."""
    body = {"target": {"type": "google-cloud-run"}, "server": {"image": "x"}, "gcp": {"cpu": cpu, "memory": memory}}
    if cpu in ("1", "2", "4", "6", "8"):
        McpDeploymentSpec.model_validate(body)
    else:
        assert not accepted
        with pytest.raises(ValidationError):
            McpDeploymentSpec.model_validate(body)


def test_the_template_names_the_revision_and_references_secrets_by_version() -> None:
    desired = want(server={"env": [{"name": "LOG_LEVEL", "value": "info"}]}, gcp={"port": 3000, "concurrency": 10})
    template = bodies.template(desired, KEY1, {"API_TOKEN": "4"})
    assert template["revision"] == R1
    container = template["containers"][0]
    assert container["ports"] == [{"name": "http1", "containerPort": 3000}], "Cloud Run sets PORT from containerPort"
    assert container["env"] == [{"name": "LOG_LEVEL", "value": "info"}, {"name": "API_TOKEN", "valueSource": {
        "secretKeyRef": {"secret": "calc-api-token", "version": "4"}}}]
    assert template["maxInstanceRequestConcurrency"] == 10 and template["timeout"] == "300s"
    assert template["annotations"][OWNER_TAG] == "team.calc"


@pytest.mark.parametrize(("shares", "tagged", "expected"), [
    ({R1: 100}, {R1: "r1"}, [(R1, 100, "r1")]),
    ({R1: 100}, {R1: "r1", R2: "r2"}, [(R1, 100, "r1"), (R2, 0, "r2")]),
    ({R1: 70, R2: 30}, {R2: "r2"}, [(R1, 70, None), (R2, 30, "r2")]),
])
def test_traffic_is_pinned_by_name_with_tags(shares: dict[str, int], tagged: dict[str, str],
                                             expected: list[tuple[str, int, str | None]]) -> None:
    entries = bodies.traffic(shares, tagged)
    assert all(e["type"] == bodies.REVISION for e in entries), "never 'latest': a new revision starts with no traffic"
    assert [(e["revision"], e["percent"], e.get("tag")) for e in entries] == expected


@pytest.mark.parametrize(("policy", "public", "members"), [
    ({"etag": "e", "bindings": []}, True, [["allUsers"]]),
    ({"etag": "e", "bindings": [{"role": "roles/run.invoker", "members": ["user:a@x.dev"]}]}, True, [["user:a@x.dev", "allUsers"]]),
    ({"etag": "e", "bindings": [{"role": "roles/run.invoker", "members": ["allUsers", "user:a@x.dev"]}]}, False,
     [["user:a@x.dev"]]),
    ({"etag": "e", "bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}, False, []),
])
def test_public_access_is_one_member_of_the_invoker_binding(policy: dict[str, Any], public: bool,
                                                            members: list[list[str]]) -> None:
    changed = bodies.with_public(policy, public)
    assert changed is not None and changed["etag"] == "e", "the etag read goes back (IAM's read-modify-write)"
    assert [b["members"] for b in changed["bindings"]] == members
    assert bodies.with_public(changed, public) is None, "nothing to write when it already is so"


def test_an_answer_reads_as_revisions_with_traffic_phases_and_tag_urls() -> None:
    desired = want()
    statuses = [{"type": bodies.REVISION, "revision": R1, "percent": 100, "tag": "r1", "uri": "https://r1---" + URI[8:]},
                {"type": bodies.REVISION, "revision": R2, "percent": 0, "tag": "r2", "uri": "https://r2---" + URI[8:]}]
    seen = bodies.observed_from(desired, service(statuses), [revision(R1), revision(R2, "CONDITION_RECONCILING")], PUBLIC_POLICY)
    first, second = seen.revisions
    assert (first.key, first.phase, first.percent) == (KEY1.__class__(1, "aaaaaaaa"), Phase.READY, 100)
    assert (second.phase, second.percent, second.url) == (Phase.PENDING, 0, "https://r2---" + URI[8:])
    assert seen.host == "calc-abc-uc.a.run.app" and seen.config_drift == () and seen.busy is None
    assert seen.facts["public"] == "true" and seen.facts["latestCreatedRevision"] == R2


def test_urls_are_withheld_where_the_check_cannot_reach_them() -> None:
    statuses = [{"revision": R1, "percent": 100, "tag": "r1", "uri": "https://r1---" + URI[8:]}]
    private = bodies.observed_from(want(gcp={"allowUnauthenticated": False}), service(statuses), [revision(R1)],
                                   {"etag": "e", "bindings": []})
    assert private.revisions[0].url is None, "no anonymous URL: the MCP check is skipped, not failed"


@pytest.mark.parametrize(("changes", "drift"), [
    ({"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY"}, "ingress is INGRESS_TRAFFIC_INTERNAL_ONLY, not INGRESS_TRAFFIC_ALL"),
    ({"scaling": {"minInstanceCount": 2, "maxInstanceCount": 10}}, "scaling is 2-10 instances, not 0-10"),
])
def test_settings_that_make_no_revision_are_drift(changes: dict[str, Any], drift: str) -> None:
    seen = bodies.observed_from(want(), service([{"revision": R1, "percent": 100}], **changes), None, PUBLIC_POLICY)
    assert seen.config_drift == (drift,)
    unbound = bodies.observed_from(want(), service([{"revision": R1, "percent": 100}]), None, {"etag": "e"})
    assert unbound.config_drift == ("allUsers lacks roles/run.invoker; spec.gcp.allowUnauthenticated is true",)


def test_a_shallow_read_infers_the_newest_revision_from_the_service() -> None:
    failed = service([{"revision": R1, "percent": 100}], terminalCondition={"type": "Ready", "state": "CONDITION_FAILED",
                                                                           "message": "container exited with code 3"})
    seen = bodies.observed_from(want(), failed, None, PUBLIC_POLICY)
    assert not seen.complete and [(r.cloud_id, r.phase) for r in seen.revisions] == [(R1, Phase.READY), (R2, Phase.FAILED)]
    assert seen.revisions[1].message == "container exited with code 3"
    rolling = bodies.observed_from(want(), service([{"revision": R1, "percent": 100}], reconciling=True), None, PUBLIC_POLICY)
    assert rolling.busy and rolling.revisions[1].phase is Phase.PENDING


@pytest.mark.parametrize(("status", "code", "kind", "reason"), [
    (429, "RESOURCE_EXHAUSTED", "TransientError", "Throttled"),
    (409, "ABORTED", "TransientError", "ConcurrentChange"),
    (409, "ALREADY_EXISTS", "TerminalError", "AlreadyExists"),
    (400, "FAILED_PRECONDITION", "TerminalError", "FailedPrecondition"),
    (401, "UNAUTHENTICATED", "TerminalError", "CredentialsInvalid"),
    (403, "PERMISSION_DENIED", "TerminalError", "AuthorizationFailed"),
    (503, "UNAVAILABLE", "TransientError", "CloudServerError"),
])
def test_errors_are_classified_by_http_status_as_the_rest_transport_does(status: int, code: str, kind: str,
                                                                         reason: str) -> None:
    classified = classify(GoogleApiError(status, code, "words"))
    assert type(classified).__name__ == kind and classified.reason == reason  # type: ignore[attr-defined]
