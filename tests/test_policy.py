"""The pure batching policy, property-tested: decisions from data, no clock, no client."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalesce._policy import (
    CoordinatorOptions,
    FlushReason,
    compatibility_key,
    fits,
    flush_reason,
)
from coalesce.testing import text_request

options_strategy = st.builds(
    CoordinatorOptions,
    window=st.floats(0, 10),
    max_batch=st.integers(1, 20),
    max_batch_tokens=st.one_of(st.none(), st.integers(1, 2000)),
    flush_when_idle=st.booleans(),
)


@given(options_strategy, st.lists(st.integers(1, 1000), min_size=1, max_size=50))
def test_cutting_a_queue_respects_max_batch_and_the_token_cap(
    options: CoordinatorOptions, queue: list[int]
) -> None:
    taken, tokens = 0, 0
    for size in queue:
        if not fits(options, taken=taken, taken_tokens=tokens, tokens=size):
            break
        taken += 1
        tokens += size
    assert 1 <= taken <= options.max_batch
    cap = options.max_batch_tokens
    if cap is not None and taken > 1:
        assert tokens <= cap
    if taken < len(queue) and taken < options.max_batch:
        assert cap is not None
        assert tokens + queue[taken] > cap


@given(
    options_strategy,
    st.integers(1, 30),
    st.integers(1, 5000),
    st.floats(0, 20),
    st.integers(0, 3),
    st.booleans(),
)
def test_flush_reason_agrees_with_its_definition(
    options: CoordinatorOptions,
    queued: int,
    tokens: int,
    elapsed: float,
    in_flight: int,
    closing: bool,
) -> None:
    reason = flush_reason(
        options,
        queued=queued,
        queued_tokens=tokens,
        first_arrival=100.0,
        now=100.0 + elapsed,
        in_flight=in_flight,
        closing=closing,
    )
    cap = options.max_batch_tokens
    if queued >= options.max_batch:
        assert reason is FlushReason.FULL
    elif cap is not None and tokens > cap:
        assert reason is FlushReason.TOKEN_CAP
    elif closing:
        assert reason is FlushReason.SHUTDOWN
    elif options.flush_when_idle and in_flight == 0:
        assert reason is FlushReason.IDLE
    elif 100.0 + elapsed >= 100.0 + options.window:
        assert reason is FlushReason.WINDOW
    else:
        assert reason is None


def test_a_request_that_cannot_be_batched_goes_alone() -> None:
    options = CoordinatorOptions()
    reason = flush_reason(
        options,
        queued=1,
        queued_tokens=1,
        first_arrival=0,
        now=0,
        in_flight=0,
        closing=False,
        alone=True,
    )
    assert reason is FlushReason.ALONE


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({}, {}, True),
        ({"temperature": 0.5}, {"temperature": 0.5}, True),
        ({"temperature": 0.5}, {}, False),
        ({"metadata": {"a": 1, "b": 2}}, {"metadata": {"b": 2, "a": 1}}, True),
        ({"stop_sequences": ["x"]}, {"stop_sequences": ["y"]}, False),
        ({"system_prompt": "p"}, {"system_prompt": "q"}, True),
    ],
)
def test_compatibility_key(a: dict[str, Any], b: dict[str, Any], same: bool) -> None:
    key_a = compatibility_key(text_request("x", **a), None)
    key_b = compatibility_key(text_request("y", max_tokens=7, **b), None)
    assert (key_a == key_b) is same


def test_group_type_is_part_of_the_key() -> None:
    request = text_request("x")
    assert compatibility_key(request, 1) != compatibility_key(request, True)
    assert compatibility_key(request, "t") == compatibility_key(request, "t")
