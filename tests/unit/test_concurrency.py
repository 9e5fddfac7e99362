"""PassSlots: a bounded number of passes, and a pass that waits on the cloud's pace gives its place up;
the bound of kopf's own connection pool."""

from __future__ import annotations

import asyncio

import pytest

from mcp_operator.concurrency import PassSlots, leave_place
from mcp_operator.pacing import ThrottlePacer
from mcp_operator.settings import Settings


async def started(slots: PassSlots, log: list[str], name: str, release: asyncio.Event, leave: bool = False) -> None:
    async with slots.place():
        log.append(f"{name} in")
        if leave:
            leave_place()
        await release.wait()
    log.append(f"{name} out")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_no_more_passes_than_places() -> None:
    slots, log, release = PassSlots(2), [], asyncio.Event()
    tasks = [asyncio.create_task(started(slots, log, name, release)) for name in ("a", "b", "c")]
    await settle()
    assert log == ["a in", "b in"]
    release.set()
    await asyncio.gather(*tasks)
    assert log.count("c in") == 1


async def test_a_pass_that_leaves_its_place_lets_the_next_one_in_and_does_not_free_it_twice() -> None:
    slots, log = PassSlots(1), []
    first_release, second_release, third_release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(started(slots, log, "waiting-on-arm", first_release, leave=True))
    second = asyncio.create_task(started(slots, log, "poll", second_release))
    third = asyncio.create_task(started(slots, log, "new", third_release))
    await settle()
    assert log == ["waiting-on-arm in", "poll in"], "the place left by the first pass went to the next"
    first_release.set()
    await settle()
    # The first pass ending must not release the place it already gave up: 'new' still waits for 'poll'.
    assert "new in" not in log
    second_release.set()
    await settle()
    assert log[-1] == "new in"
    third_release.set()
    await asyncio.gather(first, second, third)


async def test_leaving_outside_a_pass_changes_nothing() -> None:
    slots, log, release = PassSlots(1), [], asyncio.Event()
    leave_place()  # e.g. kubectl-mcp's logs command reaches the pacer with no pass around it
    holder = asyncio.create_task(started(slots, log, "a", release))
    waiter = asyncio.create_task(started(slots, log, "b", release))
    await settle()
    assert log == ["a in"]
    release.set()
    await asyncio.gather(holder, waiter)


async def test_a_cancelled_pass_gives_its_place_back() -> None:
    slots, log, never = PassSlots(1), [], asyncio.Event()
    doomed = asyncio.create_task(started(slots, log, "doomed", never))
    await settle()
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    release = asyncio.Event()
    release.set()
    await asyncio.wait_for(started(slots, log, "next", release), timeout=1)
    assert log == ["doomed in", "next in", "next out"]


async def test_a_pass_held_back_by_the_throttle_pacer_lets_others_run_meanwhile() -> None:
    pacer, slots, log = ThrottlePacer({"reads": 25.0, "writes": 10.0, "deletes": 10.0}), PassSlots(1), []
    pacer.throttled("writes", 0.3)  # ARM said: no writes for 0.3 s

    async def writer() -> None:
        async with slots.place():
            await pacer.admit("writes")
            log.append("write sent")

    async def poll() -> None:
        async with slots.place():
            log.append("poll done")

    waiting = asyncio.create_task(writer())
    await settle()
    await asyncio.wait_for(poll(), timeout=0.2)  # would wait for the writer's place without leave_place()
    await waiting
    assert log == ["poll done", "write sent"]


@pytest.mark.parametrize(("namespaces", "expected"), [
    ((), 4 + 24),                      # cluster-wide: McpDeployments, Secrets, peering, and one for namespaces
    (("team-a", "team-b"), 7 + 24),    # three of each per namespace, plus namespaces
    (("team-*",), 4 + 24),             # globs: kopf watches cluster-wide (scope.py), so as many streams as that
])
def test_kopfs_pool_is_bounded_by_its_watch_streams_plus_request_connections(namespaces: tuple[str, ...], expected: int) -> None:
    assert Settings(namespaces=namespaces).kopf_connections() == expected
