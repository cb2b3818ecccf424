"""Small helpers shared by the coordinator tests, on whichever backend runs them."""

from __future__ import annotations

from typing import Any

import anyio
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

    async with anyio.create_task_group() as task_group:
        for index in range(len(requests)):
            task_group.start_soon(one, index)
            if stagger:
                await anyio.wait_all_tasks_blocked()
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]
