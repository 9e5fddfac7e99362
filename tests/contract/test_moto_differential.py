"""A second opinion on the AWS simulator: the same boto3 calls against it and against moto's server.

moto (written by others, from AWS's documentation and observed behaviour) and our simulator must answer
every operation both implement with responses of the same shape: the same members, recursively. The
differences that remain are listed here and in docs/simulator.md, each with its reason; a new one fails.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lambdasim.testing import LambdaSimulatorThread

pytestmark = pytest.mark.contract
TRUST = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]})
# Members present in one simulator's answers only (at any depth), which one sends them, and why (docs/simulator.md).
KNOWN: dict[str, tuple[str, str]] = {
    "RevisionId": ("ours", "moto does not model RevisionId on functions, so it cannot refuse a stale one (412)"),
    "LoggingConfig": ("ours", "Lambda reports the default log group (/aws/lambda/<name>, Text) since 2023; moto omits it"),
    "StateReason": ("ours", "a new function is Pending ('The function is being created.') in Lambda; moto is Active at once"),
    "StateReasonCode": ("ours", "the code of that reason, 'Creating'"),
    "ImageConfigResponse": ("moto", "moto sends an empty ImageConfigResponse; Lambda sends it only when ImageConfig is set"),
    "Layers": ("moto", "moto sends Layers: []; Lambda omits it when the function has no layers"),
}


def shape(value: Any, prefix: str = "") -> set[str]:
    """The member paths of an answer (list items merged), without the SDK's metadata."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, item in value.items():
            if key == "ResponseMetadata":
                continue
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            found |= shape(item, path)
        return found
    if isinstance(value, list):
        return set().union(*(shape(item, prefix + "[]") for item in value)) if value else set()
    return set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def clouds() -> Iterator[dict[str, dict[str, Any]]]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    ours = LambdaSimulatorThread().start()
    info = ours.info
    config = Config(retries={"mode": "standard", "max_attempts": 1})
    yield {
        "ours": {"endpoint_url": info["endpoint"], "verify": info["caBundle"], "aws_access_key_id": info["accessKeyId"],
                 "aws_secret_access_key": info["secretAccessKey"], "region_name": "us-east-1", "config": config},
        "moto": {"endpoint_url": f"http://127.0.0.1:{port}", "aws_access_key_id": "testing",
                 "aws_secret_access_key": "testing", "region_name": "us-east-1", "config": config},
    }
    ours.stop()
    moto.stop()


def scenario(lam: Any, iam: Any) -> dict[str, Any]:
    """The calls the operator makes, in its order, with the answers kept by operation."""
    answers: dict[str, Any] = {}

    def keep(name: str, call: Callable[[], Any]) -> Any:
        answers[name] = call()
        return answers[name]

    role = keep("CreateRole", lambda: iam.create_role(RoleName="diff-exec", AssumeRolePolicyDocument=TRUST))["Role"]["Arn"]
    keep("GetRole", lambda: iam.get_role(RoleName="diff-exec"))
    keep("CreateFunction", lambda: lam.create_function(
        FunctionName="diff", Role=role, PackageType="Image", Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/calc:1"},
        Environment={"Variables": {"LOG_LEVEL": "info"}}, Tags={"mcp.deploy.dev/owner": "ns.diff"}, Description="mcp"))
    lam.get_waiter("function_active_v2").wait(FunctionName="diff", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    keep("GetFunction", lambda: lam.get_function(FunctionName="diff"))
    keep("PublishVersion", lambda: lam.publish_version(FunctionName="diff", Description="mcp-operator revision r1-abcdef12"))
    keep("ListVersionsByFunction", lambda: lam.list_versions_by_function(FunctionName="diff"))
    keep("CreateAlias", lambda: lam.create_alias(FunctionName="diff", Name="live", FunctionVersion="1"))
    keep("GetAlias", lambda: lam.get_alias(FunctionName="diff", Name="live"))
    keep("UpdateAlias", lambda: lam.update_alias(FunctionName="diff", Name="live", FunctionVersion="1"))
    keep("ListAliases", lambda: lam.list_aliases(FunctionName="diff"))
    keep("CreateFunctionUrlConfig", lambda: lam.create_function_url_config(
        FunctionName="diff", Qualifier="live", AuthType="NONE", Cors={"AllowOrigins": ["https://app.example"]}))
    keep("GetFunctionUrlConfig", lambda: lam.get_function_url_config(FunctionName="diff", Qualifier="live"))
    keep("AddPermission", lambda: lam.add_permission(FunctionName="diff", Qualifier="live", StatementId="url",
                                                     Action="lambda:InvokeFunctionUrl", Principal="*",
                                                     FunctionUrlAuthType="NONE"))
    keep("GetPolicy", lambda: lam.get_policy(FunctionName="diff", Qualifier="live"))
    keep("ListTags", lambda: lam.list_tags(Resource=answers["GetFunction"]["Configuration"]["FunctionArn"]))
    keep("DeleteFunction", lambda: lam.delete_function(FunctionName="diff"))
    return answers


def test_both_simulators_answer_the_operators_calls_with_the_same_shapes(clouds: dict[str, dict[str, Any]]) -> None:
    answers = {name: scenario(boto3.client("lambda", **kw), boto3.client("iam", **kw)) for name, kw in clouds.items()}
    unexplained, explained = [], set()
    for operation in answers["ours"]:
        ours, theirs = shape(answers["ours"][operation]), shape(answers["moto"][operation])
        for side, paths in (("ours", ours - theirs), ("moto", theirs - ours)):
            for path in paths:
                member = next((part for part in path.replace("[]", "").split(".") if KNOWN.get(part, ("",))[0] == side), None)
                if member is None:
                    unexplained.append(f"{operation}: {path} only in {side}")
                else:
                    explained.add(member)
    assert unexplained == [], "differences nobody explained (fix the simulator, or list the reason in KNOWN)"
    assert explained == set(KNOWN), f"listed differences that no longer occur: {set(KNOWN) - explained}"
