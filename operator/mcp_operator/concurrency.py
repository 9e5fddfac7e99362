"""How many reconcile passes run at once, and the one way a pass steps out of that count.

A pass is short: it reads, decides, starts a cloud operation and returns; a later pass checks on it.
Bounding them keeps a burst of a thousand new resources from holding a thousand half-done passes in
memory. But a pass that must wait for a cloud's throttling to let its write through should not keep its
place meanwhile: with every place held by such waiters, resources whose operations had finished
could not run the pass that sees it, and all of them piled up on the read bucket at the end.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class _Place:
    slots: PassSlots
    held: bool = True


_CURRENT: contextvars.ContextVar[_Place | None] = contextvars.ContextVar("mcp_operator_pass_place", default=None)


class PassSlots:
    def __init__(self, limit: int):
        self._semaphore = asyncio.Semaphore(max(1, limit))

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        """Holds one of the places for the body of a pass (or a deletion)."""
        await self._semaphore.acquire()
        place = _Place(self)
        token = _CURRENT.set(place)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            if place.held:
                self._semaphore.release()


def leave_place() -> None:
    """The current pass gives up its place for the rest of its run (it is about to wait on the cloud's pace).

    Not taken back afterwards: the pass has only its write and a status patch left, and queueing again
    for a place would make it miss the moment the throttle reserved for it.
    """
    place = _CURRENT.get()
    if place is not None and place.held:
        place.held = False
        place.slots._semaphore.release()
