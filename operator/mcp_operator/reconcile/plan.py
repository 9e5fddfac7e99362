"""Pure decisions: desired state + observed cloud state + current status -> one action and the next status.

One action per pass keeps every step observable and restartable: the status written before a
cloud write records the intent (revision number and name), so a process killed at any point
resumes with the same revision instead of creating another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ..api.models import (
    IMAGE_REFERENCE,
    Condition,
    McpDeploymentStatus,
    PendingOperation,
    RevisionRecord,
    RevisionSnapshot,
    TrafficTarget,
    set_target_status,
    target_status,
)
from ..contract import MCP_DEFINITIVE_FAILURES, Capabilities, Observed, ObservedRevision, Phase, RevisionKey
from .desired import Desired
from .ownership import Claim, claim, describe_marks, refusal

READY, RECONCILING, STALLED, INSECURE, DEGRADED = "Ready", "Reconciling", "Stalled", "InsecureIngress", "Degraded"
# How a revision's neutral phase is shown in status.revisions[].state.
STATE_OF_PHASE = {Phase.PENDING: "Provisioning", Phase.READY: "Ready", Phase.FAILED: "Failed", Phase.RETIRED: "Inactive"}
RevisionIds = Callable[[RevisionKey], str | None]  # the target's cloud id for a key, when the target names revisions


@dataclass(frozen=True)
class Create:
    """Make revision ``key``; traffic stays on ``serving`` (a cloud id) while it starts."""

    key: RevisionKey
    serving: str | None


@dataclass(frozen=True)
class Route:
    """Send traffic so (cloud id -> percent); ``revive`` are retired revisions among them."""

    traffic: Mapping[str, int]
    revive: tuple[str, ...] = ()
    drift: bool = False


@dataclass(frozen=True)
class Reconfigure:
    serving: str
    reason: str


@dataclass(frozen=True)
class Retire:
    revisions: tuple[str, ...]


@dataclass(frozen=True)
class VerifyMcp:
    """Run the MCP handshake on revision ``number`` at ``url`` (its own URL) before it takes traffic."""

    number: int
    url: str


@dataclass(frozen=True)
class CheckServing:
    """The periodic MCP check of the serving revision (spec.verify.periodic): it reports, it moves nothing."""

    number: int
    url: str


Action = Create | Route | Reconfigure | Retire | VerifyMcp | CheckServing


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


PREVIOUS_SERVING = "PreviousRevisionServing"  # Ready's reason (the STATE column) when a new revision failed but an older serves


def conditions_for(status: McpDeploymentStatus, outcome: str, reason: str, message: str, generation: int, now: str,
                   ready_reason: str | None = None) -> None:
    """kstatus semantics: outcome is 'ready', 'progressing', 'stalled' or 'suspended'. ``ready_reason`` overrides the
    Ready condition's reason alone (Stalled keeps ``reason``)."""
    set_condition(status, READY, "True" if outcome == "ready" else "False", ready_reason or reason, message, generation, now)
    set_condition(status, RECONCILING, "True" if outcome == "progressing" else "False",
                  reason if outcome == "progressing" else "Idle", message if outcome == "progressing" else "", generation, now)
    set_condition(status, STALLED, "True" if outcome == "stalled" else "False",
                  reason if outcome == "stalled" else "Healthy", message if outcome == "stalled" else "", generation, now)


def _insecure_condition(status: McpDeploymentStatus, desired: Desired, generation: int, now: str) -> None:
    if desired.open_to_any_origin and not desired.placement.authenticated:
        set_condition(status, INSECURE, "True", "AnyOriginWithoutAuth",
                      "server.allowedOrigins is [\"*\"] and no authentication is configured: any website can call this "
                      "server's tools. Restrict allowedOrigins to your clients' origins and enable authentication in the "
                      "server.", generation, now)
    elif desired.open_to_any_origin:
        set_condition(status, INSECURE, "False", "AuthenticationRequired", "the cloud asks MCP clients for credentials",
                      generation, now)
    else:
        set_condition(status, INSECURE, "False", "OriginsRestricted", "", generation, now)


def _observed_for(record: RevisionRecord, observed: Observed) -> ObservedRevision | None:
    return observed.find(record.number, record.hash, record.name or None)


def refresh_history(status: McpDeploymentStatus, observed: Observed, stamp: str | None = None) -> None:
    """Brings each recorded revision's cloud id, state and traffic up to date with what the cloud shows (``stamp``:
    now, when a revision is first seen ready)."""
    for record in status.revisions:
        found = _observed_for(record, observed)
        if found is None:
            if observed.complete:  # with only part read, an unseen revision is unknown, not gone
                record.state = "Pending" if record.state == "Pending" else "Gone"
                record.traffic_weight = 0
            continue
        record.name = found.cloud_id  # a cloud that assigns ids tells it here, at the latest
        record.traffic_weight = found.percent
        record.state = STATE_OF_PHASE[found.phase]
        if found.phase is Phase.READY and record.ready_at is None and stamp is not None:
            record.ready_at = stamp
        record.message = (found.message or "the revision failed to provision") if found.phase is Phase.FAILED else None


def endpoint(url: str, path: str) -> str:
    """Where the MCP check goes: spec.verify.path on the revision's URL, or the URL itself when the cloud gave one with
    its own path (an MCP URL such as https://gateway/<id>/mcp) and the spec keeps the default path."""
    if path == "/" and urlsplit(url).path not in ("", "/"):
        return url
    return url.rstrip("/") + path


def _from(snapshot: RevisionSnapshot) -> str:
    """What a revision is made from, for messages: an image, or a bundle or package (by its reference)."""
    if snapshot.artifact is not None:
        return f"from artifact {snapshot.artifact.reference}"
    return f"with image {snapshot.image}" if re.fullmatch(IMAGE_REFERENCE, snapshot.image) else f"from {snapshot.image}"


def _traffic(status: McpDeploymentStatus, observed: Observed) -> list[TrafficTarget]:
    """status.traffic: every revision that receives traffic now, with its number where it is ours."""
    numbers = {r.name.lower(): r.number for r in status.revisions if r.name}
    return [TrafficTarget(revision_name=r.cloud_id, revision_number=numbers.get(r.cloud_id.lower()), percent=r.percent,
                          url=r.url) for r in observed.revisions if r.percent > 0]


def _summary(traffic: list[TrafficTarget]) -> str | None:
    """status.traffic in one line, largest share first: "#1 90%, #2 10%" (a revision not ours by its cloud name)."""
    shares = sorted(traffic, key=lambda t: -t.percent)
    return ", ".join(f"{f'#{t.revision_number}' if t.revision_number else t.revision_name} {t.percent}%"
                     for t in shares) or None


def _trim(status: McpDeploymentStatus, limit: int, keep_numbers: set[int], serving: str | None) -> None:
    """Drops the oldest records beyond ``limit``, never a kept one nor the serving one."""
    while len(status.revisions) > limit:
        for index, record in enumerate(status.revisions):
            if record.number not in keep_numbers and not _same(record.name, serving):
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
    """After a partial read: whether a full one is needed (the spec's revision is not in view, or a stranger is)."""
    if observed.complete or not observed.exists:
        return False
    if any(r.key is None for r in observed.revisions):
        return True  # a revision someone else made: worth a full look (it may need retiring)
    candidate = _candidate(status, revision_hash)
    return candidate is not None and _observed_for(candidate, observed) is None


def _same(cloud_id: str | None, other: str | None) -> bool:
    return bool(cloud_id and other and cloud_id.lower() == other.lower())


@dataclass(frozen=True)
class Context:
    """What the planner knows of the target and the operator's timing, besides the resource itself."""

    capabilities: Capabilities
    revision_ids: RevisionIds
    history_limit: int
    poll_interval: float
    drift_interval: float


def plan(desired: Desired, status: McpDeploymentStatus, observed: Observed, generation: int, context: Context,
         now: datetime | None = None) -> Plan:
    stamp = now_iso(now)
    poll_interval, drift_interval = context.poll_interval, context.drift_interval
    nxt = status.model_copy(deep=True)
    nxt.observed_generation = generation
    refused = refusal(observed, desired.owner, desired.adopt)
    if refused is not None:  # not ours to touch: say why, and show nothing of it as if it were ours
        return _refuse(nxt, status, refused.reason, refused.message, generation, stamp, drift_interval)
    # With only part read, what was not read is unknown, not gone: the last known facts and URL stand.
    known = target_status(status) if not observed.complete else {}
    set_target_status(nxt, desired.placement.status_section, {**desired.placement.facts, **known, **observed.facts})
    if observed.host or observed.complete:
        nxt.fqdn = observed.host
        nxt.url = observed.url or (f"https://{observed.host}/" if observed.host else None)
    rebuilt = _rebuild_history(nxt, desired, observed, stamp)
    refresh_history(nxt, observed, stamp)
    nxt.traffic = _traffic(nxt, observed)
    nxt.traffic_summary = _summary(nxt.traffic)
    # The revision with all the traffic; during a progressive rollout none has it, and the largest share counts.
    full = observed.serving
    primary = full or _largest_share(observed)
    serving = primary.cloud_id if primary else None
    nxt.serving_revision = serving
    _insecure_condition(nxt, desired, generation, stamp)
    result = Plan(nxt)
    if rebuilt:
        result.events.append(("Normal", "HistoryRebuilt", rebuilt))
    candidate = _candidate(nxt, desired.revision_hash)
    replaced = None
    if candidate is not None and not context.capabilities.has_revisions and candidate.state == STATE_OF_PHASE[Phase.RETIRED]:
        replaced, candidate = candidate, None  # a replaced deployment never serves again: its artifact is deployed anew
    nxt.latest_revision = (candidate.name or None) if candidate else nxt.latest_revision

    def progressing(reason: str, message: str, delay: float | None = poll_interval) -> Plan:
        conditions_for(nxt, "progressing", reason, message, generation, stamp)
        result.requeue_after = delay
        return result

    if observed.exists and observed.busy:
        return progressing("CloudOperationInProgress", observed.busy)

    if candidate is None:
        number = nxt.revision_counter + 1
        key = RevisionKey(number, desired.revision_hash)
        record = RevisionRecord(number=number, name=context.revision_ids(key) or "", image=desired.snapshot.image, created_at=stamp,
                                state="Pending", hash=desired.revision_hash, snapshot=desired.snapshot)
        nxt.revision_counter = number
        nxt.revisions.append(record)
        nxt.latest_revision = record.name or None
        _trim(nxt, context.history_limit, {number}, serving)
        nxt.pending = PendingOperation(kind="Rollout", revision_number=number, started_at=stamp)
        result.action = Create(key, serving)
        named = f" ({record.name})" if record.name else ""
        if claim(observed, desired.owner) is Claim.FOREIGN:
            result.events.append(("Warning", "Adopting", f"adopting {observed.resource or 'the cloud resource'} "
                                  f"(spec.adoptionPolicy is Adopt); it had {describe_marks(observed.owner_marks)}"))
        if replaced is not None:  # said plainly: no traffic switch happens, a new deployment is made
            message = (f"redeploying revision {replaced.number} ({_from(desired.snapshot)}) as revision {number}: "
                       "this target keeps no revisions to switch traffic back to, so a rollback is a new deployment")
            result.events.append(("Normal", "Redeploying", message))
            return progressing("Redeploying", message)
        result.events.append(("Normal", "CreatingRevision", f"creating revision {number}{named} {_from(desired.snapshot)}"))
        return progressing("CreatingRevision", f"creating revision {number} {_from(desired.snapshot)}")

    if candidate.state == "Pending":
        # Intent recorded, revision not in the cloud yet: (re)issue the same write; the suffix makes it idempotent.
        # The rollout keeps its start time while it waits (e.g. for shared infrastructure): the status of such a
        # pass is then the same as the last one's and need not be written again.
        if not (nxt.pending and nxt.pending.kind == "Rollout" and nxt.pending.revision_number == candidate.number):
            nxt.pending = PendingOperation(kind="Rollout", revision_number=candidate.number, started_at=stamp)
        result.action = Create(RevisionKey(candidate.number, candidate.hash), serving)
        return progressing("CreatingRevision", f"creating revision {candidate.number} {_from(candidate.snapshot)}")

    if candidate.state == "Failed":
        nxt.pending = None
        back = _share_back(candidate, observed)
        if back is not None:  # it failed with a share of traffic (a progressive rollout): all of it goes back at once
            result.action = Route({back.cloud_id: 100})
            result.events.append(("Warning", "RolledBack", f"{_named(candidate)} failed with traffic: moving all of it "
                                  f"back to {back.cloud_id}"))
            serving = back.cloud_id
        still = f"; revision {_number_of(nxt, serving)} ({serving}) keeps serving" if serving else ""
        conditions_for(nxt, "stalled", "RevisionFailed",
                       f"{_named(candidate)} failed: {candidate.message}{still}. "
                       "Fix the spec (or edit it back to a working revision) to continue.", generation, stamp,
                       ready_reason=PREVIOUS_SERVING if serving else None)
        result.requeue_after = drift_interval
        previous = next((r for r in status.revisions if r.number == candidate.number), None)  # ids may be new
        if previous is not None and previous.state != "Failed":
            result.events.append(("Warning", "RevisionFailed", f"revision {candidate.number} failed: {candidate.message}"))
        return result

    found = _observed_for(candidate, observed)
    if found is not None and found.unfinished:
        # In the cloud, but what comes with it is not (a process stopped between two writes): finish it.
        result.action = Create(RevisionKey(candidate.number, candidate.hash), serving)
        return progressing("CreatingRevision", f"finishing {_named(candidate)}")

    if candidate.state == "Provisioning":
        return progressing("RevisionProvisioning", f"{_named(candidate)} is provisioning")

    if desired.verify.enabled:
        gated = _mcp_gate(nxt, status, candidate, observed, desired, stamp, now, context, result)
        if gated is not None:
            return gated

    if full is None or not _same(full.cloud_id, candidate.name):
        # Drift: it had all the traffic at the last look, and something else moved it since.
        drift = any(_same(t.revision_name, candidate.name) and t.percent == 100 for t in status.traffic)
        if not drift and found is not None:
            stepped = _next_step(nxt, candidate, found, observed, desired, stamp, now, context, result)
            if stepped is not None:
                return progressing(*stepped)
        nxt.pending = PendingOperation(kind="Traffic", revision_number=candidate.number, started_at=stamp)
        revive = (candidate.name,) if candidate.state == STATE_OF_PHASE[Phase.RETIRED] else ()
        result.action = Route({candidate.name: 100}, revive, drift=drift)
        verb = "restoring traffic to" if drift else "moving 100% of traffic to"
        result.events.append(("Normal", "DriftCorrected" if drift else "ShiftingTraffic",
                              f"{verb} {_named(candidate)}"))
        return progressing("ShiftingTraffic", f"{verb} revision {candidate.number}")

    # The desired revision serves all traffic.
    if observed.config_drift:
        why = "; ".join(observed.config_drift)
        result.action = Reconfigure(candidate.name, why)
        result.events.append(("Normal", "DriftCorrected", f"correcting app settings: {why}"))
        nxt.pending = PendingOperation(kind="Configuration", revision_number=candidate.number, started_at=stamp)
        return progressing("CorrectingDrift", f"correcting app settings: {why}")

    extra = _idle_to_retire(nxt, candidate, observed, context.capabilities)
    nxt.pending = None
    redeployed = _redeployed(nxt, candidate, context.capabilities)
    conditions_for(nxt, "ready", "Serving", f"{_named(candidate)} serves 100% of traffic"
                   + (f" at {nxt.url}" if nxt.url else "") + redeployed, generation, stamp)
    if extra:
        result.action = Retire(extra)
        verb = "deactivating" if context.capabilities.idle_revisions_cost else "deleting"
        result.events.append(("Normal", "DeactivatingRevisions" if context.capabilities.idle_revisions_cost else
                              "DeletingRevisions", f"{verb} revisions no longer needed: " + ", ".join(extra)))
        result.requeue_after = poll_interval
        return result
    was_ready = any(c.type == READY and c.status == "True" for c in status.conditions)
    if not was_ready:
        result.events.append(("Normal", "Ready", f"{_named(candidate)} serves 100% of traffic{redeployed}"))
    result.requeue_after = drift_interval
    result.action = _periodic_check(nxt, candidate, observed, desired, now, context)
    return result


def _redeployed(status: McpDeploymentStatus, serving: RevisionRecord, capabilities: Capabilities) -> str:
    """Where a rollback was a new deployment (no revisions to switch to): which revision it restored, and how long the
    deployment took, so that nobody mistakes it for an instant traffic switch."""
    if capabilities.has_revisions:
        return ""
    earlier = next((r for r in status.revisions if r.hash == serving.hash and r.number < serving.number), None)
    took = (f", in {_seconds_between(serving.created_at, serving.ready_at):.0f} s" if serving.ready_at else "")
    return (f" (a new deployment of revision {earlier.number}'s artifact{took}: this target keeps no revisions to "
            "switch back to)") if earlier else ""


def _periodic_check(nxt: McpDeploymentStatus, serving: RevisionRecord, observed: Observed, desired: Desired,
                    now: datetime | None, context: Context) -> CheckServing | None:
    """spec.verify.periodic: the serving revision checked once per drift interval; nothing when it is off."""
    if not (desired.verify.enabled and desired.verify.periodic):
        nxt.serving_check = None
        nxt.conditions = [c for c in nxt.conditions if c.type != DEGRADED]
        return None
    found = _observed_for(serving, observed)
    if found is None or not found.url:
        return None
    url = endpoint(found.url, desired.verify.path)
    last = nxt.serving_check
    if last is not None and last.url == url and _seconds_since(last.checked_at, now) < context.drift_interval / 2:
        return None
    return CheckServing(serving.number, url)


def _rebuild_history(status: McpDeploymentStatus, desired: Desired, observed: Observed, stamp: str) -> str | None:
    """A new McpDeployment meeting revisions an earlier one of the same name kept (deletionPolicy Retain).

    Numbering continues after the highest kept number, and the kept revision of this very spec is taken
    into the history as it is, so it serves without a new revision. Kept revisions of other specs stay
    out of the history: their spec is not in the cloud, so a spec edit could not restore them.
    """
    kept = sorted((r for r in observed.revisions if r.key is not None), key=lambda r: r.key.number if r.key else 0)
    if status.revisions or status.revision_counter or not kept or not observed.complete:
        return None
    status.revision_counter = max(r.key.number for r in kept if r.key)
    same = [r for r in kept if r.key and desired.revision_hash.startswith(r.key.hash) and r.phase is not Phase.FAILED]
    if same:
        found = same[-1]
        assert found.key is not None
        status.revisions.append(RevisionRecord(
            number=found.key.number, name=found.cloud_id, image=desired.snapshot.image, created_at=found.created or stamp,
            state=STATE_OF_PHASE[found.phase], hash=desired.revision_hash, snapshot=desired.snapshot))
    numbers = ", ".join(str(r.key.number) for r in kept if r.key)
    reuse = f"revision {same[-1].key.number} matches the spec and is reused" if same and same[-1].key else \
        "none matches the spec"
    return (f"found revisions {numbers} kept in the cloud by an earlier McpDeployment of this name; {reuse}; "
            f"new revisions are numbered from {status.revision_counter + 1}")


def _mcp_gate(nxt: McpDeploymentStatus, status: McpDeploymentStatus, candidate: RevisionRecord, observed: Observed,
              desired: Desired, stamp: str, now: datetime | None, context: Context, result: Plan) -> Plan | None:
    """Before traffic moves to a ready revision: check it with the MCP handshake on its own URL, repeat a check that
    may pass by waiting (the server still starting) within spec.verify.timeoutSeconds, or stall. None: go on.

    A first revision takes traffic as it is created (there is nothing to keep serving): it is checked all the
    same, so that a server that cannot answer through the ingress is reported at once.
    """
    check = candidate.mcp
    if check is not None and check.result == "Passed":
        return None
    found = _observed_for(candidate, observed)
    if found is None or not found.url:
        return None  # this target cannot reach one revision alone (see its capabilities): traffic moves unchecked
    if found.phase is Phase.RETIRED and check is None:
        return None  # served before checks were recorded; a retired revision answers only once revived
    url = endpoint(found.url, desired.verify.path)
    generation = nxt.observed_generation or 0
    waited = _seconds_since(check.first_checked_at, now) if check is not None else 0.0
    back = _share_back(candidate, observed)  # it has a share of real traffic (a step): no second chance
    if check is None or (check.reason not in MCP_DEFINITIVE_FAILURES and waited < desired.verify.timeout_seconds
                         and back is None and not check.final):
        nxt.pending = PendingOperation(kind="Verification", revision_number=candidate.number,
                                       started_at=check.first_checked_at if check else stamp)
        result.action = VerifyMcp(candidate.number, url)
        conditions_for(nxt, "progressing", "VerifyingMcp", f"checking {_named(candidate)} "
                       f"with the MCP handshake at {url}" + (f"; last: {check.message}" if check else ""), generation, stamp)
        result.requeue_after = context.poll_interval
        return result
    nxt.pending = None
    serving = _record(nxt, nxt.serving_revision or "")
    if back is not None:  # it failed a check during a progressive rollout: all traffic goes back at once
        result.action = Route({back.cloud_id: 100})
        check.final = True  # for good: a later check that passes must not start the steps over
        result.events.append(("Warning", "RolledBack", f"{_named(candidate)} failed the MCP check with "
                              f"{found.percent}% of traffic: moving all of it back to {back.cloud_id}"))
        returned = _record(nxt, back.cloud_id)
        still = f"; all traffic went back to {_named(returned) if returned else back.cloud_id}"
    elif check.final:
        still = f"; all traffic went back to {_named(serving) if serving else 'the previous revision'}"
    elif serving is candidate and not context.capabilities.has_revisions and len(nxt.revisions) > 1:
        still = ("; it serves all traffic: this target replaces the deployment when the new one succeeds, so the check "
                 "runs after it took over. Edit the spec back to an earlier revision to deploy that again")
    elif serving is candidate:
        still = "; it serves all traffic (there was no earlier revision to keep), fix it with a new revision"
    else:
        still = f"; {_named(serving)} keeps serving" if serving else "; it gets no traffic"
    reason = check.reason or "McpHandshakeFailed"
    message = f"{_named(candidate)} failed the MCP check: {check.message}{still}"
    older_serves = serving is not None and serving is not candidate
    conditions_for(nxt, "stalled", reason, message, generation, stamp, ready_reason=PREVIOUS_SERVING if older_serves else None)
    result.requeue_after = context.drift_interval
    if not stalled_for(status, reason):
        result.events.append(("Warning", reason, message))
    return result


def _next_step(nxt: McpDeploymentStatus, candidate: RevisionRecord, found: ObservedRevision, observed: Observed,
               desired: Desired, stamp: str, now: datetime | None, context: Context,
               result: Plan) -> tuple[str, str, float | None] | None:
    """A progressive rollout (spec.rollout.steps): the share of the step in effect, held for its pause, then the next.

    Returns the Reconciling (reason, message, delay) while a step is sent or held; None once the steps are done,
    or when there are none to take: no steps, a target that cannot split traffic, no other revision to share
    with (a first rollout), or a rollback to an older revision (which is not tried out again in steps).
    """
    steps = desired.rollout.steps
    previous = _largest_share(observed, besides=found)
    if (not steps or context.capabilities.max_traffic_split < 2 or previous is None
            or candidate.number != nxt.revision_counter):
        return None
    pending = nxt.pending if (nxt.pending and nxt.pending.kind == "Traffic" and nxt.pending.step is not None
                              and nxt.pending.revision_number == candidate.number) else None
    step, started = (pending.step, pending.step_started_at) if pending is not None else (0, None)
    assert step is not None
    if pending is not None and step < len(steps) and found.percent == steps[step].percent:
        held = _seconds_since(started or stamp, now)
        wait = steps[step].pause_seconds - held
        if wait > 0:
            result.action = None
            return ("RolloutPaused", f"{_named(candidate)} receives {found.percent}% of traffic (step {step + 1} of "
                    f"{len(steps)}); the next step in {math.ceil(wait)} s", min(wait, context.drift_interval))
        check = candidate.mcp
        if desired.verify.enabled and found.url and (check is None or _seconds_since(started or stamp, _at(check.checked_at))
                                                     < steps[step].pause_seconds):
            # Verified again at the end of each step, with its share of real traffic: a failure sends it all back.
            result.action = VerifyMcp(candidate.number, endpoint(found.url, desired.verify.path))
            return ("VerifyingMcp", f"checking {_named(candidate)} again after step {step + 1} of {len(steps)} "
                    f"({found.percent}% of traffic)", context.poll_interval)
        step, started = step + 1, None
    if step >= len(steps):
        return None
    share = steps[step].percent
    nxt.pending = PendingOperation(kind="Traffic", revision_number=candidate.number,
                                   started_at=pending.started_at if pending is not None else stamp, step=step,
                                   step_started_at=started or stamp)
    revive = (candidate.name,) if candidate.state == STATE_OF_PHASE[Phase.RETIRED] else ()
    result.action = Route({previous.cloud_id: 100 - share, candidate.name: share}, revive)
    message = f"moving {share}% of traffic to {_named(candidate)} (step {step + 1} of {len(steps)})"
    if started is None:  # a step sent again (its split was undone meanwhile) keeps its start and says nothing new
        result.events.append(("Normal", "ShiftingTraffic", message))
    return "ShiftingTraffic", message, context.poll_interval


def _share_back(candidate: RevisionRecord, observed: Observed) -> ObservedRevision | None:
    """Where the traffic of a failed revision goes back to, when it has a share of it: the other revision with one."""
    found = _observed_for(candidate, observed)
    if found is None or found.percent == 0:
        return None
    return _largest_share(observed, besides=found)


def _largest_share(observed: Observed, besides: ObservedRevision | None = None) -> ObservedRevision | None:
    """The revision with the largest share of traffic (other than ``besides``), if any has one."""
    return max((r for r in observed.revisions if r.percent > 0 and r is not besides), key=lambda r: r.percent, default=None)


def stalled_for(status: McpDeploymentStatus, reason: str) -> bool:
    """Whether the resource already was Stalled for this reason (its Warning was given then, not to repeat)."""
    return any(c.type == STALLED and c.status == "True" and c.reason == reason for c in status.conditions)


def _at(when: str) -> datetime:
    return datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _seconds_between(start: str, end: str) -> float:
    return (_at(end) - _at(start)).total_seconds()


def _seconds_since(when: str, now: datetime | None) -> float:
    then = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - then).total_seconds()


def _refuse(nxt: McpDeploymentStatus, status: McpDeploymentStatus, reason: str, message: str, generation: int,
            stamp: str, drift_interval: float) -> Plan:
    nxt.pending = None
    conditions_for(nxt, "stalled", reason, message, generation, stamp)
    result = Plan(nxt, requeue_after=drift_interval)
    if not stalled_for(status, reason):
        result.events.append(("Warning", reason, message))
    return result


def _idle_to_retire(status: McpDeploymentStatus, serving: RevisionRecord, observed: Observed,
                    capabilities: Capabilities) -> tuple[str, ...]:
    """Revisions without traffic that still cost money, beyond the standby ones kept for a quick rollback; or, where
    the target deletes what the history no longer holds, our revisions without traffic that it does not hold."""
    if not observed.complete:
        return ()
    if capabilities.deletes_beyond_history:
        kept = {r.name.lower() for r in status.revisions if r.name and r.state != "Gone"}
        return tuple(r.cloud_id for r in observed.revisions if r.key is not None and r.percent == 0
                     and r.cloud_id.lower() not in kept and r.phase is not Phase.FAILED)
    if not capabilities.idle_revisions_cost:
        return ()
    standby = [r.name for r in reversed(status.revisions) if r.name != serving.name and r.state == "Ready"]
    keep = {serving.name.lower(), *(name.lower() for name in standby[:capabilities.standby_revisions])}
    return tuple(r.cloud_id for r in observed.revisions if r.phase in (Phase.PENDING, Phase.READY)
                 and r.cloud_id.lower() not in keep and r.percent == 0)


def _named(record: RevisionRecord) -> str:
    """'revision 3 (calc--r3-1a2b3c4d)'; just 'revision 3' where the cloud's name is that number (versions the cloud numbers)."""
    return f"revision {record.number}" + (f" ({record.name})" if record.name and record.name != str(record.number) else "")


def _record(status: McpDeploymentStatus, name: str) -> RevisionRecord | None:
    return next((r for r in status.revisions if r.name == name), None)


def _number_of(status: McpDeploymentStatus, name: str | None) -> str:
    record = _record(status, name or "")
    return str(record.number) if record else "?"
