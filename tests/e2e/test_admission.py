"""Every admission rule of the CRD (schema + CEL), enforced by the real API server with a useful message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localcluster import Cluster
from tests.e2e.conftest import manifest

pytestmark = pytest.mark.e2e


def _apply(cluster: Cluster, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    return result.returncode, result.stderr


def _with(path: str, value: Any, name: str = "bad") -> dict[str, Any]:
    body = manifest(name)
    node = body["spec"]
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return body


_DELETE = object()

INVALID = [
    ("target.type", "heroku", "spec.target.type", "Unsupported value"),
    ("server.image", _DELETE, "spec.server.image", "server.image is required for container targets"),
    ("server.image", "ghcr.io/acme/calc 1.0", "spec.server.image", "should match"),
    ("server.image", "ghcr.io/Acme/calc:1.0", "spec.server.image", "should match"),
    ("server.image", "ghcr.io/acme/calc@sha256:short", "spec.server.image", "should match"),
    ("server.name", "Calc_Server", "spec.server.name", "should match"),
    ("server.name", "calc--server", "spec.server.name", "must not contain '--'"),
    ("server.name", "a" * 33, "spec.server.name", "may not be more than 32"),
    ("server.env", [{"name": "PORT", "value": "1"}], "spec.server.env", "must not set PORT"),
    ("server.env", [{"name": "A"}], "spec.server.env[0]", "set exactly one of value or valueFrom"),
    ("server.env", [{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
     "spec.server.env[0]", "set exactly one of value or valueFrom"),
    ("server.env", [{"name": "1BAD", "value": "1"}], "spec.server.env[0].name", "should match"),
    ("server.env", [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}], "spec.server.env[1]", "Duplicate value"),
    ("server.resources", {"cpu": "0.5", "memory": "4Gi"}, "spec.server.resources", "cpu/memory must be a Container Apps combination"),
    ("server.resources", {"cpu": "half", "memory": "1Gi"}, "spec.server.resources.cpu", "should match"),
    ("server.allowedOrigins", [], "spec.server.allowedOrigins", "should have at least 1 items"),
    ("azure.subscriptionId", "not-a-uuid", "spec.azure.subscriptionId", "should match"),
    ("azure.targetPort", 0, "spec.azure.targetPort", "should be greater than or equal to 1"),
    ("azure.targetPort", 65536, "spec.azure.targetPort", "should be less than or equal to 65535"),
    ("azure.minReplicas", -1, "spec.azure.minReplicas", "should be greater than or equal to 0"),
    ("azure.maxReplicas", 0, "spec.azure.maxReplicas", "should be greater than or equal to 1"),
    ("azure.environment", "Env_1", "spec.azure.environment", "should match"),
    ("azure.resourceGroup", "rg.", "spec.azure.resourceGroup", "should match"),
    ("azure.location", "east-us!", "spec.azure.location", "should match"),
    ("revisionHistoryLimit", 0, "spec.revisionHistoryLimit", "should be greater than or equal to 1"),
    ("deletionPolicy", "Orphan", "spec.deletionPolicy", "Unsupported value"),
    ("credentials", {}, "spec.credentials.secretRef", "Required value"),
    ("server.unknownField", "x", "unknownField", "unknown field"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), INVALID, ids=[f"{i[0]}={str(i[1])[:20]}" for i in INVALID])
def test_invalid_spec_is_rejected_naming_the_field(cluster: Cluster, path: str, value: Any, field: str, message: str) -> None:
    code, stderr = _apply(cluster, "default", _with(path, value))
    assert code != 0, f"{path}={value!r} was accepted"
    assert field in stderr and message in stderr, stderr


def test_max_replicas_below_min_replicas_is_rejected(cluster: Cluster) -> None:
    code, stderr = _apply(cluster, "default", _with("azure", {"minReplicas": 5, "maxReplicas": 2}))
    assert code != 0 and "spec.azure.maxReplicas" in stderr and "greater than or equal to azure.minReplicas" in stderr


def test_azure_section_only_for_the_azure_target(cluster: Cluster) -> None:
    body = _with("azure", {"location": "westeurope"})
    body["spec"]["target"]["type"] = "google-cloud-run"
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "spec.azure applies only to target.type azure-container-apps" in stderr


def test_metadata_name_must_be_a_valid_app_name_unless_server_name_is_set(cluster: Cluster) -> None:
    code, stderr = _apply(cluster, "default", manifest("a" * 40))
    assert code != 0 and "metadata.name is not a valid Container Apps name" in stderr
    body = manifest("a" * 40, server={"name": "short-name"})
    assert _apply(cluster, "default", body)[0] == 0


def test_target_type_is_immutable(cluster: Cluster) -> None:
    body = manifest("immutable-target")
    assert _apply(cluster, "default", body)[0] == 0
    body["spec"]["target"]["type"] = "aws-lambda"
    body["spec"]["server"] = {"image": "x"}
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "target.type is immutable" in stderr


def test_pmcp_run_takes_a_pinned_build_and_no_image(cluster: Cluster) -> None:
    body = manifest("hosted-server")
    body["spec"]["target"]["type"] = "pmcp-run"
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "pmcp-run deploys the template and bootstrap" in stderr, "an image is refused"
    del body["spec"]["server"]["image"]
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "spec.server.artifact" in stderr, "nothing to deploy is refused"
    body["spec"]["server"]["artifact"] = {"oci": "ghcr.io/acme/calc-pmcp@sha256:" + "a" * 64}
    body["spec"]["pmcpRun"] = {"serverVersion": "1.0.0", "oauth": {"enabled": True}}
    code, stderr = _apply(cluster, "default", body)
    assert code == 0, stderr
    body["spec"]["rollout"] = {"steps": [{"percent": 10, "pauseSeconds": 5}]}
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "pmcp-run cannot split traffic" in stderr


def _lambda(name: str, **aws: Any) -> dict[str, Any]:
    body = manifest(name)
    body["spec"]["target"]["type"] = "aws-lambda"
    body["spec"]["aws"] = {"region": "us-east-1", **aws}
    return body


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"s3": {"bucket": "builds", "key": "calc.zip"}}, "spec.server.image", "exactly one of server.image"),
    ({"urlAuthType": "PUBLIC"}, "spec.aws.urlAuthType", "Unsupported value"),
    ({"invokeMode": "STREAM"}, "spec.aws.invokeMode", "Unsupported value"),
    ({"architecture": "ppc64"}, "spec.aws.architecture", "Unsupported value"),
    ({"executionRoleArn": "my-role"}, "spec.aws.executionRoleArn", "should match"),
    ({"s3": {"bucket": "Builds_Upper", "key": "k"}}, "spec.aws.s3.bucket", "should match"),
    ({"s3": {"bucket": "builds", "key": "k", "sha256": "abc"}}, "spec.aws.s3.sha256", "should match"),
    ({"reservedConcurrency": 2, "provisionedConcurrency": 5}, "spec.aws.provisionedConcurrency",
     "must not exceed aws.reservedConcurrency"),
])
def test_lambda_rules_are_enforced_at_admission(cluster: Cluster, change: dict[str, Any], field: str, message: str) -> None:
    code, stderr = _apply(cluster, "default", _lambda("bad-fn", **change))
    assert code != 0 and field in stderr and message in stderr, stderr


def test_a_lambda_zip_needs_no_image_and_an_image_needs_no_zip(cluster: Cluster) -> None:
    zipped = _lambda("zip-fn", s3={"bucket": "builds", "key": "calc/bootstrap.zip"})
    del zipped["spec"]["server"]["image"]
    assert _apply(cluster, "default", zipped)[0] == 0
    assert _apply(cluster, "default", _lambda("image-fn"))[0] == 0
    neither = _lambda("neither-fn")
    del neither["spec"]["server"]["image"]
    code, stderr = _apply(cluster, "default", neither)
    assert code != 0 and "exactly one of server.image" in stderr


def test_rollout_steps_must_increase_and_need_a_target_that_splits_traffic(cluster: Cluster) -> None:
    body = manifest("steps-down")
    body["spec"]["rollout"] = {"steps": [{"percent": 50}, {"percent": 10}]}
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "spec.rollout.steps" in stderr and "strictly increasing" in stderr
    body["spec"]["rollout"] = {"steps": [{"percent": 10}, {"percent": 10}]}
    assert _apply(cluster, "default", body)[0] != 0
    body["spec"]["rollout"] = {"steps": [{"percent": 100}]}
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "percent" in stderr
    body["spec"]["rollout"] = {"steps": [{"percent": 10, "pauseSeconds": 120}, {"percent": 50}]}
    assert _apply(cluster, "default", body)[0] == 0
    hosted = manifest("steps-pmcp")
    hosted["spec"]["target"]["type"] = "pmcp-run"
    hosted["spec"]["rollout"] = {"steps": [{"percent": 10}]}
    code, stderr = _apply(cluster, "default", hosted)
    assert code != 0 and "pmcp-run cannot split traffic" in stderr


def _cloud_run(name: str, **gcp: Any) -> dict[str, Any]:
    body = manifest(name)
    body["spec"]["target"]["type"] = "google-cloud-run"
    body["spec"]["gcp"] = {"projectId": "team-project", **gcp}
    return body


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"cpu": "0.5"}, "spec.gcp.cpu", "Unsupported value"),
    ({"cpu": "1", "memory": "8Gi"}, "spec.gcp.memory", "Cloud Run accepts 1 CPU with 128Mi-4Gi"),
    ({"cpu": "4", "memory": "1Gi"}, "spec.gcp.memory", "4 with 2Gi-16Gi"),
    ({"memory": "64Mi"}, "spec.gcp.memory", "does not suit gcp.cpu"),
    ({"ingress": "public"}, "spec.gcp.ingress", "Unsupported value"),
    ({"timeoutSeconds": 3601}, "spec.gcp.timeoutSeconds", "should be less than or equal to 3600"),
    ({"serviceAccount": "runner"}, "spec.gcp.serviceAccount", "should match"),
    ({"minInstances": 5, "maxInstances": 2}, "spec.gcp.maxInstances", "greater than or equal to gcp.minInstances"),
])
def test_cloud_run_rules_are_enforced_at_admission(cluster: Cluster, change: dict[str, Any], field: str, message: str) -> None:
    code, stderr = _apply(cluster, "default", _cloud_run("bad-run", **change))
    assert code != 0 and field in stderr and message in stderr, stderr


def test_cloud_run_combinations_it_offers_are_accepted(cluster: Cluster) -> None:
    for index, (cpu, memory) in enumerate([("1", "512Mi"), ("2", "8Gi"), ("4", "2Gi"), ("8", "32Gi")]):
        code, stderr = _apply(cluster, "default", _cloud_run(f"good-run-{index}", cpu=cpu, memory=memory))
        assert code == 0, stderr


def _workers(name: str, **server: Any) -> dict[str, Any]:
    body = manifest(name)
    body["spec"]["target"]["type"] = "cloudflare-workers"
    del body["spec"]["server"]["image"]
    body["spec"]["server"].update(server)
    return body


OCI = "ghcr.io/acme/calc-worker@sha256:" + "a" * 64


@pytest.mark.parametrize(("server", "field", "message"), [
    ({}, "spec.server.artifact", "cloudflare-workers runs a bundle, not an image"),
    ({"image": "ghcr.io/acme/calc:1", "artifact": {"oci": OCI}}, "spec.server.artifact", "no server.image"),
    ({"artifact": {"oci": "ghcr.io/acme/calc-worker:1.0.0"}}, "spec.server.artifact.oci", "should match"),
    ({"artifact": {"url": "https://example.com/w.tar.gz"}}, "spec.server.artifact.sha256", "artifact.url needs artifact.sha256"),
    ({"artifact": {"url": "http://example.com/w.tar.gz", "sha256": "b" * 64}}, "spec.server.artifact.url", "should match"),
    ({"artifact": {"oci": OCI, "url": "https://example.com/w.tar.gz", "sha256": "b" * 64}}, "spec.server.artifact",
     "exactly one of artifact.oci and artifact.url"),
])
def test_workers_rules_are_enforced_at_admission(cluster: Cluster, server: dict[str, Any], field: str, message: str) -> None:
    code, stderr = _apply(cluster, "default", _workers("bad-worker", **server))
    assert code != 0 and field in stderr and message in stderr, stderr


def test_an_artifact_is_accepted_for_workers_and_refused_for_a_container_target(cluster: Cluster) -> None:
    assert _apply(cluster, "default", _workers("good-worker", artifact={"oci": OCI}))[0] == 0
    body = manifest("image-and-artifact")
    body["spec"]["server"]["artifact"] = {"oci": OCI}
    code, stderr = _apply(cluster, "default", body)
    assert code != 0 and "server.artifact applies only to cloudflare-workers and pmcp-run" in stderr
