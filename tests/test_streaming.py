"""Streamed coalesced calls: each caller is released the moment its own entry is complete."""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

import anyio
import pytest
import trio
import trio.testing

import coalesce._coordinator as coordinator_module
from coalesce import TaskError, open_coordinator
from coalesce._demux import demux_reply
from coalesce._reader import max_reply_chars
from coalesce.testing import (
    CannedClient,
    ScriptedClient,
    StreamingClient,
    is_coalesced,
    result_text,
    tasks_of,
    text_request,
)

from .helpers import submit_all


def texts(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


async def test_each_caller_is_released_when_its_own_entry_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = StreamingClient(latency=2.0, chunk=1, chunk_latency=0.01)
    released: dict[int, float] = {}
    async with open_coordinator(model, window=60.0, max_batch=10) as coord:

        async def ask(index: int) -> None:
            result = await coord.create_message(text_request(f"t{index}"))
            assert result_text(result) == f"answer to: t{index}"
            released[index] = trio.current_time()

        async with trio.open_nursery() as nursery:
            for index in range(10):
                nursery.start_soon(ask, index)
    [batch] = model.requests
    order = tasks_of(batch)  # the callers' tasks, in the batch's order
    reply = json.dumps(
        [{"task_index": i, "response": f"answer to: {t}"} for i, t in enumerate(order)]
    )
    closing_braces = [pos for pos, char in enumerate(reply) if char == "}"]
    expected = [2.0 + 0.01 * closing_braces[order.index(f"t{i}")] for i in range(10)]
    assert [released[i] for i in range(10)] == pytest.approx(expected)
    first, last = min(released.values()), max(released.values())
    assert first - 2.0 < (last - 2.0) / 9, "the first entry's caller does not wait for the last"


@pytest.mark.anyio
async def test_streamed_answers_are_each_callers_own_and_usage_is_counted() -> None:
    model = StreamingClient(lambda text: text.upper(), chunk=7)
    async with open_coordinator(model, window=3600.0, max_batch=5) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(5)])
        results = await _results(coord, 5)
        stats = coord.stats
    assert outcomes == [t.upper() for t in texts(5)]
    assert [result_text(r) for r in results] == [f"AGAIN {i}" for i in range(5)]
    # A released answer carries no model name: the stream names it only at its end.
    assert {(r.model, r.stop_reason) for r in results} == {("", "endTurn")}
    assert (stats.model_calls, stats.answered) == (2, 10)


async def _results(coord: Any, n: int) -> list[Any]:
    results: list[Any] = [None] * n

    async def one(index: int) -> None:
        results[index] = await coord.create_message(text_request(f"again {index}"))

    async with anyio.create_task_group() as task_group:
        for index in range(n):
            task_group.start_soon(one, index)
    return results


@pytest.mark.anyio
async def test_a_released_answer_is_final_and_a_later_conflict_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def conflict(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return [*entries, {"task_index": 0, "response": "someone else's answer"}]

    caplog.set_level(logging.INFO, logger="coalesce")
    streaming = StreamingClient(mangle=conflict, chunk=5)
    async with open_coordinator(streaming, window=3600.0, max_batch=2) as coord:
        streamed = await submit_all(coord, [text_request("a"), text_request("b")])
    whole = ScriptedClient(mangle=conflict)
    async with open_coordinator(whole, window=3600.0, max_batch=2) as coord:
        answered_whole = await submit_all(coord, [text_request("a"), text_request("b")])
    assert streamed == answered_whole == ["answer to: a", "answer to: b"]
    assert streaming.calls == 1, "released at once, the conflict after it is ignored"
    assert whole.calls == 2, "read whole, a conflict is a TaskError, and task 0 goes again alone"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "ignored a later entry for a task already answered" in messages


@pytest.mark.anyio
async def test_a_task_the_stream_never_answers_is_retried_alone_with_create_message() -> None:
    def drop_one(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return [entry for entry in entries if entry["task_index"] != 1]

    model = StreamingClient(mangle=drop_one)
    async with open_coordinator(model, window=3600.0, max_batch=3) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(3)])
    assert outcomes == [f"answer to: {t}" for t in texts(3)]
    assert [is_coalesced(params) for params in model.requests] == [True, False]
    assert tasks_of(model.requests[1]) == ["t1"]


@pytest.mark.anyio
async def test_a_stream_is_closed_when_every_waiting_caller_has_left() -> None:
    model = StreamingClient(chunk=1, chunk_latency=math.inf)
    async with open_coordinator(model, window=3600.0, max_batch=3) as coord:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(_cancel_when_blocked, scope)
                await submit_all(coord, [text_request(t) for t in texts(3)], stagger=False)
        await anyio.wait_all_tasks_blocked()
        assert model.in_flight == 0
        assert model.streams_closed_early == 1
        assert coord.stats.cancelled == 3


async def _cancel_when_blocked(scope: anyio.CancelScope) -> None:
    await anyio.wait_all_tasks_blocked()
    scope.cancel()


@pytest.mark.anyio
async def test_a_stream_that_yields_something_else_than_text_fails_its_batch() -> None:
    class Wrong(StreamingClient):
        async def stream_message(self, params: Any, *, response_schema: Any = None) -> Any:
            yield b"bytes"

    async with open_coordinator(Wrong(), window=3600.0, max_batch=2) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
    assert all(isinstance(outcome, Exception) for outcome in outcomes)
    assert "stream_message yielded a bytes, not a str" in str(outcomes[0])


# -- whole replies: long ones are refused, or read off the event loop ----------------


@pytest.mark.anyio
async def test_a_reply_longer_than_its_batch_could_write_is_refused_unread() -> None:
    limit = max_reply_chars(200)
    fake = CannedClient(["[" * (limit + 1)], default="alone")
    async with open_coordinator(fake, window=3600.0, max_batch=2, retry_alone=False) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
    assert all(isinstance(outcome, TaskError) for outcome in outcomes)
    assert isinstance(outcomes[0], TaskError)
    assert "longer" in outcomes[0].reason


@pytest.mark.anyio
async def test_a_long_reply_is_read_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demux of a long reply blocks until another task runs: only off the loop can it."""
    other_task_ran = threading.Event()
    waited: list[bool] = []

    def blocking_demux(*args: Any, **kwargs: Any) -> Any:
        waited.append(other_task_ran.wait(timeout=10))
        return demux_reply(*args, **kwargs)

    monkeypatch.setattr(coordinator_module, "demux_reply", blocking_demux)
    long_answer = "x" * (coordinator_module.OFF_LOOP_CHARS + 1)
    model = ScriptedClient(lambda text: long_answer)
    async with open_coordinator(model, window=3600.0, max_batch=2) as coord:

        async def other() -> None:
            await anyio.wait_all_tasks_blocked()
            other_task_ran.set()

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(other)
            outcomes = await submit_all(
                coord, [text_request("a", max_tokens=10**5), text_request("b", max_tokens=10**5)]
            )
    assert waited == [True]
    assert outcomes == [long_answer, long_answer]
