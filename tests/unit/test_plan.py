"""The pure decisions of a reconcile pass: desired + observed + status -> action + next status.

Every case runs once per capability set: a target that names its revisions and pays for idle ones
(revision ids known before creation, a standby kept), and one whose cloud assigns ids on creation
and keeps idle versions for free. The planner sees only contract types.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from mcp_operator.api.models import McpCheck, McpDeploymentSpec, McpDeploymentStatus, RevisionSnapshot, TrafficTarget
from mcp_operator.contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Capabilities, Observed, ObservedRevision, Phase, RevisionKey
from mcp_operator.reconcile import plan as planning
from mcp_operator.reconcile.desired import Desired, Placement, resolve

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CAPABILITY_SETS = {
    "named-ids-idle-billed": Capabilities(cloud_named_revisions=True, max_traffic_split=100, idle_revisions_cost=True,
                                          standby_revisions=1),
    "cloud-assigned-ids-idle-free": Capabilities(cloud_named_revisions=False, max_traffic_split=2, idle_revisions_cost=False),
}


class SpecOnly:
    """Reads a spec as any target would for the planner: the server fields make the revision."""

    type = "test"

    def place(self, spec: McpDeploymentSpec, name: str, namespace: str, recorded: Any = None) -> Placement:
        snapshot = RevisionSnapshot(image=spec.server.image or "", env=spec.server.env, resources=spec.server.resources)
        return Placement(where=None, snapshot=snapshot, status_section="azure", facts={"appName": name})


def desired(image: str = "img:1", origins: tuple[str, ...] = ("*",), adoption: str = "Refuse",
            steps: tuple[tuple[int, int], ...] = ()) -> Desired:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "adoptionPolicy": adoption,
                                             "server": {"image": image, "allowedOrigins": list(origins)},
                                             "rollout": {"steps": [{"percent": p, "pauseSeconds": s} for p, s in steps]}})
    return resolve(spec, "calc", "team", SpecOnly())  # type: ignore[arg-type]


@dataclass
class Cloud:
    """The ids a target of these capabilities gives revisions: ours, or the cloud's own counter."""

    capabilities: Capabilities
    assigned: dict[int, str] = field(default_factory=dict)

    def revision_ids(self, key: RevisionKey) -> str | None:
        return f"calc--{key.label}" if self.capabilities.cloud_named_revisions else None

    def id_of(self, number: int, revision_hash: str) -> str:
        named = self.revision_ids(RevisionKey(number, revision_hash))
        return named or self.assigned.setdefault(number, f"v{len(self.assigned) + 1}")

    def revision(self, want: Desired, number: int, phase: Phase = Phase.READY, percent: int = 0,
                 message: str | None = None) -> ObservedRevision:
        return ObservedRevision(self.id_of(number, want.revision_hash), RevisionKey(number, want.revision_hash[:8]),
                                phase, percent, message)

    def run(self, want: Desired, status: McpDeploymentStatus, seen: Observed, generation: int = 1, limit: int = 10,
            now: datetime = NOW) -> planning.Plan:
        context = planning.Context(self.capabilities, self.revision_ids, limit, poll_interval=2, drift_interval=300)
        return planning.plan(want, status, seen, generation, context, now=now)


OURS = {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: "team.calc"}


def observed(*revisions: ObservedRevision, busy: str | None = None, drift: tuple[str, ...] = (),
             marks: dict[str, str] | None = None) -> Observed:
    return Observed(exists=True, revisions=revisions, busy=busy, host="calc.example.io", facts={"provisioningState": "Ok"},
                    config_drift=drift, owner_marks=OURS if marks is None else marks, resource="app calc")


def foreign(cloud_id: str, percent: int = 0) -> ObservedRevision:
    return ObservedRevision(cloud_id, None, Phase.READY, percent)


def conditions(status: McpDeploymentStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def intent(cloud: Cloud, want: Desired, status: McpDeploymentStatus | None = None) -> McpDeploymentStatus:
    first = cloud.run(want, status or McpDeploymentStatus(), Observed(exists=False))
    assert isinstance(first.action, planning.Create)
    return first.status


def serving_first(cloud: Cloud) -> tuple[Desired, McpDeploymentStatus, str]:
    """Revision 1 created and serving all traffic."""
    want = desired()
    status = cloud.run(want, intent(cloud, want), observed(cloud.revision(want, 1, percent=100))).status
    return want, status, cloud.id_of(1, want.revision_hash)


def test_first_pass_records_the_intent_and_creates_revision_1(cloud: Cloud) -> None:
    want = desired()
    result = cloud.run(want, McpDeploymentStatus(), Observed(exists=False))
    assert result.action == planning.Create(RevisionKey(1, want.revision_hash), None)
    record = result.status.revisions[0]
    assert (record.number, record.state) == (1, "Pending")
    assert record.name == (cloud.revision_ids(RevisionKey(1, want.revision_hash)) or ""), \
        "a cloud-assigned id is unknown until the cloud answers"
    assert result.status.revision_counter == 1 and result.status.pending is not None
    assert conditions(result.status)["Reconciling"] == ("True", "CreatingRevision")
    assert conditions(result.status)["Ready"][0] == "False" and result.status.observed_generation == 1


def test_recorded_intent_is_repeated_with_the_same_key_after_a_crash(cloud: Cloud) -> None:
    want = desired()
    again = cloud.run(want, intent(cloud, want), Observed(exists=False))
    assert again.action == planning.Create(RevisionKey(1, want.revision_hash), None)
    assert again.status.revision_counter == 1 and len(again.status.revisions) == 1


def test_a_repeated_intent_keeps_its_start_so_a_waiting_pass_changes_nothing(cloud: Cloud) -> None:
    want = desired()
    status = intent(cloud, want)
    later = cloud.run(want, status, Observed(exists=False), now=NOW.replace(minute=5))
    assert isinstance(later.action, planning.Create)
    assert later.status == status, "waiting for shared infrastructure must not make a new status to write"


def test_a_busy_resource_is_waited_for(cloud: Cloud) -> None:
    want = desired()
    result = cloud.run(want, intent(cloud, want), observed(cloud.revision(want, 1, Phase.PENDING), busy="updating"))
    assert result.action is None and result.requeue_after == 2
    assert conditions(result.status)["Reconciling"] == ("True", "CloudOperationInProgress")


def test_the_cloud_id_is_learnt_from_the_key_the_revision_carries(cloud: Cloud) -> None:
    want = desired()
    result = cloud.run(want, intent(cloud, want), observed(cloud.revision(want, 1, Phase.PENDING)))
    assert result.status.revisions[0].name == cloud.id_of(1, want.revision_hash)
    assert result.status.revisions[0].state == "Provisioning"


def test_ready_revision_gets_the_traffic_and_then_the_resource_is_ready(cloud: Cloud) -> None:
    want = desired()
    status = intent(cloud, want)
    first = cloud.id_of(1, want.revision_hash)
    shifting = cloud.run(want, status, observed(foreign("calc--manual", 100), cloud.revision(want, 1)))
    assert shifting.action == planning.Route({first: 100})
    ready = cloud.run(want, shifting.status, observed(cloud.revision(want, 1, percent=100)))
    assert ready.action is None and ready.requeue_after == 300
    assert conditions(ready.status)["Ready"] == ("True", "Serving")
    assert conditions(ready.status)["Stalled"][0] == "False" and conditions(ready.status)["Reconciling"][0] == "False"
    assert ready.status.url == "https://calc.example.io/" and ready.status.serving_revision == first
    assert ready.status.traffic == [TrafficTarget(revision_name=first, revision_number=1, percent=100)]
    assert ready.status.azure is not None and ready.status.azure.provisioning_state == "Ok", "the target's facts"
    assert ("Normal", "Ready", f"revision 1 ({first}) serves 100% of traffic") in ready.events


def test_image_change_creates_revision_2_keeping_traffic_on_1(cloud: Cloud) -> None:
    _, status, first = serving_first(cloud)
    want = desired("img:2")
    update = cloud.run(want, status, observed(cloud.revision(desired(), 1, percent=100)), generation=2)
    assert update.action == planning.Create(RevisionKey(2, want.revision_hash), first)
    provisioning = cloud.run(want, update.status, observed(cloud.revision(desired(), 1, percent=100),
                                                           cloud.revision(want, 2, Phase.PENDING)), generation=2)
    assert provisioning.action is None and conditions(provisioning.status)["Reconciling"] == ("True", "RevisionProvisioning")
    assert provisioning.status.serving_revision == first


def test_failed_revision_stalls_and_names_the_serving_one(cloud: Cloud) -> None:
    _, status, first = serving_first(cloud)
    bad = desired("img:bad")
    update = cloud.run(bad, status, observed(cloud.revision(desired(), 1, percent=100)), generation=2)
    failed = cloud.run(bad, update.status, observed(cloud.revision(desired(), 1, percent=100),
                                                    cloud.revision(bad, 2, Phase.FAILED, message="exit code 1")), generation=2)
    assert failed.action is None
    stalled = next(c for c in failed.status.conditions if c.type == "Stalled")
    assert stalled.reason == "RevisionFailed" and "exit code 1" in stalled.message and first in stalled.message
    assert ("Warning", "RevisionFailed", "revision 2 failed: exit code 1") in failed.events
    ready = next(c for c in failed.status.conditions if c.type == "Ready")
    assert ready.reason == "PreviousRevisionServing", "the STATE column does not say Failed while revision 1 serves"


def rolled_to_second(cloud: Cloud, first_phase: Phase | None) -> tuple[McpDeploymentStatus, str, str]:
    """Revision 1 served, then revision 2 (img:2) took the traffic; revision 1 is kept (in that phase) or gone."""
    _, status, first = serving_first(cloud)
    second_spec = desired("img:2")
    status = cloud.run(second_spec, status, observed(cloud.revision(desired(), 1, percent=100)), generation=2).status
    kept = [cloud.revision(desired(), 1, first_phase)] if first_phase else []
    status = cloud.run(second_spec, status, observed(*kept, cloud.revision(second_spec, 2, percent=100)), generation=2).status
    return status, first, cloud.id_of(2, second_spec.revision_hash)


@pytest.mark.parametrize("kept_phase", [Phase.RETIRED, Phase.READY])
def test_editing_the_spec_back_routes_to_the_kept_revision(cloud: Cloud, kept_phase: Phase) -> None:
    status, first, _ = rolled_to_second(cloud, kept_phase)
    kept = cloud.revision(desired(), 1, kept_phase)
    back = cloud.run(desired(), status, observed(kept, cloud.revision(desired("img:2"), 2, percent=100)), generation=3)
    revive = (first,) if kept_phase is Phase.RETIRED else ()
    assert back.action == planning.Route({first: 100}, revive)
    assert back.status.revision_counter == 2, "no new revision number for a rollback"


def test_a_revision_gone_from_the_cloud_is_recreated_under_a_new_number(cloud: Cloud) -> None:
    status, _, _ = rolled_to_second(cloud, None)
    assert status.revisions[0].state == "Gone"
    back = cloud.run(desired(), status, observed(cloud.revision(desired("img:2"), 2, percent=100)), generation=3)
    assert back.action == planning.Create(RevisionKey(3, desired().revision_hash), cloud.id_of(2, desired("img:2").revision_hash))


def test_drift_of_settings_is_corrected_by_reconfiguring(cloud: Cloud) -> None:
    want, status, first = serving_first(cloud)
    drift = cloud.run(want, status, observed(cloud.revision(want, 1, percent=100), drift=("CORS allowedOrigins differ",)))
    assert drift.action == planning.Reconfigure(first, "CORS allowedOrigins differ")
    assert any(reason == "DriftCorrected" for _, reason, _ in drift.events)


def test_traffic_moved_away_by_hand_is_moved_back_as_drift(cloud: Cloud) -> None:
    want, status, first = serving_first(cloud)
    moved = cloud.run(want, status, observed(cloud.revision(want, 1), foreign("calc--manual", 100)))
    assert moved.action == planning.Route({first: 100}, drift=True)
    assert moved.status.traffic == [TrafficTarget(revision_name="calc--manual", percent=100)], "not ours: no number"


def test_idle_revisions_are_retired_only_where_they_cost_keeping_the_standby(cloud: Cloud) -> None:
    status = McpDeploymentStatus()
    specs = [desired(f"img:{n}") for n in (1, 2, 3)]
    for want in specs:
        status = cloud.run(want, status, Observed(exists=False)).status
    seen = observed(cloud.revision(specs[0], 1), cloud.revision(specs[1], 2), cloud.revision(specs[2], 3, percent=100),
                    foreign("calc--foreign"))
    status = cloud.run(specs[2], status, seen).status  # records states
    result = cloud.run(specs[2], status, seen)
    assert conditions(result.status)["Ready"][0] == "True"
    if cloud.capabilities.idle_revisions_cost:
        assert result.action == planning.Retire((cloud.id_of(1, specs[0].revision_hash), "calc--foreign"))
    else:
        assert result.action is None, "idle revisions that cost nothing are left alone"


def test_history_is_bounded_but_keeps_the_serving_revision(cloud: Cloud) -> None:
    status = McpDeploymentStatus()
    for index in range(5):
        seen = observed(cloud.revision(desired("img:0"), 1, percent=100)) if index else Observed(exists=False)
        status = cloud.run(desired(f"img:{index}"), status, seen, limit=3).status
    assert len(status.revisions) == 3
    assert [r.number for r in status.revisions] == [1, 4, 5]


def test_condition_transition_time_changes_only_with_its_status() -> None:
    status = McpDeploymentStatus()
    planning.set_condition(status, "Ready", "False", "A", "", 1, "t1")
    planning.set_condition(status, "Ready", "False", "B", "", 2, "t2")
    assert status.conditions[0].last_transition_time == "t1" and status.conditions[0].reason == "B"
    planning.set_condition(status, "Ready", "True", "C", "", 2, "t3")
    assert status.conditions[0].last_transition_time == "t3"


@pytest.mark.parametrize(("origins", "expected"), [(("*",), ("True", "AnyOriginWithoutAuth")),
                                                    (("https://app.example",), ("False", "OriginsRestricted"))])
def test_insecure_ingress_warning_follows_allowed_origins(cloud: Cloud, origins: tuple[str, ...],
                                                          expected: tuple[str, str]) -> None:
    result = cloud.run(desired(origins=origins), McpDeploymentStatus(), Observed(exists=False))
    assert conditions(result.status)["InsecureIngress"] == expected


def test_secret_references_not_values_make_the_revision_hash() -> None:
    def with_key(key: str) -> Any:
        return McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "server": {"image": "x", "env": [
            {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": key}}}]}})
    first, second = (resolve(with_key(k), "a", "n", SpecOnly()) for k in ("k", "other"))  # type: ignore[arg-type]
    assert first.revision_hash != second.revision_hash


TERRAFORM = {"managed-by": "terraform"}
ANOTHER = {CREATED_BY_TAG: OPERATOR_NAME, OWNER_TAG: "team.other"}


@pytest.mark.parametrize(("marks", "adoption", "refused_as"), [
    (TERRAFORM, "Refuse", "AdoptionRefused"),
    ({}, "Refuse", "AdoptionRefused"),
    ({CREATED_BY_TAG: "someone-else", OWNER_TAG: "team.calc"}, "Refuse", "AdoptionRefused"),
    (ANOTHER, "Refuse", "OwnedByAnother"),
    (ANOTHER, "Adopt", "OwnedByAnother"),  # never adopted from a live McpDeployment: the two would fight
    (TERRAFORM, "Adopt", None),
    ({}, "Adopt", None),
    (OURS, "Refuse", None),
])
def test_a_resource_is_acted_on_only_when_ours_or_adopted_by_choice(cloud: Cloud, marks: dict[str, str], adoption: str,
                                                                   refused_as: str | None) -> None:
    want = desired(adoption=adoption)
    seen = observed(foreign("calc--abc", percent=100), marks=marks)
    result = cloud.run(want, McpDeploymentStatus(), seen)
    if refused_as is None:
        assert isinstance(result.action, planning.Create)
        adopting = [e for e in result.events if e[1] == "Adopting"]
        assert bool(adopting) == (marks != OURS)
        return
    assert result.action is None and conditions(result.status)["Stalled"] == ("True", refused_as)
    message = next(c.message for c in result.status.conditions if c.type == "Stalled")
    assert "app calc" in message
    if marks == TERRAFORM:
        assert "managed-by=terraform" in message and "spec.adoptionPolicy: Adopt" in message
    assert result.status.url is None and result.status.traffic == [], "nothing of a foreign app is shown as ours"
    assert [e[:2] for e in result.events] == [("Warning", refused_as)]
    again = cloud.run(want, result.status, seen)
    assert again.events == [], "the warning is not repeated every pass"


def test_revisions_kept_by_an_earlier_mcpdeployment_are_reused_not_rebuilt(cloud: Cloud) -> None:
    old, kept = desired("img:1"), desired("img:2")
    seen = observed(cloud.revision(old, 1, Phase.READY), cloud.revision(kept, 2, Phase.READY, percent=100))
    result = cloud.run(kept, McpDeploymentStatus(), seen)
    assert result.action is None or isinstance(result.action, planning.Retire), "the kept revision serves as it is"
    assert conditions(result.status)["Ready"] == ("True", "Serving")
    assert [(r.number, r.state, r.hash) for r in result.status.revisions] == [(2, "Ready", kept.revision_hash)]
    assert result.status.revision_counter == 2
    assert [e[1] for e in result.events if e[1] == "HistoryRebuilt"] == ["HistoryRebuilt"]


def test_numbering_continues_after_kept_revisions_of_another_spec(cloud: Cloud) -> None:
    kept, new = desired("img:1"), desired("img:3")
    seen = observed(cloud.revision(kept, 1, Phase.READY), cloud.revision(kept, 2, Phase.READY, percent=100))
    result = cloud.run(new, McpDeploymentStatus(), seen)
    assert isinstance(result.action, planning.Create) and result.action.key.number == 3
    assert [r.number for r in result.status.revisions] == [3]


def test_a_partial_read_rebuilds_nothing(cloud: Cloud) -> None:
    kept = desired("img:2")
    seen = observed(cloud.revision(kept, 2, Phase.READY, percent=100))
    partial = Observed(**{**seen.__dict__, "complete": False})
    result = cloud.run(kept, McpDeploymentStatus(), partial)
    assert result.status.revision_counter in (0, 1) and not any(e[1] == "HistoryRebuilt" for e in result.events)


PRUNING = Capabilities(cloud_named_revisions=False, max_traffic_split=2, idle_revisions_cost=False,
                       deletes_beyond_history=True)


def test_revisions_the_history_no_longer_holds_are_deleted_where_the_target_prunes() -> None:
    cloud, status = Cloud(PRUNING), McpDeploymentStatus()
    specs = [desired(f"img:{n}") for n in (1, 2, 3)]
    for want in specs:
        status = cloud.run(want, status, Observed(exists=False), limit=2).status
    seen = observed(cloud.revision(specs[0], 1), cloud.revision(specs[1], 2), cloud.revision(specs[2], 3, percent=100),
                    foreign("v-foreign"))
    status = cloud.run(specs[2], status, seen, limit=2).status
    result = cloud.run(specs[2], status, seen, limit=2)
    assert result.action == planning.Retire((cloud.id_of(1, specs[0].revision_hash),)), "ours only, beyond the limit"
    assert result.events[-1][1] == "DeletingRevisions"


@pytest.mark.parametrize("capabilities", [*CAPABILITY_SETS.values(), PRUNING], ids=[*CAPABILITY_SETS, "pruning"])
def test_a_revision_in_the_cloud_whose_creation_did_not_finish_is_finished(capabilities: Capabilities) -> None:
    cloud = Cloud(capabilities)
    want = desired()
    status = intent(cloud, want)
    half = cloud.revision(want, 1, Phase.PENDING)
    result = cloud.run(want, status, observed(ObservedRevision(half.cloud_id, half.key, half.phase, unfinished=True)))
    assert result.action == planning.Create(RevisionKey(1, want.revision_hash), None)
    done = cloud.run(want, status, observed(half))
    assert done.action is None, "once finished, a provisioning revision is waited for"


def test_a_partial_read_keeps_the_last_known_url_and_facts(cloud: Cloud) -> None:
    want, status, _ = serving_first(cloud)
    partial = Observed(exists=True, busy="updating", owner_marks=OURS, complete=False)
    result = cloud.run(want, status, partial)
    assert result.status.url == "https://calc.example.io/", "unknown is not gone"
    assert result.status.azure is not None and result.status.azure.provisioning_state == "Ok"


STEPS = ((10, 60), (50, 60))


def rolled_to_step(cloud: Cloud) -> tuple[Desired, Desired, McpDeploymentStatus, str, str]:
    """Revision 1 serving, revision 2 (with two steps) ready: the first step's split was sent."""
    first, status, id1 = serving_first(cloud)
    second = desired("img:2", steps=STEPS)
    status = cloud.run(second, status, observed(cloud.revision(first, 1, percent=100))).status
    id2 = cloud.id_of(2, second.revision_hash)
    step = cloud.run(second, status, observed(cloud.revision(first, 1, percent=100), cloud.revision(second, 2)))
    assert step.action == planning.Route({id1: 90, id2: 10}), "the first step: 10% to the new revision"
    assert step.status.pending is not None and step.status.pending.step == 0
    assert ("Normal", "ShiftingTraffic", "moving 10% of traffic to revision 2 (step 1 of 2)") in [
        (t, r, m.replace(f" ({id2})", "")) for t, r, m in step.events]
    return first, second, step.status, id1, id2


def test_a_progressive_rollout_holds_each_step_for_its_pause_then_moves_on(cloud: Cloud) -> None:
    first, second, status, id1, id2 = rolled_to_step(cloud)
    split = observed(cloud.revision(first, 1, percent=90), cloud.revision(second, 2, percent=10))
    held = cloud.run(second, status, split, now=NOW.replace(second=30))
    assert held.action is None and conditions(held.status)["Reconciling"] == ("True", "RolloutPaused")
    assert held.requeue_after == 30 and held.status.serving_revision == id1, "the largest share is the serving one"
    later = NOW.replace(minute=1, second=1)
    second_step = cloud.run(second, held.status, split, now=later)
    assert second_step.action == planning.Route({id1: 50, id2: 50})
    even = observed(cloud.revision(first, 1, percent=50), cloud.revision(second, 2, percent=50))
    done = cloud.run(second, second_step.status, even, now=later.replace(minute=2, second=2))
    assert done.action == planning.Route({id2: 100}), "after the last step: all of it"
    ready = cloud.run(second, done.status, observed(cloud.revision(first, 1), cloud.revision(second, 2, percent=100)))
    assert conditions(ready.status)["Ready"] == ("True", "Serving")


def test_a_revision_that_fails_during_a_step_gives_its_share_back_at_once(cloud: Cloud) -> None:
    first, second, status, id1, _ = rolled_to_step(cloud)
    failed = observed(cloud.revision(first, 1, percent=90), cloud.revision(second, 2, Phase.FAILED, percent=10, message="OOM"))
    result = cloud.run(second, status, failed, now=NOW.replace(second=20))
    assert result.action == planning.Route({id1: 100})
    assert conditions(result.status)["Stalled"] == ("True", "RevisionFailed") and "keeps serving" in result.status.conditions[
        next(i for i, c in enumerate(result.status.conditions) if c.type == "Stalled")].message
    assert any(reason == "RolledBack" for _, reason, _ in result.events)


@pytest.mark.parametrize("case", ["cannot split", "first revision", "rollback to an older revision"])
def test_steps_are_skipped_where_there_is_nothing_to_split(case: str) -> None:
    capabilities = dataclasses.replace(CAPABILITY_SETS["named-ids-idle-billed"], max_traffic_split=1) \
        if case == "cannot split" else CAPABILITY_SETS["named-ids-idle-billed"]
    cloud = Cloud(capabilities)
    if case == "first revision":
        want = desired(steps=STEPS)
        status = intent(cloud, want)
        result = cloud.run(want, status, observed(cloud.revision(want, 1)))
        assert result.action == planning.Route({cloud.id_of(1, want.revision_hash): 100})
        return
    first, status, id1 = serving_first(cloud)
    second = desired("img:2", steps=STEPS)
    status = cloud.run(second, status, observed(cloud.revision(first, 1, percent=100))).status
    id2 = cloud.id_of(2, second.revision_hash)
    if case == "cannot split":
        result = cloud.run(second, status, observed(cloud.revision(first, 1, percent=100), cloud.revision(second, 2)))
        assert result.action == planning.Route({id2: 100})
        return
    status = cloud.run(second, status, observed(cloud.revision(first, 1), cloud.revision(second, 2, percent=100))).status
    back = desired("img:1", steps=STEPS)  # the spec edited back: revision 1 again, at once
    result = cloud.run(back, status, observed(cloud.revision(first, 1), cloud.revision(second, 2, percent=100)))
    assert result.action == planning.Route({id1: 100})


def test_each_step_is_verified_again_before_the_next_and_a_failed_check_sends_all_traffic_back(cloud: Cloud) -> None:
    first, second, status, id1, id2 = rolled_to_step(cloud)
    status.revisions[-1].mcp = McpCheck(result="Passed", url="https://r2/", checked_at="2026-11-25T11:59:00Z",
                                        first_checked_at="2026-11-25T11:59:00Z")
    with_url = dataclasses.replace(cloud.revision(second, 2, percent=10), url="https://r2/")
    split = observed(cloud.revision(first, 1, percent=90), with_url)
    after_pause = NOW.replace(minute=1, second=5)
    again = cloud.run(second, status, split, now=after_pause)
    assert again.action == planning.VerifyMcp(2, "https://r2/"), "the check before traffic does not count for step 2"
    assert conditions(again.status)["Reconciling"] == ("True", "VerifyingMcp")
    assert again.status.traffic_summary == "#1 90%, #2 10%"

    failed = again.status.model_copy(deep=True)
    failed.revisions[-1].mcp = McpCheck(result="Failed", url="https://r2/", checked_at="2026-11-25T12:01:05Z",
                                        first_checked_at="2026-11-25T11:59:00Z", reason="McpUnreachable",
                                        message="the ingress could not reach the server")
    back = cloud.run(second, failed, split, now=after_pause)
    assert back.action == planning.Route({id1: 100})
    assert conditions(back.status)["Stalled"] == ("True", "McpUnreachable")
    assert any(reason == "RolledBack" for _, reason, _ in back.events)

    passed = again.status.model_copy(deep=True)
    passed.revisions[-1].mcp = McpCheck(result="Passed", url="https://r2/", checked_at="2026-11-25T12:01:05Z",
                                        first_checked_at="2026-11-25T11:59:00Z")
    onward = cloud.run(second, passed, split, now=after_pause)
    assert onward.action == planning.Route({id1: 50, id2: 50}), "checked again: the next step"


def test_the_serving_revision_is_checked_at_drift_checks_only_when_asked(cloud: Cloud) -> None:
    want, status, _ = serving_first(cloud)
    status.revisions[0].mcp = McpCheck(result="Passed", url="https://r1/", checked_at="2026-11-25T11:00:00Z",
                                       first_checked_at="2026-11-25T11:00:00Z")
    serving = dataclasses.replace(cloud.revision(want, 1, percent=100), url="https://r1/")
    assert cloud.run(want, status, observed(serving)).action is None, "off by default"
    periodic = dataclasses.replace(want, verify=want.verify.model_copy(update={"periodic": True}))
    due = cloud.run(periodic, status, observed(serving))
    assert due.action == planning.CheckServing(1, "https://r1/")
    assert conditions(due.status)["Ready"] == ("True", "Serving"), "a check never holds readiness"
    checked = due.status.model_copy(deep=True)
    checked.serving_check = McpCheck(result="Passed", url="https://r1/", checked_at="2026-11-25T11:59:00Z",
                                     first_checked_at="2026-11-25T11:59:00Z")
    assert cloud.run(periodic, checked, observed(serving)).action is None, "checked a minute ago: not again yet"
    later = cloud.run(periodic, checked, observed(serving), now=NOW.replace(hour=13))
    assert later.action == planning.CheckServing(1, "https://r1/")
    checked.conditions.append(planning.Condition(type="Degraded", status="True", reason="McpUnreachable", message="",
                                                 last_transition_time="t"))
    off = cloud.run(want, checked, observed(serving))
    assert off.status.serving_check is None and "Degraded" not in conditions(off.status), "turned off: nothing left"
