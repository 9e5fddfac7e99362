"""kubectl-mcp: the `cargo pmcp deploy` workflow for McpDeployments (`kubectl mcp ...` when on PATH).

Exit codes: 0 done; 1 the operation failed (Stalled, timed out, refused, not found); 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from ..api.models import GROUP, IMAGE_REFERENCE, KIND, McpDeploymentSpec, McpDeploymentStatus, target_status
from ..kube import Kube, KubeError, SecretMissing
from ..kubeconfig import KubeconfigError
from . import deploytoml

EXAMPLES = """examples:
  kubectl mcp init --from . --image ghcr.io/acme/calc:1.0.0 --output-file calc.yaml   # from .pmcp/deploy.toml
  kubectl mcp init --name calc --image ghcr.io/acme/calc:1.0.0              # the default target, from flags
  kubectl mcp deploy -f calc.yaml --wait --timeout 10m
  kubectl mcp outputs calc -o json
  kubectl mcp history calc
  kubectl mcp status calc                        # conditions, traffic, revisions, last Events: the "why" screen
  kubectl mcp rollback calc                      # to the previous revision, like kubectl rollout undo
  kubectl mcp rollback calc --to-revision 3 --wait
  kubectl mcp logs calc --follow --tail 50
  kubectl mcp destroy calc --wait
  kubectl mcp bundle push build/worker ghcr.io/acme/calc-worker:1.0.0  # prints the reference by digest for server.artifact
"""
COMMAND_EXAMPLES = {
    "deploy": ["kubectl mcp deploy -f calc.yaml --wait --timeout 10m",
               "kubectl mcp deploy -f servers.yaml --wait          # every McpDeployment in the file, in its namespace",
               "kubectl mcp deploy -f calc.yaml --force-conflicts  # take over fields Argo CD or Flux owns"],
    "outputs": ["kubectl mcp outputs calc", "kubectl mcp outputs calc -o json"],
    "history": ["kubectl mcp history calc", "kubectl mcp history calc -n team-a -o yaml"],
    "status": ["kubectl mcp status calc                            # conditions, traffic, revisions, last Events",
               "kubectl mcp status calc -o json"],
    "rollback": ["kubectl mcp rollback calc                          # the revision before the current spec's",
                 "kubectl mcp rollback calc --to-revision 3 --wait"],
    "logs": ["kubectl mcp logs calc --tail 50", "kubectl mcp logs calc --follow", "kubectl mcp logs calc --revision 2"],
    "destroy": ["kubectl mcp destroy calc --wait                     # shows what was deleted, or left with Retain"],
    "completion": ["source <(kubectl mcp completion bash)", "kubectl mcp completion zsh > ~/.zsh/kubectl-mcp"],
}


def _examples(command: str) -> str:
    return "examples:\n" + "".join(f"  {line}\n" for line in COMMAND_EXAMPLES[command])


BUNDLE_EXAMPLES = """examples:
  kubectl mcp bundle push build/worker ghcr.io/acme/calc-worker:1.0.0 --main shim.mjs
      -> ghcr.io/acme/calc-worker@sha256:...   (put it in spec.server.artifact.oci; docs/targets.md says how to build it)
Credentials for the registry are ORAS's: ~/.docker/config.json (docker login / oras login).
"""
FIELD_MANAGER = "kubectl-mcp"


class CliError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def duration(text: str) -> float:
    """kubectl-style durations: 90, 90s, 5m, 1h, 1h30m."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


# ----- cluster access ------------------------------------------------------------------------------

class Cluster:
    """The cluster of --kubeconfig/--context, and the namespace of -n (default: the context's)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args

    async def __aenter__(self) -> Cluster:
        self.kube, context_namespace = await Kube.connect(self.args.kubeconfig, self.args.context)
        self.namespace = self.args.namespace or context_namespace
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.kube.close()

    async def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return await self.kube.get(namespace or self.namespace, name)
        except KubeError as error:
            raise CliError(f"reading {KIND} {namespace or self.namespace}/{name} failed: {error.message}") from error

    async def require(self, name: str) -> dict[str, Any]:
        found = await self.get(name)
        if found is None:
            raise CliError(f'mcpdeployment "{name}" not found in namespace "{self.namespace}"')
        return found

    async def apply(self, document: dict[str, Any], force: bool = False) -> str:
        """Server-side apply of one manifest, in its own namespace (else -n, else the context's); returns `kind/name`."""
        if document.get("kind") not in (KIND, "Secret"):
            raise CliError(f"{document.get('kind')} is not something kubectl mcp deploys (McpDeployment or Secret)", 2)
        metadata = document.setdefault("metadata", {})
        if not metadata.get("name"):
            raise CliError(f"a {document.get('kind')} in the file has no metadata.name", 2)
        namespace = metadata.setdefault("namespace", self.namespace)
        try:
            await self.kube.server_side_apply(namespace, document, FIELD_MANAGER, force)
        except KubeError as error:
            if error.status == 409:
                raise CliError(f"applying {document.get('kind')} {namespace}/{metadata['name']} conflicts with another "
                               f"manager of its fields: {error.message}. Change it where it is managed (Argo CD, Flux), or "
                               "rerun with --force-conflicts to take those fields over") from error
            # An unknown field is the API server's 500 "failed to create typed patch object": bad input, not a failure.
            bad_input = error.status in (400, 404, 422) or "typed patch object" in error.message
            raise CliError(f"applying {document.get('kind')} {namespace}/{metadata['name']}: {error.message}",
                           2 if bad_input else 1) from error
        return f"{str(document['kind']).lower()}/{metadata['name']}"


# ----- output helpers --------------------------------------------------------------------------------

def emit(data: Any, output: str, table: Callable[[], str]) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False), end="")
    else:
        print(table())


def conditions_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in body.get("status", {}).get("conditions", [])}


def outcome(body: dict[str, Any]) -> str | None:
    """'ready' or 'stalled' once the operator has judged the current generation; None while in progress."""
    status = body.get("status", {})
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return None
    conditions = conditions_of(body)
    if conditions.get("Stalled", {}).get("status") == "True":
        return "stalled"
    if conditions.get("Ready", {}).get("status") == "True":
        return "ready"
    return None


def progress_line(body: dict[str, Any]) -> str:
    status = body.get("status", {})
    conditions = conditions_of(body)
    active = [f"{kind}: {c['reason']}" + (f" - {c['message']}" if c.get("message") else "")
              for kind, c in conditions.items() if c["status"] == "True" and kind in ("Reconciling", "Stalled", "Ready")]
    ready = conditions.get("Ready") or {}
    return (f"state={ready.get('reason') or '-'} revision={status.get('latestRevision') or '-'} "
            f"serving={status.get('servingRevision') or '-'} | " + ("; ".join(active) or "waiting for the operator"))


async def follow(cluster: Cluster, name: str, limit: float, namespace: str | None = None) -> int:
    """Prints progress until Ready (0), Stalled (1) or the timeout (1)."""
    started = time.monotonic()
    deadline, last = started + limit, ""
    while True:
        body = await cluster.get(name, namespace)
        if body is None:
            raise CliError(f"mcpdeployment/{name} disappeared")
        # The operator's verdict on an older generation is not news: say that it has not seen this spec yet.
        current = body.get("status", {}).get("observedGeneration") == body["metadata"].get("generation")
        line = progress_line(body) if current else "waiting for the operator to see this spec"
        if line != last:
            print(f"{time.strftime('%H:%M:%S')} +{time.monotonic() - started:.0f}s {name}: {line}", flush=True)
            last = line
        result = outcome(body)
        if result == "ready":
            print(f"mcpdeployment/{name} is Ready after {time.monotonic() - started:.0f}s: {body['status'].get('url', '')}")
            return 0
        if result == "stalled":
            message = conditions_of(body)["Stalled"].get("message", "")
            print(f"mcpdeployment/{name} is Stalled: {message}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            print(f"timed out after {limit:.0f}s waiting for mcpdeployment/{name}", file=sys.stderr)
            return 1
        await asyncio.sleep(1.0)


# ----- commands ----------------------------------------------------------------------------------------

def cmd_init(args: argparse.Namespace) -> int:
    if args.source:
        ignored = [flag for flag in ("--name", *deploytoml.INIT_FLAGS) if getattr(args, flag[2:].replace("-", "_"))]
        if args.target != deploytoml.DEFAULT_TARGET:
            ignored.append("--target")
        if ignored:  # refused rather than silently ignored: the file is the source of these settings
            raise CliError(f"{', '.join(ignored)} cannot be combined with --from: deploy.toml gives "
                           f"{'it' if len(ignored) == 1 else 'them'} (edit the file, or drop --from)", 2)
        conversion = deploytoml.convert(Path(args.source), os.environ, args.image, args.namespace, args.with_secret,
                                        args.artifact)
    else:
        if not args.name:
            raise CliError("init needs --from PATH, or --name (and --image) to build the manifest from flags", 2)
        flags = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in deploytoml.INIT_FLAGS}
        document = deploytoml.document_from_flags(args.target, args.name, flags)
        conversion = deploytoml.from_document(document, "", "flags", os.environ, args.image, args.namespace,
                                              artifact=args.artifact)
    for warning in conversion.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    documents = [conversion.manifest] + ([conversion.secret] if conversion.secret else [])
    if args.output == "json":  # one object, or a List of the manifest and its Secret (as kubectl -o json prints several)
        text = json.dumps(documents[0] if len(documents) == 1 else {"apiVersion": "v1", "kind": "List", "items": documents},
                          indent=2) + "\n"
    else:
        text = yaml.safe_dump_all(documents, sort_keys=False)
    if args.output_file:
        Path(args.output_file).write_text(text)
        print(f"wrote {args.output_file}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def _load_manifests(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        documents = [d for d in yaml.safe_load_all(text) if d]
    except (OSError, yaml.YAMLError) as error:
        raise CliError(f"cannot read {path}: {error}", 2) from error
    if not any(d.get("kind") == KIND for d in documents):
        raise CliError(f"{path} holds no {KIND}", 2)
    return documents


async def cmd_deploy(args: argparse.Namespace) -> int:
    documents = _load_manifests(args.filename)
    async with Cluster(args) as cluster:
        for document in sorted(documents, key=lambda d: d.get("kind") == KIND):  # Secrets first
            print(f"{await cluster.apply(document, args.force_conflicts)} serverside-applied")
        applied = [(d["metadata"]["name"], d["metadata"]["namespace"]) for d in documents if d.get("kind") == KIND]
        if not args.wait:
            for name, namespace in applied:
                body = await cluster.get(name, namespace)
                print(f"mcpdeployment/{name}: {progress_line(body) if body else 'not found'}")
            return 0
        # Every McpDeployment of the file is followed; the command fails if any of them does.
        results = await asyncio.gather(*(follow(cluster, name, args.timeout, namespace=namespace)
                                         for name, namespace in applied))
        return max(results)


async def cmd_outputs(args: argparse.Namespace) -> int:
    async with Cluster(args) as cluster:
        body = await cluster.require(args.name)
    status = body.get("status", {})
    # Where it serves, then the target's own status object (where it placed the server), as the target names it.
    facts = target_status(McpDeploymentStatus.model_validate(status))
    data = {"url": status.get("url"), "fqdn": status.get("fqdn"), "servingRevision": status.get("servingRevision"), **facts}
    emit(data, args.output, lambda: "\n".join(f"{_label(k) + ':':<18}{v if v is not None else '-'}" for k, v in data.items()))
    return 0


def _label(key: str) -> str:
    """A status key as a table label: servingRevision -> Serving revision."""
    return {"url": "URL", "fqdn": "FQDN"}.get(key) or re.sub(r"([A-Z])", r" \1", key).lower().capitalize()


def columns(header: list[str], rows: list[list[str]]) -> str:
    """A table whose columns are as wide as their widest cell (digests and long names stay aligned), as kubectl's."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *rows])


def history_rows(status: dict[str, Any]) -> list[list[str]]:
    serving = status.get("servingRevision")
    return [[str(r["number"]) + ("*" if r["name"] == serving else ""), r["name"], r["image"], r["state"],
             f"{r.get('trafficWeight', 0)}%", r["createdAt"]] for r in status.get("revisions", [])]


HISTORY_HEADER = ["REVISION", "NAME", "IMAGE", "STATE", "TRAFFIC", "CREATED"]


async def cmd_history(args: argparse.Namespace) -> int:
    async with Cluster(args) as cluster:
        body = await cluster.require(args.name)
    status = body.get("status", {})
    revisions = status.get("revisions", [])

    def table() -> str:
        return columns(HISTORY_HEADER, history_rows(status)) if revisions else f"mcpdeployment/{args.name} has no revisions yet"

    emit(revisions, args.output, table)
    return 0


async def cmd_status(args: argparse.Namespace) -> int:
    """The one screen that answers "why": conditions, traffic, revisions and the last Events."""
    async with Cluster(args) as cluster:
        body = await cluster.require(args.name)
        events = await cluster.kube.events(cluster.namespace, args.name)
    status = body.get("status", {})
    recent = events[-10:]
    data = {"name": args.name, "namespace": body["metadata"].get("namespace"), "target": body["spec"]["target"]["type"],
            "url": status.get("url"), "generation": body["metadata"].get("generation"),
            "observedGeneration": status.get("observedGeneration"), "conditions": status.get("conditions", []),
            "traffic": status.get("traffic", []), "revisions": status.get("revisions", []),
            "events": [{"type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"),
                        "count": e.get("count", 1), "last": e.get("lastTimestamp") or e.get("eventTime")} for e in recent]}

    def section(title: str, header: list[str], rows: list[list[str]], empty: str | None = "(none)") -> list[str]:
        table = columns(header, rows).splitlines() if rows or empty is None else [empty]
        return ["", f"{title}:", *("  " + line for line in table)]

    def table() -> str:
        observed = data["observedGeneration"] if data["observedGeneration"] is not None else "-"
        return "\n".join([
            f"Name:        {data['namespace']}/{args.name}", f"Target:      {data['target']}",
            f"URL:         {data['url'] or '-'}", f"Generation:  {data['generation']} (observed: {observed})",
            *section("Conditions", ["TYPE", "STATUS", "REASON", "MESSAGE"],
                     [[c["type"], c["status"], c.get("reason", ""), c.get("message", "")] for c in data["conditions"]],
                     empty=None),
            *section("Traffic", ["REVISION", "NUMBER", "PERCENT", "URL"],
                     [[t["revisionName"], str(t.get("revisionNumber", "-")), f"{t['percent']}%", t.get("url") or "-"]
                      for t in data["traffic"]]),
            *section("Revisions", HISTORY_HEADER, history_rows(status)),
            *section("Events", ["TYPE", "REASON", "LAST", "MESSAGE"],
                     [[e["type"] or "", e["reason"] or "", str(e["last"] or ""), e["message"] or ""] for e in data["events"]]),
        ])

    emit(data, args.output, table)
    return 0


def rollback_patch(body: dict[str, Any], to_revision: int | None) -> tuple[int, dict[str, Any]]:
    """The spec merge patch that restores a revision. Default, as `kubectl rollout undo`: the newest healthy revision
    before the current spec's revision (after a failed rollout, the one that kept serving)."""
    status = McpDeploymentStatus.model_validate(body.get("status") or {})
    numbers = [r.number for r in status.revisions]
    if not status.revisions:
        raise CliError(f"mcpdeployment/{body['metadata']['name']} has no revision history to roll back to")
    if to_revision is None:
        of_spec = next((r for r in status.revisions if status.latest_revision and r.name == status.latest_revision), None)
        current = (of_spec or status.revisions[-1]).number
        earlier = [r for r in status.revisions if r.number < current and r.state not in ("Failed", "Gone", "Pending")]
        if not earlier:
            raise CliError(f"no earlier revision to roll back to from revision {current} (history: {numbers})")
        target = earlier[-1]
    else:
        found = [r for r in status.revisions if r.number == to_revision]
        if not found:
            raise CliError(f"revision {to_revision} is not in the history of mcpdeployment/{body['metadata']['name']} "
                           f"(known: {', '.join(map(str, numbers))})")
        target = found[0]
        if target.state == "Failed":
            raise CliError(f"revision {to_revision} failed to provision; refusing to roll back to it")
    snapshot = target.snapshot.model_dump(by_alias=True, exclude_none=True, mode="json")
    # The revision ran a bundle (server.artifact) or an image; where its image is no image reference (a bundle's, a
    # zip's), server.image is removed and the target's own section restores what it ran.
    image = snapshot["image"] if "artifact" not in snapshot and re.fullmatch(IMAGE_REFERENCE, snapshot["image"]) else None
    patch: dict[str, Any] = {"server": {"image": image, "artifact": snapshot.get("artifact"),
                                        "env": snapshot.get("env") or None, "resources": snapshot["resources"]}}
    if target.snapshot.target is not None:  # the target's own fields, merged back into its section as they were
        patch[target.snapshot.target.section] = target.snapshot.target.settings
    return target.number, patch


async def cmd_rollback(args: argparse.Namespace) -> int:
    async with Cluster(args) as cluster:
        body = await cluster.require(args.name)
        number, patch = rollback_patch(body, args.to_revision)
        await cluster.kube.patch_spec(cluster.namespace, args.name, patch)
        artifact = patch["server"]["artifact"] or {}
        what = f"image {patch['server']['image']}" if patch["server"]["image"] else \
            f"bundle {artifact.get('oci') or artifact.get('url')}" if artifact else "its code"
        print(f"mcpdeployment/{args.name} rolled back to revision {number} ({what})")
        if args.wait:
            return await follow(cluster, args.name, args.timeout)
    return 0


async def cmd_logs(args: argparse.Namespace) -> int:
    from ..contract import Credentials, TerminalError, TransientError
    from ..reconcile.desired import SpecError, resolve
    from ..settings import Settings
    from ..targets.registry import Connectors, quiet_loggers, supported

    async with Cluster(args) as cluster:
        body = await cluster.require(args.name)
        namespace = cluster.namespace
        spec = McpDeploymentSpec.model_validate(body["spec"])
        secret = None
        if spec.credentials is not None:  # the same identity the operator uses for this resource
            secret_name = spec.credentials.secret_ref.name
            try:
                data, version = await cluster.kube.secret_data(namespace, secret_name)
            except SecretMissing as missing:
                raise CliError(f"logs: {missing} (spec.credentials.secretRef): create it, or fix the reference") from missing
            secret = Credentials(f"{namespace}/{secret_name}", data, version)
    for noisy in quiet_loggers():  # an SDK's own warnings would repeat, in three lines, the one we print
        logging.getLogger(noisy).setLevel(logging.ERROR)
    connectors = Connectors(Settings.from_env())
    connector = connectors.get(str(spec.target.type))
    if connector is None:
        raise CliError(f"logs: target type {spec.target.type} is not supported yet (supported: {', '.join(supported())})")
    status = McpDeploymentStatus.model_validate(body.get("status") or {})
    recorded = target_status(status)
    # --revision takes the cloud's name or our number (as `history` shows it): a number is the name of that record.
    revision = next((r.name for r in status.revisions if args.revision and str(r.number) == args.revision and r.name),
                    args.revision)
    try:
        desired = resolve(spec, args.name, namespace, connector, recorded)
        target = await connector.connect(desired, secret)
        async for line in target.logs(desired, revision, args.tail, args.follow):
            print(line, flush=True)
    except (SpecError, TerminalError, TransientError) as error:
        raise CliError(f"logs: {error}") from error
    finally:
        await connectors.close()
    return 0


async def cmd_destroy(args: argparse.Namespace) -> int:
    async with Cluster(args) as cluster:
        await cluster.require(args.name)
        await cluster.kube.delete(cluster.namespace, args.name)
        print(f'mcpdeployment.{GROUP} "{args.name}" deleted')
        if args.wait:
            return await follow_deletion(cluster, args.name, args.timeout)
    return 0


async def follow_deletion(cluster: Cluster, name: str, limit: float) -> int:
    """Prints the deletion as the operator does it (its Deleting/Deleted Events: what was deleted, what was left)
    until the resource is gone (0) or the timeout (1)."""
    deadline, shown = time.monotonic() + limit, set()
    while True:
        body = await cluster.get(name)
        for event in await cluster.kube.events(cluster.namespace, name):
            key = (event.get("reason"), event.get("message"))
            if event.get("reason") in DELETION_REASONS and key not in shown:
                shown.add(key)
                print(f"{time.strftime('%H:%M:%S')} {event['reason']}: {event.get('message', '')}", flush=True)
        if body is None:
            print(f"mcpdeployment/{name} deleted")
            return 0
        if time.monotonic() > deadline:
            print(f"timed out after {limit:.0f}s waiting for mcpdeployment/{name} to be deleted", file=sys.stderr)
            return 1
        await asyncio.sleep(1.0)


DELETION_REASONS = ("Deleting", "Deleted", "Abandoned", "CredentialsMissing")


# ----- argument parsing ------------------------------------------------------------------------------

def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp-operator")
    except PackageNotFoundError:  # a source tree that was not installed
        return "unknown"


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="path to the kubeconfig file")
    common.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context to use")
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace (default: the context's)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table", help="output format")
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--wait", action="store_true", help="follow progress until Ready, Stalled or the timeout")
    waiting.add_argument("--timeout", type=duration, default=600.0, help="how long --wait waits (default 10m)")

    root = argparse.ArgumentParser(prog="kubectl mcp", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
                                   description="Deploy MCP servers with McpDeployment resources: the cargo pmcp deploy "
                                               "workflow, Kubernetes-native.", epilog=EXAMPLES)
    root.add_argument("--version", action="version", version=f"kubectl-mcp {_version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", parents=[common], help="convert .pmcp/deploy.toml (or flags) to an McpDeployment",
                               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    init.add_argument("--from", dest="source", help="a deploy.toml, or a project directory holding .pmcp/deploy.toml")
    init.add_argument("--image", help="container image (deploy.toml has none: the CLI builds from source)")
    init.add_argument("--artifact", help="a bundle by digest, REGISTRY/REPO@sha256:..., for targets that run no image "
                                         "(what `kubectl mcp bundle push` prints)")
    init.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml",
                      help="output format, as on every command (default yaml)")
    init.add_argument("--output-file", help="write the manifest to this file instead of stdout")
    init.add_argument("--with-secret", action="store_true", help="also emit a Secret manifest with the [secrets] values")
    init.add_argument("--name", help="server name (without --from)")
    init.add_argument("--target", default=deploytoml.DEFAULT_TARGET, help="target type (without --from)")
    for flag, (table, key) in deploytoml.INIT_FLAGS.items():
        init.add_argument(flag, help=f"[{table}] {key} (without --from)")

    deploy = commands.add_parser("deploy", parents=[common, waiting], help="server-side apply a manifest and follow it",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_examples("deploy"))
    deploy.add_argument("-f", "--filename", required=True, help="manifest file (or - for stdin); every McpDeployment in it "
                                                                 "is applied in its own namespace and followed")
    deploy.add_argument("--force-conflicts", action="store_true",
                        help="take over fields another manager owns (Argo CD, Flux), as kubectl apply --server-side does")
    for name, text in (("outputs", "URL, FQDN, serving revision and where the target placed the server"),
                       ("history", "the revision history"),
                       ("status", "why it is as it is: conditions, traffic, revisions and the last Events")):
        sub = commands.add_parser(name, parents=[common, output], help=text, formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog=_examples(name))
        sub.add_argument("name")
    rollback = commands.add_parser("rollback", parents=[common, waiting], help="restore a revision's spec (kubectl rollout undo)",
                                   formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_examples("rollback"))
    rollback.add_argument("name")
    rollback.add_argument("--to-revision", type=int, help="revision number (default: the previous one)")
    logs = commands.add_parser("logs", parents=[common], help="stream the server's console logs from the cloud",
                               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_examples("logs"))
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep streaming")
    logs.add_argument("--tail", type=int, default=20, help="lines of history to show first (default 20)")
    logs.add_argument("--revision", help="a revision's number (as history shows it) or its name in the cloud (default: "
                                         "every revision)")
    destroy = commands.add_parser("destroy", parents=[common, waiting], help="delete it, and its cloud resources",
                                  formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_examples("destroy"))
    destroy.add_argument("name")
    bundle = commands.add_parser("bundle", help="package a built bundle (not an image) as an OCI artifact",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BUNDLE_EXAMPLES)
    bundle_commands = bundle.add_subparsers(dest="bundle_command", required=True, metavar="COMMAND")
    push = bundle_commands.add_parser("push", help="push a directory (one layer per file) and print it by digest",
                                      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BUNDLE_EXAMPLES)
    push.add_argument("directory", help="the built bundle directory, e.g. build/worker")
    push.add_argument("reference", help="where to push it, e.g. ghcr.io/acme/calc-worker:1.0.0")
    push.add_argument("--main", help="the main module (default: left to the target: its only .mjs, or shim.mjs)")
    push.add_argument("--ca-file", help="a CA bundle for a registry behind a private CA")
    push.add_argument("--plain-http", action="store_true", help="talk HTTP to the registry (a local test registry)")
    completion = commands.add_parser("completion", help="print a shell completion script (kubectl mcp <TAB> needs none: "
                                                         "kubectl runs kubectl_complete-mcp)",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_examples("completion"))
    completion.add_argument("shell", choices=("bash", "zsh"))
    return root


def cmd_bundle_push(args: argparse.Namespace) -> int:
    """Pushes a built bundle directory (e.g. worker-build's build/worker) as an OCI artifact; prints it by digest."""
    from .. import artifacts

    directory = Path(args.directory)
    if not directory.is_dir():
        raise CliError(f"bundle push: {directory} is not a directory (expected a built bundle, e.g. build/worker)", 2)
    try:
        reference = artifacts.push(directory, args.reference, main=args.main, ca_bundle=args.ca_file, insecure=args.plain_http)
    except (ValueError, OSError) as error:
        raise CliError(f"bundle push: {error}") from error
    except Exception as error:  # ORAS raises its own and requests' errors: one line, never a traceback
        raise CliError(f"bundle push: the registry refused or could not be reached: {error}") from error
    print(reference)
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from . import completion

    print(completion.script(args.shell), end="")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int | Awaitable[int]]] = {
    "init": cmd_init, "deploy": cmd_deploy, "outputs": cmd_outputs, "history": cmd_history, "rollback": cmd_rollback,
    "logs": cmd_logs, "destroy": cmd_destroy, "bundle": cmd_bundle_push, "completion": cmd_completion,
    "status": cmd_status,
}


def main(argv: list[str] | None = None) -> None:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["__complete"]:  # the shell asks what may come next (see cli/completion.py)
        from . import completion

        sys.exit(completion.complete(parser(), words[1:]))
    args = parser().parse_args(argv)
    for name in ("kubeconfig", "context", "namespace"):
        if not hasattr(args, name):
            setattr(args, name, None)
    code: int
    try:
        result = COMMANDS[args.command](args)
        code = asyncio.run(result) if asyncio.iscoroutine(result) else int(result)  # type: ignore[arg-type]
    except deploytoml.InitError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        code = error.code
    except (KubeconfigError, KubeError) as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
