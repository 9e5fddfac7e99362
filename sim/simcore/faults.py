"""Injected faults and the record of every request a simulator answered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """One injected fault. ``action``: drop (close the connection), status (answer ``status``)."""

    action: str
    count: int = 1
    method: str | None = None
    operation: str | None = None  # an operation name, or a prefix of one ending in '*'
    path_contains: str | None = None
    when: str = "before"  # drop: before the request is processed, or after (the work is done, the answer lost)
    status: int = 500
    retry_after: int | None = None
    code: str = "InternalServerError"
    message: str = "Injected fault."

    def matches(self, method: str, path: str, operation: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.operation:
            if self.operation.endswith("*"):
                if not operation.startswith(self.operation[:-1]):
                    return False
            elif self.operation != operation:
                return False
        return not (self.path_contains and self.path_contains.lower() not in path.lower())


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)

    def add(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        self.pending.append(fault)
        return fault

    def take(self, method: str, path: str, operation: str) -> Fault | None:
        """The first fault that matches this request, used up by one."""
        for fault in self.pending:
            if fault.count > 0 and fault.matches(method, path, operation):
                fault.count -= 1
                return fault
        return None

    def clear(self) -> None:
        self.pending.clear()


@dataclass
class RecordedRequest:
    at: float
    method: str
    path: str
    operation: str
    klass: str
    status: int
    subscription: str | None = None  # the account or subscription the request was metered against
    seconds: float = 0.0  # time the simulator spent answering (including simulated request latency)


def drop(request: web.Request, record: RecordedRequest) -> web.StreamResponse:
    """Close the TCP connection without an answer: clients see RemoteDisconnected / ServerDisconnectedError."""
    record.status = -1
    if request.transport:
        request.transport.abort()
    raise asyncio.CancelledError


def counts(requests: list[RecordedRequest], classes: tuple[str, ...], since: float = 0.0) -> dict[str, int]:
    """Requests by class since ``since`` (monotonic seconds), with the total and how many were throttled."""
    result = dict.fromkeys((*classes, "throttled", "total"), 0)
    for request in requests:
        if request.at >= since and request.klass in classes:
            result[request.klass] += 1
            result["total"] += 1
            result["throttled"] += request.status == 429
    return result
