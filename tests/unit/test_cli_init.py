"""kubectl mcp init: deploy.toml -> McpDeployment, with the CLI's precedence and validation (golden tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from mcp_operator.api.models import McpDeploymentSpec
from mcp_operator.cli import deploytoml
from mcp_operator.cli.main import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "init"
AZURE_VARIABLES = [v for v, *_ in deploytoml.AZURE_SETTINGS]
BUNDLE = "ghcr.io/acme/edge-tools-worker@sha256:" + "c" * 64


def run_init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["init", *args])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [*AZURE_VARIABLES, *(v for v, *_ in deploytoml.GCP_SETTINGS)]:
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize("case", sorted(p.stem for p in GOLDEN.glob("*.toml")))
def test_golden(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    code_flag = ["--artifact", BUNDLE] if case.startswith(("cloudflare", "pmcp")) else ["--image", "ghcr.io/acme/server:1.0.0"]
    code, out, err = run_init(capsys, "--from", str(GOLDEN / f"{case}.toml"), *code_flag)
    assert code == 0, err
    expected = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(out)
    assert out == expected.read_text()
    for document in yaml.safe_load_all(out):
        McpDeploymentSpec.model_validate(document["spec"])


def test_secret_values_never_reach_the_mcpdeployment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_init(capsys, "--from", str(GOLDEN / "azure-full.toml"), "--image", "x:1")
    assert code == 0 and "sk-test-not-real" not in out
    assert "calculator-server-secrets" in err, "the user is told which Secret to create"
    code, out, _ = run_init(capsys, "--from", str(GOLDEN / "azure-full.toml"), "--image", "x:1", "--with-secret")
    mcpd, secret = list(yaml.safe_load_all(out))
    assert "sk-test-not-real" not in yaml.safe_dump(mcpd)
    assert secret["kind"] == "Secret" and secret["stringData"] == {"OPENAI_API_KEY": "sk-test-not-real"}


def test_project_directory_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".pmcp").mkdir()
    (tmp_path / ".pmcp" / "deploy.toml").write_text((GOLDEN / "azure-defaults.toml").read_text())
    code, out, _ = run_init(capsys, "--from", str(tmp_path), "--image", "x:1", "-n", "team-a")
    manifest = yaml.safe_load(out)
    assert code == 0 and manifest["metadata"] == {"name": "calculator-server", "namespace": "team-a"}


# The [azure] precedence matrix: environment variable > [azure] key > default, for every setting.
MATRIX = [
    ("AZURE_RESOURCE_GROUP", "resource_group", "resourceGroup", "env-rg", '"file-rg"', "file-rg", "svc-rg"),
    ("AZURE_CONTAINERAPP_ENV", "environment", "environment", "env-env", '"file-env"', "file-env", "svc-env"),
    ("AZURE_LOCATION", "location", "location", "northeurope", '"westus"', "westus", "eastus"),
    ("AZURE_TARGET_PORT", "target_port", "targetPort", "9000", "3000", 3000, 8080),
    ("AZURE_MIN_REPLICAS", "min_replicas", "minReplicas", "0", "3", 3, 1),
]


def _azure(tmp_path: Path, key: str | None = None, value: str | None = None) -> Path:
    text = '[target]\ntype = "azure-container-apps"\n\n[server]\nname = "svc"\n\n[environment]\n'
    if key:
        text += f"\n[azure]\n{key} = {value}\n"
    path = tmp_path / f"deploy-{key or 'none'}.toml"
    path.write_text(text)
    return path


def _azure_spec(path: Path, environ: dict[str, str]) -> dict[str, object]:
    return deploytoml.convert(path, environ, "x:1").manifest["spec"]["azure"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("variable", "key", "field", "env_value", "file_value", "file_result", "default"), MATRIX,
                         ids=[m[0] for m in MATRIX])
def test_azure_precedence(tmp_path: Path, variable: str, key: str, field: str, env_value: str, file_value: str,
                          file_result: object, default: object) -> None:
    with_key = _azure(tmp_path, key, file_value)
    expected_env: object = int(env_value) if isinstance(default, int) else env_value
    assert _azure_spec(with_key, {variable: env_value})[field] == expected_env, "variable beats the file"
    assert _azure_spec(with_key, {})[field] == file_result, "the file beats the default"
    assert _azure_spec(_azure(tmp_path), {})[field] == default, "default when neither is set"
    assert _azure_spec(_azure(tmp_path), {variable: env_value})[field] == expected_env, "variable beats the default"
    assert _azure_spec(with_key, {variable: ""})[field] == file_result, "an empty variable counts as unset (deviation)"
    assert _azure_spec(with_key, {variable: "   "})[field] == file_result


def test_numeric_variables_are_trimmed(tmp_path: Path) -> None:
    spec = _azure_spec(_azure(tmp_path), {"AZURE_TARGET_PORT": " 9090 ", "AZURE_MIN_REPLICAS": "\t2\n"})
    assert (spec["targetPort"], spec["minReplicas"]) == (9090, 2)


def test_cloud_run_precedence_is_the_other_way_round(tmp_path: Path) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text('[target]\ntype = "google-cloud-run"\n[server]\nname = "svc"\nmemory = "2Gi"\n[environment]\n'
                    '[gcp]\nregion = "europe-west4"\n')
    environ = {"CLOUD_RUN_REGION": "asia-east1", "CLOUD_RUN_MEMORY": "4Gi", "CLOUD_RUN_CPU": "2", "CLOUD_RUN_MAX_INSTANCES": "50"}
    gcp = deploytoml.convert(path, environ, "x:1").manifest["spec"]["gcp"]
    assert (gcp["region"], gcp["memory"]) == ("europe-west4", "2Gi"), "the file beats CLOUD_RUN_* variables"
    assert (gcp["cpu"], gcp["maxInstances"], gcp["minInstances"]) == ("2", 50, 0), "variables beat defaults"


BAD_VARIABLES = [
    ("AZURE_TARGET_PORT", "abc", "AZURE_TARGET_PORT must be a port number 1-65535, got 'abc'"),
    ("AZURE_TARGET_PORT", "0", "AZURE_TARGET_PORT must be a port number 1-65535, got '0'"),
    ("AZURE_TARGET_PORT", "65536", "AZURE_TARGET_PORT must be a port number 1-65535, got '65536'"),
    ("AZURE_TARGET_PORT", "80.5", "AZURE_TARGET_PORT must be a port number 1-65535, got '80.5'"),
    ("AZURE_MIN_REPLICAS", "-1", "AZURE_MIN_REPLICAS must be a non-negative integer, got '-1'"),
    ("AZURE_MIN_REPLICAS", "two", "AZURE_MIN_REPLICAS must be a non-negative integer, got 'two'"),
    ("AZURE_MIN_REPLICAS", "1.5", "AZURE_MIN_REPLICAS must be a non-negative integer, got '1.5'"),
]


@pytest.mark.parametrize(("variable", "value", "message"), BAD_VARIABLES, ids=[f"{v}={x}" for v, x, _ in BAD_VARIABLES])
def test_invalid_numeric_variable_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                    variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    # Validated before anything else: even a path that does not exist is not looked at first.
    code, out, err = run_init(capsys, "--from", "/nonexistent/deploy.toml", "--image", "x:1")
    assert (code, out) == (2, "") and message in err


BAD_FILES = [
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "svc"\n[azure]\ntarget_port = 0\n',
     "deploy.toml:6: [azure] target_port must be a port number 1-65535, got 0"),
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "svc"\n[azure]\nmin_replicas = -2\n',
     "deploy.toml:6: [azure] min_replicas must be a non-negative integer, got -2"),
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "svc"\n[azure]\nlocation = "eastus"\nregion = "x"\n',
     "deploy.toml:7: unknown key 'region' in [azure]"),
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "svc"\n\n[databse]\nurl = "x"\n',
     "deploy.toml:6: unknown section [databse]"),
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "svc"\nimage = \n',
     "malformed TOML: Invalid value (at line 5, column 9)"),
    ('[target]\ntype = "heroku"\n[server]\nname = "svc"\n', "deploy.toml:2: [target] type must be one of"),
    ('[target]\ntype = "azure-container-apps"\n', "missing required section [server]"),
    ('[target]\ntype = "azure-container-apps"\n[server]\nport = 1\n', "deploy.toml:4: unknown key 'port' in [server]"),
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "Bad_Name"\n', "spec.server.name: String should match pattern"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES, ids=[m.split(":")[-1][:30] for _, m in BAD_FILES])
def test_invalid_file_exits_2_with_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    code, out, err = run_init(capsys, "--from", str(path), "--image", "x:1")
    assert (code, out) == (2, "") and message in err, err


def test_flags_build_the_same_manifest_as_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, from_flags, _ = run_init(capsys, "--name", "svc", "--image", "x:1", "--location", "westus", "--target-port", "3000")
    assert code == 0
    code, from_file, _ = run_init(capsys, "--from", str(_azure(tmp_path, "location", '"westus"\ntarget_port = 3000')),
                                  "--image", "x:1")
    assert from_flags == from_file
    code, _, err = run_init(capsys, "--name", "svc", "--image", "x:1", "--target-port", "0")
    assert code == 2 and "error: --target-port must be a port number" in err and "flags:" not in err


def test_missing_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_init(capsys)
    assert code == 2 and "--from" in err
    code, _, err = run_init(capsys, "--from", "/nonexistent")
    assert code == 2 and "no such file" in err


@pytest.mark.parametrize(("section", "words"), [
    ('enabled = "yes"', "[post_deploy_tests] enabled must be true or false"),
    ("timeout_seconds = 2", "must be 5-1800 for spec.verify.timeoutSeconds"),
    ('checks = ["smoke"]', "unknown check 'smoke'"),
    ('on_failure = "rollback"', "must be 'fail' or 'warn'"),
])
def test_post_deploy_tests_are_carried_or_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          section: str, words: str) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(f'[target]\ntype = "azure-container-apps"\n\n[server]\nname = "svc"\n\n[post_deploy_tests]\n{section}\n')
    code, _, err = run_init(capsys, "--from", str(path), "--image", "x:1")
    assert code == 2 and words in err and "deploy.toml:8" in err, err


def test_post_deploy_tests_say_what_the_operator_does_not_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_init(capsys, "--from", str(GOLDEN / "post-deploy-tests.toml"), "--image", "x:1")
    assert code == 0 and yaml.safe_load(out)["spec"]["verify"] == {"enabled": True, "timeoutSeconds": 120}
    assert "'apps' (widget validation) is not run" in err and "apps_mode is not carried" in err


WRANGLER = """name = "edge-tools-prod"
main = "build/worker/shim.mjs"
compatibility_date = "2025-10-01"
compatibility_flags = ["nodejs_compat"]
account_id = "0123456789abcdef0123456789abcdef"
workers_dev = true

[build]
command = "worker-build --release"

[vars]
RUST_LOG = "info"
"""


def test_a_workers_project_takes_its_settings_from_wrangler_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".pmcp").mkdir()
    (tmp_path / ".pmcp" / "deploy.toml").write_text((GOLDEN / "cloudflare-workers.toml").read_text())
    (tmp_path / "deploy" / "cloudflare").mkdir(parents=True)
    (tmp_path / "deploy" / "cloudflare" / "wrangler.toml").write_text(WRANGLER)
    code, out, err = run_init(capsys, "--from", str(tmp_path), "--artifact", BUNDLE)
    assert code == 0, err
    spec = yaml.safe_load(out)["spec"]
    assert spec["server"]["artifact"] == {"oci": BUNDLE}
    assert spec["cloudflare"] == {"scriptName": "edge-tools-prod", "mainModule": "shim.mjs", "compatibilityDate": "2025-10-01",
                                  "compatibilityFlags": ["nodejs_compat"], "accountId": "0123456789abcdef0123456789abcdef",
                                  "workersDev": True}
    assert {"name": "RUST_LOG", "value": "info"} in spec["server"]["env"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--image", "ghcr.io/acme/server:1.0.0"], "--image: cloudflare-workers runs a bundle, not an image"),
    (["--artifact", "ghcr.io/acme/edge:1.0.0"], "spec.server.artifact.oci"),
])
def test_a_workers_init_refuses_an_image_or_an_unpinned_bundle(flags: list[str], message: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_init(capsys, "--from", str(GOLDEN / "cloudflare-workers.toml"), *flags)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_refused_value_names_the_deploy_toml_key_it_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "deploy.toml"
    source.write_text('[target]\ntype = "google-cloud-run"\n\n[server]\nname = "calc"\ncpu = "0.5"\n')
    code, _out, err = run_init(capsys, "--from", str(source), "--image", "ghcr.io/acme/calc:1")
    assert code == 2 and "line 6: [server] cpu (or CLOUD_RUN_CPU) -> spec.gcp.cpu" in err, err



@pytest.mark.parametrize(("deploy_toml", "flags", "message"), [
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "svc"\n[environment]\nPORT = "9000"\n', ["--image", "x:1"],
     "deploy.toml:6: [environment] PORT: the operator sets PORT"),
    ('[target]\ntype = "google-cloud-run"\n[server]\nname = "svc"\n', [], "--image is required for google-cloud-run"),
    ('[target]\ntype = "azure-container-apps"\n[server]\nname = "Svc_1"\n', ["--image", "x:1"],
     "line 4: [server] name -> spec.server.name"),
])
def test_init_refuses_what_admission_would_naming_the_key(deploy_toml: str, flags: list[str], message: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "deploy.toml"
    source.write_text(deploy_toml)
    code, out, err = run_init(capsys, "--from", str(source), *flags)
    assert (code, out) == (2, "") and message in err, err


def test_init_from_flags_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_init(capsys, "--name", "Bad_Name", "--image", "x:1")
    assert code == 2 and "--name -> spec.server.name" in err and "flags:" not in err, err



def test_flags_that_deploy_toml_gives_are_refused_with_from_not_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_init(capsys, "--from", str(GOLDEN / "azure-defaults.toml"), "--image", "x:1", "--location", "westus")
    assert (code, out) == (2, "") and "--location cannot be combined with --from" in err, err



def test_dash_o_is_the_output_format_and_the_file_has_its_own_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_init(capsys, "--from", str(GOLDEN / "azure-defaults.toml"), "--image", "x:1", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["kind"] == "McpDeployment"
    target = tmp_path / "calc.yaml"
    code, out, _err = run_init(capsys, "--from", str(GOLDEN / "azure-defaults.toml"), "--image", "x:1", "--output-file",
                               str(target))
    assert code == 0 and out == "" and yaml.safe_load(target.read_text())["kind"] == "McpDeployment"


def test_a_pmcp_run_project_carries_auth_composition_and_the_crate_version(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".pmcp").mkdir()
    (tmp_path / ".pmcp" / "deploy.toml").write_text((GOLDEN / "pmcp-run.toml").read_text() + """
[auth]
enabled = true

[auth.dcr]
enabled = true
default_scopes = ["openid", "mcp/read"]
public_client_patterns = ["claude", "cursor"]

[composition]
tier = "foundation"
allow_composition = true
""")
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "quick-share"\nversion = "0.4.2"\n')
    code, out, err = run_init(capsys, "--from", str(tmp_path), "--artifact", BUNDLE)
    assert code == 0, err
    spec = yaml.safe_load(out)["spec"]
    assert spec["pmcpRun"] == {"serverVersion": "0.4.2", "tier": "foundation", "allowComposition": True, "oauth": {
        "enabled": True, "scopes": ["openid", "mcp/read"], "dcrEnabled": True, "publicClientPatterns": ["claude", "cursor"]}}
    assert "[auth] is not carried" not in err, "pmcp-run carries [auth]"
    assert spec["server"]["artifact"] == {"oci": BUNDLE} and "image" not in spec["server"]
