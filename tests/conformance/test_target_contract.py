"""The Target contract, held by every (adapter, simulator) pair through the real SDK and the registry.

A new target proves itself by adding its simulator harness to ``HARNESSES``: each case below then runs
against it. The harness gives the operator's environment; the connector comes from the registry by
``target.type`` exactly as the operator builds it; nothing here knows a cloud.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import pytest

import harnesses
from mcp_operator.api.models import McpDeploymentSpec
from mcp_operator.contract import (
    MCP_HOST_REJECTED,
    MCP_SMOKE_TEST_FAILED,
    Connector,
    Observed,
    ObservedRevision,
    Phase,
    RevisionKey,
    Target,
    TerminalError,
    TransientError,
)
from mcp_operator.reconcile import ownership
from mcp_operator.reconcile.desired import Desired, resolve
from mcp_operator.settings import Settings
from mcp_operator.targets import registry
from mcp_operator.verify import Checker, Resolver, ToolCall

T = TypeVar("T")
HARNESSES: dict[str, Callable[[], Any]] = {target: partial(harnesses.start, target) for target in harnesses.STARTERS}
PATIENCE = 30.0  # seconds a simulated operation may take to show its result


@pytest.fixture(params=list(HARNESSES), ids=list(HARNESSES))
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    harness = HARNESSES[request.param]()
    for name, value in {**harness.operator_environment(), "MCP_POLL_INTERVAL": "0.2"}.items():
        monkeypatch.setenv(name, value)
    try:
        yield harness
    finally:
        harness.stop()


class Contract:
    """A connector and target built as the operator builds them, and patient helpers around them."""

    def __init__(self, harness: Any):
        self.harness = harness
        self.connector: Connector = registry.factories()[harness.target_type](Settings.from_env())
        self.target: Target | None = None

    def desired(self, name: str, image: str) -> Desired:
        spec = McpDeploymentSpec.model_validate(self.harness.sample_spec(name, image))
        return resolve(spec, name, "conformance", self.connector)

    async def connect(self, desired: Desired) -> Target:
        self.target = await self.connector.connect(desired, None)
        return self.target

    @staticmethod
    async def attempt(call: Callable[[], Awaitable[T]]) -> T:
        """The call, repeated while the target says the failure is transient (as the reconciler repeats a pass)."""
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                return await call()
            except TransientError as error:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(min(error.retry_after or 0.2, 1.0))

    async def create(self, desired: Desired, key: RevisionKey, serving: str | None) -> Observed:
        """create_revision, repeated until the revision shows in the cloud and is complete, as the reconciler does
        while the revision's record is Pending (a target may need several steps, each shown by the cloud)."""
        assert self.target is not None
        target = self.target
        deadline = time.monotonic() + PATIENCE
        while True:
            accepted = await self.attempt(lambda: target.create_revision(desired, {}, key, serving))
            seen = await self.attempt(lambda: target.observe(desired, detailed=True))
            if ours(seen, key) and not any(r.unfinished for r in ours(seen, key)):
                return seen
            assert time.monotonic() < deadline, f"revision {key} never showed; last seen: {seen}"
            await asyncio.sleep(min(accepted.retry_after or 0.2, 0.5))

    async def until(self, desired: Desired, check: Callable[[Observed], bool], what: str) -> Observed:
        assert self.target is not None
        target = self.target
        deadline = time.monotonic() + PATIENCE
        while True:
            seen = await self.attempt(lambda: target.observe(desired, detailed=True))
            if check(seen):
                return seen
            assert time.monotonic() < deadline, f"waited {PATIENCE}s for {what}; last seen: {seen}"
            await asyncio.sleep(0.2)

    async def two_revisions(self, name: str, first_image: str, second_image: str) -> tuple[
            Target, Desired, Desired, RevisionKey, RevisionKey]:
        """A connected target with its infrastructure ready, two specs of one resource and their keys."""
        first, second = self.desired(name, first_image), self.desired(name, second_image)
        target = await self.connect(first)
        await self.ready_infrastructure(first)
        return target, first, second, RevisionKey(1, first.revision_hash), RevisionKey(2, second.revision_hash)

    async def ready_infrastructure(self, desired: Desired) -> None:
        assert self.target is not None
        target = self.target
        deadline = time.monotonic() + PATIENCE
        while not (await self.attempt(lambda: target.prepare(desired))).ready:
            assert time.monotonic() < deadline, "prepare never said ready"
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        await self.connector.close()


def ours(seen: Observed, key: RevisionKey) -> list[ObservedRevision]:
    return [r for r in seen.revisions if r.key is not None and r.key.matches(key.number, key.hash)]


def phase_of(key: RevisionKey, phase: Phase) -> Callable[[Observed], bool]:
    return lambda seen: any(r.phase is phase for r in ours(seen, key))


def serving(key: RevisionKey) -> Callable[[Observed], bool]:
    return lambda seen: seen.serving is not None and seen.serving.key is not None and seen.serving.key.matches(
        key.number, key.hash)


def run(scenario: Callable[[Contract], Awaitable[None]], harness: Any) -> None:
    async def main() -> None:
        contract = Contract(harness)
        try:
            await scenario(contract)
        finally:
            await contract.close()

    asyncio.run(main())


def test_an_absent_resource_is_observed_as_absent_and_deleting_it_is_done(cloud: Any) -> None:
    async def scenario(c: Contract) -> None:
        want = c.desired("nothing-here", "ghcr.io/acme/calc:1.0.0")
        target = await c.connect(want)
        assert not (await c.attempt(lambda: target.observe(want))).exists
        assert (await c.attempt(lambda: target.delete(want))).done

    run(scenario, cloud)


def test_the_whole_revision_lifecycle(cloud: Any) -> None:
    async def scenario(c: Contract) -> None:
        target, first, second, k1, k2 = await c.two_revisions("conf", "ghcr.io/acme/calc:1.0.0", "ghcr.io/acme/calc:2.0.0")

        # Creating the same key again (a restarted operator, a lost answer) makes no second revision.
        await c.create(first, k1, None)
        await c.attempt(lambda: target.create_revision(first, {}, k1, None))
        seen = await c.until(first, lambda s: phase_of(k1, Phase.READY)(s) and serving(k1)(s), "revision 1 to serve")
        assert len(ours(seen, k1)) == 1, "one key, one revision"
        id1 = ours(seen, k1)[0].cloud_id
        if target.capabilities.cloud_named_revisions:
            assert target.revision_id(first, k1) == id1

        last = k1  # the revision of spec ``first`` that serves at the end of the middle part
        if not target.capabilities.has_revisions:
            id1, last = await replacing_lifecycle(c, target, first, second, k1, k2, id1)
        else:
            # A new revision starts while the old one keeps all traffic, and takes it only when routed.
            await c.create(second, k2, id1)
            seen = await c.until(second, phase_of(k2, Phase.READY), "revision 2 to be ready")
            assert serving(k1)(seen), "traffic stays on revision 1 while revision 2 starts"
            id2 = ours(seen, k2)[0].cloud_id
            await c.attempt(lambda: target.route(second, {id2: 100}, ()))
            await c.until(second, serving(k2), "revision 2 to serve")

            # Idle revisions are retired where they cost, and a rollback revives and routes back.
            revive: tuple[str, ...] = ()
            if target.capabilities.idle_revisions_cost:
                await c.attempt(lambda: target.retire(second, (id1,)))
                await c.until(second, phase_of(k1, Phase.RETIRED), "revision 1 to be retired")
                revive = (id1,)
            await c.attempt(lambda: target.route(first, {id1: 100}, revive))
            seen = await c.until(first, serving(k1), "revision 1 to serve again")
            assert len([r for r in seen.revisions if r.key is not None]) == 2, "a rollback makes no revision"

        # Settings that make no revision are corrected in place.
        await c.attempt(lambda: target.reconfigure(first, {}, id1))
        seen = await c.until(first, lambda s: s.busy is None, "the reconfiguration to finish")
        assert seen.config_drift == () and serving(last)(seen)

        # Deleting is repeated until done; once done, it stays done and nothing is left.
        deadline = time.monotonic() + PATIENCE
        while not (await c.attempt(lambda: target.delete(first))).done:
            assert time.monotonic() < deadline, "delete never finished"
            await asyncio.sleep(0.2)
        assert (await c.attempt(lambda: target.delete(first))).done
        assert not (await c.attempt(lambda: target.observe(first))).exists

    run(scenario, cloud)


async def replacing_lifecycle(c: Contract, target: Target, first: Desired, second: Desired, k1: RevisionKey,
                              k2: RevisionKey, id1: str) -> tuple[str, RevisionKey]:
    """The middle of the lifecycle where the target keeps no revisions (has_revisions False): a new revision replaces
    the serving one when it succeeds, a replaced one cannot take traffic again, and a rollback is a new revision made
    from the same spec. Returns the cloud id and key of the revision that serves at the end (made from ``first``)."""
    created = await c.create(second, k2, id1)
    if phase_of(k2, Phase.PENDING)(created):
        assert serving(k1)(created), "revision 1 serves while revision 2 deploys"
    seen = await c.until(second, serving(k2), "revision 2 to replace revision 1")
    assert phase_of(k1, Phase.RETIRED)(seen), "the replaced revision is kept in the record, and serves no more"
    id2 = ours(seen, k2)[0].cloud_id
    with pytest.raises(TerminalError):
        await target.route(first, {id1: 100}, ())  # no traffic switch is pretended
    k3 = RevisionKey(3, first.revision_hash)
    await c.create(first, k3, id2)
    seen = await c.until(first, serving(k3), "revision 3 (revision 1's spec, deployed again) to serve")
    assert len([r for r in seen.revisions if r.key is not None]) == 3, "a rollback is a new revision here"
    return ours(seen, k3)[0].cloud_id, k3


def test_a_failed_revision_keeps_the_serving_one(cloud: Any) -> None:
    async def scenario(c: Contract) -> None:
        _target, good, bad, k1, k2 = await c.two_revisions("conf-fail", "ghcr.io/acme/calc:1.0.0", "ghcr.io/acme/calc:broken")
        await c.create(good, k1, None)
        seen = await c.until(good, serving(k1), "revision 1 to serve")
        c.harness.fail_revisions_of("broken", "container exited with code 3")
        await c.create(bad, k2, ours(seen, k1)[0].cloud_id)
        seen = await c.until(bad, phase_of(k2, Phase.FAILED), "revision 2 to fail")
        assert "exited with code 3" in (ours(seen, k2)[0].message or ""), "the cloud's reason is kept"
        assert serving(k1)(seen), "the failed revision took no traffic"

    run(scenario, cloud)


def test_dropped_connections_are_transient_never_terminal(cloud: Any) -> None:
    async def scenario(c: Contract) -> None:
        want = c.desired("conf-drop", "ghcr.io/acme/calc:1.0.0")
        target = await c.connect(want)
        await c.attempt(lambda: target.observe(want))  # past one-time set-up (provider registration)
        cloud.drop_connections(count=3, method="GET")
        failures: list[str] = []

        async def observe() -> Observed:
            try:
                return await target.observe(want)
            except TransientError as error:
                failures.append(error.reason)
                raise

        assert not (await c.attempt(observe)).exists
        assert set(failures) <= {"ConnectionError"}, f"only transient connection errors: {failures}"

    run(scenario, cloud)


def test_owner_marks_tell_ours_from_foreign(cloud: Any) -> None:
    """What the target creates carries our marks for this McpDeployment; what another tool made shows its own."""
    async def scenario(c: Contract) -> None:
        mine = c.desired("conf-mine", "ghcr.io/acme/calc:1.0.0")
        target = await c.connect(mine)
        await c.ready_infrastructure(mine)
        key = RevisionKey(1, mine.revision_hash)
        await c.create(mine, key, None)
        seen = await c.until(mine, phase_of(key, Phase.READY), "revision 1 to be ready")
        assert ownership.claim(seen, mine.owner) is ownership.Claim.OURS
        assert ownership.claim(seen, "someone.else") is ownership.Claim.ANOTHER

        c.harness.plant_foreign("conf-theirs", {"managed-by": "terraform"})
        theirs = c.desired("conf-theirs", "ghcr.io/acme/calc:1.0.0")
        seen = await c.attempt(lambda: target.observe(theirs, detailed=True))
        assert seen.exists and ownership.claim(seen, theirs.owner) is ownership.Claim.FOREIGN
        assert "conf-theirs" in seen.resource
        if target.capabilities.carries_marks:
            assert seen.owner_marks.get("managed-by") == "terraform"
        else:  # the cloud keeps no marks: what is ours is what the history (or this process) made
            assert seen.owner_marks == {} and not any(r.key for r in seen.revisions)

    run(scenario, cloud)


def test_each_revision_answers_mcp_on_its_own_url(cloud: Any) -> None:
    """What the MCP gate needs from a target: a URL per revision where that revision alone answers (where the target
    keeps no revisions, the server's URL, where the serving deployment answers)."""
    async def scenario(c: Contract) -> None:
        target, good, guarded, k1, k2 = await c.two_revisions("conf-mcp", "ghcr.io/acme/calc:1.0.0",
                                                              "ghcr.io/acme/mcp-host-guard:2.0.0")
        await c.create(good, k1, None)
        seen = await c.until(good, serving(k1), "revision 1 to serve")
        first = ours(seen, k1)[0]
        settings = Settings.from_env()
        checker = Checker(Resolver.parse(settings.resolve), settings.ca_bundle)

        async def first_answers(url: str | None) -> None:
            assert url, "the serving revision has a URL"
            passed = await checker.handshake(url, 10)
            assert passed.ok and passed.server_name == "calc" and passed.server_version == "1.0.0"
            smoke = await checker.handshake(url, 10, smoke=ToolCall("add", {"a": 2, "b": 3}, "5"))
            assert smoke.ok and smoke.smoke_test == "add returned '5.0'"
            wrong = await checker.handshake(url, 10, smoke=ToolCall("add", {"a": 2, "b": 3}, "7"))
            assert not wrong.ok and wrong.reason == MCP_SMOKE_TEST_FAILED and "'5.0'" in wrong.message

        if target.capabilities.has_revisions:
            await c.create(guarded, k2, first.cloud_id)
            seen = await c.until(guarded, phase_of(k2, Phase.READY), "revision 2 to be ready")
            first, second = ours(seen, k1)[0], ours(seen, k2)[0]
            assert second.url and second.url != first.url, "each revision has a URL of its own"
            await first_answers(first.url)
        else:  # one URL, where the deployment that serves answers: revision 1 is checked before it is replaced
            await first_answers(first.url)
            await c.create(guarded, k2, first.cloud_id)
            seen = await c.until(guarded, serving(k2), "revision 2 to replace revision 1")
            second = ours(seen, k2)[0]
            assert second.url, "the deployment that serves answers at the server's URL"
        refused = await checker.handshake(second.url, 10)
        assert not refused.ok and refused.reason == MCP_HOST_REJECTED, "revision 2's URL reaches revision 2 alone"

    run(scenario, cloud)


def test_traffic_splits_between_two_revisions_where_the_target_can(cloud: Any) -> None:
    """What progressive rollouts need: two revisions sharing traffic, as routed, then one again."""
    async def scenario(c: Contract) -> None:
        target, first, second, k1, k2 = await c.two_revisions("conf-split", "ghcr.io/acme/calc:1.0.0", "ghcr.io/acme/calc:2.0.0")
        if target.capabilities.max_traffic_split < 2:
            pytest.skip("this target declares it cannot split traffic")
        seen = await c.create(first, k1, None)
        seen = await c.until(first, serving(k1), "revision 1 to serve")
        id1 = ours(seen, k1)[0].cloud_id
        await c.create(second, k2, id1)
        seen = await c.until(second, phase_of(k2, Phase.READY), "revision 2 to be ready")
        id2 = ours(seen, k2)[0].cloud_id
        await c.attempt(lambda: target.route(second, {id1: 70, id2: 30}, ()))
        seen = await c.until(second, lambda s: {r.cloud_id: r.percent for r in s.revisions if r.percent} == {id1: 70, id2: 30},
                             "the 70/30 split")
        assert seen.serving is None, "no revision has all the traffic during a split"
        await c.attempt(lambda: target.route(second, {id2: 100}, ()))
        await c.until(second, serving(k2), "revision 2 to serve alone")

    run(scenario, cloud)
