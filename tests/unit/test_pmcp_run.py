"""The pmcp-run target's pure parts: which deployment is which revision, what is observed, the build's rules, OAuth
drift and the placement. No I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_operator.api.models import McpDeploymentSpec, PmcpRunOAuth
from mcp_operator.artifacts import Bundle, BundleFile
from mcp_operator.contract import CREATED_BY_TAG, OWNER_TAG, Phase, RecordedRevision, RevisionKey, TerminalError
from mcp_operator.reconcile.desired import Desired, SpecError, resolve
from mcp_operator.settings import Settings
from mcp_operator.targets.pmcp_run import bodies
from mcp_operator.targets.pmcp_run.connect import PmcpRunConnector
from mcp_operator.targets.pmcp_run.settings import PmcpRunSettings

CONNECTOR = PmcpRunConnector(Settings(), PmcpRunSettings(Settings(), api_url="https://api.pmcp.example"))
OCI = "ghcr.io/acme/calc-pmcp@sha256:" + "a" * 64
KEY1, KEY2 = RevisionKey(1, "aaaaaaaa11111111"), RevisionKey(2, "bbbbbbbb22222222")


def want(**pmcp: Any) -> Desired:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "pmcp-run"}, "server": {"artifact": {"oci": OCI}},
                                             "pmcpRun": pmcp})
    return resolve(spec, "calc", "team", CONNECTOR)


def deployment(deployment_id: str, status: str, created: str, **extra: Any) -> dict[str, Any]:
    return {"id": deployment_id, "status": status, "projectName": "calc", "createdAt": created, **extra}


# ----- which deployment is which revision -----------------------------------------------------------------------
T0 = "2026-12-06T10:00:00.000Z"


@pytest.mark.parametrize(("deployments", "history", "remembered", "expected"), [
    # named by the history
    ([deployment("dep_a", "success", T0)], [RecordedRevision(KEY1, "dep_a", T0)], {}, {"dep_a": KEY1}),
    # an intent without an id claims the deployment made after it (a restart between the create and the status write)
    ([deployment("dep_a", "success", "2026-12-06T10:00:05Z")], [RecordedRevision(KEY1, None, T0)], {}, {"dep_a": KEY1}),
    # ... within the allowed clock skew, but not a deployment from long before it (someone else's)
    ([deployment("dep_a", "success", "2026-12-06T09:59:00Z")], [RecordedRevision(KEY1, None, T0)], {}, {"dep_a": KEY1}),
    ([deployment("dep_a", "success", "2026-12-06T09:00:00Z")], [RecordedRevision(KEY1, None, T0)], {}, {}),
    # the newest unclaimed one, never one the history names
    ([deployment("dep_a", "success", "2026-12-06T09:00:00Z"), deployment("dep_b", "pending", "2026-12-06T10:00:09Z"),
      deployment("dep_c", "pending", "2026-12-06T10:00:03Z")],
     [RecordedRevision(KEY1, "dep_a", "2026-12-06T09:00:00Z"), RecordedRevision(KEY2, None, T0)], {},
     {"dep_a": KEY1, "dep_b": KEY2}),
    # an intent this process made the deployment for claims nothing more (not another one made after it)
    ([deployment("dep_b", "pending", "2026-12-06T10:00:09Z"), deployment("dep_z", "pending", "2026-12-06T10:00:10Z")],
     [RecordedRevision(KEY2, None, T0)], {"dep_b": KEY2}, {"dep_b": KEY2}),
], ids=["named", "intent", "intent-skew", "before-intent", "newest-unclaimed", "remembered"])
def test_which_deployment_is_which_revision(deployments: list[dict[str, Any]], history: list[RecordedRevision],
                                            remembered: dict[str, RevisionKey], expected: dict[str, RevisionKey]) -> None:
    assert bodies.keys_of(deployments, history, remembered) == expected


# ----- what is observed --------------------------------------------------------------------------------------------
def test_the_newest_success_serves_older_ones_are_replaced_and_a_newer_one_deploys() -> None:
    seen = bodies.observed_from(want(), [
        deployment("dep_a", "success", "2026-12-06T09:00:00Z", url="https://calc.example/mcp"),
        deployment("dep_b", "success", "2026-12-06T09:30:00Z", url="https://calc.example/mcp"),
        deployment("dep_c", "failed", "2026-12-06T09:40:00Z", errorMessage="CREATE_FAILED: exit 3"),
        deployment("dep_d", "deploying", "2026-12-06T09:50:00Z")], {"dep_b": KEY1}, None, None)
    phases = {r.cloud_id: (r.phase, r.percent) for r in seen.revisions}
    assert phases == {"dep_a": (Phase.RETIRED, 0), "dep_b": (Phase.READY, 100), "dep_c": (Phase.FAILED, 0),
                      "dep_d": (Phase.PENDING, 0)}
    assert seen.url == "https://calc.example/mcp" and seen.host == "calc.example"
    assert seen.serving is not None and seen.serving.url == seen.url, "the MCP check goes to the server's URL"
    assert next(r for r in seen.revisions if r.cloud_id == "dep_c").message == "CREATE_FAILED: exit 3"
    assert seen.facts["deploymentId"] == "dep_b" and seen.facts["deploymentStatus"] == "deploying"
    assert seen.facts["healthUrl"] == "https://calc.example/health"
    assert seen.owner_marks == {CREATED_BY_TAG: "mcp-operator", OWNER_TAG: "team.calc"}


def test_a_server_none_of_whose_deployments_is_ours_is_foreign_and_the_url_falls_back_as_cargo_pmcp_does() -> None:
    seen = bodies.observed_from(want(), [deployment("dep_x", "success", T0)], {}, None, None)
    assert seen.exists and seen.owner_marks == {} and seen.config_drift == ()
    assert seen.url == "https://api.pmcp.example/dep_x/mcp"
    assert not bodies.observed_from(want(), [], {}, None, None).exists


def test_a_status_nobody_knows_on_the_newest_deployment_stalls_quoting_it() -> None:
    with pytest.raises(TerminalError) as refused:
        bodies.observed_from(want(), [deployment("dep_a", "paused", T0)], {"dep_a": KEY1}, None, None)
    assert refused.value.reason == "UnknownDeploymentStatus" and "'paused'" in refused.value.message


@pytest.mark.parametrize(("wanted", "found", "drift"), [
    ({"enabled": False}, None, ()),
    ({"enabled": False}, {"oauthEnabled": False}, ()),
    ({"enabled": True}, {"oauthEnabled": False}, ("OAuth is off at pmcp.run, spec.pmcpRun.oauth.enabled is true",)),
    ({"enabled": False}, {"oauthEnabled": True}, ("OAuth is on at pmcp.run, spec.pmcpRun.oauth.enabled is false",)),
    ({"enabled": True}, {"oauthEnabled": True, "scopes": ["mcp/read", "openid", "email"], "dcrEnabled": True}, ()),
    ({"enabled": True, "scopes": ["openid"]}, {"oauthEnabled": True, "scopes": ["openid", "email"]},
     ("OAuth scopes are ['openid', 'email'], want ['openid']",)),
    ({"enabled": True, "dcrEnabled": False}, {"oauthEnabled": True, "dcrEnabled": True},
     ("dynamic client registration is on, want off",)),
], ids=["off", "off-off", "want-on", "want-off", "same", "scopes", "dcr"])
def test_oauth_drift(wanted: dict[str, Any], found: dict[str, Any] | None, drift: tuple[str, ...]) -> None:
    assert bodies.oauth_drift(PmcpRunOAuth.model_validate(wanted), found) == drift


# ----- the build ---------------------------------------------------------------------------------------------------
def build(*files: tuple[str, bytes]) -> Bundle:
    return Bundle(OCI, "sha256:" + "a" * 64, tuple(BundleFile(n, "application/octet-stream", d) for n, d in files))


TEMPLATE = json.dumps({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
    "Environment": {"Variables": {"RUST_LOG": "info"}}}}, "Log": {"Type": "AWS::Logs::LogGroup"}}}).encode()


def test_the_build_is_a_template_and_a_bootstrap_and_the_environment_goes_into_every_function() -> None:
    name, template, bootstrap, kind = bodies.build_of(build(("calc-stack.template.json", TEMPLATE), ("bootstrap", b"\x7fELF")))
    assert (name, bootstrap, kind) == ("calc-stack.template.json", b"\x7fELF", "application/octet-stream")
    rendered = json.loads(bodies.render_template(name, template, (("GREETING", "hi"), ("RUST_LOG", "debug"))))
    assert rendered["Resources"]["Fn"]["Properties"]["Environment"]["Variables"] == {"RUST_LOG": "debug", "GREETING": "hi"}
    assert "Properties" not in rendered["Resources"]["Log"]
    assert bodies.build_of(build(("template.json", TEMPLATE), ("bootstrap.zip", b"PK")))[3] == "application/zip"


@pytest.mark.parametrize(("files", "message"), [
    ((("bootstrap", b"x"),), "must hold one CloudFormation template"),
    ((("a.template.json", TEMPLATE), ("b.template.json", TEMPLATE), ("bootstrap", b"x")), "must hold one"),
    ((("template.json", TEMPLATE),), "bootstrap"),
])
def test_a_build_without_its_two_parts_is_refused_naming_what_it_holds(files: tuple[tuple[str, bytes], ...],
                                                                        message: str) -> None:
    with pytest.raises(TerminalError) as refused:
        bodies.build_of(build(*files))
    assert refused.value.reason == "BundleInvalid" and message in refused.value.message


@pytest.mark.parametrize("template", [b"not json", b'{"Resources": {}}', b"[]"])
def test_a_template_without_a_lambda_function_is_refused(template: bytes) -> None:
    with pytest.raises(TerminalError) as refused:
        bodies.render_template("template.json", template, ())
    assert refused.value.reason == "BundleInvalid"


# ----- the placement -----------------------------------------------------------------------------------------------
def test_the_placement_fills_cargo_pmcps_defaults_and_oauth_is_no_part_of_a_revision() -> None:
    plain, authenticated = want(serverVersion="1.0.0"), want(serverVersion="1.0.0", oauth={"enabled": True})
    variables = bodies.deployment_variables(plain.placement.where, {"templateS3Key": "t", "bootstrapS3Key": "b"})
    assert variables == {"templateS3Key": "t", "bootstrapS3Key": "b", "projectName": "calc", "runtime": "provided.al2023",
                         "memorySize": 512, "timeout": 30, "serverVersion": "1.0.0", "tier": None, "allowComposition": None,
                         "internalOnly": None, "compositionDescription": None}
    assert plain.revision_hash == authenticated.revision_hash, "OAuth is applied in place, it makes no deployment"
    assert not plain.placement.authenticated and authenticated.placement.authenticated
    assert want(serverVersion="2.0.0").revision_hash != plain.revision_hash
    assert plain.placement.facts == {"apiUrl": "https://api.pmcp.example", "projectName": "calc"}
    assert want(apiUrl="https://staging.pmcp.example/").placement.where.api_url == "https://staging.pmcp.example"


def test_an_image_instead_of_a_build_is_refused_naming_the_field() -> None:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "pmcp-run"}, "server": {"image": "ghcr.io/acme/calc:1"}})
    with pytest.raises(SpecError) as refused:
        resolve(spec, "calc", "team", CONNECTOR)
    assert refused.value.field == "spec.server.artifact"
