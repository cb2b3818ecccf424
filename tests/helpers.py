"""Small helpers shared by the coordinator tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from mcp.types import CreateMessageRequestParams

from coalesce import Coordinator
from coalesce.testing import result_text

Outcome = str | BaseException


async def submit_all(
    coord: Coordinator,
    requests: list[CreateMessageRequestParams],
    *,
    groups: list[Any] | None = None,
    stagger: bool = True,
) -> list[Outcome]:
    """Submit *requests* concurrently (in order) and return each one's text or exception."""
    outcomes: list[Outcome | None] = [None] * len(requests)

    async def one(index: int) -> None:
        group = None if groups is None else groups[index]
        try:
            result = await coord.create_message(requests[index], group=group)
        except Exception as error:
            outcomes[index] = error
        else:
            outcomes[index] = result_text(result)

    async with trio.open_nursery() as nursery:
        for index in range(len(requests)):
            nursery.start_soon(one, index)
            if stagger:
                await trio.testing.wait_all_tasks_blocked()
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


async def run_soon(nursery: trio.Nursery, fn: Callable[[], Awaitable[Any]]) -> None:
    """Start *fn* in *nursery* and let it run until it blocks."""
    nursery.start_soon(fn)
    await trio.testing.wait_all_tasks_blocked()
