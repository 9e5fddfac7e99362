"""Who we are to the Kubernetes API: in-cluster service account, or a kubeconfig context.

One login serves both kopf (registered as its login handler) and our own client (``kube.Kube``), so the
two never disagree about the cluster or the identity. It covers what kubectl users have in practice:
several kubeconfig files, a chosen context, paths relative to their file, tokens and token files, client
certificates, and exec credential plugins (kubelogin for AKS, aws eks get-token, gke-gcloud-auth-plugin).
The official clients are not used because kopf imports whichever is installed, with every model of
the Kubernetes API: ~40 MB of memory in an operator that makes three kinds of calls.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(Exception):
    """The kubeconfig cannot be used; the message names what is missing and where."""


@dataclass(frozen=True)
class Login:
    info: kopf.ConnectionInfo
    namespace: str  # the context's namespace (in-cluster: the pod's), else "default"


def login(kubeconfig: str | None = None, context: str | None = None) -> Login:
    """In-cluster credentials when running in a pod without a kubeconfig, else the kubeconfig's context."""
    paths = kubeconfig or os.environ.get("KUBECONFIG", "")
    if not paths and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    files = [Path(p).expanduser() for p in (paths.split(os.pathsep) if paths else ["~/.kube/config"]) if p]
    return from_kubeconfig(files, context)


def in_cluster() -> Login:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host  # IPv6 service addresses
    token_file = SERVICE_ACCOUNT_DIR / "token"
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    if not token_file.exists():
        raise KubeconfigError(f"KUBERNETES_SERVICE_HOST is set but {token_file} is missing: mount a service account token")
    ca = SERVICE_ACCOUNT_DIR / "ca.crt"
    # The token is read on every login: kubelet rotates projected tokens, and kopf logs in again on a 401.
    info = kopf.ConnectionInfo(server=f"https://{host}:{port}", ca_path=str(ca) if ca.exists() else None,
                               token=token_file.read_text().strip(), priority=30)
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
    return Login(info, namespace)


def from_kubeconfig(files: list[Path], context: str | None = None) -> Login:
    """Merges ``files`` as kubectl does (the first occurrence of a name wins) and logs in with one context."""
    merged: dict[str, dict[str, dict[str, Any]]] = {"contexts": {}, "clusters": {}, "users": {}}
    origin: dict[tuple[str, str], Path] = {}  # relative paths are relative to the file that defined them
    current = None
    for path in files:
        if not path.exists():
            continue
        document = yaml.safe_load(path.read_text()) or {}
        current = current or document.get("current-context")
        for section, entries in merged.items():
            for entry in document.get(section) or []:
                if entry.get("name") not in entries:
                    entries[entry["name"]] = entry.get(section[:-1]) or {}
                    origin[(section, entry["name"])] = path.parent
    if not any(merged.values()):
        raise KubeconfigError(f"no kubeconfig found (looked at {', '.join(map(str, files))}): set KUBECONFIG, or run in a "
                              "cluster with a service account (kubectl mcp also takes --kubeconfig)")
    name = context or current
    if not name or name not in merged["contexts"]:
        raise KubeconfigError(f"context {name!r} is not in the kubeconfig" if name else
                              "the kubeconfig has no current-context: pass --context")
    ctx = merged["contexts"][name]
    cluster, user = merged["clusters"].get(ctx.get("cluster", "")), merged["users"].get(ctx.get("user", ""), {})
    if cluster is None:
        raise KubeconfigError(f"context {name!r} names cluster {ctx.get('cluster')!r}, which the kubeconfig does not define")
    cluster_dir, user_dir = origin[("clusters", ctx["cluster"])], origin.get(("users", ctx.get("user", "")), Path.cwd())
    fields: dict[str, Any] = {
        "server": cluster.get("server"),
        "ca_path": _resolve(cluster_dir, cluster.get("certificate-authority")),
        "ca_data": cluster.get("certificate-authority-data"),
        "insecure": cluster.get("insecure-skip-tls-verify"),
        "proxy_url": cluster.get("proxy-url"),
        "certificate_path": _resolve(user_dir, user.get("client-certificate")),
        "certificate_data": user.get("client-certificate-data"),
        "private_key_path": _resolve(user_dir, user.get("client-key")),
        "private_key_data": user.get("client-key-data"),
        "username": user.get("username"),
        "password": user.get("password"),
        "token": user.get("token"),
        "default_namespace": ctx.get("namespace"),
    }
    if not fields["token"] and user.get("tokenFile"):
        fields["token"] = Path(_resolve(user_dir, user["tokenFile"]) or "").read_text().strip()
    if user.get("exec"):
        fields.update(run_exec_plugin(user["exec"], cluster))
    if not fields["server"]:
        raise KubeconfigError(f"cluster {ctx['cluster']!r} has no server")
    return Login(kopf.ConnectionInfo(**fields, priority=30), ctx.get("namespace") or "default")


def run_exec_plugin(spec: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    """Runs a client-go exec credential plugin and returns the ConnectionInfo fields it provides."""
    api_version = spec.get("apiVersion", "client.authentication.k8s.io/v1")
    exec_info: dict[str, Any] = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        exec_info["spec"]["cluster"] = {k: cluster[k] for k in ("server", "certificate-authority-data") if k in cluster}
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []},
           "KUBERNETES_EXEC_INFO": json.dumps(exec_info)}
    command = [spec["command"], *(spec.get("args") or [])]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError as error:
        hint = f": {spec['installHint']}" if spec.get("installHint") else ""
        raise KubeconfigError(f"the kubeconfig's exec plugin {spec['command']!r} is not installed{hint}") from error
    if done.returncode != 0:
        raise KubeconfigError(f"the exec plugin {spec['command']!r} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    status = (json.loads(done.stdout) or {}).get("status") or {}
    fields: dict[str, Any] = {}
    if status.get("token"):
        fields["token"] = status["token"]
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        # ConnectionInfo takes PEM or base64; the plugin gives PEM.
        fields["certificate_data"] = base64.b64encode(status["clientCertificateData"].encode()).decode()
        fields["private_key_data"] = base64.b64encode(status["clientKeyData"].encode()).decode()
        fields["certificate_path"] = fields["private_key_path"] = None
    if status.get("expirationTimestamp"):
        fields["expiration"] = datetime.datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00"))
    if not fields:
        raise KubeconfigError(f"the exec plugin {spec['command']!r} returned neither a token nor a client certificate")
    return fields


def _resolve(base: Path, value: str | None) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)
