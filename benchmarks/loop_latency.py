"""Whether the event loop keeps its deadlines while a coordinator reads a huge hostile reply.

A coalesced call is answered with about 3 MB of the costliest hostile shape
(see :data:`benchmarks.demux.HOSTILE`), with ``max_tokens`` large enough
that the reply is within what the batch could write, so it is really read:
in a worker thread, as every whole reply over 64 KiB is. Meanwhile an
unrelated task waits on a 0.2 s timeout, in real time, on the same event
loop. The figure is how late that timeout fires; the target is that it fires
within 0.3 s of when it was set.
"""

from __future__ import annotations

import time

import anyio
import attrs
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent

from coalesce import Coordinator, TaskError, open_coordinator, text_request

from .demux import HOSTILE

__all__ = ["TIMEOUT", "LoopLatency", "measure_loop_latency"]

TIMEOUT = 0.2
"""The unrelated caller's timeout, in seconds."""
SIZE = 3_000_000
"""About how many characters the hostile reply holds."""
SHAPE = "entries naming a task"
"""The hostile shape read: the costliest per character in the demux benchmark."""


@attrs.frozen
class LoopLatency:
    """How long an unrelated 0.2 s timeout took to fire while the reply was read."""

    backend: str
    fired_after: float
    """Seconds from setting the timeout to its firing, on the wall clock."""
    read_seconds: float
    """Seconds the coalesced call took, the hostile reply's reading included."""


class _HostileModel:
    """Answers a coalesced call with the hostile reply, after a short delay."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        await anyio.sleep(0.05)  # the unrelated caller sets its timeout first
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=self.text), model="hostile"
        )


async def _measure(backend: str) -> LoopLatency:
    model = _HostileModel(HOSTILE[SHAPE](SIZE))
    fired_after = read_seconds = 0.0

    async def unrelated() -> None:
        nonlocal fired_after
        start = time.perf_counter()
        with anyio.move_on_after(TIMEOUT):
            await anyio.sleep_forever()
        fired_after = time.perf_counter() - start

    async def batch(coord: Coordinator) -> None:
        nonlocal read_seconds
        start = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            for index in range(2):
                tasks.start_soon(ask, coord, text_request(f"task {index}", max_tokens=SIZE // 16))
        read_seconds = time.perf_counter() - start

    async def ask(coord: Coordinator, request: CreateMessageRequestParams) -> None:
        try:
            outcomes.append(await coord.create_message(request))
        except TaskError as error:  # what the hostile reply leaves unanswered
            outcomes.append(error)

    outcomes: list[object] = []
    async with (
        open_coordinator(model, max_batch=2, retry_alone=False) as coord,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(batch, coord)
        tasks.start_soon(unrelated)
    refused = [o for o in outcomes if isinstance(o, TaskError) and "longer" in o.reason]
    assert len(outcomes) == 2, "every caller gets its outcome"
    assert not refused, "the hostile reply was read, not refused unread"
    return LoopLatency(backend, fired_after, read_seconds)


def measure_loop_latency(backends: tuple[str, ...] = ("trio", "asyncio")) -> list[LoopLatency]:
    """Measure on each backend, once (each run reads 3 MB)."""
    return [anyio.run(_measure, backend, backend=backend) for backend in backends]


if __name__ == "__main__":
    for row in measure_loop_latency():
        print(f"{row.backend}: fired after {row.fired_after:.3f} s, read {row.read_seconds:.2f} s")
