"""Requests that go alone (``max_batch=1``, or a request that cannot be batched) keep every promise.

Run once on trio and once on asyncio; none of these depends on the clock.
"""

from __future__ import annotations

import math

import anyio
import pytest
from mcp.types import CreateMessageRequestParams, ImageContent, SamplingMessage

from coalesce import Coordinator, CoordinatorClosed, open_coordinator
from coalesce.testing import CannedClient, ScriptedClient, text_request, text_result

from .helpers import submit_all

pytestmark = pytest.mark.anyio


def _picture() -> CreateMessageRequestParams:
    image = ImageContent(type="image", data="aGk=", mime_type="image/png")
    return text_request("x").model_copy(
        update={"messages": [SamplingMessage(role="user", content=[image])]}
    )


async def test_without_coalescing_each_request_gets_its_own_call() -> None:
    model = ScriptedClient(latency=0.001)
    async with open_coordinator(model, window=3600.0, max_batch=1) as coord:
        outcomes = await submit_all(coord, [text_request(f"t{i}") for i in range(5)], stagger=False)
        stats = coord.stats
    assert outcomes == [f"answer to: t{i}" for i in range(5)]
    assert model.max_in_flight == 5, "sent at once and in parallel"
    assert (stats.requests, stats.answered, stats.model_calls, stats.coalesced_calls) == (
        5,
        5,
        5,
        0,
    )


@pytest.mark.parametrize("max_batch", [1, 10])
async def test_a_caller_cancelled_before_its_lone_request_goes_is_never_sent(
    max_batch: int,
) -> None:
    fake = CannedClient(default=text_result("a picture"))
    requests = [text_request("plain"), _picture()] if max_batch == 1 else [_picture()]
    async with open_coordinator(fake, window=3600.0, max_batch=max_batch) as coord:
        for request in requests:
            with anyio.CancelScope() as scope:
                scope.cancel()
                await coord.create_message(request)
        await anyio.wait_all_tasks_blocked()
        stats = coord.stats
    assert fake.requests == []
    assert (stats.requests, stats.cancelled, stats.model_calls) == (len(requests), len(requests), 0)


async def test_an_aborted_coordinator_does_not_send_a_lone_request_it_took() -> None:
    model = ScriptedClient(latency=math.inf)
    outcomes: list[str] = []

    async def ask(coord_: Coordinator, params: CreateMessageRequestParams) -> None:
        with pytest.raises(CoordinatorClosed) as info:
            await coord_.create_message(params)
        outcomes.append(str(info.value))

    async with anyio.create_task_group() as outside:
        with pytest.raises(ZeroDivisionError):
            async with open_coordinator(model, max_batch=1, max_concurrent_calls=1) as coord:
                outside.start_soon(ask, coord, text_request("holds the only call slot"))
                await anyio.wait_all_tasks_blocked()
                outside.start_soon(ask, coord, _picture())  # taken, waiting for the slot
                await anyio.wait_all_tasks_blocked()
                raise ZeroDivisionError
    assert sorted(outcomes) == [
        "the coordinator was closed while it was in flight",
        "the coordinator was closed while it was queued",
    ]
    assert model.calls == 1, "the waiting request was never sent"


async def test_a_request_sent_at_once_takes_no_place_among_max_pending() -> None:
    model = ScriptedClient()
    async with open_coordinator(model, max_batch=1, max_pending=1) as coord:
        for index in range(3):  # each would wait for room forever if the first kept its place
            await coord.create_message(text_request(f"t{index}"))
        assert coord.queued == 0
    assert model.calls == 3
