"""The pure decisions of a reconcile pass: desired + observed + status -> action + next status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mcp_operator.api.models import McpDeploymentSpec, McpDeploymentStatus
from mcp_operator.reconcile import plan as planning
from mcp_operator.reconcile.desired import Desired, SpecError, resolve
from mcp_operator.settings import Settings
from mcp_operator.targets.base import Observed, ObservedRevision

SUB = "8f3c2b9e-1d4a-4c7b-9e2f-5a6b7c8d9e0f"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def desired(image: str = "img:1", **azure: Any) -> Desired:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "server": {"image": image},
                                             "azure": {"subscriptionId": SUB, **azure}})
    return resolve(spec, "calc", "team", Settings())


def revision(name: str, image: str = "img:1", active: bool = True, provisioning: str = "Provisioned", running: str = "Running",
             weight: int = 0, error: str | None = None) -> ObservedRevision:
    return ObservedRevision(name, image, active, provisioning, running, weight, error=error)


def observed(*revisions: ObservedRevision, state: str = "Succeeded", drift: tuple[str, ...] = ()) -> Observed:
    return Observed(exists=True, provisioning_state=state, fqdn="calc.example.io",
                    revisions={r.name.lower(): r for r in revisions},
                    traffic={r.name.lower(): r.traffic_weight for r in revisions if r.traffic_weight}, config_drift=drift)


def run(want: Desired, status: McpDeploymentStatus, seen: Observed, generation: int = 1, limit: int = 10) -> planning.Plan:
    return planning.plan(want, status, seen, generation, limit, poll_interval=2, drift_interval=300, now=NOW)


def converge(want: Desired, status: McpDeploymentStatus | None = None) -> tuple[McpDeploymentStatus, str]:
    """Plans the first revision and pretends the cloud made it ready and serving."""
    first = run(want, status or McpDeploymentStatus(), Observed(exists=False))
    assert isinstance(first.action, planning.Create)
    name = first.status.revisions[-1].name
    return first.status, name


def conditions(status: McpDeploymentStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_first_pass_records_the_intent_and_creates_revision_1() -> None:
    want = desired()
    result = run(want, McpDeploymentStatus(), Observed(exists=False))
    assert result.action == planning.Create(1, f"r1-{want.revision_hash[:8]}", None)
    record = result.status.revisions[0]
    assert (record.number, record.state, record.name) == (1, "Pending", f"calc--r1-{want.revision_hash[:8]}")
    assert result.status.revision_counter == 1 and result.status.pending is not None
    assert conditions(result.status)["Reconciling"] == ("True", "CreatingRevision")
    assert conditions(result.status)["Ready"][0] == "False" and result.status.observed_generation == 1


def test_recorded_intent_is_repeated_with_the_same_revision_after_a_crash() -> None:
    want = desired()
    status, name = converge(want)
    again = run(want, status, Observed(exists=False))
    assert again.action == planning.Create(1, name.split("--")[1], None)
    assert again.status.revision_counter == 1 and len(again.status.revisions) == 1


def test_a_repeated_intent_keeps_its_start_so_a_waiting_pass_changes_nothing() -> None:
    want = desired()
    status, _ = converge(want)
    later = planning.plan(want, status, Observed(exists=False), 1, 10, poll_interval=2, drift_interval=300,
                          now=NOW.replace(minute=5))
    assert isinstance(later.action, planning.Create)
    assert later.status.pending == status.pending
    assert later.status == status, "waiting for shared infrastructure must not make a new status to write"


def test_a_busy_app_is_waited_for() -> None:
    want = desired()
    status, name = converge(want)
    result = run(want, status, observed(revision(name, provisioning="Provisioning", running="Processing"), state="InProgress"))
    assert result.action is None and result.requeue_after == 2
    assert conditions(result.status)["Reconciling"] == ("True", "CloudOperationInProgress")


def test_ready_revision_gets_the_traffic_and_then_the_resource_is_ready() -> None:
    want = desired()
    status, name = converge(want)
    shifting = run(want, status, observed(revision("calc--manual"), revision(name)))
    assert shifting.action == planning.Shift(name, activate=False)
    ready = run(want, shifting.status, observed(revision(name, weight=100)))
    assert ready.action is None and ready.requeue_after == 300
    assert conditions(ready.status)["Ready"] == ("True", "Serving")
    assert conditions(ready.status)["Stalled"][0] == "False" and conditions(ready.status)["Reconciling"][0] == "False"
    assert ready.status.url == "https://calc.example.io/" and ready.status.serving_revision == name
    assert ("Normal", "Ready", f"revision 1 ({name}) serves 100% of traffic") in ready.events


def test_image_change_creates_revision_2_keeping_traffic_on_1() -> None:
    want = desired()
    status, first = converge(want)
    status = run(want, status, observed(revision(first, weight=100))).status
    update = run(desired("img:2"), status, observed(revision(first, weight=100)), generation=2)
    assert isinstance(update.action, planning.Create)
    assert update.action.number == 2 and update.action.serving == first
    provisioning = run(desired("img:2"), update.status, observed(revision(first, weight=100), revision(
        update.status.revisions[-1].name, "img:2", provisioning="Provisioning", running="Processing")), generation=2)
    assert provisioning.action is None and conditions(provisioning.status)["Reconciling"] == ("True", "RevisionProvisioning")
    assert provisioning.status.serving_revision == first


def test_failed_revision_stalls_and_names_the_serving_one() -> None:
    want = desired()
    status, first = converge(want)
    status = run(want, status, observed(revision(first, weight=100))).status
    update = run(desired("img:bad"), status, observed(revision(first, weight=100)), generation=2)
    second = update.status.revisions[-1].name
    failed = run(desired("img:bad"), update.status, observed(revision(first, weight=100), revision(
        second, "img:bad", provisioning="Failed", running="Failed", error="exit code 1")), generation=2)
    assert failed.action is None
    reason, message = conditions(failed.status)["Stalled"][1], next(c.message for c in failed.status.conditions
                                                                     if c.type == "Stalled")
    assert reason == "RevisionFailed" and "exit code 1" in message and first in message
    assert ("Warning", "RevisionFailed", "revision 2 failed: exit code 1") in failed.events


def rolled_to_second(want: Desired, first_kept: bool) -> tuple[McpDeploymentStatus, str, str]:
    """Revision 1 served, then revision 2 (img:2) took the traffic; revision 1 is kept inactive, or gone from the cloud."""
    status, first = converge(want)
    status = run(want, status, observed(revision(first, weight=100))).status
    status = run(desired("img:2"), status, observed(revision(first, weight=100)), generation=2).status
    second = status.revisions[-1].name
    kept = [revision(first, active=False)] if first_kept else []
    status = run(desired("img:2"), status, observed(*kept, revision(second, "img:2", weight=100)), generation=2).status
    return status, first, second


def test_editing_the_spec_back_reuses_the_kept_revision() -> None:
    want = desired()
    status, first, second = rolled_to_second(want, first_kept=True)
    back = run(want, status, observed(revision(first, active=False), revision(second, "img:2", weight=100)), generation=3)
    assert back.action == planning.Shift(first, activate=True)
    assert back.status.revision_counter == 2, "no new revision number for a rollback"


def test_a_revision_gone_from_the_cloud_is_recreated_under_a_new_number() -> None:
    want = desired()
    status, _, second = rolled_to_second(want, first_kept=False)
    assert status.revisions[0].state == "Gone"
    back = run(want, status, observed(revision(second, "img:2", weight=100)), generation=3)
    assert isinstance(back.action, planning.Create) and back.action.number == 3


def test_drift_and_a_failed_app_state_are_corrected_by_configuration() -> None:
    want = desired()
    status, first = converge(want)
    drift = run(want, status, observed(revision(first, weight=100), drift=("CORS allowedOrigins differ",)))
    assert drift.action == planning.Configure(first, "CORS allowedOrigins differ")
    assert any(reason == "DriftCorrected" for _, reason, _ in drift.events)
    failed_state = run(want, status, observed(revision(first, weight=100), state="Failed"))
    assert isinstance(failed_state.action, planning.Configure)


def test_traffic_moved_away_by_hand_is_moved_back_as_drift() -> None:
    want = desired()
    status, first = converge(want)
    status = run(want, status, observed(revision(first, weight=100))).status
    moved = run(want, status, observed(revision(first), revision("calc--manual", weight=100)))
    assert moved.action == planning.Shift(first, activate=False, drift=True)


def test_stale_active_revisions_are_deactivated_but_the_standby_is_kept() -> None:
    want = desired("img:3")
    status = McpDeploymentStatus()
    names = []
    for image in ("img:1", "img:2", "img:3"):
        result = run(desired(image), status, Observed(exists=False))
        status, names = result.status, [*names, result.status.revisions[-1].name]
    seen = observed(revision(names[0]), revision(names[1], "img:2"), revision(names[2], "img:3", weight=100),
                    revision("calc--foreign"))
    status = run(want, status, seen).status  # records states
    result = run(want, status, seen)
    assert result.action == planning.Deactivate((names[0], "calc--foreign"))
    assert conditions(result.status)["Ready"][0] == "True"


def test_history_is_bounded_but_keeps_the_serving_revision() -> None:
    status = McpDeploymentStatus()
    first = None
    for index in range(5):
        result = run(desired(f"img:{index}"), status, observed(*([revision(first, weight=100)] if first else [])), limit=3)
        status = result.status
        first = first or status.revisions[0].name
    assert len(status.revisions) == 3
    assert status.revisions[0].name == first and [r.number for r in status.revisions] == [1, 4, 5]


def test_condition_transition_time_changes_only_with_its_status() -> None:
    status = McpDeploymentStatus()
    planning.set_condition(status, "Ready", "False", "A", "", 1, "t1")
    planning.set_condition(status, "Ready", "False", "B", "", 2, "t2")
    assert status.conditions[0].last_transition_time == "t1" and status.conditions[0].reason == "B"
    planning.set_condition(status, "Ready", "True", "C", "", 2, "t3")
    assert status.conditions[0].last_transition_time == "t3"


def test_insecure_ingress_warning_follows_allowed_origins() -> None:
    result = run(desired(), McpDeploymentStatus(), Observed(exists=False))
    assert conditions(result.status)["InsecureIngress"] == ("True", "AnyOriginWithoutAuth")


def test_resolution_precedence_spec_then_operator_then_builtin() -> None:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "server": {"image": "x"}})
    operator_defaults = Settings(default_subscription_id=SUB, default_location="westeurope")
    resolved = resolve(spec, "calc", "team", operator_defaults)
    assert (resolved.subscription_id, resolved.location, resolved.resource_group, resolved.environment) == (
        SUB, "westeurope", "calc-rg", "calc-env")
    spec.azure = spec.azure or McpDeploymentSpec.model_validate(
        {"target": {"type": "azure-container-apps"}, "server": {"image": "x"}, "azure": {"location": "northeurope"}}).azure
    assert resolve(spec, "calc", "team", operator_defaults).location == "northeurope"
    assert resolve(spec, "calc", "team", Settings(default_subscription_id=SUB)).location == "northeurope"
    builtin = McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "server": {"image": "x"}})
    assert resolve(builtin, "calc", "team", Settings(default_subscription_id=SUB)).location == "eastus"
    with pytest.raises(SpecError) as missing:
        resolve(builtin, "calc", "team", Settings())
    assert missing.value.field == "spec.azure.subscriptionId"


def test_secret_references_not_values_make_the_revision_hash() -> None:
    base = {"target": {"type": "azure-container-apps"}, "azure": {"subscriptionId": SUB}}
    one = McpDeploymentSpec.model_validate({**base, "server": {"image": "x", "env": [
        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}})
    two = McpDeploymentSpec.model_validate({**base, "server": {"image": "x", "env": [
        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "other"}}}]}})
    first, second = resolve(one, "a", "n", Settings()), resolve(two, "a", "n", Settings())
    assert first.revision_hash != second.revision_hash
    assert first.secret_env[0].cloud_secret_name == "s-k"
