"""The AWS simulator through boto3: Lambda's rules as AWS applies them, and the model checks botocore skips.

A second opinion comes from moto's server (test_moto_differential.py); here each rule the operator relies
on is shown to hold, so that a simulator that stopped enforcing it would fail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdasim import model
from lambdasim.testing import LambdaSimulatorThread

pytestmark = pytest.mark.contract
TRUST = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="module")
def sim() -> Iterator[LambdaSimulatorThread]:
    running = LambdaSimulatorThread().start()
    yield running
    running.stop()


def client(sim: LambdaSimulatorThread, service: str, secret: str | None = None, validate: bool = True) -> Any:
    info = sim.info
    return boto3.client(service, endpoint_url=info["endpoint"], region_name="us-east-1", verify=info["caBundle"],
                        aws_access_key_id=info["accessKeyId"], aws_secret_access_key=secret or info["secretAccessKey"],
                        config=Config(parameter_validation=validate, retries={"mode": "standard", "max_attempts": 1}))


@pytest.fixture(scope="module")
def role(sim: LambdaSimulatorThread) -> str:
    return str(client(sim, "iam").create_role(RoleName="contract-exec", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"])


def code_of(error: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    return error.value.response["ResponseMetadata"]["HTTPStatusCode"], error.value.response["Error"]["Code"]


def active_function(sim: LambdaSimulatorThread, role: str, name: str) -> Any:
    lam = client(sim, "lambda")
    lam.create_function(FunctionName=name, Role=role, PackageType="Image", Code={"ImageUri": "ghcr.io/acme/calc:1.0.0"})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    return lam


def test_a_wrong_secret_key_is_refused_as_aws_refuses_it(sim: LambdaSimulatorThread) -> None:
    with pytest.raises(ClientError) as refused:
        client(sim, "lambda", secret="not-the-secret").list_aliases(FunctionName="anything")
    assert code_of(refused) == (403, "InvalidSignatureException")


def test_updates_and_publishing_wait_for_the_state_machine(sim: LambdaSimulatorThread, role: str) -> None:
    lam = client(sim, "lambda")
    created = lam.create_function(FunctionName="states", Role=role, PackageType="Image",
                                  Code={"ImageUri": "ghcr.io/acme/calc:1.0.0"})
    assert created["State"] == "Pending"
    with pytest.raises(ClientError) as busy:
        lam.publish_version(FunctionName="states")
    assert code_of(busy) == (409, "ResourceConflictException") and "in progress" in str(busy.value)
    lam.get_waiter("function_active_v2").wait(FunctionName="states", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    stale = lam.get_function(FunctionName="states")["Configuration"]["RevisionId"]
    updated = lam.update_function_configuration(FunctionName="states", MemorySize=256, RevisionId=stale)
    assert updated["LastUpdateStatus"] == "InProgress" and updated["RevisionId"] != stale
    with pytest.raises(ClientError) as conflict:
        lam.update_function_code(FunctionName="states", ImageUri="ghcr.io/acme/calc:2.0.0")
    assert code_of(conflict) == (409, "ResourceConflictException")
    lam.get_waiter("function_updated_v2").wait(FunctionName="states", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    with pytest.raises(ClientError) as precondition:
        lam.update_function_configuration(FunctionName="states", MemorySize=512, RevisionId=stale)
    assert code_of(precondition) == (412, "PreconditionFailedException")


def test_versions_are_immutable_numbered_once_and_unchanged_code_publishes_nothing(sim: LambdaSimulatorThread,
                                                                                   role: str) -> None:
    lam = active_function(sim, role, "versions")
    first = lam.publish_version(FunctionName="versions", Description="one")
    assert first["Version"] == "1" and lam.publish_version(FunctionName="versions")["Version"] == "1"
    with pytest.raises(ClientError) as mismatch:
        lam.publish_version(FunctionName="versions", CodeSha256="0" * 64)
    assert code_of(mismatch) == (412, "PreconditionFailedException")
    lam.update_function_configuration(FunctionName="versions", Description="two")
    lam.get_waiter("function_updated_v2").wait(FunctionName="versions", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    assert lam.publish_version(FunctionName="versions")["Version"] == "2"
    lam.delete_function(FunctionName="versions", Qualifier="2")
    lam.update_function_configuration(FunctionName="versions", Description="three")
    lam.get_waiter("function_updated_v2").wait(FunctionName="versions", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    assert lam.publish_version(FunctionName="versions")["Version"] == "3", "numbers are never reused"


def test_alias_routing_rules(sim: LambdaSimulatorThread, role: str) -> None:
    lam = active_function(sim, role, "routing")
    lam.publish_version(FunctionName="routing")
    lam.update_function_configuration(FunctionName="routing", Description="b")
    lam.get_waiter("function_updated_v2").wait(FunctionName="routing", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    lam.publish_version(FunctionName="routing")
    lam.create_alias(FunctionName="routing", Name="live", FunctionVersion="1")
    lam.update_alias(FunctionName="routing", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    with pytest.raises(ClientError) as same:
        lam.update_alias(FunctionName="routing", Name="live", RoutingConfig={"AdditionalVersionWeights": {"1": 0.1}})
    assert code_of(same)[1] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as weight:  # botocore checks no ranges: the simulator does, from the model
        lam.update_alias(FunctionName="routing", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}})
    assert code_of(weight)[1] == "InvalidParameterValueException" and "maximum" in str(weight.value)
    with pytest.raises(ClientError) as referenced:
        lam.delete_function(FunctionName="routing", Qualifier="2")
    assert code_of(referenced) == (409, "ResourceConflictException") and "[live]" in str(referenced.value)
    with pytest.raises(ClientError) as long_name:  # nor lengths
        lam.create_alias(FunctionName="routing", Name="a" * 129, FunctionVersion="1")
    assert "at most 128" in str(long_name.value)


def test_one_url_per_qualifier_and_never_on_a_version(sim: LambdaSimulatorThread, role: str) -> None:
    lam = active_function(sim, role, "urls")
    lam.publish_version(FunctionName="urls")
    lam.create_alias(FunctionName="urls", Name="live", FunctionVersion="1")
    url = lam.create_function_url_config(FunctionName="urls", Qualifier="live", AuthType="NONE")["FunctionUrl"]
    assert url.startswith("https://") and url.endswith(".lambda-url.us-east-1.on.aws/")
    with pytest.raises(ClientError) as twice:
        lam.create_function_url_config(FunctionName="urls", Qualifier="live", AuthType="NONE")
    assert code_of(twice) == (409, "ResourceConflictException")
    with pytest.raises(ClientError) as on_version:  # the model's pattern refuses a bare version number
        lam.create_function_url_config(FunctionName="urls", Qualifier="1", AuthType="NONE")
    assert "does not match the pattern" in str(on_version.value)
    with pytest.raises(ClientError) as options:  # Lambda answers preflight itself: methods are at most 6 characters
        lam.update_function_url_config(FunctionName="urls", Qualifier="live", Cors={"AllowMethods": ["OPTIONS"]})
    assert "at most 6" in str(options.value)


def test_throttling_answers_429_with_a_retry_after(sim: LambdaSimulatorThread, role: str) -> None:
    lam = active_function(sim, role, "busy")
    lam.list_aliases(FunctionName="busy")  # the client's first call loads its endpoint rules: not part of the burst
    sim.call(sim.simulator.throttle.reset)
    sim.simulator.throttle.enabled = True

    def one(_: int) -> int:
        try:
            lam.list_aliases(FunctionName="busy")
            return 200
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TooManyRequestsException"
            assert int(error.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
            return int(error.response["ResponseMetadata"]["HTTPStatusCode"])

    began = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(40)))
    finally:
        sim.simulator.throttle.enabled = False
    elapsed = time.monotonic() - began
    # A bucket of 15 refilled at 15 per second: no more successes than that allows, and the rest refused.
    assert statuses.count(200) <= 15 + 15 * elapsed + 1 and statuses.count(429) == 40 - statuses.count(200) > 0


def test_the_simulators_answers_are_held_to_the_model_too() -> None:
    operation = model.service("lambda").operation_model("GetFunctionConfiguration")
    with pytest.raises(AssertionError, match="State"):
        model.check_output(operation, {"FunctionName": "f", "State": "Sleeping"})
    assert model.problems(operation.output_shape, {"FunctionName": "f", "State": "Active", "MemorySize": 512}) == []
