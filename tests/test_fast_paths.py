"""The coordinator's fast paths give what the general paths give, in virtual time.

A request whose batch is full on arrival (one that cannot be batched, or any
with ``max_batch=1``) is sent by one task that does what a gatherer would do
for it; these tests hold it to the gatherer's promises.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from mcp.types import ImageContent, SamplingMessage

from coalesce import Coordinator, CoordinatorClosed, open_coordinator
from coalesce.testing import CannedClient, ScriptedClient, text_request, text_result

from .helpers import submit_all


def _picture() -> object:
    image = ImageContent(type="image", data="aGk=", mime_type="image/png")
    return text_request("x").model_copy(
        update={"messages": [SamplingMessage(role="user", content=[image])]}
    )


async def test_without_coalescing_each_request_gets_its_own_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    async with open_coordinator(model, window=60.0, max_batch=1) as coord:
        start = trio.current_time()
        outcomes = await submit_all(coord, [text_request(f"t{i}") for i in range(5)], stagger=False)
        assert trio.current_time() - start == 1.0, "sent at once and in parallel"
        stats = coord.stats
        assert coord._groups == {}, "an idle group is dropped"
    assert outcomes == [f"answer to: t{i}" for i in range(5)]
    assert model.calls == 5
    assert (stats.requests, stats.answered, stats.model_calls, stats.coalesced_calls) == (
        5,
        5,
        5,
        0,
    )


@pytest.mark.parametrize("max_batch", [1, 10])
async def test_a_caller_cancelled_before_its_lone_request_goes_is_never_sent(
    autojump_clock: trio.testing.MockClock, max_batch: int
) -> None:
    fake = CannedClient(default=text_result("a picture"))
    requests = [text_request("plain"), _picture()] if max_batch == 1 else [_picture()]
    async with open_coordinator(fake, window=60.0, max_batch=max_batch) as coord:
        for request in requests:
            with trio.CancelScope() as scope:
                scope.cancel()
                await coord.create_message(request)  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        stats = coord.stats
        assert coord._groups == {}
    assert fake.requests == []
    assert (stats.requests, stats.cancelled, stats.model_calls) == (len(requests), len(requests), 0)


async def test_an_aborted_coordinator_does_not_send_a_lone_request_it_took(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Deterministic: the one call slot is held by a slow call, so the lone
    # request is taken and waits for the slot (no scheduling order can send
    # it first) when the block raises.
    model = ScriptedClient(latency=60.0)
    outcomes: list[str] = []

    async def ask(coord_: Coordinator, params: object) -> None:
        try:
            await coord_.create_message(params)  # type: ignore[arg-type]
        except CoordinatorClosed as error:
            outcomes.append(str(error))

    async with trio.open_nursery() as outside:
        with pytest.raises(ZeroDivisionError):
            async with open_coordinator(model, window=0.0, max_concurrent_calls=1) as coord:
                outside.start_soon(ask, coord, text_request("slow"))
                await trio.testing.wait_all_tasks_blocked()
                outside.start_soon(ask, coord, _picture())
                await trio.testing.wait_all_tasks_blocked()
                assert (model.calls, model.in_flight) == (1, 1)
                raise ZeroDivisionError
    assert [params.messages[0].content for params in model.requests] == [
        text_request("slow").messages[0].content
    ]
    assert sorted(outcomes) == [
        "the coordinator was closed while it was in flight",
        "the coordinator was closed while it was queued",
    ]
