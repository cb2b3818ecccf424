"""Peak memory per queued request, with 100,000 requests pending (``tracemalloc``).

The requests are built before tracing starts (they are the callers' data, not
the coordinator's). Two figures are reported: the whole cost of a waiting
request (its caller's trio task and coroutine frame included), and the
coordinator's share, which is that minus the same callers parked on a bare
``trio.sleep_forever``.
"""

from __future__ import annotations

import contextlib
import gc
import tracemalloc

import attrs
import trio
import trio.testing
from mcp.types import CreateMessageRequestParams

from coalesce import Coordinator, CoordinatorClosed, open_coordinator
from coalesce.testing import text_request

from .model import InstantModel

__all__ = ["Memory", "measure_memory"]

PENDING = 100_000


@attrs.frozen
class Memory:
    """Peak traced bytes per pending request."""

    pending: int
    total_bytes: float
    """Per request, the caller's own parked task included."""
    baseline_bytes: float
    """Per request, for a caller parked without a coordinator."""

    @property
    def coordinator_bytes(self) -> float:
        """Per request, what the coordinator adds."""
        return self.total_bytes - self.baseline_bytes


async def _caller(coord: Coordinator | None, params: CreateMessageRequestParams) -> None:
    with contextlib.suppress(CoordinatorClosed):
        if coord is None:
            await trio.sleep_forever()
        else:
            await coord.create_message(params)


def _peak(n: int, *, through_coordinator: bool) -> int:
    requests: list[CreateMessageRequestParams] = [
        text_request(f"task {i}", max_tokens=100) for i in range(n)
    ]
    peak = 0

    async def main() -> None:
        nonlocal peak
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        with trio.CancelScope() as scope:
            # Nothing is sent: the batch never fills and the window is long.
            async with (
                open_coordinator(InstantModel(), window=3600.0, max_batch=n + 1) as coord,
                trio.open_nursery() as callers,
            ):
                for params in requests:
                    callers.start_soon(_caller, coord if through_coordinator else None, params)
                await trio.testing.wait_all_tasks_blocked()
                _, top = tracemalloc.get_traced_memory()
                peak = top - base
                tracemalloc.stop()
                scope.cancel()

    trio.run(main)
    return peak


def measure_memory(pending: int = PENDING) -> Memory:
    """Measure peak bytes per pending request, with and without a coordinator."""
    total = _peak(pending, through_coordinator=True)
    baseline = _peak(pending, through_coordinator=False)
    return Memory(pending=pending, total_bytes=total / pending, baseline_bytes=baseline / pending)


if __name__ == "__main__":
    m = measure_memory()
    print(
        f"{m.pending} pending: {m.total_bytes:.0f} B per request in all, "
        f"{m.baseline_bytes:.0f} B for a bare parked caller, "
        f"{m.coordinator_bytes:.0f} B added by the coordinator"
    )
