"""The test-control endpoints every simulator serves under /_sim (see docs/simulator.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

from aiohttp import web

from .buckets import TokenBuckets
from .faults import Fault, RecordedRequest
from .schedule import Schedule


class Controllable(Protocol):
    requests: list[RecordedRequest]

    @property
    def throttle(self) -> TokenBuckets: ...

    @property
    def schedule(self) -> Schedule: ...

    def info(self) -> dict[str, Any]: ...

    def counts(self, since: float = 0.0) -> dict[str, int]: ...

    def add_fault(self, **kwargs: Any) -> Fault: ...

    def clear_faults(self) -> None: ...


def common_control(sim: Controllable, method: str, path: str, query: Any, body: Any) -> web.Response | None:
    """Answers a control every simulator has, or None for one of the simulator's own."""
    route = (method, path.rstrip("/"))
    if route == ("GET", "/_sim/info"):
        return web.json_response(sim.info())
    if route == ("GET", "/_sim/requests"):
        return web.json_response([asdict(r) for r in sim.requests])
    if route == ("GET", "/_sim/counts"):
        return web.json_response(sim.counts(float(query.get("since", 0))))
    if route == ("DELETE", "/_sim/requests"):
        sim.requests.clear()
        return web.json_response({})
    if route == ("PUT", "/_sim/latency"):
        sim.schedule.latency.update({k: float(v) for k, v in body.items()})
        return web.json_response(sim.schedule.latency)
    if route == ("PUT", "/_sim/throttling"):
        sim.throttle.enabled = bool(body["enabled"])
        sim.throttle.reset()
        return web.json_response({"enabled": sim.throttle.enabled})
    if route == ("POST", "/_sim/faults"):
        return web.json_response(asdict(sim.add_fault(**body)))
    if route == ("DELETE", "/_sim/faults"):
        sim.clear_faults()
        return web.json_response({})
    return None
