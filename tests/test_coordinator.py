"""The coordinator's behaviour, one focused test per promise, in virtual time."""

from __future__ import annotations

import json
import logging
import math
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from mcp.types import ImageContent, ModelPreferences, SamplingMessage

from coalesce import (
    BatchCallError,
    Coordinator,
    CoordinatorClosed,
    CoordinatorStats,
    TaskError,
    open_coordinator,
)
from coalesce.testing import (
    CannedClient,
    ScriptedClient,
    is_coalesced,
    result_text,
    tasks_of,
    text_request,
    text_result,
)

from .helpers import submit_all


def texts(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# -- batching ----------------------------------------------------------------------


async def test_window_counts_from_first_arrival(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient()
    sent_at: list[float] = []
    original = model.create_message

    async def recording(params):  # type: ignore[no-untyped-def]
        sent_at.append(trio.current_time())
        return await original(params)

    model.create_message = recording  # type: ignore[method-assign]
    async with open_coordinator(model, window=5.0) as coord, trio.open_nursery() as nursery:
        nursery.start_soon(coord.create_message, text_request("a"))
        await trio.sleep(3.0)
        nursery.start_soon(coord.create_message, text_request("b"))
    assert sent_at == [5.0], "the deadline counts from the first request's arrival"
    assert model.calls == 1


async def test_lone_request_passes_through_and_its_exception_is_unchanged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    error = KeyError("boom")
    fake = CannedClient([error])
    async with open_coordinator(fake, window=1.0) as coord:
        with pytest.raises(KeyError) as info:
            await coord.create_message(text_request("alone"))
    assert info.value is error


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


async def test_each_caller_gets_its_own_answer(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient(lambda text: text[::-1])
    async with open_coordinator(model, window=1.0, max_batch=4) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(10, "task-")])
    assert outcomes == [t[::-1] for t in texts(10, "task-")]
    assert model.calls == math.ceil(10 / 4)


async def test_shared_system_prompt_is_stated_once(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=1.0) as coord:
        await submit_all(coord, [text_request(t, system_prompt="Be terse.") for t in texts(3)])
    [sent] = model.requests
    assert sent.system_prompt is not None
    assert sent.system_prompt.count("Be terse.") == 1
    assert "sub-system" not in sent.system_prompt


async def test_non_text_requests_go_alone_untouched(autojump_clock: trio.testing.MockClock) -> None:
    image = ImageContent(type="image", data="aGk=", mime_type="image/png")
    picture = text_request("x")
    picture = picture.model_copy(
        update={"messages": [SamplingMessage(role="user", content=[image])]}
    )
    fake = CannedClient(default=text_result("a picture"))
    async with open_coordinator(fake, window=1.0) as coord:
        outcomes = await submit_all(coord, [picture, picture])
    assert outcomes == ["a picture", "a picture"]
    assert fake.requests == [picture, picture]


# -- compatibility groups ---------------------------------------------------------


async def test_different_groups_never_share_a_call(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=1.0) as coord:
        outcomes = await submit_all(
            coord,
            [text_request(t) for t in texts(6)],
            groups=["alice", "bob", "alice", "bob", 1, True],
        )
    assert outcomes == [f"answer to: {t}" for t in texts(6)]
    batches = sorted(sorted(tasks_of(params)) for params in model.requests)
    assert batches == [["t0", "t2"], ["t1", "t3"], ["t4"], ["t5"]]


async def test_different_temperatures_never_share_a_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    requests = [text_request(t, temperature=0.1 * (i % 2)) for i, t in enumerate(texts(4))]
    async with open_coordinator(model, window=1.0) as coord:
        await submit_all(coord, requests)
    assert model.calls == 2
    for params in model.requests:
        assert {requests[int(t[1:])].temperature for t in tasks_of(params)} == {params.temperature}


@pytest.mark.parametrize(
    "field",
    [
        {"model_preferences": ModelPreferences(speed_priority=1.0)},
        {"stop_sequences": ["END"]},
        {"include_context": "none"},
        {"metadata": {"tenant": "x"}},
    ],
)
async def test_requests_that_differ_in_a_shared_setting_never_share_a_call(
    autojump_clock: trio.testing.MockClock, field: dict[str, Any]
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=1.0) as coord:
        await submit_all(coord, [text_request("a"), text_request("b", **field), text_request("c")])
    assert sorted(len(tasks_of(params)) for params in model.requests) == [1, 2]
    [lone] = [params for params in model.requests if not is_coalesced(params)]
    assert tasks_of(lone) == ["b"]


# -- per-task fallback ------------------------------------------------------------


def drop_task(index: int):  # type: ignore[no-untyped-def]
    def mangle(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return [entry for entry in entries if entry["task_index"] != index]

    return mangle


async def test_retry_alone_sends_a_failed_task_again_on_its_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(mangle=drop_task(1))
    async with open_coordinator(model, window=1.0) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(3)])
        stats = coord.stats
    assert outcomes == [f"answer to: {t}" for t in texts(3)]
    assert model.calls == 2
    assert model.requests[1] is not None
    assert not is_coalesced(model.requests[1])
    assert tasks_of(model.requests[1]) == ["t1"]
    assert stats.retried_alone == 1
    assert stats.answered == 3


async def test_a_retry_is_logged_with_its_reason(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce")
    async with open_coordinator(ScriptedClient(mangle=drop_task(1)), window=1.0) as coord:
        await submit_all(coord, [text_request(t) for t in texts(2)], groups=["g"] * 2)
    assert [record.getMessage() for record in caplog.records] == [
        "flush group='g' size=2 tokens=200 reason=window",
        "flush group='g' size=1 tokens=100 reason=retry alone",
    ]


async def test_without_retry_alone_the_caller_gets_the_task_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(mangle=drop_task(1))
    async with open_coordinator(model, window=1.0, retry_alone=False) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(3)])
    assert outcomes[0] == "answer to: t0"
    assert outcomes[2] == "answer to: t2"
    assert isinstance(outcomes[1], TaskError)
    assert outcomes[1].task_index == 1
    assert model.calls == 1


async def test_a_failed_retry_gives_the_clients_own_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    error = PermissionError("denied")
    fake = CannedClient([json.dumps([{"task_index": 0, "response": "ok"}]), error])
    async with open_coordinator(fake, window=1.0) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
    assert outcomes == ["ok", error]


async def test_a_failed_coalesced_call_is_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = CannedClient([RecursionError("deep")], default="never")
    async with open_coordinator(fake, window=1.0) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
    assert all(isinstance(outcome, BatchCallError) for outcome in outcomes)
    assert fake.calls == 1


async def test_a_client_returning_the_wrong_type_fails_its_callers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Wrong:
        async def create_message(self, params: object) -> object:
            return {"not": "a result"}

    async with open_coordinator(Wrong(), window=1.0) as coord:  # type: ignore[arg-type]
        batch = await submit_all(coord, [text_request("a"), text_request("b")])
        lone = await submit_all(coord, [text_request("c")])
    assert all(isinstance(outcome, BatchCallError) for outcome in batch)
    assert isinstance(batch[0], BatchCallError)
    assert isinstance(batch[0].__cause__, TypeError)
    assert isinstance(lone[0], TypeError)
    assert str(lone[0]) == "the client returned a dict, not a mcp.types.CreateMessageResult"


# -- token cap --------------------------------------------------------------------


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


# -- concurrency ------------------------------------------------------------------


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


# -- flush when idle --------------------------------------------------------------


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


# -- backpressure -----------------------------------------------------------------


async def test_max_pending_makes_callers_wait_for_room(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    async with open_coordinator(model, window=1.0, max_batch=2, max_pending=2) as coord:
        seen: list[int] = []

        async def watch() -> None:
            while True:
                seen.append(coord._queued)
                await trio.sleep(0.1)

        async with trio.open_nursery() as outer:
            outer.start_soon(watch)
            await submit_all(coord, [text_request(t) for t in texts(7)], stagger=False)
            outer.cancel_scope.cancel()
    assert max(seen) <= 2
    assert model.calls == 4


# -- cancellation -----------------------------------------------------------------


async def test_a_cancelled_queued_caller_is_never_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=5.0) as coord:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(coord.create_message, text_request("keep-1"))
            with trio.move_on_after(1.0):
                await coord.create_message(text_request("gone"))
            nursery.start_soon(coord.create_message, text_request("keep-2"))
        stats = coord.stats
    assert [sorted(tasks_of(params)) for params in model.requests] == [["keep-1", "keep-2"]]
    assert stats.cancelled == 1
    assert stats.answered == 2


async def test_a_cancelled_in_flight_caller_leaves_the_others_unaffected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=3.0)
    async with open_coordinator(model, window=1.0) as coord:
        got: list[str] = []

        async def keep() -> None:
            got.append((await coord.create_message(text_request("keep"))).content.text)  # type: ignore[union-attr]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep)
            with trio.move_on_after(2.0):  # the call starts at 1.0 and ends at 4.0
                await coord.create_message(text_request("gone"))
    assert got == ["answer to: keep"]
    assert model.calls == 1


async def test_an_in_flight_call_is_cancelled_when_all_its_callers_are(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=math.inf)
    async with open_coordinator(model, window=1.0) as coord:
        with trio.move_on_after(2.0):
            await submit_all(coord, [text_request(t) for t in texts(3)])
        await trio.testing.wait_all_tasks_blocked()
        assert model.in_flight == 0
        assert coord.stats.cancelled == 3


# -- shutdown ---------------------------------------------------------------------


async def test_normal_exit_sends_everything_pending_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    results: list[str] = []

    async def ask(coord_: object, text: str) -> None:
        result = await coord_.create_message(text_request(text))  # type: ignore[attr-defined]
        results.append(result.content.text)

    async with trio.open_nursery() as outside:
        async with open_coordinator(model, window=60.0) as coord:
            for text in texts(3):
                outside.start_soon(ask, coord, text)
            await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 1.0, "shutdown does not wait out the window"
    assert sorted(results) == [f"answer to: {t}" for t in texts(3)]
    with pytest.raises(CoordinatorClosed, match=r"^the coordinator is closed"):
        await coord.create_message(text_request("late"))


async def test_exit_by_exception_closes_every_pending_and_in_flight_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=10.0)
    outcomes: list[BaseException] = []

    async def ask(coord_: object, text: str) -> None:
        try:
            await coord_.create_message(text_request(text))  # type: ignore[attr-defined]
        except CoordinatorClosed as error:
            outcomes.append(error)

    async with trio.open_nursery() as outside:
        with pytest.raises(ZeroDivisionError):
            async with open_coordinator(model, window=1.0, max_batch=2) as coord:
                for text in texts(3):
                    outside.start_soon(ask, coord, text)
                await trio.sleep(2.0)  # two in flight, one queued
                raise ZeroDivisionError
    assert len(outcomes) == 3
    assert model.in_flight == 0


async def test_a_body_exception_is_not_wrapped_in_a_group() -> None:
    with pytest.raises(LookupError, match=r"^plain$"):
        async with open_coordinator(ScriptedClient()):
            raise LookupError("plain")


async def test_cancelling_the_block_closes_callers(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient(latency=math.inf)
    outcomes: list[BaseException] = []

    async def ask(coord_: object) -> None:
        with pytest.raises(CoordinatorClosed) as info:
            await coord_.create_message(text_request("x"))  # type: ignore[attr-defined]
        outcomes.append(info.value)

    async with trio.open_nursery() as outside:
        with trio.move_on_after(5.0):
            async with open_coordinator(model, window=1.0) as coord:
                outside.start_soon(ask, coord)
                await trio.sleep_forever()
    assert len(outcomes) == 1


# -- bad input --------------------------------------------------------------------


async def test_bad_input_raises_at_once_and_disturbs_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=1.0) as coord:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(coord.create_message, text_request("fine"))
            with pytest.raises(TypeError, match=r"^create_message takes a mcp\.types\."):
                await coord.create_message({"messages": []})  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"^max_tokens must be at least 1, got 0$"):
                await coord.create_message(text_request("x", max_tokens=0))
            with pytest.raises(TypeError, match=r"^group must be hashable, got list$"):
                await coord.create_message(text_request("x"), group=[1])  # type: ignore[arg-type]
        assert coord.stats.answered == 1


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"window": -1}, ValueError, r"^window must be a finite number of seconds >= 0, got -1$"),
        ({"window": "5"}, TypeError, r"^window must be a number of seconds, got str$"),
        ({"max_batch": 0}, ValueError, r"^max_batch must be at least 1, got 0$"),
        ({"max_pending": 0}, ValueError, r"^max_pending must be at least 1, got 0$"),
        ({"max_concurrent_calls": 1.5}, TypeError, r"^max_concurrent_calls must be an int"),
    ],
)
async def test_bad_options_are_refused(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        async with open_coordinator(ScriptedClient(), **options):  # type: ignore[arg-type]
            pass


# -- stats and logging ------------------------------------------------------------


async def test_stats_show_what_coalescing_saved(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=1.0, max_batch=5) as coord:
        await submit_all(coord, [text_request(t, max_tokens=10) for t in texts(12)], stagger=False)
        stats = coord.stats
    assert stats == CoordinatorStats(
        requests=12,
        answered=12,
        model_calls=3,
        coalesced_calls=3,
        coalesced_requests=12,
        tokens_requested=120,
    )
    assert stats.requests_per_call == 4.0
    assert stats.calls_saved == 9
    assert stats.to_dict()["calls_saved"] == 9


async def test_each_flush_is_logged_at_debug(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce")
    async with open_coordinator(ScriptedClient(), window=1.0, max_batch=2) as coord:
        await submit_all(coord, [text_request(t) for t in texts(3)], groups=["g"] * 3)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "flush group='g' size=2 tokens=200 reason=full",
        "flush group='g' size=1 tokens=100 reason=window",
    ]


async def test_idle_token_cap_and_shutdown_flushes_are_logged_with_their_reason(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce")
    async with open_coordinator(ScriptedClient(), flush_when_idle=True) as coord:
        await coord.create_message(text_request("alone"), group="idle")
    async with open_coordinator(ScriptedClient(), window=1.0, max_batch_tokens=250) as coord:
        await submit_all(coord, [text_request(t) for t in texts(3)], groups=["cap"] * 3)
    async with trio.open_nursery() as nursery:
        async with open_coordinator(ScriptedClient(), window=60.0) as coord:
            nursery.start_soon(partial(coord.create_message, text_request("late"), group="bye"))
            await trio.testing.wait_all_tasks_blocked()
    assert [record.getMessage() for record in caplog.records] == [
        "flush group='idle' size=1 tokens=100 reason=idle",
        "flush group='cap' size=2 tokens=200 reason=token cap",
        "flush group='cap' size=1 tokens=100 reason=window",
        "flush group='bye' size=1 tokens=100 reason=shutdown",
    ]
    assert {record.levelno for record in caplog.records} == {logging.DEBUG}
    assert {record.name for record in caplog.records} == {"coalesce"}


async def test_exit_by_exception_sends_nothing_that_was_pending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    closed: list[CoordinatorClosed] = []

    async def ask(coord_: Coordinator) -> None:
        with pytest.raises(
            CoordinatorClosed, match=r"^the coordinator was closed while it was queued$"
        ) as info:
            await coord_.create_message(text_request("pending"))
        closed.append(info.value)

    async with trio.open_nursery() as outside:
        with pytest.raises(ZeroDivisionError):
            async with open_coordinator(model, window=60.0) as coord:
                for _ in range(3):
                    outside.start_soon(ask, coord)
                await trio.testing.wait_all_tasks_blocked()
                raise ZeroDivisionError
    assert len(closed) == 3
    assert model.calls == 0, "an aborted coordinator sends no shutdown batch"


async def test_a_body_exception_keeps_its_own_cause_and_context() -> None:
    cause = KeyError("the cause")
    with pytest.raises(RuntimeError, match=r"^wrapped$") as info:
        async with open_coordinator(ScriptedClient()):
            try:
                raise cause
            except KeyError as error:
                raise RuntimeError("wrapped") from error
    assert info.value.__cause__ is cause
    assert info.value.__context__ is cause


async def test_normal_exit_closes_callers_still_waiting_for_room(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    outcomes: list[object] = []

    async def ask(coord_: Coordinator, text: str) -> None:
        try:
            outcomes.append(result_text(await coord_.create_message(text_request(text))))
        except CoordinatorClosed as error:
            outcomes.append(error)

    async with trio.open_nursery() as outside:
        async with open_coordinator(model, window=60.0, max_pending=1) as coord:
            for text in texts(3):
                outside.start_soon(ask, coord, text)
                await trio.testing.wait_all_tasks_blocked()
    assert outcomes[2:] == ["answer to: t0"]
    assert all(isinstance(outcome, CoordinatorClosed) for outcome in outcomes[:2])


async def test_calls_saved_counts_the_retries_calls(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient(mangle=lambda entries: entries[:1])
    async with open_coordinator(model, window=1.0) as coord:
        await submit_all(coord, [text_request(t) for t in texts(4)])
        stats = coord.stats
    assert (stats.model_calls, stats.retried_alone) == (4, 3)
    assert stats.calls_saved == 0


async def test_an_internal_error_fails_its_callers_not_the_coordinator(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import coalesce._coordinator as coordinator_module

    def broken(requests: object) -> object:
        raise AttributeError("a bug")

    monkeypatch.setattr(coordinator_module, "compose_batch", broken)
    model = ScriptedClient()
    async with open_coordinator(model, window=1.0) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
        lone = await coord.create_message(text_request("still serving"))
    assert all(isinstance(outcome, BatchCallError) for outcome in outcomes)
    assert str(outcomes[0]).startswith("coalesce failed internally while sending a call of 2")
    assert isinstance(outcomes[0], BatchCallError)
    assert isinstance(outcomes[0].__cause__, AttributeError)
    assert result_text(lone) == "answer to: still serving"
