"""The batching policies side by side, in trio's virtual time.

Every cell (workload x model kind x policy) is one ``trio.run`` under
``MockClock(autojump_threshold=0)``: the model's seconds cost nothing and the
result depends only on the random seed (which also seeds trio's scheduler,
:func:`seed_scheduler`). Latency is measured from the moment a
caller asks to the moment it holds its answer; every answer is checked against
the one its own task should get.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import trio
import trio.testing
from mcp.types import CreateMessageRequestParams

from coalesce import SamplingClient, open_coordinator
from coalesce.testing import result_text, text_request

from .model import SimulatedModel, StreamingModel, expected_answer, percentile, request_text
from .rust_policy import open_rust_coordinator

__all__ = [
    "MODEL_KINDS",
    "POLICIES",
    "STREAMED",
    "Cell",
    "Policy",
    "Workload",
    "check_targets",
    "run_all",
    "run_cell",
    "seed_scheduler",
    "workloads",
]

WINDOW = 5.0
MAX_BATCH = 10
STREAM_P50_GOAL = 3.2
"""Issue 12's goal for a parallel burst of 100, streamed: p50 in seconds."""

SYSTEM_PROMPT = (
    "You review one change of a code-review queue. Answer in one short paragraph: "
    "what the change does, and the one risk a reviewer should check first."
)
"""Shared by every request, as when one tool fans out over many items."""

MODEL_KINDS = ("serial", "parallel")


@attrs.frozen
class Workload:
    """When requests arrive."""

    name: str
    """Short name, used in file names."""
    label: str
    """What it is, for tables and plots."""
    arrivals: tuple[float, ...]
    """Each request's arrival time, in seconds, ascending."""


def poisson_arrivals(rate: float, duration: float, rng: random.Random) -> tuple[float, ...]:
    """Return the arrival times of a Poisson process of *rate* per second over *duration*."""
    times: list[float] = []
    t = rng.expovariate(rate)
    while t <= duration:
        times.append(t)
        t += rng.expovariate(rate)
    return tuple(times)


def workloads(seed: int) -> list[Workload]:
    """Return the three workloads, their random arrivals drawn from *seed*."""
    return [
        Workload("burst", "burst of 100 at once", (0.0,) * 100),
        Workload(
            "poisson", "Poisson 2/s for 60 s", poisson_arrivals(2.0, 60.0, random.Random(seed))
        ),
        Workload(
            "sparse",
            "sparse Poisson 0.1/s for 300 s",
            poisson_arrivals(0.1, 300.0, random.Random(seed + 1)),
        ),
    ]


def make_requests(n: int, seed: int) -> list[CreateMessageRequestParams]:
    """Return *n* distinct text requests of varied length, all with the shared system prompt."""
    rng = random.Random(seed)
    words = ("parser", "cache", "retry", "timeout", "schema", "index", "token", "lock", "queue")
    requests = []
    for i in range(n):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(10, 40)))
        text = f"Change #{i}: touches {body}."
        requests.append(text_request(text, max_tokens=200, system_prompt=SYSTEM_PROMPT))
    return requests


Opener = Callable[[SimulatedModel], AbstractAsyncContextManager[SamplingClient]]


@attrs.frozen
class Policy:
    """One way of sending the requests to the model."""

    name: str
    """Short name, used in tables, plots and target messages."""
    label: str
    """What it is, in a few words."""
    open: Opener
    """Opens the client the callers use, around the model."""
    stream: bool = False
    """Whether the model streams (:class:`~benchmarks.model.StreamingModel`)."""


@asynccontextmanager
async def _direct(model: SimulatedModel) -> AsyncIterator[SamplingClient]:
    yield model


def _rust(model: SimulatedModel) -> AbstractAsyncContextManager[SamplingClient]:
    return open_rust_coordinator(model, window=WINDOW, max_batch=MAX_BATCH)


def _coalesce(model: SimulatedModel) -> AbstractAsyncContextManager[SamplingClient]:
    return open_coordinator(model, window=WINDOW, max_batch=MAX_BATCH)


def _coalesce_idle(model: SimulatedModel) -> AbstractAsyncContextManager[SamplingClient]:
    return open_coordinator(
        model,
        window=WINDOW,
        max_batch=MAX_BATCH,
        flush_when_idle=True,
        max_concurrent_calls=1 if model.serial else None,
    )


POLICIES = (
    Policy("direct", "direct calls, no coalescing", _direct),
    Policy(
        "rust", f"the Rust coordinator's policy (window {WINDOW:g}, max_batch {MAX_BATCH})", _rust
    ),
    Policy("coalesce", f"coalesce (window {WINDOW:g}, max_batch {MAX_BATCH})", _coalesce),
    Policy(
        "coalesce-idle",
        "coalesce, flush_when_idle (max_concurrent_calls=1 on the serial model)",
        _coalesce_idle,
    ),
    Policy(
        "coalesce+stream",
        "coalesce, with a model that streams its replies",
        _coalesce,
        stream=True,
    ),
    Policy(
        "coalesce-idle+stream",
        "coalesce-idle, with a model that streams its replies",
        _coalesce_idle,
        stream=True,
    ),
)
STREAMED = {"coalesce+stream": "coalesce", "coalesce-idle+stream": "coalesce-idle"}
"""Each streaming policy, and the same policy with a model that does not stream."""


@attrs.frozen
class Cell:
    """What one policy did on one workload with one kind of model."""

    workload: str
    model: str
    policy: str
    requests: int
    calls: int
    latencies: tuple[float, ...]
    """Every request's latency, ascending."""
    prompt_chars: int
    wrong: int
    """Answers that were not the caller's own (misrouted), or errors."""
    max_in_flight: int

    @property
    def p50(self) -> float:
        """Median latency (nearest rank)."""
        return percentile(list(self.latencies), 0.50)

    @property
    def p95(self) -> float:
        """95th-percentile latency (nearest rank)."""
        return percentile(list(self.latencies), 0.95)


def run_cell(workload: Workload, model_kind: str, policy: Policy, seed: int) -> Cell:
    """Run one cell in virtual time and return what happened."""
    requests = make_requests(len(workload.arrivals), seed)
    kind = StreamingModel if policy.stream else SimulatedModel
    model = kind(serial=model_kind == "serial")
    latencies: list[float] = []
    wrong: list[str] = []

    async def main() -> None:
        async with policy.open(model) as client:

            async def one(params: CreateMessageRequestParams) -> None:
                start = trio.current_time()
                try:
                    result = await client.create_message(params)
                except Exception as exc:
                    wrong.append(f"{type(exc).__name__}: {exc}")
                    return
                latencies.append(trio.current_time() - start)
                if result_text(result) != expected_answer(request_text(params)):
                    wrong.append(f"misrouted: {result_text(result)[:60]!r}")

            async with trio.open_nursery() as nursery:
                for params, at in zip(requests, workload.arrivals, strict=True):
                    # Requests due at the same instant start in the same tick.
                    if at > trio.current_time():
                        await trio.sleep_until(at)
                    nursery.start_soon(one, params)

    seed_scheduler(seed)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return Cell(
        workload=workload.name,
        model=model_kind,
        policy=policy.name,
        requests=len(requests),
        calls=model.calls,
        latencies=tuple(sorted(latencies)),
        prompt_chars=model.prompt_chars,
        wrong=len(wrong),
        max_in_flight=model.max_in_flight,
    )


def seed_scheduler(seed: int) -> None:
    """Seed the random choice trio's scheduler makes each tick, so a run can be repeated.

    trio runs each tick's ready tasks in order or reversed, at random. Which
    request lands in which batch, and so where its entry falls in a streamed
    reply, depends on that. trio keeps the generator private (``_r``; the
    hypothesis plugin seeds it the same way); without it, runs still agree
    on everything but the order within a tick.
    """
    rng = getattr(trio._core._run, "_r", None)
    if isinstance(rng, random.Random):
        rng.seed(seed)


def run_all(seed: int) -> list[Cell]:
    """Run every cell: each workload, with each model kind, under each policy."""
    return [
        run_cell(workload, model_kind, policy, seed)
        for workload in workloads(seed)
        for model_kind in MODEL_KINDS
        for policy in POLICIES
    ]


# -- targets ---------------------------------------------------------------------

_EPS = 1e-9


@attrs.frozen
class Check:
    """One checked target: what it promises, what was measured, whether it held."""

    target: str
    measured: str
    ok: bool


def _cells(cells: list[Cell]) -> Iterator[tuple[str, str, dict[str, Cell]]]:
    keys = dict.fromkeys((cell.workload, cell.model) for cell in cells)
    for workload, model in keys:
        yield (
            workload,
            model,
            {c.policy: c for c in cells if c.workload == workload and c.model == model},
        )


def check_targets(cells: list[Cell]) -> list[Check]:
    """Check every policy-simulation target against *cells*."""
    checks: list[Check] = []
    wrong = sum(cell.wrong for cell in cells)
    checks.append(
        Check(
            "every caller gets its own answer (no misrouting, no error), in every cell",
            f"{wrong} wrong answers or errors",
            wrong == 0,
        )
    )
    for workload, model, by in _cells(cells):
        where = f"{workload}/{model}"
        if workload == "burst":
            for name in ("rust", "coalesce", "coalesce-idle"):
                cell = by[name]
                want = math.ceil(cell.requests / MAX_BATCH)
                checks.append(
                    Check(
                        f"{where}: {name} makes ceil(N / max_batch) = {want} calls",
                        f"{cell.calls} calls",
                        cell.calls == want,
                    )
                )
        rust, co, idle, direct = by["rust"], by["coalesce"], by["coalesce-idle"], by["direct"]
        checks += [
            Check(
                f"{where}: coalesce makes no more calls than rust",
                f"{co.calls} vs {rust.calls}",
                co.calls <= rust.calls,
            ),
            Check(
                f"{where}: coalesce p50 <= rust's",
                f"{co.p50:.2f} vs {rust.p50:.2f} s",
                co.p50 <= rust.p50 + _EPS,
            ),
            Check(
                f"{where}: coalesce p95 <= rust's",
                f"{co.p95:.2f} vs {rust.p95:.2f} s",
                co.p95 <= rust.p95 + _EPS,
            ),
            Check(
                f"{where}: coalesce-idle p50 <= rust's",
                f"{idle.p50:.2f} vs {rust.p50:.2f} s",
                idle.p50 <= rust.p50 + _EPS,
            ),
            Check(
                f"{where}: coalesce-idle p95 <= rust's",
                f"{idle.p95:.2f} vs {rust.p95:.2f} s",
                idle.p95 <= rust.p95 + _EPS,
            ),
            Check(
                f"{where}: coalesce-idle makes at most 2x rust's calls",
                f"{idle.calls} vs {rust.calls} ({idle.calls / rust.calls:.2f}x)",
                idle.calls <= 2 * rust.calls,
            ),
        ]
        for name, plain in STREAMED.items():
            streamed, unstreamed = by[name], by[plain]
            checks.append(
                Check(
                    f"{where}: {name} makes {plain}'s calls, p50 and p95 no later",
                    f"{streamed.calls} vs {unstreamed.calls} calls, "
                    f"p50 {streamed.p50:.2f} vs {unstreamed.p50:.2f} s, "
                    f"p95 {streamed.p95:.2f} vs {unstreamed.p95:.2f} s",
                    streamed.calls == unstreamed.calls
                    and streamed.p50 <= unstreamed.p50 + _EPS
                    and streamed.p95 <= unstreamed.p95 + _EPS,
                )
            )
        if workload == "burst" and model == "parallel":
            checks.append(
                Check(
                    f"{where}: coalesce p50 <= 4.4 s (floor 4.0 s)",
                    f"p50 {co.p50:.2f} s",
                    co.p50 <= 4.4 + _EPS,
                )
            )
            streamed = by["coalesce+stream"]
            checks.append(
                Check(
                    f"{where}: coalesce+stream p50 <= {STREAM_P50_GOAL} s "
                    "(4.0 s without streaming)",
                    f"p50 {streamed.p50:.2f} s (without: {co.p50:.2f} s)",
                    streamed.p50 <= STREAM_P50_GOAL + _EPS,
                )
            )
        if workload == "sparse":
            checks.append(
                Check(
                    f"{where}: coalesce-idle p50 <= 1.1x direct's, calls <= direct's",
                    f"p50 {idle.p50:.2f} vs {direct.p50:.2f} s "
                    f"({idle.p50 / direct.p50:.3f}x), calls {idle.calls} vs {direct.calls}",
                    idle.p50 <= 1.1 * direct.p50 + _EPS and idle.calls <= direct.calls,
                )
            )
        if workload == "poisson" and model == "serial":
            checks.append(
                Check(
                    f"{where}: coalesce-idle p50 <= 5.5 s (best possible ~5.0 s)",
                    f"p50 {idle.p50:.2f} s",
                    idle.p50 <= 5.5 + _EPS,
                )
            )
    return checks
