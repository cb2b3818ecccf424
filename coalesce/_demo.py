"""``python -m coalesce demo``: a real MCP round trip, with and without coalescing.

An in-process ``MCPServer`` has a tool that summarises N documents by asking
its client for one sampling per document, all at once, through a coordinator
on :func:`~coalesce.mcp.session_client`. The client (a real ``mcp`` ``Client``,
protocol 2025-11-25) answers with a scripted model that takes real time:
``latency + latency_per_task * tasks`` seconds a call, and serves a few calls
at a time, as a rate-limited API or a local model does. The tool runs twice,
with ``max_batch=1`` (coalescing off) and with the chosen ``max_batch``, and
the demo prints what each run cost and a few tasks' own answers.

The tool's body, :func:`summarise_documents`, is also the one that
``examples/server_side.py`` serves and ``tests/mcp/test_server_side.py`` tests.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Literal, TextIO

import anyio
import attrs
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp_types import CreateMessageRequestParams, CreateMessageResult

from ._coordinator import open_coordinator
from ._mcp_server import session_client
from ._text import result_text, text_request
from .testing import ScriptedClient

__all__ = [
    "BACKENDS",
    "DemoRun",
    "format_answers",
    "format_table",
    "run_demo",
    "summarise_documents",
    "summary_request",
]

Backend = Literal["trio", "asyncio"]
BACKENDS: tuple[Backend, ...] = ("trio", "asyncio")
"""The event loops the demo can run on (``--backend``)."""

BAR_WIDTH = 30
"""Characters in the progress bar."""


@attrs.frozen
class DemoRun:
    """What one run of the tool cost."""

    label: str
    """Which run: with or without coalescing."""
    tasks: int
    """Documents summarised."""
    model_calls: int
    """Calls the client's model received."""
    seconds: float
    """Wall time of the tool call, in seconds."""
    correct: int
    """Tasks that got their own document's summary."""
    samples: tuple[tuple[str, str], ...] = ()
    """A few tasks' ``(document, answer)``: the first, one in the middle, the last."""


class Progress:
    """A plain-text progress bar on one line of *out*, redrawn as tasks complete.

    Where *out* is not a terminal (a log, a pipe) the bar is drawn once, when
    it is finished, so the output holds no carriage-return redraws.
    """

    def __init__(self, label: str, total: int, out: TextIO) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.out = out
        self.live = out.isatty()
        if self.live:
            self.draw()

    def draw(self) -> None:
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.out.write(f"\r{self.label:<20} [{bar}] {self.done}/{self.total}")
        self.out.flush()

    def advance(self) -> None:
        self.done += 1
        if self.live:
            self.draw()

    def finish(self) -> None:
        if not self.live:
            self.draw()
        self.out.write("\n")
        self.out.flush()


def summary_request(document: str) -> CreateMessageRequestParams:
    """The sampling request that asks for one document's summary."""
    return text_request(document, system="Summarise the document in one sentence.", max_tokens=200)


async def summarise_documents(
    session: ServerSession,
    documents: Sequence[str],
    *,
    window: float = 0.05,
    max_batch: int = 10,
    request: Callable[[str], CreateMessageRequestParams] = summary_request,
    on_answer: Callable[[], object] | None = None,
) -> list[str]:
    """Summarise every document, one sampling request each, coalesced by a coordinator.

    The body of a fan-out tool: it sends ``request(document)`` for every
    document at once over *session* (``ctx.session`` in an ``MCPServer``
    tool), through one coordinator, so the client sees ``ceil(N /
    max_batch)`` sampling requests. It returns each document's summary, or
    ``"(no summary: <error type>: <error>)"`` for a task that got an error
    (the other tasks go on). *on_answer* is called as each task finishes.
    """
    summaries = [""] * len(documents)
    # One coordinator per tool call: its client sends to this call's session
    # only, so two client sessions never share a batch.
    client = session_client(session)
    async with open_coordinator(client, window=window, max_batch=max_batch) as coord:

        async def summarise(index: int) -> None:
            try:
                result = await coord.create_message(request(documents[index]))
            # This task's own error (the others go on): a CoalesceError, or the
            # client's own exception (e.g. MCPError) when the request went alone.
            except Exception as error:
                summaries[index] = f"(no summary: {type(error).__name__}: {error})"
            else:
                summaries[index] = result_text(result)
            if on_answer is not None:
                on_answer()

        async with anyio.create_task_group() as tasks:
            for index in range(len(documents)):
                tasks.start_soon(summarise, index)
    return summaries


def build_server(progress: Callable[[], Progress], window: float) -> MCPServer:
    """The demo's server: one tool that fans out a sampling request per document."""
    server = MCPServer("coalesce-demo")

    @server.tool()
    async def summarise_all(documents: list[str], max_batch: int, ctx: Context) -> list[str]:
        """Summarise each document, one sampling request each, through a coordinator."""
        bar = progress()
        return await summarise_documents(
            ctx.session, documents, window=window, max_batch=max_batch, on_answer=bar.advance
        )

    return server


async def run_demo(
    *,
    tasks: int,
    window: float,
    max_batch: int,
    model_slots: int,
    latency: float,
    latency_per_task: float,
    out: TextIO,
) -> list[DemoRun]:
    """Run the tool without and with coalescing; return what each run cost."""
    documents = [f"document {index}" for index in range(tasks)]
    model = ScriptedClient(
        lambda text: f"summary of {text}",
        latency=lambda n: latency + latency_per_task * n,
    )
    slots = anyio.CapacityLimiter(model_slots if model_slots > 0 else math.inf)

    async def sampling_callback(
        context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult:
        async with slots:
            return await model.create_message(params)

    bars: list[Progress] = []
    label = ""

    def progress() -> Progress:
        bars.append(Progress(label, tasks, out))
        return bars[-1]

    server = build_server(progress, window)
    runs: list[DemoRun] = []
    async with Client(server, sampling_callback=sampling_callback, mode="legacy") as client:
        for label, batch in [("without coalescing", 1), ("with coalescing", max_batch)]:
            before = model.calls
            started = time.perf_counter()
            result = await client.call_tool(
                "summarise_all", {"documents": documents, "max_batch": batch}
            )
            seconds = time.perf_counter() - started
            bars[-1].finish()
            if result.is_error or result.structured_content is None:
                raise RuntimeError(f"the demo's tool failed: {result.content}")
            summaries = result.structured_content["result"]
            correct = sum(
                summary == f"summary of {document}"
                for summary, document in zip(summaries, documents, strict=True)
            )
            picks = sorted({0, tasks // 2, tasks - 1})
            samples = tuple((documents[index], summaries[index]) for index in picks)
            runs.append(DemoRun(label, tasks, model.calls - before, seconds, correct, samples))
    return runs


def format_table(runs: list[DemoRun]) -> str:
    """Return the runs as a plain-text table, one row per run."""
    header = f"{'':<20} {'tasks':>6} {'model calls':>12} {'wall time':>10}"
    rows = [
        f"{run.label:<20} {run.tasks:>6} {run.model_calls:>12} {run.seconds:>8.2f} s"
        for run in runs
    ]
    return "\n".join([header, *rows])


def format_answers(run: DemoRun) -> str:
    """Return a few of *run*'s tasks beside their own answers, one per line."""
    width = max((len(document) for document, _ in run.samples), default=0)
    lines = [f"  {document:<{width}}  ->  {answer}" for document, answer in run.samples]
    return "\n".join([f"Each task gets its own answer ({run.label}), for example:", *lines])


def demo(
    *,
    tasks: int,
    window: float,
    max_batch: int,
    model_slots: int,
    latency: float,
    latency_per_task: float,
    backend: Backend = "trio",
    out: TextIO | None = None,
) -> int:
    """Run the demo, print the progress bars, the table and a few answers; return an exit status.

    *backend* is the event loop it runs on (``anyio.run``'s). *out* is where
    it all goes (standard output by default, looked up when called so that a
    redirected ``sys.stdout`` is honoured).
    """
    stream: TextIO = sys.stdout if out is None else out
    slots = "unlimited" if model_slots <= 0 else str(model_slots)
    stream.write(
        f"A tool summarises {tasks} documents, one sampling request each, over MCP.\n"
        f"The client's model takes {latency:g} s + {latency_per_task:g} s per task a call "
        f"and serves {slots} calls at a time.\n\n"
    )

    async def both_runs() -> list[DemoRun]:
        return await run_demo(
            tasks=tasks,
            window=window,
            max_batch=max_batch,
            model_slots=model_slots,
            latency=latency,
            latency_per_task=latency_per_task,
            out=stream,
        )

    runs = anyio.run(both_runs, backend=backend)
    stream.write("\n" + format_table(runs) + "\n\n" + format_answers(runs[-1]) + "\n")
    wrong = [run for run in runs if run.correct != run.tasks]
    for run in wrong:
        stream.write(f"{run.label}: {run.tasks - run.correct} tasks did not get their own answer\n")
    return 1 if wrong else 0
