"""A request that is already a coalesced batch is never batched again.

A server that coalesces its tool's requests and a host that coalesces the
requests it receives would otherwise nest one batch inside another, asking
the model for a reply format inside a reply format.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from coalesce import build_batch_request, open_coordinator
from coalesce._prompt import is_batchable
from coalesce.testing import ScriptedClient, result_text, text_request


def test_a_coalesced_request_is_not_batchable() -> None:
    batch = build_batch_request([text_request("a"), text_request("b")])
    assert is_batchable(text_request("a"))
    assert not is_batchable(batch)
    with pytest.raises(ValueError, match=r"^request 0 has non-text content or tools"):
        build_batch_request([batch, text_request("c")])


async def test_a_coordinator_sends_a_coalesced_request_alone_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    inner = build_batch_request([text_request("a"), text_request("b")])
    async with open_coordinator(model, window=5.0) as coord:
        results: list[str] = []

        async def send() -> None:
            results.append(result_text(await coord.create_message(inner)))

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            nursery.start_soon(send)
        assert trio.current_time() == started, "a batch must not wait for a window"
    assert model.calls == 2
    assert all(params is inner for params in model.requests)
    assert results == [result_text(model.reply_for(inner))] * 2
