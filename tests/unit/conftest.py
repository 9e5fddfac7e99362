"""Fixtures shared by the planner's tests."""

from __future__ import annotations

import pytest

from tests.unit.test_plan import CAPABILITY_SETS, Cloud


@pytest.fixture(params=list(CAPABILITY_SETS), ids=list(CAPABILITY_SETS))
def cloud(request: pytest.FixtureRequest) -> Cloud:
    """Every planner case runs once per capability set (see test_plan.py)."""
    return Cloud(CAPABILITY_SETS[request.param])
