"""Adaptive coalescing: the pure rules, and the coordinator learning from three kinds of model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from coalesce import open_coordinator
from coalesce._adaptive import (
    Adaptive,
    after_alone,
    after_probe,
    after_reply,
    batch_limit,
    start,
)
from coalesce._prompt import response_schema
from coalesce.testing import ScriptedClient, is_coalesced, tasks_of, text_request

from .helpers import submit_all

# -- the pure rules -------------------------------------------------------------


def test_clean_replies_grow_the_limit_by_one_up_to_max_batch() -> None:
    state = Adaptive(limit=4)
    for expected in (5, 6, 6):
        state = after_reply(state, size=4, unusable=0, max_batch=6)
        assert state.limit == expected


def test_a_reply_that_drops_tasks_halves_the_limit_but_not_below_two() -> None:
    state = start(10)
    for expected in (5, 2, 2):
        state = after_reply(state, size=state.limit, unusable=1, max_batch=10)
        assert batch_limit(state) == expected


def test_mostly_unusable_replies_back_off_and_probes_come_ever_later() -> None:
    state = after_reply(start(10), size=10, unusable=10, max_batch=10)
    assert state.backed_off
    gaps = []
    for _ in range(3):
        sent_alone = 0
        while batch_limit(state) == 1:
            state = after_alone(state)
            sent_alone += 1
        gaps.append(sent_alone)
        state = after_probe(state)
        state = after_reply(state, size=batch_limit(state), unusable=5, max_batch=10)
    assert gaps == [20, 40, 80]
    resumed = after_reply(state, size=5, unusable=0, max_batch=10)
    assert not resumed.backed_off
    assert batch_limit(resumed) == 6


# -- the coordinator, in virtual time: 100 requests in bursts of 10 ---------------


async def bursts(model: ScriptedClient, n_bursts: int, **options: Any) -> list[bool]:
    """Send *n_bursts* bursts of 10, 10 s apart; return, per burst, whether it coalesced."""
    coalesced: list[bool] = []
    async with open_coordinator(model, window=1.0, max_batch=10, **options) as coord:
        for burst in range(n_bursts):
            before = len(model.requests)
            requests = [text_request(f"b{burst}-{i}") for i in range(10)]
            outcomes = await submit_all(coord, requests, stagger=False)
            assert outcomes == [f"answer to: b{burst}-{i}" for i in range(10)]
            sent = model.requests[before:]
            coalesced.append(
                any(is_coalesced(p) and model.answered_batch(p) for p in sent)  # type: ignore[attr-defined]
            )
            await trio.sleep(10.0)
    return coalesced


class Model(ScriptedClient):
    """Follows the batch format only when *follows* says so for its n-th coalesced call."""

    def __init__(self, follows: Callable[[int], bool]) -> None:
        super().__init__(mangle=self._mangle)
        self.follows = follows
        self.batches = 0
        self.good: set[int] = set()

    def _mangle(self, entries: list[dict[str, object]]) -> list[dict[str, object]] | str:
        self.batches += 1
        if self.follows(self.batches):
            self.good.add(self.batches)
            return entries
        return "Sure! Here are the answers, one per line, not as JSON."

    def answered_batch(self, params: Any) -> bool:
        return self.batches in self.good


async def test_a_model_that_never_follows_the_format_costs_at_most_104_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    adaptive = Model(lambda n: False)
    await bursts(adaptive, 10)
    fixed = Model(lambda n: False)
    await bursts(fixed, 10, adaptive=False)
    assert adaptive.calls <= 104
    assert fixed.calls == 110


async def test_a_model_that_always_follows_it_still_costs_10_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = Model(lambda n: True)
    await bursts(model, 10)
    assert model.calls == 10


async def test_coalescing_resumes_after_a_model_fails_its_first_3_batches(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coalesce")
    model = Model(lambda n: n > 3)
    coalesced = await bursts(model, 30)
    resumed = coalesced.index(True)
    assert resumed <= 20
    assert all(coalesced[resumed:]), "once resumed, every burst coalesces"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert messages[0].startswith("backing off: sending alone group=None size=10 unusable=10")
    assert any(m.startswith("resuming coalescing group=None") for m in messages)


async def test_stats_show_a_backed_off_group_and_what_adapting_saved(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce")
    model = Model(lambda n: False)
    async with open_coordinator(model, window=1.0, max_batch=10) as coord:
        for burst in range(2):
            requests = [text_request(f"b{burst}-{i}") for i in range(10)]
            await submit_all(coord, requests, groups=["tenant"] * 10, stagger=False)
        stats = coord.stats
    assert stats.batch_sizes == {"'tenant'": 1}
    assert stats.adaptive_alone == 10, "the second burst went alone"
    assert stats.adaptive_calls_saved == 2, "two batches of 5 (the halved size) went alone"
    flushes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("flush")]
    assert "flush group='tenant' size=1 tokens=100 reason=adapted" in flushes


async def test_a_drop_shrinks_the_next_batches(autojump_clock: trio.testing.MockClock) -> None:
    def drop_last(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return entries[:-1]

    model = ScriptedClient(mangle=drop_last)
    async with open_coordinator(model, window=1.0, max_batch=10) as coord:
        await submit_all(coord, [text_request(f"a{i}") for i in range(10)], stagger=False)
        await submit_all(coord, [text_request(f"b{i}") for i in range(10)], stagger=False)
    sizes = [len(tasks_of(p)) for p in model.requests if is_coalesced(p)]
    assert sizes[:2] == [10, 5]


# -- schema-constrained batches -------------------------------------------------------


async def test_a_client_that_takes_a_schema_gets_one_for_batches_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(schema=True)
    async with open_coordinator(model, window=1.0, max_batch=3) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in ("a", "b", "c")])
        lone = await coord.create_message(text_request("alone"))
    assert outcomes == ["answer to: a", "answer to: b", "answer to: c"]
    assert model.schemas == [response_schema(3), None]
    assert "task_0" in (model.requests[0].system_prompt or "")
    assert lone.content.text == "answer to: alone"  # type: ignore[union-attr]


async def test_a_client_without_schema_support_is_never_sent_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=1.0, max_batch=2) as coord:
        await submit_all(coord, [text_request("a"), text_request("b")])
    assert model.schemas == [None]
