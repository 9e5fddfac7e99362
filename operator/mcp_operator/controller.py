"""One reconcile pass for one McpDeployment: read, decide (reconcile.plan), act through the target, record.

The kopf handlers call into this module and nothing else; the decisions themselves live in
``reconcile/`` and are pure. Status is written before a cloud write that creates something (the
intent) and after it, so a crash at any point loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from . import metrics
from .api.models import RECONCILE_REQUESTED_AT, McpCheck, McpDeploymentSpec, McpDeploymentStatus, target_status
from .concurrency import PassSlots
from .contract import Connector, Credentials, Deletion, Target, TerminalError, TransientError
from .kube import Kube, SecretMissing
from .reconcile import ownership
from .reconcile import plan as planning
from .reconcile.desired import Desired, SpecError, resolve, with_history, with_secrets_digest
from .secrets import SecretIndex, fingerprint
from .settings import Settings
from .targets.registry import Connectors, supported
from .verify import Checker, Handshake, Resolver, ToolCall

log = logging.getLogger(__name__)
EventSink = Callable[[str, str, str], None]  # (type, reason, message)
# On a credentials Secret while an McpDeployment needs it to delete its cloud side: deleting the namespace
# would otherwise remove the Secret first and leave the cloud resources behind (as PVC protection does).
CREDENTIALS_FINALIZER = "mcp.deploy.dev/credentials-in-use"
CHECK_ATTEMPT_SECONDS = 10.0  # one MCP handshake; a slower server is asked again within spec.verify.timeoutSeconds
ABANDON_ANNOTATION = "mcp.deploy.dev/abandon"  # "true": release the McpDeployment, leave the cloud side as it is


@dataclass
class PassResult:
    requeue_after: float | None
    status: McpDeploymentStatus


@dataclass
class Controller:
    settings: Settings
    kube: Kube
    failures: dict[str, int] = field(default_factory=dict)  # uid -> consecutive transient failures
    # The status this process last wrote, by uid: only the operator writes status, and the watch that
    # delivers our own patch can lag behind the next pass.
    written: dict[str, McpDeploymentStatus] = field(default_factory=dict)
    # A digest of the status patch last sent, by uid: a pass that ends where the last one did (waiting for
    # shared infrastructure, an idle drift check) sends nothing. Only the operator writes status.
    sent: dict[str, bytes] = field(default_factory=dict)
    secret_index: SecretIndex = field(default_factory=SecretIndex)  # fed by the Secrets watch (handlers.py)
    passes: PassSlots = field(init=False)  # see concurrency.py
    connectors: Connectors = field(init=False)
    checker: Checker = field(init=False)  # the MCP handshake before traffic (verify.py)

    def __post_init__(self) -> None:
        self.passes = PassSlots(self.settings.max_concurrent_reconciles)
        self.connectors = Connectors(self.settings)
        self.checker = Checker(Resolver.parse(self.settings.resolve), self.settings.ca_bundle)

    async def close(self) -> None:
        await self.connectors.close()

    # ----- the cloud side ---------------------------------------------------------------------------
    def connector_for(self, spec: McpDeploymentSpec) -> Connector:
        connector = self.connectors.get(str(spec.target.type))
        if connector is None:
            raise SpecError("spec.target.type", f"target type {spec.target.type} is not supported yet by this operator; "
                            f"reconciled types: {', '.join(supported())}", reason="TargetNotSupported")
        return connector

    def desired_of(self, spec: McpDeploymentSpec, name: str, namespace: str,
                   status: McpDeploymentStatus | None = None) -> Desired:
        """The desired state; the target also reads what it recorded in status (e.g. settings it must undo)."""
        recorded = target_status(status) if status is not None else None
        return resolve(spec, name, namespace, self.connector_for(spec), recorded)

    async def target_for(self, desired: Desired, spec: McpDeploymentSpec) -> Target:
        secret = None
        if spec.credentials is not None:
            secret_name = spec.credentials.secret_ref.name
            data, version = await self.kube.secret_data(desired.namespace, secret_name)
            secret = Credentials(f"{desired.namespace}/{secret_name}", data, version)
        return await self.connector_for(spec).connect(desired, secret)

    async def protect_credentials(self, namespace: str, name: str, spec: McpDeploymentSpec) -> None:
        """Keeps the credentials Secret from going away while this McpDeployment needs it (see CREDENTIALS_FINALIZER)."""
        if spec.credentials is None:
            return
        secret = (namespace, spec.credentials.secret_ref.name)
        self.secret_index.use(secret, (namespace, name))
        if secret not in self.secret_index.protected:
            await self.kube.protect_secret(*secret, CREDENTIALS_FINALIZER, protect=True)
            self.secret_index.protected.add(secret)

    async def release_credentials(self, namespace: str, name: str, spec: McpDeploymentSpec | None) -> None:
        """After deletion: the Secret may go once no other McpDeployment known to use it is left."""
        if spec is None or spec.credentials is None:
            return
        secret = (namespace, spec.credentials.secret_ref.name)
        others = self.secret_index.users.get(secret, set()) - {(namespace, name)}
        if not others:
            await self.kube.protect_secret(*secret, CREDENTIALS_FINALIZER, protect=False)
            self.secret_index.protected.discard(secret)

    async def secret_values(self, desired: Desired) -> dict[str, str]:
        """Environment variable name -> value, read from the referenced Kubernetes Secrets (never logged)."""
        secrets: dict[str, dict[str, str]] = {}
        values = {}
        for ref in desired.secret_env:
            if ref.secret_name not in secrets:  # one read per Secret, however many of its keys are used
                secrets[ref.secret_name], _ = await self.kube.secret_data(desired.namespace, ref.secret_name)
            values[ref.env_name] = _key(secrets[ref.secret_name], desired.namespace, ref.secret_name, ref.key)
        return values

    async def secrets_digest(self, desired: Desired, salt: str) -> str | None:
        """The digest of the Secret values this spec sends, from the watched Secrets (read once when not yet seen)."""
        if not desired.secret_env:
            return None
        entries = []
        for ref in desired.secret_env:
            fingerprints = self.secret_index.fingerprints.get((desired.namespace, ref.secret_name))
            if fingerprints is None:  # not delivered by the watch yet: read it, and let the watch keep it current
                data, _ = await self.kube.secret_data(desired.namespace, ref.secret_name)
                fingerprints = {k: fingerprint(v) for k, v in data.items()}
            entries.append((ref.env_name, ref.secret_name, ref.key,
                            _key(fingerprints, desired.namespace, ref.secret_name, ref.key)))
        return await self.secret_index.digest(salt, entries)

    def known_status(self, body: dict[str, Any]) -> McpDeploymentStatus:
        """The status this process last wrote for the resource, else the one its body carries."""
        written = self.written.get(body["metadata"].get("uid", ""))
        return written or McpDeploymentStatus.model_validate(body.get("status") or {})

    # ----- one pass ---------------------------------------------------------------------------------
    async def reconcile(self, body: dict[str, Any], emit: EventSink) -> PassResult:
        uid = body["metadata"].get("uid", "")
        before = self.known_status(body)
        result = await self._reconcile_pass(body, emit)
        _account(uid, str((body.get("spec") or {}).get("target", {}).get("type", "")), before, result.status)
        return result

    async def _reconcile_pass(self, body: dict[str, Any], emit: EventSink) -> PassResult:
        meta = body["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta.get("uid", "")
        generation = int(meta.get("generation", 0))
        status = self.known_status(body)
        stamp = planning.now_iso()
        requested = (meta.get("annotations") or {}).get(RECONCILE_REQUESTED_AT)
        if requested is not None:  # this pass answers it (Flux's lastHandledReconcileAt)
            status.last_handled_reconcile_at = requested

        def latest() -> McpDeploymentStatus:
            """What this pass last wrote (an intent recorded before the cloud write that failed), else what it read."""
            return self.written.get(uid) or status

        async def stalled(reason: str, message: str, requeue: float | None) -> PassResult:
            status = latest()
            if not planning.stalled_for(status, reason):  # every kind of stall is a Warning, once, not every pass
                emit("Warning", reason, message)
            log.info("%s/%s: stalled (%s): %s", namespace, name, reason, message)
            status.observed_generation = generation
            planning.conditions_for(status, "stalled", reason, message, generation, stamp)
            await self._save(uid, namespace, name, status)
            return PassResult(requeue, status)

        try:
            spec = McpDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            return await stalled("InvalidSpec", f"the spec does not validate: {error.errors()[0]['msg']}", None)
        try:
            desired = self.desired_of(spec, name, namespace, status)
        except SpecError as error:
            return await stalled(error.reason, error.message, None)
        try:
            result = await self._reconcile(desired, spec, status, generation, uid, namespace, name, emit)
            self.failures.pop(uid, None)  # (every pass ends in _save, which records what it wrote)
            return result
        except SecretMissing as missing:
            return await stalled("SecretNotFound", f"{missing}: create it, or fix the reference in the spec",
                                 min(10.0, self.settings.drift_interval))
        except TerminalError as error:
            return await stalled(error.reason, error.message, self.settings.drift_interval)
        except TransientError as error:
            attempts = self.failures[uid] = self.failures.get(uid, 0) + 1
            delay = error.retry_after or min(self.settings.max_backoff, self.settings.poll_interval * 2 ** min(attempts - 1, 8))
            log.info("%s/%s: transient %s (%s); retrying in %.0fs", namespace, name, error.reason, error.message, delay)
            status = latest()
            status.observed_generation = generation
            planning.conditions_for(status, "progressing", error.reason, f"{error.message}; retrying in {delay:.0f}s",
                                    generation, stamp)
            await self._save(uid, namespace, name, status)
            return PassResult(delay, status)

    async def _reconcile(self, desired: Desired, spec: McpDeploymentSpec, status: McpDeploymentStatus, generation: int,
                         uid: str, namespace: str, name: str, emit: EventSink) -> PassResult:
        self.secret_index.refer(namespace, name, {ref.secret_name for ref in desired.secret_env})
        await self.protect_credentials(namespace, name, spec)
        desired = with_secrets_digest(desired, await self.secrets_digest(desired, uid or f"{namespace}/{name}"))
        desired = with_history(desired, status)
        target = await self.target_for(desired, spec)
        observed = await target.observe(desired, detailed=planning.wants_detail(status, generation))
        if planning.needs_detail(status, desired.revision_hash, observed):
            observed = await target.observe(desired, detailed=True)
        context = planning.Context(target.capabilities, lambda key: target.revision_id(desired, key),
                                   spec.revision_history_limit, self.settings.poll_interval, self.settings.drift_interval)
        decided = planning.plan(desired, status, observed, generation, context)
        nxt, action = decided.status, decided.action
        if isinstance(action, planning.VerifyMcp):  # a check reads, never writes: it runs even when suspended
            if not await self.verify_revision(nxt, action, desired, spec.target.type, emit):
                for kind, reason, message in decided.events:
                    emit(kind, reason, message)
                await self._save(uid, namespace, name, nxt)
                return PassResult(decided.requeue_after, nxt)
            # Passed: decide again on what the cloud showed, in this pass (no second read, no extra pass).
            earlier = decided.events
            decided = planning.plan(desired, nxt, observed, generation, context)
            decided.events[:0] = earlier  # what the first decision found is still news
            nxt, action = decided.status, decided.action
        if isinstance(action, planning.CheckServing):  # reads only, and decides nothing: it reports
            await self.check_serving(nxt, action, desired, spec.target.type, emit)
            action = None
        if action is not None and spec.suspend:
            planning.conditions_for(nxt, "suspended", "Suspended", f"spec.suspend is true: observing only; next step would be "
                                    f"{type(action).__name__.lower()}", generation, planning.now_iso())
            await self._save(uid, namespace, name, nxt)
            return PassResult(self.settings.drift_interval, nxt)
        if isinstance(action, planning.Create):
            # Shared infrastructure first: while it is being created there is no app write to announce, and a
            # fleet waiting for one environment then writes its status once per pass, not twice.
            prepared = await target.prepare(desired)
            for created in prepared.created_infrastructure:
                if created not in nxt.created_infrastructure:
                    nxt.created_infrastructure.append(created)
                    emit("Normal", "CreatedInfrastructure", f"created {created} (tagged as owned by {desired.owner})")
            if prepared.ready:
                await self._save(uid, namespace, name, nxt)  # the intent first: a crash now repeats the same revision
                secrets = await self.secret_values(desired)
                accepted = await target.create_revision(desired, secrets, action.key, action.serving)
                decided.requeue_after = _after(accepted.retry_after, decided.requeue_after)
            else:  # say what it waits for, not that the revision is being created
                planning.conditions_for(nxt, "progressing", "PreparingInfrastructure",
                                        f"waiting for what revision {action.key.number} needs around it in the cloud (shared "
                                        "infrastructure the target creates once) to be ready", generation, planning.now_iso())
                decided.requeue_after = _after(prepared.retry_after, decided.requeue_after)
        elif isinstance(action, planning.Route):
            if action.drift:
                metrics.DRIFT_CORRECTIONS.labels(spec.target.type, "traffic").inc()
            accepted = await target.route(desired, action.traffic, action.revive)
            decided.requeue_after = _after(accepted.retry_after, decided.requeue_after)
        elif isinstance(action, planning.Reconfigure):
            metrics.DRIFT_CORRECTIONS.labels(spec.target.type, "settings").inc()
            accepted = await target.reconfigure(desired, await self.secret_values(desired), action.serving)
            decided.requeue_after = _after(accepted.retry_after, decided.requeue_after)
        elif isinstance(action, planning.Retire):
            await target.retire(desired, action.revisions)
        for kind, reason, message in decided.events:
            emit(kind, reason, message)
        await self._save(uid, namespace, name, nxt)
        return PassResult(decided.requeue_after, nxt)

    async def verify_revision(self, status: McpDeploymentStatus, action: planning.VerifyMcp, desired: Desired,
                              target_type: str, emit: EventSink) -> bool:
        """Runs the MCP handshake and records it on the revision (the planner decides what follows); True if it passed."""
        record = next(r for r in status.revisions if r.number == action.number)
        found = await self._handshake(action.url, desired, target_type)
        now = planning.now_iso()
        record.mcp = _check_of(found, action.url, now, record.mcp.first_checked_at if record.mcp else now)
        if found.ok:
            emit("Normal", "McpVerified", f"revision {record.number} answered the MCP handshake at {action.url}: "
                                          f"{found.server_name} {found.server_version}, protocol {found.protocol_version}, "
                                          f"{len(found.tools)} tools, {found.latency_ms} ms")
        return found.ok

    async def check_serving(self, status: McpDeploymentStatus, action: planning.CheckServing, desired: Desired,
                            target_type: str, emit: EventSink) -> None:
        """spec.verify.periodic: the serving revision's MCP check, reported as the Degraded condition."""
        found = await self._handshake(action.url, desired, target_type)
        now = planning.now_iso()
        status.serving_check = _check_of(found, action.url, now, now)
        generation = status.observed_generation or 0
        was = next((c for c in status.conditions if c.type == planning.DEGRADED), None)
        if found.ok:
            planning.set_condition(status, planning.DEGRADED, "False", "McpHealthy",
                                   f"revision {action.number} answered the MCP check at {action.url}", generation, now)
            if was is not None and was.status == "True":
                emit("Normal", "McpRecovered", f"revision {action.number} answers the MCP check again at {action.url}")
        else:
            message = f"revision {action.number}, which serves, failed the periodic MCP check: {found.message}"
            planning.set_condition(status, planning.DEGRADED, "True", found.reason, message, generation, now)
            if was is None or was.status != "True":
                emit("Warning", "McpDegraded", message)

    async def _handshake(self, url: str, desired: Desired, target_type: str) -> Handshake:
        """One MCP check as spec.verify says (expected tools, token, smoke test), counted in the metrics."""
        attempt = min(float(desired.verify.timeout_seconds), CHECK_ATTEMPT_SECONDS)
        token = None
        if desired.verify.token_secret_ref is not None:
            ref = desired.verify.token_secret_ref
            data, _ = await self.kube.secret_data(desired.namespace, ref.name)
            token = _key(data, desired.namespace, ref.name, ref.key)
        smoke = desired.verify.smoke_test
        call = ToolCall(smoke.tool, smoke.arguments, smoke.expect) if smoke is not None else None
        found = await self.checker.handshake(url, attempt, tuple(desired.verify.expected_tools), token, call)
        metrics.MCP_CHECKS.labels(target_type, "passed" if found.ok else found.reason).inc()
        metrics.MCP_CHECK_SECONDS.labels(target_type).observe(found.latency_ms / 1000)
        return found

    async def _save(self, uid: str, namespace: str, name: str, status: McpDeploymentStatus) -> None:
        self.written[uid] = status  # a failure later in the pass builds on this (e.g. on the intent just recorded)
        digest = hashlib.blake2b(status.model_dump_json().encode(), digest_size=16).digest()
        if self.sent.get(uid) == digest:
            return
        await self.kube.patch_status(namespace, name, status)
        self.sent[uid] = digest

    # ----- deletion ---------------------------------------------------------------------------------
    def forget(self, uid: str, namespace: str, name: str) -> None:
        self.secret_index.forget(namespace, name)
        self.written.pop(uid, None)
        self.sent.pop(uid, None)
        self.failures.pop(uid, None)
        metrics.record_state(uid, None)

    async def delete(self, body: dict[str, Any], emit: EventSink) -> Deletion:
        meta = body["metadata"]
        try:
            spec: McpDeploymentSpec | None = McpDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            spec = None
        deletion = await self._delete(body, spec, emit)
        if deletion.done:
            await self.release_credentials(meta["namespace"], meta["name"], spec)
        return deletion

    async def _delete(self, body: dict[str, Any], spec: McpDeploymentSpec | None, emit: EventSink) -> Deletion:
        meta = body["metadata"]
        if (meta.get("annotations") or {}).get(ABANDON_ANNOTATION) == "true":
            note = f"annotated {ABANDON_ANNOTATION}=true: released without deleting anything in the cloud"
            emit("Warning", "Abandoned", note)
            return Deletion(done=True, notes=(note,))
        try:
            recorded = self.known_status(body)
            desired = self.desired_of(spec, meta["name"], meta["namespace"], recorded) if spec is not None else None
        except SpecError:
            desired = None
        def released(note: str) -> Deletion:  # said as an Event too: `kubectl mcp destroy --wait` shows what was left
            emit("Normal", "Deleted", note)
            return Deletion(done=True, notes=(note,))

        if spec is None or desired is None:
            return released("nothing was reconciled for this spec, so nothing to delete")
        status = self.known_status(body)
        if spec.deletion_policy == "Retain":
            left = ", ".join([*(r.name for r in status.revisions if r.state != "Gone"), *status.created_infrastructure])
            where = target_status(status)
            return released("deletionPolicy is Retain: the cloud resources are left in place"
                            + (f" ({', '.join(f'{k}={v}' for k, v in where.items())}; revisions {left})" if left else ""))
        if spec.suspend:
            return released("spec.suspend is true: the cloud resources are left in place")
        if not status.revisions and not status.created_infrastructure:
            # No write was ever intended (the intent is recorded before any): nothing in the cloud is ours.
            return released("nothing was created in the cloud for this McpDeployment")
        try:
            target = await self.target_for(desired, spec)
        except SecretMissing as missing:
            message = (f"{missing}: it is needed to delete the cloud resources. Restore it, or annotate this "
                       f"McpDeployment {ABANDON_ANNOTATION}=true to release it and leave the cloud resources in place")
            status.observed_generation = int(meta.get("generation", 0))
            planning.conditions_for(status, "stalled", "CredentialsMissing", message, status.observed_generation,
                                    planning.now_iso())
            await self._save(meta.get("uid", ""), meta["namespace"], meta["name"], status)
            emit("Warning", "CredentialsMissing", message)
            raise TerminalError("CredentialsMissing", message) from missing
        desired = with_history(desired, status)
        observed = await target.observe(desired, detailed=False)
        if observed.exists and not ownership.may_delete(observed, desired.owner):
            note = (f"left {observed.resource or 'the cloud resource'} in place: it is not this McpDeployment's "
                    f"(it has {ownership.describe_marks(observed.owner_marks)})")
            emit("Normal", "Deleted", note)
            return Deletion(done=True, notes=(note,))
        deletion = await target.delete(desired)
        for note in deletion.notes:
            emit("Normal", "Deleting" if not deletion.done else "Deleted", note)
        if deletion.warning:
            emit("Warning", "DeleteFailed", deletion.warning)
        return deletion


def _key(data: Mapping[str, str], namespace: str, secret: str, key: str) -> str:
    """One key of a Secret's data (values or fingerprints); a missing key is SecretMissing, naming it."""
    if key not in data:
        raise SecretMissing(namespace, secret, key)
    return data[key]


def _check_of(found: Handshake, url: str, now: str, first: str) -> McpCheck:
    return McpCheck(result="Passed" if found.ok else "Failed", url=url, checked_at=now, first_checked_at=first,
                    protocol_version=found.protocol_version, server_name=found.server_name,
                    server_version=found.server_version, tool_count=len(found.tools) if found.ok else None,
                    latency_ms=found.latency_ms, reason=found.reason or None, message=found.message or None,
                    smoke_test=found.smoke_test)


def _after(retry_after: float | None, default: float | None) -> float | None:
    """The cloud's Retry-After for the operation just started (0 included) wins over the planner's default."""
    return retry_after if retry_after is not None else default


def _state(status: McpDeploymentStatus) -> str:
    conditions = {c.type: c for c in status.conditions}
    if conditions.get("Ready") and conditions["Ready"].reason == "Suspended":
        return "Suspended"
    for kind, state in (("Stalled", "Stalled"), ("Ready", "Ready"), ("Reconciling", "Progressing")):
        if conditions.get(kind) and conditions[kind].status == "True":
            return state
    return "Progressing"


def _account(uid: str, target: str, before: McpDeploymentStatus, after: McpDeploymentStatus) -> None:
    """Metrics of one pass: its outcome, the resource's state, and how long a finished cloud operation took."""
    state = _state(after)
    metrics.RECONCILES.labels(target, state.lower()).inc()
    metrics.record_state(uid, state)
    if before.pending is not None and after.pending is None:
        started = datetime.strptime(before.pending.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        metrics.OPERATION_SECONDS.labels(before.pending.kind).observe((datetime.now(UTC) - started).total_seconds())
