"""The coordinator's promises about time, in trio's virtual time (``MockClock``).

Every other promise is tested on both backends in ``test_coordinator.py``;
these need a clock that jumps, which only trio offers, and that is why they
run on trio alone.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from mcp.types import CreateMessageRequestParams, CreateMessageResult

from coalesce import CoordinatorClosed, open_coordinator
from coalesce.testing import ScriptedClient, result_text, tasks_of, text_request

from .helpers import submit_all


def texts(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


class Recording(ScriptedClient):
    """A ScriptedClient that notes the (virtual) time each call was sent."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sent_at: list[float] = []

    async def create_message(
        self, params: CreateMessageRequestParams, *, response_schema: Any = None
    ) -> CreateMessageResult:
        self.sent_at.append(trio.current_time())
        return await super().create_message(params, response_schema=response_schema)


async def test_window_counts_from_first_arrival(autojump_clock: trio.testing.MockClock) -> None:
    model = Recording()
    async with open_coordinator(model, window=5.0) as coord, trio.open_nursery() as nursery:
        nursery.start_soon(coord.create_message, text_request("a"))
        await trio.sleep(3.0)
        nursery.start_soon(coord.create_message, text_request("b"))
    assert model.sent_at == [5.0], "the deadline counts from the first request's arrival"
    assert model.calls == 1


async def test_a_cancelled_first_arrival_moves_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = Recording()
    async with open_coordinator(model, window=5.0) as coord, trio.open_nursery() as nursery:
        with trio.move_on_after(1.0):
            await coord.create_message(text_request("gone"))
        await trio.sleep(1.0)
        nursery.start_soon(coord.create_message, text_request("kept"))
    assert model.sent_at == [7.0], "the window now counts from the first request still waiting"


async def test_when_the_caller_gathering_its_group_leaves_the_others_still_go(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = Recording()
    got: list[str] = []

    async def kept() -> None:
        got.append(result_text(await coord.create_message(text_request("kept"))))

    async with open_coordinator(model, window=5.0) as coord, trio.open_nursery() as nursery:
        with trio.move_on_after(1.0):  # opens the group, so gathers it in its own task
            nursery.start_soon(kept)
            await coord.create_message(text_request("gone"))
        await trio.sleep(10.0)
        stats = coord.stats
    assert got == ["answer to: kept"]
    assert model.sent_at == [5.0], "sent when its own window ran out, by whoever gathers now"
    assert (stats.requests, stats.answered, stats.cancelled, stats.pending) == (2, 1, 1, 0)


async def test_full_batches_go_at_once_and_in_parallel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=2.0)
    async with open_coordinator(model, window=5.0, max_batch=10) as coord:
        start = trio.current_time()
        outcomes = await submit_all(coord, [text_request(t) for t in texts(30)], stagger=False)
        elapsed = trio.current_time() - start
    assert model.calls == 3
    assert model.max_in_flight == 3, "a slow call never holds back the next batch"
    assert elapsed == 2.0
    assert sorted(map(str, outcomes)) == sorted(f"answer to: {t}" for t in texts(30))


async def test_a_batch_flushes_before_the_token_cap_would_pass(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=5.0, max_batch_tokens=250) as coord:
        start = trio.current_time()
        await submit_all(coord, [text_request(t, max_tokens=100) for t in texts(3)])
        elapsed = trio.current_time() - start
    assert [tasks_of(params) for params in model.requests] == [["t0", "t1"], ["t2"]]
    assert [params.max_tokens for params in model.requests] == [200, 100]
    assert elapsed == 5.0, "the second batch still waits its own window"


async def test_a_request_over_the_token_cap_goes_alone_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=5.0, max_batch_tokens=250) as coord:
        big = text_request("big", max_tokens=1000)
        await submit_all(coord, [big])
        assert trio.current_time() == 0.0
    assert model.requests == [big]


async def test_max_concurrent_calls_one_never_has_two_calls_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=2.0)
    async with open_coordinator(model, window=0.5, max_batch=3, max_concurrent_calls=1) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(9)], stagger=False)
    assert model.max_in_flight == 1
    assert model.calls == 3
    assert outcomes == [f"answer to: {t}" for t in texts(9)]


async def test_a_batch_waiting_for_a_slot_keeps_taking_arrivals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=10.0)
    async with open_coordinator(model, window=1.0, max_batch=5, max_concurrent_calls=1) as coord:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(coord.create_message, text_request("first"))
            await trio.sleep(2.0)  # "first" is now in flight, alone, for 10 s
            for text in texts(4):
                nursery.start_soon(coord.create_message, text_request(text))
                await trio.sleep(1.5)  # each arrival comes after the window of the one before
    assert [tasks_of(params) for params in model.requests] == [["first"], texts(4)]


async def test_flush_when_idle_sends_a_lone_request_without_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    async with open_coordinator(model, window=5.0, flush_when_idle=True) as coord:
        await coord.create_message(text_request("now"))
        assert trio.current_time() == 1.0


async def test_flush_when_idle_batches_a_tick_and_gathers_while_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=2.0)
    async with open_coordinator(model, window=5.0, flush_when_idle=True) as coord:
        async with trio.open_nursery() as nursery:
            for text in texts(3, "a"):
                nursery.start_soon(coord.create_message, text_request(text))
            await trio.sleep(0.5)
            for text in texts(2, "b"):
                nursery.start_soon(coord.create_message, text_request(text))
                await trio.sleep(0.5)
    batches = [sorted(tasks_of(params)) for params in model.requests]
    assert batches == [texts(3, "a"), texts(2, "b")]
    assert trio.current_time() == 4.0, "the second batch went as soon as the first call ended"


async def test_max_pending_makes_callers_wait_for_room(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    async with open_coordinator(model, window=1.0, max_batch=2, max_pending=2) as coord:
        seen: list[int] = []

        async def watch() -> None:
            while True:
                seen.append(coord.queued)
                await trio.sleep(0.1)

        async with trio.open_nursery() as outer:
            outer.start_soon(watch)
            await submit_all(coord, [text_request(t) for t in texts(7)], stagger=False)
            outer.cancel_scope.cancel()
    assert max(seen) <= 2
    assert model.calls == 4


async def test_max_pending_serves_a_sustained_load_first_come_first_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    order: list[int] = []

    async def ask(coord: object, index: int) -> None:
        await coord.create_message(text_request(f"r{index}"))  # type: ignore[attr-defined]
        order.append(index)

    options = {"window": 0.5, "max_batch": 2, "max_pending": 2, "max_concurrent_calls": 1}
    async with open_coordinator(model, **options) as coord:  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            for index in range(40):  # a new arrival every 0.1 s, more than it can serve
                nursery.start_soon(ask, coord, index)
                await trio.sleep(0.1)
    served_in_batches = [sorted(order[i : i + 2]) for i in range(0, 40, 2)]
    assert served_in_batches == [[i, i + 1] for i in range(0, 40, 2)]


async def test_normal_exit_sends_everything_pending_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    results: list[str] = []

    async def ask(coord_: object, text: str) -> None:
        result = await coord_.create_message(text_request(text))  # type: ignore[attr-defined]
        results.append(result_text(result))

    async with trio.open_nursery() as outside:
        async with open_coordinator(model, window=60.0) as coord:
            for text in texts(3):
                outside.start_soon(ask, coord, text)
            await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 1.0, "shutdown does not wait out the window"
    assert sorted(results) == [f"answer to: {t}" for t in texts(3)]
    with pytest.raises(CoordinatorClosed, match=r"^the coordinator is closed"):
        await coord.create_message(text_request("late"))


async def test_a_block_cancelled_through_a_nested_nursery_logs_no_error(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.move_on_after(1.0):
        async with open_coordinator(ScriptedClient()), trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            await trio.sleep_forever()
    assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []


async def test_flush_when_idle_gathers_while_a_lone_call_is_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first request finds its group idle and goes alone, from its caller's
    # own task; those arriving while that call is in flight wait for it to end,
    # then go together. (Found by the benchmark: every request went alone.)
    model = Recording(latency=2.0)
    async with (
        open_coordinator(model, window=10.0, flush_when_idle=True) as coord,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(coord.create_message, text_request("first"))
        await trio.sleep(1.0)
        for text in texts(3):
            nursery.start_soon(coord.create_message, text_request(text))
    assert [sorted(tasks_of(params)) for params in model.requests] == [["first"], texts(3)]
    assert model.sent_at == [0.0, 2.0]
