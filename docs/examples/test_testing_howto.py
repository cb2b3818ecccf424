"""Testing code that uses a coordinator, with the fakes in ``coalesce.testing``.

These are pytest-trio tests: with ``trio_mode = true`` in the pytest
configuration, every ``async def test_*`` runs under trio. The project's test
suite collects and runs them, and runs them once more copied out of the
repository with only that configuration beside them.
"""

from __future__ import annotations

import trio
import trio.testing

from coalesce import SamplingClient, open_coordinator, result_text, text_request
from coalesce.testing import ScriptedClient, is_coalesced, tasks_of


async def summarise_all(model: SamplingClient, documents: list[str]) -> list[str]:
    """The code under test: summarise every document concurrently, through *model*."""
    summaries = [""] * len(documents)

    async def one(index: int) -> None:
        result = await model.create_message(text_request(f"Summarise: {documents[index]}"))
        summaries[index] = result_text(result)

    async with trio.open_nursery() as nursery:
        for index in range(len(documents)):
            nursery.start_soon(one, index)
    return summaries


async def test_each_document_gets_its_own_summary(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient(lambda task: task.removeprefix("Summarise: ")[:5], latency=2.0)
    documents = [f"document number {i}" for i in range(12)]

    async with open_coordinator(model, window=0.5, max_batch=10) as coord:
        start = trio.current_time()
        summaries = await summarise_all(coord, documents)
        elapsed = trio.current_time() - start

    assert summaries == [document[:5] for document in documents]
    assert model.calls == 2  # 10 + 2
    assert elapsed == 2.5  # the window, then one latency: both calls ran at once


async def test_a_dropped_answer_is_retried_alone(autojump_clock: trio.testing.MockClock) -> None:
    def forget_b(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return [entry for entry in entries if entry["response"] != "SUMMARISE: B"]

    model = ScriptedClient(str.upper, mangle=forget_b)
    async with open_coordinator(model, window=0.5) as coord:
        summaries = await summarise_all(coord, ["a", "b", "c"])

    assert summaries == ["SUMMARISE: A", "SUMMARISE: B", "SUMMARISE: C"]
    assert [is_coalesced(params) for params in model.requests] == [True, False]
    assert tasks_of(model.requests[1]) == ["Summarise: b"]
