"""Logging in as kubectl would: merged kubeconfig files, contexts, relative paths, token files, exec plugins, in-cluster."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from mcp_operator import kubeconfig
from mcp_operator.kubeconfig import KubeconfigError, from_kubeconfig, login


def write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def config(context: str, cluster: dict[str, Any], user: dict[str, Any], namespace: str | None = None,
           current: str | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"cluster": f"{context}-cluster", "user": f"{context}-user"}
    if namespace:
        ctx["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Config", "current-context": current or context,
            "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
            "users": [{"name": f"{context}-user", "user": user}],
            "contexts": [{"name": context, "context": ctx}]}


def plugin(tmp_path: Path, body: str) -> Path:
    """An executable exec credential plugin: a Python script (the interpreter running the tests)."""
    script = tmp_path / "plugin.py"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_token_and_namespace_of_the_current_context(tmp_path: Path) -> None:
    path = write(tmp_path / "config", config("dev", {"server": "https://dev:6443"}, {"token": "abc"}, namespace="team-a"))
    found = from_kubeconfig([path])
    assert found.info.server == "https://dev:6443"
    assert found.info.token == "abc"
    assert found.namespace == "team-a"
    assert found.info.as_http_headers()["Authorization"] == "Bearer abc"


def test_files_merge_as_kubectl_merges_them_first_name_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a", config("shared", {"server": "https://first"}, {"token": "first-token"}))
    second_doc = config("shared", {"server": "https://second"}, {"token": "second-token"}, current="other")
    second_doc["contexts"].append({"name": "other", "context": {"cluster": "shared-cluster", "user": "shared-user"}})
    second = write(tmp_path / "b", second_doc)
    merged = from_kubeconfig([first, second])
    assert (merged.info.server, merged.info.token) == ("https://first", "first-token")
    # A context only the second file defines still resolves, against the first file's cluster of that name.
    other = from_kubeconfig([first, second], context="other")
    assert other.info.server == "https://first"
    assert other.namespace == "default"


def test_relative_paths_are_relative_to_the_file_that_defines_them(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "token").write_text("from-a-file\n")
    path = write(tmp_path / "kube" / "config", config(
        "dev", {"server": "https://dev", "certificate-authority": "../certs/ca.crt"}, {"tokenFile": "../certs/token"}))
    found = from_kubeconfig([path])
    assert found.info.ca_path == str(tmp_path / "kube" / ".." / "certs" / "ca.crt")
    assert found.info.token == "from-a-file"


def test_kubeconfig_environment_variable_lists_several_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "absent"
    present = write(tmp_path / "present", config("dev", {"server": "https://dev"}, {"token": "t"}))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(missing), str(present)]))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert login().info.server == "https://dev"


@pytest.mark.parametrize(("document", "context", "message"), [
    (config("dev", {"server": "https://dev"}, {}), "prod", "context 'prod' is not in the kubeconfig"),
    ({**config("dev", {"server": "https://dev"}, {}), "current-context": ""}, None, "no current-context: pass --context"),
    ({**config("dev", {"server": "https://dev"}, {}), "clusters": []}, None,
     "names cluster 'dev-cluster', which the kubeconfig does not define"),
    (config("dev", {}, {}), None, "cluster 'dev-cluster' has no server"),
])
def test_unusable_kubeconfigs_say_what_is_wrong(tmp_path: Path, document: dict[str, Any], context: str | None, message: str) -> None:
    path = write(tmp_path / "config", document)
    with pytest.raises(KubeconfigError, match=message):
        from_kubeconfig([path], context)


def test_no_kubeconfig_at_all_names_the_places_looked_at(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=f"no kubeconfig found \\(looked at {tmp_path / 'nothing'}\\): set KUBECONFIG"):
        from_kubeconfig([tmp_path / "nothing"])


def test_exec_plugin_gets_its_env_args_and_cluster_info_and_its_token_is_used(tmp_path: Path) -> None:
    script = plugin(tmp_path, """
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["spec"]["cluster"]["server"] == "https://aks", info
assert os.environ["TENANT"] == "contoso" and sys.argv[1:] == ["get-token", "--login", "azurecli"], sys.argv
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": "exec-token", "expirationTimestamp": "2030-01-02T03:04:05Z"}}))
""")
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script),
                     "args": ["get-token", "--login", "azurecli"], "env": [{"name": "TENANT", "value": "contoso"}],
                     "provideClusterInfo": True}}
    found = from_kubeconfig([write(tmp_path / "config", config("aks", {"server": "https://aks"}, user))])
    assert found.info.token == "exec-token"
    assert found.info.expiration is not None and found.info.expiration.year == 2030


def test_exec_plugin_client_certificate_is_used_instead_of_the_files(tmp_path: Path) -> None:
    script = plugin(tmp_path, """
print(json.dumps({"status": {"clientCertificateData": "-----BEGIN CERTIFICATE-----\\nX\\n",
                             "clientKeyData": "-----BEGIN KEY-----\\nY\\n"}}))
""")
    user = {"client-certificate": "stale.crt", "client-key": "stale.key", "exec": {"command": str(script)}}
    found = from_kubeconfig([write(tmp_path / "config", config("dev", {"server": "https://dev"}, user))])
    assert found.info.certificate_path is None and found.info.private_key_path is None
    assert base64.b64decode(found.info.certificate_data or "").startswith(b"-----BEGIN CERTIFICATE-----")


def test_failing_exec_plugin_reports_its_exit_code_and_stderr(tmp_path: Path) -> None:
    script = plugin(tmp_path, "print('please run az login', file=sys.stderr); sys.exit(3)")
    path = write(tmp_path / "config", config("dev", {"server": "https://dev"}, {"exec": {"command": str(script)}}))
    with pytest.raises(KubeconfigError, match=r"failed \(3\): please run az login"):
        from_kubeconfig([path])


def test_missing_exec_plugin_gives_its_install_hint(tmp_path: Path) -> None:
    user = {"exec": {"command": "kubelogin-not-installed-here", "installHint": "install kubelogin: az aks install-cli"}}
    path = write(tmp_path / "config", config("dev", {"server": "https://dev"}, user))
    with pytest.raises(KubeconfigError, match="is not installed: install kubelogin: az aks install-cli"):
        from_kubeconfig([path])


def test_exec_plugin_with_no_credential_is_an_error(tmp_path: Path) -> None:
    script = plugin(tmp_path, "print(json.dumps({'status': {}}))")
    path = write(tmp_path / "config", config("dev", {"server": "https://dev"}, {"exec": {"command": str(script)}}))
    with pytest.raises(KubeconfigError, match="returned neither a token nor a client certificate"):
        from_kubeconfig([path])


def test_in_cluster_reads_the_service_account_and_rereads_a_rotated_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "namespace").write_text("mcp-system")
    (tmp_path / "ca.crt").write_text("")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", tmp_path)  # where kubelet mounts it in a pod
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    found = login()
    assert (found.info.server, found.info.token, found.namespace) == ("https://[fd00::1]:443", "first", "mcp-system")
    assert found.info.ca_path == str(tmp_path / "ca.crt")
    (tmp_path / "token").write_text("rotated\n")
    assert login().info.token == "rotated"


def test_in_cluster_without_a_token_says_what_to_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    with pytest.raises(KubeconfigError, match="mount a service account token"):
        login()
