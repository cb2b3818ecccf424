"""How ``group`` keeps tenants apart; collected and run by the project's test suite."""

from __future__ import annotations

import trio
import trio.testing

from coalesce import open_coordinator
from coalesce.testing import ScriptedClient, tasks_of, text_request


async def test_tenants_never_share_a_call(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=0.5) as coord:

        async def ask(tenant: str, question: str) -> None:
            await coord.create_message(text_request(question), group=tenant)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "acme", "acme: q1")
            nursery.start_soon(ask, "globex", "globex: q1")
            nursery.start_soon(ask, "acme", "acme: q2")
            nursery.start_soon(ask, "globex", "globex: q2")

    calls = sorted(sorted(tasks_of(params)) for params in model.requests)
    assert calls == [["acme: q1", "acme: q2"], ["globex: q1", "globex: q2"]]
