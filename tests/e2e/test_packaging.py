"""What ships: the Helm chart, the kustomize manifests and the image's wheel + entrypoint, on the real API server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from armsim.testing import SimulatorThread
from localcluster import Cluster, free_port
from localcluster.operator import operator_environment
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import Mcpd, manifest

pytestmark = pytest.mark.e2e
CHART = REPO_ROOT / "helm" / "mcp-operator"
KUBE_VERSION = "1.37.2"


def _ensure_namespaces(cluster: Cluster, *names: str) -> None:
    for name in names:
        if cluster.kubectl("get", "namespace", name, check=False).returncode != 0:
            cluster.kubectl("create", "namespace", name)


def _server_dry_run(cluster: Cluster, rendered: str) -> str:
    result = cluster.kubectl("apply", "--dry-run=server", "--server-side", "--force-conflicts", "-f", "-", input=rendered,
                             check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_helm_lint_passes(helm_bin: str) -> None:
    result = subprocess.run([helm_bin, "lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


VALUES = {
    "cluster-wide, workload identity": [],
    "namespaced, secret credentials": ["--set", "watchNamespaces={team-a,team-b}", "--set", "azure.credentialMode=secret"],
    "AWS: IRSA role, keys Secret, region": ["--set", "aws.roleArn=arn:aws:iam::123456789012:role/mcp-operator",
                                            "--set", "aws.existingSecret=aws-keys", "--set", "aws.region=eu-west-1"],
    "Google Cloud: GKE workload identity, key Secret, project": [
        "--set", "gcp.serviceAccount=mcp-operator@acme-mcp.iam.gserviceaccount.com", "--set", "gcp.existingSecret=gcp-key",
        "--set", "gcp.project=acme-mcp"],
    "Cloudflare: token Secret, account": ["--set", "cloudflare.existingSecret=cf-token",
                                          "--set", "cloudflare.accountId=0123456789abcdef0123456789abcdef"],
    "pmcp.run: client credentials Secret, API URL": ["--set", "pmcpRun.existingSecret=pmcp-client",
                                                     "--set", "pmcpRun.apiUrl=https://api.pmcp.example"],
    "single replica, debug, private CA": ["--set", "replicas=1", "--set", "logLevel=debug",
                                          "--set", "azure.caBundleConfigMap=corp-ca", "--set", "azure.clientId=abc"],
}


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_helm_template_passes_server_side_dry_run(cluster: Cluster, helm_bin: str, values: str) -> None:
    _ensure_namespaces(cluster, "mcp-system", "team-a", "team-b")
    rendered = subprocess.run([helm_bin, "template", "mcp", str(CHART), "-n", "mcp-system", "--kube-version", KUBE_VERSION,
                               "--include-crds", *VALUES[values]], capture_output=True, text=True, check=True).stdout
    applied = _server_dry_run(cluster, rendered)
    assert "deployment.apps/mcp-mcp-operator serverside-applied (server dry run)" in applied
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_helm_rejects_an_unknown_credential_mode(helm_bin: str) -> None:
    result = subprocess.run([helm_bin, "template", "mcp", str(CHART), "--kube-version", KUBE_VERSION, "--set",
                             "azure.credentialMode=password"], capture_output=True, text=True, check=False)
    # values.schema.json refuses it before the template's own check would: either names the value and the choices.
    assert result.returncode != 0 and "/azure/credentialMode" in result.stderr and "workloadIdentity" in result.stderr


@pytest.mark.parametrize("kustomization", ["base", "overlays/namespaced", "overlays/aks-workload-identity",
                                           "overlays/eks-irsa", "overlays/gke-workload-identity"])
def test_kustomize_output_passes_server_side_dry_run(cluster: Cluster, kustomization: str) -> None:
    _ensure_namespaces(cluster, "mcp-system", "mcp-servers")
    rendered = cluster.kubectl("kustomize", str(REPO_ROOT / "manifests" / kustomization)).stdout
    applied = _server_dry_run(cluster, rendered)
    assert "deployment.apps/mcp-operator serverside-applied (server dry run)" in applied
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert {"CustomResourceDefinition", "ServiceAccount", "Deployment"} <= kinds
    if kustomization == "overlays/namespaced":
        assert "Role" in kinds and "ClusterKopfPeering" not in kinds


def test_the_same_crd_ships_everywhere(cluster: Cluster, helm_bin: str) -> None:
    crd = (REPO_ROOT / "crds" / "mcpdeployments.mcp.deploy.dev.yaml").read_text()
    kustomized = cluster.kubectl("kustomize", str(REPO_ROOT / "manifests" / "base")).stdout
    from_kustomize = next(d for d in yaml.safe_load_all(kustomized) if d and d["metadata"]["name"] == "mcpdeployments.mcp.deploy.dev")
    original = yaml.safe_load(crd)
    from_kustomize["metadata"].get("labels", {}).pop("app.kubernetes.io/part-of", None)
    assert from_kustomize["spec"] == original["spec"]
    assert (CHART / "crds" / "mcpdeployments.mcp.deploy.dev.yaml").read_text() == crd


def _dockerfile_entrypoint() -> list[str]:
    text = (REPO_ROOT / "Dockerfile").read_text()
    found = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE)
    assert found, "the Dockerfile has an exec-form ENTRYPOINT"
    return list(json.loads(found.group(1)))


def test_dockerfile_final_stage_is_slim_non_root_and_without_build_tools() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) == 2 and stages[1].startswith("python:3.11-slim")
    final = stages[1]
    assert re.search(r"^USER 65532", final, re.MULTILINE)
    assert "apt-get" not in final and "gcc" not in final and "COPY operator" not in final


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built as the image builds it, installed into a fresh virtualenv."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "dist"),
                    str(REPO_ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((work / "dist").glob("mcp_operator-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("mcp_operator/") for n in names)
    assert not any(n.startswith(("armsim/", "localcluster/", "tests/")) for n in names), "test tooling is not shipped"
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True, text=True,
                             timeout=600, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "pip"), "check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    return venv


def test_the_image_entrypoint_runs_the_operator_from_the_installed_wheel(
        cluster: Cluster, cloud: SimulatorThread, installed_wheel: Path, namespace: str, tmp_path: Path) -> None:
    entrypoint = _dockerfile_entrypoint()
    port = free_port()
    command = [str(installed_wheel / "bin" / entrypoint[0]),
               *(arg.replace("0.0.0.0:8080", f"127.0.0.1:{port}") for arg in entrypoint[1:]), "--namespace", namespace]
    env = {**operator_environment(cluster, cloud.operator_environment()), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(command, env=env, stdout=open(tmp_path / "log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "log").read_text()
                assert time.monotonic() < deadline, "the liveness endpoint never answered"
                time.sleep(0.3)
        mcpd = Mcpd(cluster, namespace, "calc-wheel")
        mcpd.apply(manifest("calc-wheel"))
        assert mcpd.wait_ready(60)["url"].startswith("https://calc-wheel.")
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_helm_aws_values_reach_the_service_account_and_the_environment(helm_bin: str) -> None:
    rendered = subprocess.run([helm_bin, "template", "mcp", str(CHART), "--kube-version", KUBE_VERSION,
                               *VALUES["AWS: IRSA role, keys Secret, region"]], capture_output=True, text=True, check=True).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    assert documents["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/mcp-operator")
    assert documents["ConfigMap"]["data"]["AWS_REGION"] == "eu-west-1"
    sources = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": "aws-keys"}} in sources


def test_helm_gcp_values_reach_the_service_account_the_environment_and_a_mounted_key(helm_bin: str) -> None:
    rendered = subprocess.run([helm_bin, "template", "mcp", str(CHART), "--kube-version", KUBE_VERSION,
                               *VALUES["Google Cloud: GKE workload identity, key Secret, project"]], capture_output=True,
                              text=True, check=True).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    annotations = documents["ServiceAccount"]["metadata"]["annotations"]
    assert annotations["iam.gke.io/gcp-service-account"] == "mcp-operator@acme-mcp.iam.gserviceaccount.com"
    data = documents["ConfigMap"]["data"]
    assert data["GOOGLE_CLOUD_PROJECT"] == "acme-mcp"
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    mounted = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "gcp-credentials")
    assert data["GOOGLE_APPLICATION_CREDENTIALS"] == mounted["mountPath"] + "/credentials.json"
    assert next(v for v in pod["volumes"] if v["name"] == "gcp-credentials")["secret"]["secretName"] == "gcp-key"


def test_helm_cloudflare_values_reach_the_environment(helm_bin: str) -> None:
    rendered = subprocess.run([helm_bin, "template", "mcp", str(CHART), "--kube-version", KUBE_VERSION,
                               *VALUES["Cloudflare: token Secret, account"]], capture_output=True, text=True, check=True).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    assert documents["ConfigMap"]["data"]["CLOUDFLARE_ACCOUNT_ID"] == "0123456789abcdef0123456789abcdef"
    assert {"secretRef": {"name": "cf-token"}} in documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]


def test_helm_pmcp_run_values_reach_the_environment(helm_bin: str) -> None:
    rendered = subprocess.run([helm_bin, "template", "mcp", str(CHART), "--kube-version", KUBE_VERSION,
                               *VALUES["pmcp.run: client credentials Secret, API URL"]], capture_output=True, text=True,
                              check=True).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    assert documents["ConfigMap"]["data"]["PMCP_API_URL"] == "https://api.pmcp.example"
    assert {"secretRef": {"name": "pmcp-client"}} in documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]


def _render(helm_bin: str, *values: str, kube_version: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_bin, "template", "mcp", str(CHART), *(("--kube-version", KUBE_VERSION) if kube_version else ()),
                           *values], capture_output=True, text=True, check=False)


def test_helm_template_works_without_kube_version(helm_bin: str) -> None:
    """Offline, helm assumes an old Kubernetes: the chart must not refuse to render for it (the CRD's CEL does that)."""
    rendered = _render(helm_bin, kube_version=False)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Deployment" in rendered.stdout


@pytest.mark.parametrize(("value", "where"), [("replicas=two", "/replicas"), ("metrics.port=99999", "/metrics/port"),
                                              ("azure.credentialMode=magic", "/azure/credentialMode"),
                                              ("replicaz=2", "replicaz")])
def test_values_schema_rejects_what_the_chart_cannot_use(helm_bin: str, value: str, where: str) -> None:
    rendered = _render(helm_bin, "--set", value)
    assert rendered.returncode != 0 and where in rendered.stderr, rendered.stderr


def test_the_chart_ships_readiness_a_disruption_budget_metrics_and_aggregated_roles(helm_bin: str) -> None:
    documents = [d for d in yaml.safe_load_all(_render(helm_bin, "--set", "metrics.serviceMonitor.enabled=true",
                                                       "--set", "metrics.serviceMonitor.labels.release=prometheus").stdout) if d]
    kinds = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    container = kinds[("Deployment", "mcp-mcp-operator")]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][-2:] == ["--log-format", "full"]
    assert kinds[("PodDisruptionBudget", "mcp-mcp-operator")]["spec"]["minAvailable"] == 1
    assert kinds[("Service", "mcp-mcp-operator-metrics")]["spec"]["ports"][0]["port"] == 9090
    monitor = kinds[("ServiceMonitor", "mcp-mcp-operator")]
    assert monitor["metadata"]["labels"]["release"] == "prometheus" and monitor["spec"]["endpoints"][0]["port"] == "metrics"
    edit, view = kinds[("ClusterRole", "mcp-mcp-operator-edit")], kinds[("ClusterRole", "mcp-mcp-operator-view")]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert "delete" in edit["rules"][0]["verbs"] and view["rules"][0]["verbs"] == ["get", "list", "watch"]
    single = [d["kind"] for d in yaml.safe_load_all(_render(helm_bin, "--set", "replicas=1").stdout) if d]
    assert "PodDisruptionBudget" not in single, "one replica: a budget of one would block every drain"


def test_a_templated_crd_is_upgraded_by_helm_upgrade_and_kept_on_uninstall(helm_bin: str, tmp_path: Path) -> None:
    """Helm never upgrades crds/: with crds.templated the CRD is a template, so an upgrade carries a new schema. On a
    control plane of its own (the shared one's CRD is not Helm's to take)."""
    import shutil

    from localcluster import LocalControlPlane

    old_chart = tmp_path / "mcp-operator"
    shutil.copytree(CHART, old_chart)
    crd_file = old_chart / "crds" / "mcpdeployments.mcp.deploy.dev.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    for version in crd["spec"]["versions"]:  # the release before: a printer column fewer
        version["additionalPrinterColumns"] = [c for c in version["additionalPrinterColumns"] if c["name"] != "Message"]
    crd_file.write_text(yaml.safe_dump(crd))
    plane = LocalControlPlane(workdir=tmp_path / "plane")
    cluster = plane.start()
    try:
        def helm(command: str, *args: str) -> None:
            done = subprocess.run([helm_bin, command, "mcp", *args, "--kubeconfig", str(cluster.kubeconfig), "-n",
                                   "mcp-system"], capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr

        def columns() -> list[str]:
            found = json.loads(cluster.kubectl("get", "crd", "mcpdeployments.mcp.deploy.dev", "-o", "json").stdout)
            return [c["name"] for c in found["spec"]["versions"][0]["additionalPrinterColumns"]]

        settings = ["--set", "crds.templated=true", "--set", "replicas=1"]
        helm("install", str(old_chart), "--skip-crds", "--create-namespace", *settings)
        assert "Message" not in columns()
        helm("upgrade", str(CHART), *settings)
        assert "Message" in columns(), "the upgrade carried the new schema"
        helm("uninstall")
        assert columns(), "the CRD (and every McpDeployment with it) survives an uninstall"
    finally:
        plane.stop()
