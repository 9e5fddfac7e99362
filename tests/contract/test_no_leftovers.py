"""Simulators (as `make sim`, the demo, the tests and the benchmarks start them) leave nothing in the temporary
directory when they stop: no CA private key, no registry data."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import harnesses

pytestmark = pytest.mark.contract


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch


@pytest.mark.parametrize("target", sorted(harnesses.STARTERS))
def test_a_simulator_removes_what_it_wrote_when_it_stops(target: str, private_tmp: Path) -> None:
    running = harnesses.start(target)
    assert list(private_tmp.iterdir()), "it works in the temporary directory while it runs"
    running.stop()
    assert list(private_tmp.iterdir()) == []


def test_make_sim_removes_its_ca_key_when_stopped(private_tmp: Path) -> None:
    import asyncio

    from armsim import SimulatorConfig
    from armsim.__main__ import default_openapi
    from armsim.server import Simulator

    written: list[Path] = []

    async def once() -> None:
        simulator = Simulator(SimulatorConfig(openapi=default_openapi()))
        await simulator.start()
        written.extend(await asyncio.to_thread(lambda: list(private_tmp.rglob("*"))))
        await simulator.stop()

    asyncio.run(once())
    assert written, "its CA and serving keys were written there"
    assert list(private_tmp.iterdir()) == []
