"""Demultiplexing throughput on large replies, as a ratio to a bare ``json.loads``.

A coalesced reply of *size* bytes (100 tasks, each answered with a long text)
is split by :func:`coalesce.demux_reply`; the ratio is the time a bare
``json.loads`` of the same text takes over the time ``demux_reply`` takes, so
1.0 means demultiplexing costs no more than parsing, and 0.5 means it costs
twice as much.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from functools import partial

import attrs
from mcp.types import CreateMessageResult, TextContent

from coalesce import TaskError, demux_reply

__all__ = ["SIZES", "DemuxResult", "measure_demux"]

SIZES = (1_000_000, 10_000_000)
TASKS = 100


@attrs.frozen
class DemuxResult:
    """``demux_reply`` against ``json.loads`` on one reply."""

    size: int
    """The reply's length in bytes (UTF-8)."""
    tasks: int
    loads_ms: float
    demux_ms: float

    @property
    def ratio(self) -> float:
        """Throughput of ``demux_reply`` as a fraction of ``json.loads``'s."""
        return self.loads_ms / self.demux_ms


def make_reply(size: int, tasks: int = TASKS) -> CreateMessageResult:
    """Return a well-formed coalesced reply of about *size* bytes, with some non-ASCII text."""
    unit = 'Answer with "quotes", a tab\t, and café; '

    def body_of(per_task: int) -> str:
        entries = [
            {
                "task_index": index,
                "response": (f"[{index}] " + unit * (per_task // len(unit) + 1))[:per_task],
            }
            for index in range(tasks)
        ]
        return json.dumps(entries, ensure_ascii=False)

    # Escapes and the two-byte é make the JSON longer than its texts: measure, then scale.
    guess = max(1, size // tasks)
    body = body_of(int(guess * size / len(body_of(guess).encode())))
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text=body), model="bench"
    )


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def measure_demux(repeat: int = 5) -> list[DemuxResult]:
    """Time ``json.loads`` and ``demux_reply`` on each size, best of *repeat*, interleaved."""
    results = []
    for size in SIZES:
        reply = make_reply(size)
        content = reply.content
        assert isinstance(content, TextContent)
        text = content.text
        answers = demux_reply(reply, TASKS)
        bad = [answer for answer in answers if isinstance(answer, TaskError)]
        if bad:
            raise AssertionError(f"demux_reply failed a well-formed reply: {bad[0]}")
        loads = demux = float("inf")
        for _ in range(repeat):
            loads = min(loads, _best(partial(json.loads, text), 1))
            demux = min(demux, _best(partial(demux_reply, reply, TASKS), 1))
        results.append(
            DemuxResult(
                size=len(text.encode()), tasks=TASKS, loads_ms=loads * 1e3, demux_ms=demux * 1e3
            )
        )
    return results


if __name__ == "__main__":
    for row in measure_demux():
        print(
            f"{row.size / 1e6:5.1f} MB: json.loads {row.loads_ms:7.2f} ms, "
            f"demux_reply {row.demux_ms:7.2f} ms, ratio {row.ratio:.2f}"
        )
