"""The coordinator's CPU cost per request, as a ratio to direct calls.

Wall-clock time on a shared machine is noise, so each figure is a ratio of
two timings taken in the same process moments apart: *N* concurrent callers
through a coordinator whose batches fill at once (``max_batch`` = the batch
size, so nothing waits for a window), against the same *N* callers calling the
same instant client directly. Both include the client's own work (reading the
request, building the reply), as both would in real use. Each timing is the
best of several repetitions, each after ``gc.collect()``, with the cyclic
collector left on during the run (objects the coordinator keeps alive per
request are part of its cost).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable

import attrs
import trio
from mcp.types import CreateMessageRequestParams

from coalesce import open_coordinator

from .model import InstantModel
from .simulate import make_requests

__all__ = ["BATCH_SIZES", "Overhead", "measure_overhead"]

BATCH_SIZES = (1, 10, 100)


@attrs.frozen
class Overhead:
    """Per-request CPU time through the coordinator against direct calls."""

    batch: int
    direct_us: float
    """Microseconds per request, calling the client directly."""
    coalesced_us: float
    """Microseconds per request, through the coordinator."""

    @property
    def added(self) -> float:
        """What the coordinator adds, as a fraction of a direct call's own cost."""
        return self.coalesced_us / self.direct_us - 1.0


async def _direct(client: InstantModel, requests: list[CreateMessageRequestParams]) -> None:
    async with trio.open_nursery() as nursery:
        for params in requests:
            nursery.start_soon(client.create_message, params)


Runner = Callable[[InstantModel, list[CreateMessageRequestParams]], Awaitable[None]]


def _through(batch: int) -> Runner:
    async def run(client: InstantModel, requests: list[CreateMessageRequestParams]) -> None:
        async with (
            open_coordinator(client, window=60.0, max_batch=batch) as coord,
            trio.open_nursery() as nursery,
        ):
            for params in requests:
                nursery.start_soon(coord.create_message, params)

    return run


def _time(run: Runner, requests: list[CreateMessageRequestParams]) -> float:
    client = InstantModel()
    elapsed = 0.0

    async def main() -> None:
        nonlocal elapsed
        start = time.process_time()
        await run(client, requests)
        elapsed = time.process_time() - start

    gc.collect()
    trio.run(main)
    return elapsed


def measure_overhead(n_requests: int = 1000, repeat: int = 15) -> list[Overhead]:
    """Measure each batch size, best of *repeat* rounds.

    Each round times direct calls and every batch size once, one after the
    other, so a busy spell on a shared machine slows them all alike.
    """
    requests = make_requests(n_requests, seed=0)
    runners: list[Runner] = [_direct, *(_through(batch) for batch in BATCH_SIZES)]
    best = [float("inf")] * len(runners)
    for _ in range(repeat):
        for index, runner in enumerate(runners):
            best[index] = min(best[index], _time(runner, requests))
    direct_us = best[0] / n_requests * 1e6
    return [
        Overhead(batch=batch, direct_us=direct_us, coalesced_us=seconds / n_requests * 1e6)
        for batch, seconds in zip(BATCH_SIZES, best[1:], strict=True)
    ]


if __name__ == "__main__":
    for row in measure_overhead():
        print(
            f"batch {row.batch:3}: direct {row.direct_us:6.1f} us, "
            f"coalesced {row.coalesced_us:6.1f} us, added {row.added:+.2f}"
        )
