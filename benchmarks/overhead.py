"""The coordinator's CPU cost per request, as a ratio to direct calls, on trio and asyncio.

Wall-clock time on a shared machine is noise, so each figure is a ratio of
two timings taken in the same process moments apart: *N* concurrent callers
through a coordinator, against the same *N* callers calling the same instant
client (:class:`~benchmarks.model.InstantModel`) directly. Both include the
client's own work (reading the request, building the reply), as both would
in real use, and both start their callers the event loop's own way (a trio
nursery, an asyncio ``TaskGroup``), run by ``trio.run`` or ``asyncio.run``.

The cases, each with 1,000 callers:

- **batch 1, 10, 100**: ``max_batch`` of that size and a 60 s window, so
  every batch fills at once and nothing waits for the window (batch 1 is a
  pure pass-through);
- **lone**: every caller in a group of its own (``group=i``), so each is
  alone in its group and waits out its window (1 ms) before it is sent.

Informational **floor** rows, without a coordinator: each caller does the
least a case cannot avoid, then calls the client directly. **floor: scope**
makes the call inside one of the loop's own cancel scopes (what lets a
coordinator end a call it sent from its caller's task, when it is aborted);
**floor: checkpoint** first lets the scheduler tick end (what lets the
requests of one tick gather); **floor: sleep 1 ms** first sleeps 1 ms on
the loop's own timer (what waiting out a window needs).

**Scaling** repeats batch 10 with 1,000, 10,000 and 50,000 callers, every
one of them pending at once (all are started before any runs): the cost per
request should not grow with the number pending.

Each timing is process CPU time, the best of several repetitions, each after
``gc.collect()``, with the cyclic collector left on during the run (objects
the coordinator keeps alive per request are part of its cost). A round times
direct calls and every case once, one after the other, so a busy spell on a
shared machine slows them all alike.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import attrs
import trio
from mcp.types import CreateMessageRequestParams

from coalesce import open_coordinator

from .model import InstantModel
from .report import table
from .simulate import make_requests

__all__ = [
    "BACKENDS",
    "CASES",
    "FLOORS",
    "PENDING",
    "Case",
    "Overhead",
    "Scaling",
    "measure_overhead",
    "measure_scaling",
    "overhead_table",
    "scaling_table",
]

BACKENDS = ("trio", "asyncio")
PENDING = (1_000, 10_000, 50_000)
LONE_WINDOW = 0.001
"""The window a lone request waits out, in seconds (CPU time is what is measured)."""


@attrs.frozen
class Case:
    """One way of sending the callers' requests through a coordinator."""

    name: str
    max_batch: int
    window: float
    own_groups: bool = False
    """Each caller in a group of its own (``group=i``)."""


CASES = (
    Case("batch 1", 1, 60.0),
    Case("batch 10", 10, 60.0),
    Case("batch 100", 100, 60.0),
    Case("lone", 10, LONE_WINDOW, own_groups=True),
)

FLOORS = ("floor: scope", "floor: checkpoint", "floor: sleep 1 ms")
"""The informational rows: a direct call after the least a case needs (no targets)."""


@attrs.frozen
class Overhead:
    """Per-request CPU time through the coordinator against direct calls."""

    backend: str
    case: str
    requests: int
    direct_us: float
    """Microseconds per request, calling the client directly."""
    coalesced_us: float
    """Microseconds per request, through the coordinator."""

    @property
    def added(self) -> float:
        """What the coordinator adds, in multiples of a direct call's own cost."""
        return self.coalesced_us / self.direct_us - 1.0


@attrs.frozen
class Scaling:
    """Per-request CPU time at batch 10 with some number of requests pending at once."""

    backend: str
    pending: int
    direct_us: float
    coalesced_us: float
    frozen: bool = False
    """Measured after ``gc.freeze()`` (the requests and everything before them frozen)."""

    @property
    def added(self) -> float:
        """What the coordinator adds, in multiples of a direct call's own cost."""
        return self.coalesced_us / self.direct_us - 1.0

    @property
    def added_us(self) -> float:
        """What the coordinator adds, in microseconds per request."""
        return self.coalesced_us - self.direct_us


Spawn = Callable[[InstantModel, Sequence[CreateMessageRequestParams]], Awaitable[None]]
"""Runs one timed batch of callers to completion (inside the event loop)."""


# -- starting the callers, each loop its own way ----------------------------------


Caller = Callable[[InstantModel, CreateMessageRequestParams], Coroutine[Any, Any, object]]
"""What each caller runs: a direct call, or a direct call after a floor's least."""


def _each(backend: str, caller: Caller) -> Spawn:
    """Start one *caller* per request, the loop's own way, and wait for them all."""
    if backend == "trio":

        async def trio_each(
            client: InstantModel, requests: Sequence[CreateMessageRequestParams]
        ) -> None:
            async with trio.open_nursery() as nursery:
                for params in requests:
                    nursery.start_soon(caller, client, params)

        return trio_each

    async def asyncio_each(
        client: InstantModel, requests: Sequence[CreateMessageRequestParams]
    ) -> None:
        async with asyncio.TaskGroup() as tasks:
            for params in requests:
                tasks.create_task(caller(client, params))

    return asyncio_each


def _direct(backend: str) -> Spawn:
    # The unbound method, so that a direct call is the client's coroutine alone.
    return _each(backend, InstantModel.create_message)


def _through(backend: str, case: Case) -> Spawn:
    options: dict[str, Any] = {"window": case.window, "max_batch": case.max_batch}
    if backend == "trio":

        async def trio_through(
            client: InstantModel, requests: Sequence[CreateMessageRequestParams]
        ) -> None:
            async with (
                open_coordinator(client, **options) as coord,
                trio.open_nursery() as nursery,
            ):
                if case.own_groups:
                    for group, params in enumerate(requests):
                        nursery.start_soon(_grouped, coord.create_message, params, group)
                else:
                    for params in requests:
                        nursery.start_soon(coord.create_message, params)

        return trio_through

    async def asyncio_through(
        client: InstantModel, requests: Sequence[CreateMessageRequestParams]
    ) -> None:
        async with open_coordinator(client, **options) as coord, asyncio.TaskGroup() as tasks:
            if case.own_groups:
                for group, params in enumerate(requests):
                    tasks.create_task(coord.create_message(params, group=group))
            else:
                for params in requests:
                    tasks.create_task(coord.create_message(params))

    return asyncio_through


def _floor(backend: str, name: str) -> Spawn:
    """Direct calls, each after what the floor *name* stands for (see the module's docstring)."""
    if backend == "trio":
        scope: Callable[[], Any] = trio.CancelScope
        checkpoint: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint
        sleep: Callable[[float], Awaitable[None]] = trio.sleep
    else:
        # The class coalesce gets as type(anyio.CancelScope()) on asyncio.
        from anyio._backends._asyncio import CancelScope

        scope, checkpoint, sleep = CancelScope, _asyncio_checkpoint, asyncio.sleep

    async def one(client: InstantModel, params: CreateMessageRequestParams) -> None:
        if name == "floor: scope":
            with scope():
                await client.create_message(params)
            return
        if name == "floor: checkpoint":
            await checkpoint()
        else:
            await sleep(LONE_WINDOW)
        await client.create_message(params)

    return _each(backend, one)


async def _asyncio_checkpoint() -> None:
    await asyncio.sleep(0)


async def _grouped(
    create_message: Callable[..., Awaitable[object]],
    params: CreateMessageRequestParams,
    group: int,
) -> None:
    await create_message(params, group=group)


def _time(backend: str, spawn: Spawn, requests: Sequence[CreateMessageRequestParams]) -> float:
    """Return the CPU seconds *spawn* takes, on a fresh event loop, after ``gc.collect()``."""
    client = InstantModel(backend)
    elapsed = 0.0

    async def main() -> None:
        nonlocal elapsed
        start = time.process_time()
        await spawn(client, requests)
        elapsed = time.process_time() - start

    gc.collect()
    if backend == "trio":
        trio.run(main)
    else:
        asyncio.run(main())
    assert client.calls >= 1
    return elapsed


def _best(
    backend: str, spawns: list[Spawn], requests: Sequence[CreateMessageRequestParams], repeat: int
) -> list[float]:
    best = [float("inf")] * len(spawns)
    for _ in range(repeat):
        for index, spawn in enumerate(spawns):
            best[index] = min(best[index], _time(backend, spawn, requests))
    return best


# -- the measurements -------------------------------------------------------------


def measure_overhead(
    n_requests: int = 1000, repeat: int = 15, backends: Sequence[str] = BACKENDS
) -> list[Overhead]:
    """Measure every case of :data:`CASES` on each backend, best of *repeat* rounds.

    The :data:`FLOORS` are measured in the same rounds, after the cases, and
    reported as rows of their own (informational: no target).
    """
    requests = make_requests(n_requests, seed=0)
    rows: list[Overhead] = []
    names = [case.name for case in CASES] + list(FLOORS)
    for backend in backends:
        spawns = [
            _direct(backend),
            *(_through(backend, case) for case in CASES),
            *(_floor(backend, name) for name in FLOORS),
        ]
        best = _best(backend, spawns, requests, repeat)
        direct_us = best[0] / n_requests * 1e6
        rows += [
            Overhead(
                backend=backend,
                case=name,
                requests=n_requests,
                direct_us=direct_us,
                coalesced_us=seconds / n_requests * 1e6,
            )
            for name, seconds in zip(names, best[1:], strict=True)
        ]
    return rows


def measure_scaling(
    pending: Sequence[int] = PENDING, repeat: int = 3, backends: Sequence[str] = BACKENDS
) -> list[Scaling]:
    """Measure batch 10 with each number of requests *pending* at once, on each backend.

    Fewer repetitions for the larger counts (each takes seconds): about
    ``repeat * 10,000 / n`` for *n* pending, at least two. The largest count
    is measured a second time after ``gc.freeze()``, to show what freezing
    the objects a process made before its traffic saves.
    """
    batch10 = next(case for case in CASES if case.name == "batch 10")
    rows: list[Scaling] = []
    for n in pending:
        requests = make_requests(n, seed=0)
        rounds = max(2, min(repeat * 3, repeat * 10_000 // n))
        for frozen in (False, True) if n == max(pending) else (False,):
            for backend in backends:
                if frozen:
                    gc.freeze()
                try:
                    direct, through = _best(
                        backend, [_direct(backend), _through(backend, batch10)], requests, rounds
                    )
                finally:
                    gc.unfreeze()
                rows.append(Scaling(backend, n, direct / n * 1e6, through / n * 1e6, frozen))
        del requests
    return rows


def overhead_table(rows: list[Overhead], targets: dict[tuple[str, str], float]) -> str:
    """The overhead table, with each case's target (added, in direct calls) beside it."""
    body = []
    for row in rows:
        target = targets.get((row.backend, row.case))
        body.append(
            (
                row.backend,
                row.case,
                f"{row.direct_us:.1f}",
                f"{row.coalesced_us:.1f}",
                f"{row.added:+.2f}x",
                "-" if target is None else f"<= {target:.1f}x",
                _verdict(target is None or row.added <= target, target is None),
            )
        )
    header = ("backend", "case", "direct us", "coalesced us", "added", "target", "met")
    # A floor row's "coalesced us" is its own cost: a direct call after what it stands for.
    return table(header, body)


def scaling_table(rows: list[Scaling], limit: float) -> str:
    """The scaling table: added cost per request at each count pending, against the smallest."""
    body = []
    for row in rows:
        first = next(r for r in rows if r.backend == row.backend)
        ratio = row.added_us / first.added_us
        unchecked = row is first or row.frozen
        body.append(
            (
                row.backend,
                f"{row.pending:,}" + (" (gc.freeze)" if row.frozen else ""),
                f"{row.direct_us:.1f}",
                f"{row.coalesced_us:.1f}",
                f"{row.added_us:.1f}",
                f"{row.coalesced_us / first.coalesced_us:.2f}x",
                f"{ratio:.2f}x",
                "-" if unchecked else f"<= {limit:.1f}x",
                _verdict(ratio <= limit, unchecked),
            )
        )
    header = (
        "backend",
        "pending",
        "direct us",
        "coalesced us",
        "added us",
        "coalesced vs first",
        "added vs first",
        "target",
        "met",
    )
    return table(header, body)


def _verdict(ok: bool, unchecked: bool) -> str:
    return "-" if unchecked else ("PASS" if ok else "FAIL")


if __name__ == "__main__":
    print(overhead_table(measure_overhead(repeat=7), {}))
    print(scaling_table(measure_scaling(), 1.3))
