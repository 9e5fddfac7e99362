"""Pure decisions: desired state + observed cloud state + current status -> one action and the next status.

One action per pass keeps every step observable and restartable: the status written before a
cloud write records the intent (revision number and name), so a process killed at any point
resumes with the same revision instead of creating another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..api.models import Condition, Effective, McpDeploymentStatus, PendingOperation, RevisionRecord
from ..targets.base import Observed
from .desired import Desired

READY, RECONCILING, STALLED, INSECURE = "Ready", "Reconciling", "Stalled", "InsecureIngress"
BUSY_STATES = ("InProgress", "Deleting")


@dataclass(frozen=True)
class Create:
    number: int
    suffix: str
    serving: str | None


@dataclass(frozen=True)
class Shift:
    revision: str
    activate: bool
    drift: bool = False


@dataclass(frozen=True)
class Configure:
    serving: str
    reason: str


@dataclass(frozen=True)
class Deactivate:
    revisions: tuple[str, ...]


Action = Create | Shift | Configure | Deactivate


@dataclass
class Plan:
    status: McpDeploymentStatus
    action: Action | None = None
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(status: McpDeploymentStatus, kind: str, value: str, reason: str, message: str, generation: int,
                  now: str) -> None:
    """Sets a condition, keeping lastTransitionTime when its status does not change."""
    for index, existing in enumerate(status.conditions):
        if existing.type == kind:
            changed = existing.status != value
            status.conditions[index] = Condition(type=kind, status=value, reason=reason, message=message,
                                                 last_transition_time=now if changed else existing.last_transition_time,
                                                 observed_generation=generation)
            return
    status.conditions.append(Condition(type=kind, status=value, reason=reason, message=message, last_transition_time=now,
                                       observed_generation=generation))


def conditions_for(status: McpDeploymentStatus, outcome: str, reason: str, message: str, generation: int, now: str) -> None:
    """kstatus semantics: outcome is 'ready', 'progressing', 'stalled' or 'suspended'."""
    set_condition(status, READY, "True" if outcome == "ready" else "False", reason, message, generation, now)
    set_condition(status, RECONCILING, "True" if outcome == "progressing" else "False",
                  reason if outcome == "progressing" else "Idle", message if outcome == "progressing" else "", generation, now)
    set_condition(status, STALLED, "True" if outcome == "stalled" else "False",
                  reason if outcome == "stalled" else "Healthy", message if outcome == "stalled" else "", generation, now)


def _insecure_condition(status: McpDeploymentStatus, desired: Desired, generation: int, now: str) -> None:
    if desired.open_to_any_origin:
        set_condition(status, INSECURE, "True", "AnyOriginWithoutAuth",
                      "server.allowedOrigins is [\"*\"] and no authentication is configured: any website can call this "
                      "server's tools. Restrict allowedOrigins to your clients' origins and enable authentication in the "
                      "server.", generation, now)
    else:
        set_condition(status, INSECURE, "False", "OriginsRestricted", "", generation, now)


def refresh_history(status: McpDeploymentStatus, observed: Observed) -> None:
    """Brings each recorded revision's state and traffic up to date with what the cloud shows."""
    for record in status.revisions:
        found = observed.revision(record.name)
        if found is None:
            if observed.complete:  # with only the app read, an unseen revision is unknown, not gone
                record.state = "Pending" if record.state == "Pending" else "Gone"
                record.traffic_weight = 0
            continue
        record.traffic_weight = observed.traffic.get(found.name.lower(), 0) if found.active else 0
        if found.failed:
            record.state, record.message = "Failed", found.error or "the revision failed to provision"
        elif found.ready:
            record.state, record.message = "Ready", None
        elif found.provisioning == "Provisioned" and not found.active:
            record.state, record.message = "Inactive", None
        else:
            record.state, record.message = "Provisioning", None


def _trim(status: McpDeploymentStatus, limit: int, keep: set[str]) -> None:
    while len(status.revisions) > limit:
        for index, record in enumerate(status.revisions):
            if record.name not in keep:
                del status.revisions[index]
                break
        else:
            return


def _candidate(status: McpDeploymentStatus, revision_hash: str) -> RevisionRecord | None:
    matches = [r for r in status.revisions if r.hash == revision_hash and r.state != "Gone"]
    return matches[-1] if matches else None


def wants_detail(status: McpDeploymentStatus, generation: int) -> bool:
    """Whether a pass needs every revision, or the app alone will do (one read instead of two).

    The app alone suffices for an idle, converged resource (the drift check) and while the very first
    revision rolls out; anything else (updates, rollbacks, clean-up of old revisions) reads them all.
    """
    ready = any(c.type == READY and c.status == "True" for c in status.conditions)
    idle = ready and status.observed_generation == generation and status.pending is None
    first_rollout = status.revision_counter <= 1 and status.observed_generation == generation
    return not (idle or first_rollout)


def needs_detail(status: McpDeploymentStatus, revision_hash: str, observed: Observed) -> bool:
    """After reading only the app: whether the spec's revision is among what that view shows."""
    if observed.complete or not observed.exists:
        return False
    candidate = _candidate(status, revision_hash)
    return candidate is not None and observed.revision(candidate.name) is None


def plan(desired: Desired, status: McpDeploymentStatus, observed: Observed, generation: int, history_limit: int,
         poll_interval: float, drift_interval: float, now: datetime | None = None) -> Plan:
    stamp = now_iso(now)
    nxt = status.model_copy(deep=True)
    nxt.observed_generation = generation
    nxt.effective = Effective(subscription_id=desired.subscription_id, resource_group=desired.resource_group,
                              environment=desired.environment, location=desired.location, app_name=desired.app_name)
    nxt.provisioning_state = observed.provisioning_state if observed.exists else None
    nxt.fqdn = observed.fqdn
    nxt.url = f"https://{observed.fqdn}/" if observed.fqdn else None
    refresh_history(nxt, observed)
    serving = observed.serving
    previously_serving = status.serving_revision
    nxt.serving_revision = serving
    _insecure_condition(nxt, desired, generation, stamp)
    result = Plan(nxt)
    candidate = _candidate(nxt, desired.revision_hash)
    nxt.latest_revision = candidate.name if candidate else nxt.latest_revision

    def progressing(reason: str, message: str, delay: float | None = poll_interval) -> Plan:
        conditions_for(nxt, "progressing", reason, message, generation, stamp)
        result.requeue_after = delay
        return result

    if observed.exists and observed.provisioning_state in BUSY_STATES:
        return progressing("CloudOperationInProgress", f"the app is {observed.provisioning_state}; waiting for it to finish")

    if candidate is None:
        number = nxt.revision_counter + 1
        suffix = f"r{number}-{desired.revision_hash[:8]}"
        record = RevisionRecord(number=number, name=f"{desired.app_name}--{suffix}", image=desired.image, created_at=stamp,
                                state="Pending", hash=desired.revision_hash, snapshot=desired.snapshot)
        nxt.revision_counter = number
        nxt.revisions.append(record)
        nxt.latest_revision = record.name
        _trim(nxt, history_limit, {record.name, serving or ""})
        nxt.pending = PendingOperation(kind="Rollout", revision_number=number, started_at=stamp)
        result.action = Create(number, suffix, serving)
        result.events.append(("Normal", "CreatingRevision", f"creating revision {number} ({record.name}) with image "
                                                            f"{desired.image}"))
        return progressing("CreatingRevision", f"creating revision {number} with image {desired.image}")

    if candidate.state == "Pending":
        # Intent recorded, revision not in the cloud yet: (re)issue the same write; the suffix makes it idempotent.
        # The rollout keeps its start time while it waits (e.g. for shared infrastructure): the status of such a
        # pass is then the same as the last one's and need not be written again.
        if not (nxt.pending and nxt.pending.kind == "Rollout" and nxt.pending.revision_number == candidate.number):
            nxt.pending = PendingOperation(kind="Rollout", revision_number=candidate.number, started_at=stamp)
        result.action = Create(candidate.number, candidate.name.split("--", 1)[1], serving)
        return progressing("CreatingRevision", f"creating revision {candidate.number} with image {candidate.image}")

    if candidate.state == "Failed":
        nxt.pending = None
        still = f"; revision {_number_of(nxt, serving)} ({serving}) keeps serving" if serving else ""
        conditions_for(nxt, "stalled", "RevisionFailed",
                       f"revision {candidate.number} ({candidate.name}) failed: {candidate.message}{still}. "
                       "Fix the spec (or edit it back to a working revision) to continue.", generation, stamp)
        result.requeue_after = drift_interval
        previous = _record(status, candidate.name)
        if previous is not None and previous.state != "Failed":
            result.events.append(("Warning", "RevisionFailed", f"revision {candidate.number} failed: {candidate.message}"))
        return result

    if candidate.state == "Provisioning":
        return progressing("RevisionProvisioning", f"revision {candidate.number} ({candidate.name}) is provisioning")

    if serving is None or serving.lower() != candidate.name.lower():
        drift = previously_serving is not None and previously_serving.lower() == candidate.name.lower()
        nxt.pending = PendingOperation(kind="Traffic", revision_number=candidate.number, started_at=stamp)
        result.action = Shift(candidate.name, activate=candidate.state == "Inactive", drift=drift)
        verb = "restoring traffic to" if drift else "moving 100% of traffic to"
        result.events.append(("Normal", "DriftCorrected" if drift else "ShiftingTraffic",
                              f"{verb} revision {candidate.number} ({candidate.name})"))
        return progressing("ShiftingTraffic", f"{verb} revision {candidate.number}")

    # The desired revision serves all traffic.
    if observed.provisioning_state == "Failed" or observed.config_drift:
        why = "; ".join(observed.config_drift) or "the app's last operation failed"
        result.action = Configure(candidate.name, why)
        result.events.append(("Normal", "DriftCorrected", f"correcting app settings: {why}"))
        nxt.pending = PendingOperation(kind="Configuration", revision_number=candidate.number, started_at=stamp)
        return progressing("CorrectingDrift", f"correcting app settings: {why}")

    standby = [r.name for r in reversed(nxt.revisions) if r.name != candidate.name and r.state == "Ready"][:1]
    keep = {candidate.name.lower(), *(s.lower() for s in standby)}
    extra = tuple(r.name for key, r in observed.revisions.items() if r.active and key not in keep and not r.failed
                  and observed.traffic.get(key, 0) == 0) if observed.complete else ()
    nxt.pending = None
    conditions_for(nxt, "ready", "Serving", f"revision {candidate.number} ({candidate.name}) serves 100% of traffic"
                   + (f" at {nxt.url}" if nxt.url else ""), generation, stamp)
    if extra:
        result.action = Deactivate(extra)
        result.events.append(("Normal", "DeactivatingRevisions", "deactivating revisions no longer needed: " + ", ".join(extra)))
        result.requeue_after = poll_interval
        return result
    was_ready = any(c.type == READY and c.status == "True" for c in status.conditions)
    if not was_ready:
        result.events.append(("Normal", "Ready", f"revision {candidate.number} ({candidate.name}) serves 100% of traffic"))
    result.requeue_after = drift_interval
    return result


def _record(status: McpDeploymentStatus, name: str) -> RevisionRecord | None:
    return next((r for r in status.revisions if r.name == name), None)


def _number_of(status: McpDeploymentStatus, name: str | None) -> str:
    record = _record(status, name or "")
    return str(record.number) if record else "?"
