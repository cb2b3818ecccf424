"""``python -m coalesce demo``: a real MCP round trip, with and without coalescing.

An in-process ``MCPServer`` has a tool that summarises N documents by asking
its client for one sampling per document, all at once, through a coordinator
on :func:`~coalesce.mcp.session_client`. The client (a real ``mcp`` ``Client``,
protocol 2025-11-25) answers with a scripted model that takes real time:
``latency + latency_per_task * tasks`` seconds a call, and serves a few calls
at a time, as a rate-limited API or a local model does. The tool runs twice,
with ``max_batch=1`` (coalescing off) and with the chosen ``max_batch``, and
the demo prints what each run cost.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

import attrs
import trio
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CreateMessageRequestParams, CreateMessageResult

from ._coordinator import open_coordinator
from ._mcp_server import session_client
from .testing import ScriptedClient, result_text, text_request

__all__ = ["DemoRun", "format_table", "run_demo"]

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


def build_server(progress: Callable[[], Progress], window: float) -> MCPServer:
    """The demo's server: one tool that fans out a sampling request per document."""
    server = MCPServer("coalesce-demo")

    @server.tool()
    async def summarise_all(documents: list[str], max_batch: int, ctx: Context) -> list[str]:
        """Summarise each document, one sampling request each, through a coordinator."""
        bar = progress()
        summaries = [""] * len(documents)
        client = session_client(ctx.session)
        async with open_coordinator(client, window=window, max_batch=max_batch) as coord:

            async def summarise(index: int) -> None:
                try:
                    result = await coord.create_message(text_request(documents[index]))
                # This task's own error: a CoalesceError, or the client's own
                # exception when the request happened to go alone.
                except Exception as error:
                    summaries[index] = f"(no summary: {error})"
                else:
                    summaries[index] = result_text(result)
                bar.advance()

            async with trio.open_nursery() as nursery:
                for index in range(len(documents)):
                    nursery.start_soon(summarise, index)
        return summaries

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
    slots = trio.CapacityLimiter(model_slots if model_slots > 0 else math.inf)

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
            runs.append(DemoRun(label, tasks, model.calls - before, seconds, correct))
    return runs


def format_table(runs: list[DemoRun]) -> str:
    """Return the runs as a plain-text table, one row per run."""
    header = f"{'':<20} {'tasks':>6} {'model calls':>12} {'wall time':>10}"
    rows = [
        f"{run.label:<20} {run.tasks:>6} {run.model_calls:>12} {run.seconds:>8.2f} s"
        for run in runs
    ]
    return "\n".join([header, *rows])


def demo(
    *,
    tasks: int,
    window: float,
    max_batch: int,
    model_slots: int,
    latency: float,
    latency_per_task: float,
    out: TextIO | None = None,
) -> int:
    """Run the demo, print the progress bars and the table; return an exit status.

    *out* is where it all goes (standard output by default, looked up when
    called so that a redirected ``sys.stdout`` is honoured).
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

    runs = trio.run(both_runs)
    stream.write("\n" + format_table(runs) + "\n")
    wrong = [run for run in runs if run.correct != run.tasks]
    for run in wrong:
        stream.write(f"{run.label}: {run.tasks - run.correct} tasks did not get their own answer\n")
    return 1 if wrong else 0
