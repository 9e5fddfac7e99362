"""Ownership and deletion: the operator writes to and deletes only what it made for this McpDeployment.

A cloud resource made by another tool (or carrying no marks) is refused unless the spec says Adopt; a
resource of another McpDeployment is never touched; a resource that owns nothing in the cloud is
released at once when deleted.
"""

from __future__ import annotations

import time

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess
from tests.e2e.conftest import Mcpd, manifest, wait_until

pytestmark = pytest.mark.e2e

TERRAFORM = {"managed-by": "terraform", "team": "payments"}


def _writes_to(cloud: SimulatorThread, app: str) -> int:
    return sum(1 for r in cloud.simulator.requests if f"/containerApps/{app}" in r.path and r.klass != "reads")


def _stalled(mcpd: Mcpd, reason: str) -> dict[str, str]:
    wait_until(lambda: mcpd.condition("Stalled").get("reason") == reason, 30, f"Stalled {reason}")
    return mcpd.condition("Stalled")


def test_an_app_of_another_tool_is_refused_left_alone_and_never_deleted(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    cloud.plant_foreign("calc-terraform", TERRAFORM)
    mcpd = Mcpd(cluster, namespace, "calc-terraform")
    mcpd.apply(manifest("calc-terraform"))
    stalled = _stalled(mcpd, "AdoptionRefused")
    assert "container app calc-terraform in resource group calc-terraform-rg" in stalled["message"]
    assert "managed-by=terraform" in stalled["message"] and "spec.adoptionPolicy: Adopt" in stalled["message"]
    assert "url" not in mcpd.status() and not mcpd.status().get("revisions")
    warnings = mcpd.wait_events("AdoptionRefused")
    assert warnings and warnings[0]["type"] == "Warning"
    started = time.monotonic()
    mcpd.delete()  # deletionPolicy Delete (the default), yet the app is not ours to delete
    assert time.monotonic() - started < 10, "a resource that owns nothing is released at once"
    assert cloud.app_tags_and_image("calc-terraform") == (TERRAFORM, "ghcr.io/acme/other:1")
    assert _writes_to(cloud, "calc-terraform") == 0


def test_adoption_by_choice_takes_the_app_over_and_then_owns_it(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    cloud.plant_foreign("calc-adopted", {})
    mcpd = Mcpd(cluster, namespace, "calc-adopted")
    mcpd.apply(manifest("calc-adopted", image="ghcr.io/acme/calc:2", adoptionPolicy="Adopt"))
    mcpd.wait_ready()
    tags, image = cloud.app_tags_and_image("calc-adopted")
    assert image == "ghcr.io/acme/calc:2" and tags["mcp.deploy.dev/owner"] == f"{namespace}.calc-adopted"
    adopting = mcpd.wait_events("Adopting")
    assert adopting and "no tags" in adopting[0]["message"]
    mcpd.delete()
    wait_until(lambda: "calc-adopted" not in cloud.call(lambda: {a.name for a in cloud.simulator.world.apps.values()}),
               30, "the adopted app to be deleted with the McpDeployment")


def test_an_app_of_another_mcpdeployment_is_never_touched_and_its_claimant_is_released(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    owner = Mcpd(cluster, namespace, "calc-first")
    owner.apply(manifest("calc-first", server={"name": "calc-shared"}))
    owner.wait_ready()
    writes = _writes_to(cloud, "calc-shared")
    for policy in ("Refuse", "Adopt"):
        claimant = Mcpd(cluster, namespace, f"calc-second-{policy.lower()}")
        claimant.apply(manifest(claimant.name, image="ghcr.io/acme/calc:9", server={"name": "calc-shared"},
                                adoptionPolicy=policy))
        stalled = _stalled(claimant, "OwnedByAnother")
        assert f"belongs to McpDeployment {namespace}.calc-first" in stalled["message"]
        started = time.monotonic()
        claimant.delete()
        assert time.monotonic() - started < 10, "released at once: it owns nothing in the cloud"
    assert _writes_to(cloud, "calc-shared") == writes, "nothing written to the other McpDeployment's app"
    assert owner.is_ready()
    assert cloud.app_tags_and_image("calc-shared")[1] == "ghcr.io/acme/calc:1"


def test_a_resource_that_never_reached_the_cloud_is_released_at_once(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-nocreds")
    mcpd.apply(manifest("calc-nocreds", credentials={"secretRef": {"name": "missing-credentials"}}))
    _stalled(mcpd, "SecretNotFound")
    started = time.monotonic()
    mcpd.delete()
    assert time.monotonic() - started < 10


def test_recreated_after_a_retain_delete_it_serves_the_kept_revision_without_a_new_one(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-again")
    mcpd.apply(manifest("calc-again", image="ghcr.io/acme/calc:1", deletionPolicy="Retain"))
    mcpd.wait_ready()
    mcpd.apply(manifest("calc-again", image="ghcr.io/acme/calc:2", deletionPolicy="Retain"))
    wait_until(lambda: mcpd.is_ready() and mcpd.status().get("revisionCounter") == 2, 40, "revision 2 to serve")
    kept = mcpd.status()["servingRevision"]
    mcpd.delete()
    before = cloud.revision_names("calc-again")
    writes = _writes_to(cloud, "calc-again")

    mcpd.apply(manifest("calc-again", image="ghcr.io/acme/calc:2", deletionPolicy="Retain"))
    status = mcpd.wait_ready()
    assert status["servingRevision"] == kept and status["revisionCounter"] == 2
    assert [(r["number"], r["name"]) for r in status["revisions"]] == [(2, kept)]
    assert cloud.revision_names("calc-again") == before, "no duplicate of the serving revision"
    later = [r.path for r in cloud.simulator.requests if "/containerApps/calc-again" in r.path and r.klass != "reads"][writes:]
    assert all(path.endswith("/deactivate") for path in later), f"no app write, only idle revisions retired: {later}"
    mcpd.wait_events("HistoryRebuilt")

    mcpd.apply(manifest("calc-again", image="ghcr.io/acme/calc:3", deletionPolicy="Retain"))
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["revisionCounter"] == 3, 40, "revision 3")
    assert mcpd.status()["servingRevision"].startswith("calc-again--r3-"), "numbering continues after the kept ones"
    mcpd.apply(manifest("calc-again", image="ghcr.io/acme/calc:3"))
    mcpd.delete()
