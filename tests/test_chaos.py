"""The invariant, tested hardest: every request ends in exactly one outcome, whatever happens.

A chaos client (random latency, exceptions, garbage, partial, shuffled or
duplicated replies, wrong types, hangs) driven by hypothesis, with callers
cancelled at random moments, on a ``MockClock``. Whatever it does, every
caller must end with exactly one outcome (its own answer, or an error of a
kind the docs promise), the run must end, and the coordinator must keep
serving.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from mcp.types import CreateMessageRequestParams, CreateMessageResult

from coalesce import BatchCallError, CoordinatorClosed, TaskError, open_coordinator
from coalesce.testing import is_coalesced, result_text, tasks_of, text_request, text_result


class ClientFailure(Exception):
    """What the chaos client raises when it fails a call on purpose."""


BEHAVIOURS = [
    "ok",
    "ok",
    "ok",
    "raise",
    "recursion",
    "wrong-type",
    "garbage",
    "partial",
    "shuffled",
    "duplicated",
    "conflicting",
    "truncated",
    "fenced",
    "hang",
]


def answer_for(text: str) -> str:
    return f"answer:{text}"


class ChaosClient:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.calm = False
        self.in_flight = 0
        # What a draw raised once hypothesis' data ran out (its StopTest, a
        # BaseException): the coordinator would fail only that call with it,
        # so the client stops drawing and the test re-raises it at the end.
        self.stopped: BaseException | None = None

    def draw(self, strategy: st.SearchStrategy[Any], label: str) -> Any:
        if self.stopped is None:
            try:
                return self.data.draw(strategy, label=label)
            except BaseException as exc:
                self.stopped = exc
        raise ClientFailure("the test's data ran out")

    async def create_message(self, params: CreateMessageRequestParams) -> Any:
        self.in_flight += 1
        try:
            return await self._answer(params)
        finally:
            self.in_flight -= 1

    async def _answer(self, params: CreateMessageRequestParams) -> Any:
        tasks = tasks_of(params)
        if self.calm:
            behaviour, latency = "ok", 1.0
        else:
            behaviour = self.draw(st.sampled_from(BEHAVIOURS), "behaviour")
            latency = self.draw(st.floats(0, 20), "latency")
        if behaviour == "hang":
            await anyio.sleep_forever()
        await anyio.sleep(latency)
        if behaviour == "raise":
            raise ClientFailure("chaos")
        if behaviour == "recursion":
            raise RecursionError("chaos recursion")
        if behaviour == "wrong-type":
            return "not a result"
        if not is_coalesced(params):
            return text_result(answer_for(tasks[0]))
        entries: list[dict[str, Any]] = [
            {"task_index": i, "response": answer_for(text)} for i, text in enumerate(tasks)
        ]
        if behaviour == "garbage":
            return text_result(self.draw(st.text(max_size=50), "garbage"))
        if behaviour == "partial":
            keep = self.draw(
                st.lists(st.booleans(), min_size=len(entries), max_size=len(entries)), "keep"
            )
            entries = [entry for entry, kept in zip(entries, keep, strict=True) if kept]
        if behaviour == "shuffled":
            entries = self.draw(st.permutations(entries), "shuffled")
        if behaviour == "duplicated":
            entries = entries + entries
        if behaviour == "conflicting":
            entries = [*entries, {"task_index": 0, "response": "someone else's answer"}]
        text = json.dumps(entries)
        if behaviour == "truncated":
            text = text[: self.draw(st.integers(0, len(text)), "cut")]
        if behaviour == "fenced":
            text = f"Here you go:\n```json\n{text}\n```\nAnything else?"
        return text_result(text)


ALLOWED_ERRORS = (
    TaskError,
    BatchCallError,
    CoordinatorClosed,
    ClientFailure,
    RecursionError,
    TypeError,
)


@given(data=st.data())
def test_every_request_ends_in_exactly_one_outcome(data: st.DataObject) -> None:
    options: dict[str, Any] = {
        "window": data.draw(st.sampled_from([0.0, 0.5, 2.0, 5.0]), label="window"),
        "max_batch": data.draw(st.integers(1, 6), label="max_batch"),
        "max_batch_tokens": data.draw(st.sampled_from([None, 150, 400]), label="max_batch_tokens"),
        "max_concurrent_calls": data.draw(st.sampled_from([None, 1, 2]), label="slots"),
        "flush_when_idle": data.draw(st.booleans(), label="flush_when_idle"),
        "max_pending": data.draw(st.sampled_from([None, 1, 3]), label="max_pending"),
        "retry_alone": data.draw(st.booleans(), label="retry_alone"),
    }
    n = data.draw(st.integers(1, 14), label="requests")
    plans = [
        (
            data.draw(st.floats(0, 10), label="arrival"),
            data.draw(st.one_of(st.none(), st.floats(0, 30)), label="cancel_after"),
            data.draw(st.sampled_from([None, "a", "b"]), label="group"),
            data.draw(st.sampled_from([None, 0.5]), label="temperature"),
            data.draw(st.sampled_from([50, 100, 300]), label="max_tokens"),
        )
        for _ in range(n)
    ]
    client = ChaosClient(data)
    outcomes: dict[int, list[object]] = {i: [] for i in range(n)}

    async def caller(coord: Any, index: int) -> None:
        arrival, cancel_after, group, temperature, max_tokens = plans[index]
        await trio.sleep(arrival)
        text = f"req-{index}"
        params = text_request(text, max_tokens=max_tokens, temperature=temperature)
        # Every caller gives up eventually, so hung calls get cancelled.
        with trio.move_on_after(cancel_after if cancel_after is not None else 1000) as scope:
            try:
                result = await coord.create_message(params, group=group)
            except ALLOWED_ERRORS as error:
                outcomes[index].append(error)
            else:
                assert isinstance(result, CreateMessageResult)
                assert result_text(result) == answer_for(text), "a caller got another's answer"
                outcomes[index].append(result)
        if scope.cancelled_caught:
            outcomes[index].append("cancelled")

    async def main() -> None:
        async with open_coordinator(client, **options) as coord:
            async with trio.open_nursery() as nursery:
                for index in range(n):
                    nursery.start_soon(caller, coord, index)
            # Whatever happened, the coordinator still serves.
            client.calm = True
            for text in ["after-1", "after-2"]:
                result = await coord.create_message(text_request(text), group="after")
                assert result_text(result) == answer_for(text)
            stats = coord.stats
        assert client.in_flight == 0
        assert stats.answered + stats.failed + stats.cancelled == stats.requests <= n + 2

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    if client.stopped is not None:
        raise client.stopped
    for index, seen in outcomes.items():
        assert len(seen) == 1, f"request {index} ended with {seen!r}"


@given(n=st.integers(2, 30), cancel=st.sets(st.integers(0, 29)))
def test_cancelled_queued_callers_are_absent_from_every_call(n: int, cancel: set[int]) -> None:
    sent: list[str] = []

    class Recorder:
        async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
            tasks = tasks_of(params)
            sent.extend(tasks)
            await trio.sleep(1)
            if not is_coalesced(params):
                return text_result(answer_for(tasks[0]))
            entries = [{"task_index": i, "response": answer_for(t)} for i, t in enumerate(tasks)]
            return text_result(json.dumps(entries))

    async def ask(coord: Any, index: int) -> None:
        # Nothing fills a batch, so everything waits the 5 s window: those
        # cancelled at 0.5 s are cancelled while queued.
        with trio.move_on_after(0.5 if index in cancel else math.inf):
            await coord.create_message(text_request(f"req-{index}"))

    async def main() -> None:
        async with open_coordinator(Recorder(), window=5.0, max_batch=100) as coord:
            async with trio.open_nursery() as nursery:
                for index in range(n):
                    nursery.start_soon(ask, coord, index)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert sorted(sent) == sorted(f"req-{i}" for i in range(n) if i not in cancel)
