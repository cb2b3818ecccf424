"""Adaptive coalescing against models that do and do not follow the batch format.

Issue 13's scenario, in trio's virtual time: requests come in bursts of 10,
each burst sent once the one before has been answered, to a
:class:`~benchmarks.model.FormatModel` that follows the batch format

- **never** (a format-blind model, such as a client that answers every
  sampling request with the same prose);
- **always**;
- **fails first 3**: not on its first three coalesced calls, then always.

Each model runs with ``adaptive=True`` (the default) and ``adaptive=False``,
``window`` 1 s and ``max_batch`` 10. Every caller must get its own answer
either way; what adaptivity changes is how many calls that takes, and, per
burst, how large the coalesced calls are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import trio
import trio.testing
from mcp.types import CreateMessageRequestParams

from coalesce import Coordinator, open_coordinator
from coalesce.testing import result_text

from .model import FormatModel, expected_answer, request_text
from .report import table
from .simulate import make_requests, seed_scheduler

__all__ = [
    "BURSTS",
    "BURST_SIZE",
    "MODELS",
    "PLOT_BURSTS",
    "AdaptiveRun",
    "Burst",
    "adaptive_table",
    "measure_adaptive",
    "run_bursts",
]

BURST_SIZE = 10
BURSTS = 10
"""Bursts for the call counts: 100 requests."""
PLOT_BURSTS = 30
"""Bursts for the plot and for when coalescing resumes."""
MAX_BATCH = 10
WINDOW = 1.0

MODELS: dict[str, Callable[[int], bool]] = {
    "never": lambda n: False,
    "always": lambda n: True,
    "fails first 3": lambda n: n > 3,
}
"""Whether each model follows the batch format on its *n*-th coalesced call (from 1)."""


@attrs.frozen
class Burst:
    """What one burst cost."""

    calls: int
    """Model calls the burst's requests took (retries alone included)."""
    largest: int
    """The most tasks any of those calls carried (1: all went alone)."""
    coalesced: bool
    """Whether a coalesced call of this burst came back in the batch format."""


@attrs.frozen
class AdaptiveRun:
    """One model, adaptive on or off, over a number of bursts."""

    model: str
    adaptive: bool
    bursts: tuple[Burst, ...]
    wrong: int
    """Callers that got an error or another caller's answer."""

    def calls(self, bursts: int | None = None) -> int:
        """Model calls over the first *bursts* bursts (all by default)."""
        return sum(burst.calls for burst in self.bursts[:bursts])

    @property
    def resumed(self) -> int | None:
        """The first burst (from 1) after a failed one whose coalesced call worked, if any."""
        failed = False
        for number, burst in enumerate(self.bursts, start=1):
            if not burst.coalesced:
                failed = True
            elif failed:
                return number
        return None


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep coalesce's warnings about unusable replies (expected here) off the terminal."""
    logger = logging.getLogger("coalesce")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_bursts(model_name: str, *, adaptive: bool, bursts: int) -> AdaptiveRun:
    """Send *bursts* bursts of :data:`BURST_SIZE` to the model named *model_name*."""
    model = FormatModel(MODELS[model_name])
    requests = make_requests(bursts * BURST_SIZE, seed=0)
    record: list[Burst] = []
    wrong = 0

    async def one(coord: Coordinator, params: CreateMessageRequestParams) -> None:
        nonlocal wrong
        try:
            result = await coord.create_message(params)
        except Exception:
            wrong += 1
            return
        if result_text(result) != expected_answer(request_text(params)):
            wrong += 1

    async def main() -> None:
        async with open_coordinator(
            model, window=WINDOW, max_batch=MAX_BATCH, adaptive=adaptive
        ) as coord:
            for burst in range(bursts):
                calls, followed = model.calls, model.followed
                async with trio.open_nursery() as nursery:
                    for params in requests[burst * BURST_SIZE : (burst + 1) * BURST_SIZE]:
                        nursery.start_soon(one, coord, params)
                record.append(
                    Burst(
                        calls=model.calls - calls,
                        largest=max(model.sizes[calls:]),
                        coalesced=model.followed > followed,
                    )
                )
                await trio.sleep(10.0)

    seed_scheduler(0)
    with _quiet():
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return AdaptiveRun(model_name, adaptive, tuple(record), wrong)


def measure_adaptive(bursts: int = PLOT_BURSTS) -> list[AdaptiveRun]:
    """Run every model with adaptive coalescing on and off."""
    return [
        run_bursts(name, adaptive=adaptive, bursts=bursts)
        for name in MODELS
        for adaptive in (True, False)
    ]


def adaptive_table(runs: list[AdaptiveRun]) -> str:
    """Calls per model, adaptive on and off: over the first 100 requests and over every burst."""
    rows = [
        (
            run.model,
            "on" if run.adaptive else "off",
            run.calls(BURSTS),
            run.calls(),
            "-" if run.resumed is None else run.resumed,
            run.wrong,
        )
        for run in runs
    ]
    n = len(runs[0].bursts) if runs else 0
    header = (
        "follows the format",
        "adaptive",
        f"calls, {BURSTS * BURST_SIZE} requests",
        f"calls, {n * BURST_SIZE} requests",
        "coalescing resumes at burst",
        "wrong",
    )
    return table(header, rows)


if __name__ == "__main__":
    print(adaptive_table(measure_adaptive()))
