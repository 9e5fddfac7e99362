"""The planner for a target that keeps no revisions (``Capabilities.has_revisions`` False): each revision is a new
deployment that replaces the serving one when it succeeds, and a rollback by spec edit deploys again.

The cloud here assigns ids ("dep_<n>") and carries no marks; the planner sees only contract types.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from mcp_operator.api.models import McpCheck, McpDeploymentStatus
from mcp_operator.contract import Capabilities, Phase, RevisionKey
from mcp_operator.reconcile import plan as planning

from .test_plan import NOW, Cloud, conditions, desired, intent, observed

REPLACING = Capabilities(cloud_named_revisions=False, max_traffic_split=1, idle_revisions_cost=False,
                         has_revisions=False, carries_marks=False)


def replaced_once() -> tuple[Cloud, McpDeploymentStatus]:
    """Revision 1 (img:1) served, then revision 2 (img:2) replaced it: 1 is a replaced deployment now."""
    cloud = Cloud(REPLACING)
    one, two = desired(), desired("img:2")
    status = cloud.run(one, intent(cloud, one), observed(cloud.revision(one, 1, percent=100))).status
    status = cloud.run(two, status, observed(cloud.revision(one, 1, percent=100)), generation=2).status
    status = cloud.run(two, status, observed(cloud.revision(one, 1, percent=100),
                                             cloud.revision(two, 2, Phase.PENDING)), generation=2).status
    status = cloud.run(two, status, observed(cloud.revision(one, 1, Phase.RETIRED),
                                             cloud.revision(two, 2, percent=100)), generation=2).status
    assert conditions(status)["Ready"] == ("True", "Serving")
    return cloud, status


def test_a_rollback_by_spec_edit_is_a_new_deployment_said_plainly() -> None:
    cloud, status = replaced_once()
    one, two = desired(), desired("img:2")
    back = cloud.run(one, status, observed(cloud.revision(one, 1, Phase.RETIRED), cloud.revision(two, 2, percent=100)),
                     generation=3)
    assert back.action == planning.Create(RevisionKey(3, one.revision_hash), cloud.id_of(2, two.revision_hash)), \
        "no traffic switch to a replaced deployment: a new one from revision 1's artifact"
    record = back.status.revisions[-1]
    assert (record.number, record.hash, record.state) == (3, one.revision_hash, "Pending")
    assert conditions(back.status)["Reconciling"] == ("True", "Redeploying")
    assert any(reason == "Redeploying" and "redeploying revision 1 (" in text and "new deployment" in text
               for _kind, reason, text in back.events)


def test_the_redeploy_reports_what_it_restored_and_how_long_it_took() -> None:
    cloud, status = replaced_once()
    one, two = desired(), desired("img:2")
    status = cloud.run(one, status, observed(cloud.revision(one, 1, Phase.RETIRED), cloud.revision(two, 2, percent=100)),
                       generation=3).status
    later = NOW + timedelta(seconds=42)
    third = cloud.revision(one, 3, percent=100)
    ready = cloud.run(one, status, observed(cloud.revision(one, 1, Phase.RETIRED), cloud.revision(two, 2, Phase.RETIRED),
                                            third), generation=3, now=later)
    message = next(c.message for c in ready.status.conditions if c.type == "Ready")
    assert conditions(ready.status)["Ready"] == ("True", "Serving")
    assert "revision 3" in message and "new deployment of revision 1's artifact, in 42 s" in message
    assert ready.status.revisions[-1].ready_at == "2026-11-25T12:00:42Z"
    again = cloud.run(one, ready.status, observed(third), generation=3, now=later + timedelta(minutes=5))
    assert next(c.message for c in again.status.conditions if c.type == "Ready") == message, "stable across passes"


def test_a_target_with_revisions_switches_traffic_back_instead() -> None:
    cloud = Cloud(Capabilities(cloud_named_revisions=False, max_traffic_split=2, idle_revisions_cost=False))
    one, two = desired(), desired("img:2")
    status = cloud.run(one, intent(cloud, one), observed(cloud.revision(one, 1, percent=100))).status
    status = cloud.run(two, status, observed(cloud.revision(one, 1, percent=100)), generation=2).status
    status = cloud.run(two, status, observed(cloud.revision(one, 1, Phase.RETIRED), cloud.revision(two, 2, percent=100)),
                       generation=2).status
    back = cloud.run(one, status, observed(cloud.revision(one, 1, Phase.RETIRED), cloud.revision(two, 2, percent=100)),
                     generation=3)
    assert isinstance(back.action, planning.Route) and back.status.revision_counter == 2


def test_a_failed_deployment_leaves_the_replaced_one_serving() -> None:
    cloud = Cloud(REPLACING)
    one, bad = desired(), desired("img:bad")
    status = cloud.run(one, intent(cloud, one), observed(cloud.revision(one, 1, percent=100))).status
    status = cloud.run(bad, status, observed(cloud.revision(one, 1, percent=100)), generation=2).status
    failed = cloud.run(bad, status, observed(cloud.revision(one, 1, percent=100),
                                             cloud.revision(bad, 2, Phase.FAILED, message="stack rolled back")), generation=2)
    stalled = next(c for c in failed.status.conditions if c.type == "Stalled")
    assert stalled.reason == "RevisionFailed" and "stack rolled back" in stalled.message
    assert "revision 1" in stalled.message and failed.status.serving_revision == cloud.id_of(1, one.revision_hash)
    fixed = cloud.run(one, failed.status, observed(cloud.revision(one, 1, percent=100),
                                                   cloud.revision(bad, 2, Phase.FAILED)), generation=3)
    assert fixed.action is None and conditions(fixed.status)["Ready"] == ("True", "Serving"), \
        "editing back to the one that still serves needs no deployment"


def test_an_mcp_failure_after_the_replacement_says_it_already_serves() -> None:
    cloud, status = replaced_once()
    two = desired("img:2")
    status.revisions[-1].mcp = McpCheck(result="Failed", url="https://calc.example.io/", checked_at="2026-11-25T11:00:00Z",
                                        first_checked_at="2026-11-25T11:00:00Z", reason="McpHostRejected",
                                        message="421 Invalid Host header")
    result = cloud.run(two, status, observed(cloud.revision(desired(), 1, Phase.RETIRED),
                                             dataclasses.replace(cloud.revision(two, 2, percent=100), url="https://calc.example.io/")),
                       generation=2)
    stalled = next(c for c in result.status.conditions if c.type == "Stalled")
    assert stalled.reason == "McpHostRejected" and "replaces the deployment" in stalled.message
    assert "Edit the spec back" in stalled.message

