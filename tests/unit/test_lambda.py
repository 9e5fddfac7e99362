"""The aws-lambda target's pure parts: reading a spec, and Lambda's answers read as neutral revisions. No I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_operator.api.models import McpDeploymentSpec
from mcp_operator.contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Phase, RevisionKey
from mcp_operator.reconcile.desired import Desired, SpecError, resolve
from mcp_operator.settings import Settings
from mcp_operator.targets.aws_lambda import bodies
from mcp_operator.targets.aws_lambda.connect import LambdaConnector
from mcp_operator.targets.aws_lambda.settings import AwsSettings

CONNECTOR = LambdaConnector(Settings(), AwsSettings(Settings(), default_region="eu-west-1"))


def want(**spec: Any) -> Desired:
    body: dict[str, Any] = {"target": {"type": "aws-lambda"}, "server": {"image": "ecr/calc:1",
                                                                      "allowedOrigins": ["https://app.example"]}}
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value}
    return resolve(McpDeploymentSpec.model_validate(body), "calc", "team", CONNECTOR)


KEY1, KEY2 = RevisionKey(1, "aaaaaaaa11111111"), RevisionKey(2, "bbbbbbbb22222222")
URL = {"live": "https://live-id.lambda-url.eu-west-1.on.aws/", "candidate": "https://cand-id.lambda-url.eu-west-1.on.aws/"}


def function(description: str = "", state: str = "Active", update: str = "Successful", **extra: Any) -> dict[str, Any]:
    return {"Configuration": {"FunctionName": "calc", "FunctionArn": "arn:aws:lambda:eu-west-1:1:function:calc",
                              "Description": description, "State": state, "LastUpdateStatus": update, **extra},
            "Tags": {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: "team.calc"}}


def version(number: int, key: RevisionKey | None, state: str = "Active") -> dict[str, Any]:
    return {"Version": str(number), "State": state, "Description": bodies.marker(key) if key else "by hand"}


def alias(number: int, weights: dict[str, float] | None = None) -> dict[str, Any]:
    return {"FunctionVersion": str(number), "RoutingConfig": {"AdditionalVersionWeights": weights or {}}}


def url(name: str, auth: str = "NONE", origins: list[str] | None = None) -> dict[str, Any]:
    return {"FunctionUrl": URL[name], "AuthType": auth, "InvokeMode": "BUFFERED",
            "Cors": {"AllowOrigins": origins or ["https://app.example"]}}


PUBLIC = json.dumps({"Statement": [{"Action": "lambda:InvokeFunctionUrl", "Principal": "*"},
                                   {"Action": "lambda:InvokeFunction", "Principal": "*"}]})


@pytest.mark.parametrize(("spec", "field"), [
    ({"server": {"image": None}}, "spec.server.image"),
    ({"aws": {"s3": {"bucket": "builds", "key": "calc.zip"}}}, "spec.server.image"),
    ({"server": {"env": [{"name": "A", "value": "1"}]}}, "spec.server.env"),
    ({"server": {"allowedOrigins": ["https://" + "a" * 250]}}, "spec.server.allowedOrigins"),
])
def test_a_spec_lambda_cannot_take_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as refused:
        want(**spec)
    assert refused.value.field == field


def test_defaults_follow_the_deploy_cli_a_zip_is_arm64_and_an_image_x86_64() -> None:
    image = want().placement.where
    zipped = want(server={"image": None}, aws={"s3": {"bucket": "builds", "key": "calc.zip"}}).placement.where
    assert (image.architecture, image.region, image.role_name) == ("x86_64", "eu-west-1", "calc-mcp-exec")
    assert (zipped.architecture, zipped.runtime, zipped.handler) == ("arm64", "provided.al2023", "bootstrap")
    assert want().snapshot != want(aws={"memoryMb": 1024}).snapshot, "memory makes a version"
    assert want().snapshot == want(aws={"invokeMode": "BUFFERED"}).snapshot


def test_secrets_go_into_the_environment_with_the_port_the_adapter_forwards_to() -> None:
    variables = bodies.environment(want(aws={"invokeMode": "RESPONSE_STREAM"}), {"API_KEY": "v"})
    assert variables == {"API_KEY": "v", "PORT": "8080", "AWS_LWA_PORT": "8080", "AWS_LWA_INVOKE_MODE": "response_stream"}
    assert "OPTIONS" not in bodies.url_config(want())["Cors"]["AllowMethods"], "Lambda answers preflight itself"


CASES = {
    "serving with a weighted canary": (
        [version(1, KEY1), version(2, KEY2)], {"live": alias(1, {"2": 0.1}), "candidate": alias(2)},
        {"1": (Phase.READY, 90, None, False), "2": (Phase.READY, 10, URL["candidate"], False)}),
    "all on one: the live URL reaches it alone": (
        [version(1, KEY1)], {"live": alias(1), "candidate": alias(1)},
        {"1": (Phase.READY, 100, URL["candidate"], False)}),
    "published, not yet behind the candidate alias": (
        [version(1, KEY1), version(2, KEY2, "Pending")], {"live": alias(1), "candidate": alias(1)},
        {"1": (Phase.READY, 100, URL["candidate"], False), "2": (Phase.PENDING, 0, None, True)}),
    "a version by hand is never unfinished": (
        [version(1, KEY1), version(2, None)], {"live": alias(1), "candidate": alias(1)},
        {"1": (Phase.READY, 100, URL["candidate"], False), "2": (Phase.READY, 0, None, False)}),
}


@pytest.mark.parametrize(("versions", "aliases", "expected"), list(CASES.values()), ids=list(CASES))
def test_versions_read_as_revisions(versions: list[dict[str, Any]], aliases: dict[str, Any],
                                    expected: dict[str, tuple[Phase, int, str | None, bool]]) -> None:
    seen = bodies.observed_from(want(), function(), versions, aliases, {"live": url("live"), "candidate": url("candidate")},
                                PUBLIC)
    found = {r.cloud_id: (r.phase, r.percent, r.url, r.unfinished) for r in seen.revisions}
    assert found == expected
    assert seen.host == "live-id.lambda-url.eu-west-1.on.aws" and seen.config_drift == ()


def test_a_revision_that_failed_before_it_was_published_is_reported_from_latest() -> None:
    failed = function(bodies.marker(KEY2), update="Failed", LastUpdateStatusReason="Runtime exited: exit status 3")
    seen = bodies.observed_from(want(), failed, [version(1, KEY1)], {"live": alias(1)}, {"live": url("live")}, PUBLIC)
    latest = next(r for r in seen.revisions if r.cloud_id == bodies.LATEST)
    assert latest.phase is Phase.FAILED and latest.key == RevisionKey(2, "bbbbbbbb") and "exit status 3" in (latest.message or "")
    published = function(bodies.marker(KEY1))
    assert all(r.cloud_id != bodies.LATEST for r in bodies.observed_from(
        want(), published, [version(1, KEY1)], {"live": alias(1)}, {"live": url("live")}, PUBLIC).revisions)


@pytest.mark.parametrize(("urls", "policy", "drift"), [
    ({}, PUBLIC, "function URL of alias live is missing"),
    ({"live": url("live", origins=["*"])}, PUBLIC, "CORS origins"),
    ({"live": url("live", auth="AWS_IAM")}, PUBLIC, "AuthType is AWS_IAM"),
    ({"live": url("live")}, None, "public-access permissions of the function URL are missing"),
])
def test_settings_that_make_no_version_are_drift(urls: dict[str, Any], policy: str | None, drift: str) -> None:
    seen = bodies.observed_from(want(), function(), [version(1, KEY1)], {"live": alias(1)}, urls, policy)
    assert any(drift in d for d in seen.config_drift), seen.config_drift


def test_a_busy_function_says_what_lambda_does() -> None:
    assert bodies.busy(want(), function(state="Pending", StateReason="The function is being created."))
    assert bodies.busy(want(), function(update="InProgress"))
    assert bodies.busy(want(), function()) is None


@pytest.mark.parametrize(("aws", "reserved", "provisioned", "drift"), [
    ({"reservedConcurrency": 10, "provisionedConcurrency": 2}, 10, {"RequestedProvisionedConcurrentExecutions": 2,
                                                                     "Status": "READY"}, []),
    ({"reservedConcurrency": 10}, 5, None, ["reserved concurrency is 5, not 10"]),
    ({}, None, {"RequestedProvisionedConcurrentExecutions": 2, "Status": "READY"},
     ["provisioned concurrency of alias live is 2, not unset"]),
    ({"provisionedConcurrency": 2}, None, {"RequestedProvisionedConcurrentExecutions": 2, "Status": "FAILED",
                                           "StatusReason": "no capacity"}, ["(FAILED: no capacity)"]),
])
def test_concurrency_is_a_setting_that_makes_no_version(aws: dict[str, Any], reserved: int | None,
                                                        provisioned: dict[str, Any] | None, drift: list[str]) -> None:
    found = function()
    found["Concurrency"] = {"ReservedConcurrentExecutions": reserved} if reserved is not None else None
    words = bodies.concurrency_drift(want(aws=aws), found, provisioned)
    assert len(words) == len(drift) and all(d in w for d, w in zip(drift, words, strict=True)), words
    assert want(aws=aws).snapshot == want().snapshot
