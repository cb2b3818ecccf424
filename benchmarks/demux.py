"""Reading coalesced replies, against a bare ``json.loads`` of the same text.

Four measurements, each printed as a table by ``python -m benchmarks.demux``
(and by ``python -m benchmarks``, which checks the targets):

- **Throughput** on large well-formed replies (1 MB, 10 MB):
  :func:`coalesce.demux_reply` against ``json.loads``.
- **Small replies** (about 1 KB, 10 tasks), in ``json.loads`` times per
  character: :func:`~coalesce._demux.split_text` (the one-decode fast path,
  then routing), the incremental reader alone (what the fast path saves),
  and ``demux_reply`` (with the results built).
- **Chunked reading**: the reader fed a 1 MB reply whole, and in chunks of
  1, 64 and 4096 characters, as a streaming reply would come (the chunks are
  cut before the clock starts, as a stream hands them over ready-made).
- **Hostile shapes** of about 1 MB each, in ns per character and in times
  ``json.loads``' ns per character on the 1 MB well-formed reply.

Times are process CPU time, the best of several interleaved runs, with
``gc.collect()`` before each.
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
from coalesce._demux import split_text
from coalesce._reader import ReplyReader

from .report import table

__all__ = [
    "HOSTILE",
    "SIZES",
    "ChunkedResult",
    "DemuxResult",
    "HostileResult",
    "SmallResult",
    "measure_chunked",
    "measure_demux",
    "measure_hostile",
    "measure_small",
]

SIZES = (1_000_000, 10_000_000)
TASKS = 100
CHUNKS = (1, 64, 4096)

_OPENED = '[{"task_index": 0, "response": "a"}, '

HOSTILE: dict[str, Callable[[int], str]] = {
    "nested brackets": lambda n: "[" * n,
    "brackets and braces": lambda n: "[{" * (n // 2),
    "broken values": lambda n: '[{"a": [x ' * (n // 10),
    "objects, no tasks": lambda n: '{"a": 1}, '.join(["["] * (n // 10)),
    "flat objects, no tasks": lambda n: "[" + '{"a": 1}, ' * (n // 10),
    "prose with brackets": lambda n: "Here [as asked] (see [1]) {ok} " * (n // 31),
    "quotes": lambda n: '"' * n,
    "unterminated strings": lambda n: '[{"a": "' * (n // 8),
    "decode errors": lambda n: '[{"a": [1 x] ' * (n // 13),
    "bad escapes": lambda n: '[{"task_index": 0, "response": "\\x\\u12"}, ' * (n // 42),
    "huge string": lambda n: '[{"task_index": 0, "response": "' + "é" * n,
    "numbers in an answer": lambda n: '[{"task_index": 0, "response": [' + "1," * (n // 2),
    "arrays after an entry": lambda n: _OPENED + "[], " * (n // 4),
    "objects after an entry": lambda n: _OPENED + '{"a": 1}, ' * (n // 10),
    "entries naming a task": lambda n: _OPENED + '{"task_index": 1}, ' * (n // 19),
}
"""Replies no model should send, by name: each makes about *n* characters.

The last four hold a real entry first, so the reader tokenizes what follows
it rather than searching past it.
"""


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


@attrs.frozen
class SmallResult:
    """Costs on a small well-formed reply, in times ``json.loads`` of the same text."""

    chars: int
    tasks: int
    loads_us: float
    split: float
    """``split_text``: the fast path's one decode, then routing."""
    reader: float
    """The incremental reader alone, fed the whole text."""
    demux: float
    """``demux_reply``: ``split_text``, and a validated result per task."""


@attrs.frozen
class ChunkedResult:
    """The reader on one reply fed in chunks of one size."""

    chunk: int | None
    """Characters per chunk; None for the whole reply at once."""
    ms: float
    whole_ms: float

    @property
    def ratio(self) -> float:
        """Cost as a multiple of reading the reply whole."""
        return self.ms / self.whole_ms


@attrs.frozen
class HostileResult:
    """``split_text`` on one hostile shape."""

    name: str
    chars: int
    ns_per_char: float
    loads_ns_per_char: float
    """``json.loads``' cost per character of the 1 MB well-formed reply."""

    @property
    def ratio(self) -> float:
        """Cost per character, in times ``json.loads``'."""
        return self.ns_per_char / self.loads_ns_per_char


def make_text(size: int, tasks: int = TASKS) -> str:
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
    return body_of(int(guess * size / len(body_of(guess).encode())))


def make_reply(size: int, tasks: int = TASKS) -> CreateMessageResult:
    """Return :func:`make_text` as a model's reply."""
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text=make_text(size, tasks)),
        model="bench",
    )


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _per_call(fn: Callable[[], object], repeat: int, calls: int) -> float:
    """Seconds per call of *fn*, the best of *repeat* runs of *calls* calls."""

    def run() -> None:
        for _ in range(calls):
            fn()

    return _best(run, repeat) / calls


def _chunks(text: str, chunk: int | None) -> list[str]:
    """Cut *text* in chunks of *chunk* characters (None: one), as a stream hands them over."""
    if chunk is None:
        return [text]
    return [text[start : start + chunk] for start in range(0, len(text), chunk)]


def _read(chunks: list[str], n_tasks: int) -> list[str | TaskError]:
    reader = ReplyReader(n_tasks)
    feed = reader.feed
    for chunk in chunks:
        feed(chunk)
    return reader.close()


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


def measure_small(repeat: int = 5, calls: int = 2000) -> SmallResult:
    """Time ``json.loads``, ``split_text``, the reader and ``demux_reply`` on a ~1 KB reply."""
    tasks = 10
    reply = make_reply(1000, tasks)
    content = reply.content
    assert isinstance(content, TextContent)
    text = content.text
    if split_text(text, tasks) != _read([text], tasks):
        raise AssertionError("the fast path and the reader disagree on a well-formed reply")
    loads = split = reader = demux = float("inf")
    for _ in range(repeat):
        loads = min(loads, _per_call(partial(json.loads, text), 1, calls))
        split = min(split, _per_call(partial(split_text, text, tasks), 1, calls))
        reader = min(reader, _per_call(partial(_read, [text], tasks), 1, calls))
        demux = min(demux, _per_call(partial(demux_reply, reply, tasks), 1, calls))
    return SmallResult(
        chars=len(text),
        tasks=tasks,
        loads_us=loads * 1e6,
        split=split / loads,
        reader=reader / loads,
        demux=demux / loads,
    )


def measure_chunked(repeat: int = 5, size: int = 1_000_000) -> list[ChunkedResult]:
    """Time the reader on a *size* reply fed whole and in each of :data:`CHUNKS`."""
    text = make_text(size)
    chunked = {chunk: _chunks(text, chunk) for chunk in (None, *CHUNKS)}
    whole_outcome = _read(chunked[None], TASKS)
    times: dict[int | None, float] = {}
    for chunk, chunks in chunked.items():
        if _read(chunks, TASKS) != whole_outcome:
            raise AssertionError(f"the reader fed {chunk}-character chunks disagrees")
    for _ in range(repeat):
        for chunk, chunks in chunked.items():
            if chunk == 1 and chunk in times:
                continue  # a second or so a run: once is enough
            elapsed = _best(partial(_read, chunks, TASKS), 1)
            times[chunk] = min(times.get(chunk, float("inf")), elapsed)
    whole = times[None] * 1e3
    return [ChunkedResult(chunk, times[chunk] * 1e3, whole) for chunk in (None, *CHUNKS)]


def measure_hostile(repeat: int = 3, size: int = 1_000_000) -> list[HostileResult]:
    """Time ``split_text`` on each of :data:`HOSTILE`, made about *size* characters long."""
    text = make_text(size)
    loads = _best(partial(json.loads, text), repeat) / len(text)
    results = []
    for name, make in HOSTILE.items():
        shape = make(size)
        elapsed = _best(partial(split_text, shape, 3), repeat)
        results.append(HostileResult(name, len(shape), elapsed / len(shape) * 1e9, loads * 1e9))
    return results


def demux_table(rows: list[DemuxResult]) -> str:
    """The throughput table."""
    return table(
        ("reply", "tasks", "json.loads ms", "demux_reply ms", "ratio"),
        [
            (f"{r.size:,} B", r.tasks, f"{r.loads_ms:.2f}", f"{r.demux_ms:.2f}", f"{r.ratio:.2f}")
            for r in rows
        ],
    )


def small_table(row: SmallResult) -> str:
    """The small-reply table."""
    return table(
        ("reply", "tasks", "json.loads us", "split_text", "reader alone", "demux_reply"),
        [
            (
                f"{row.chars:,} chars",
                row.tasks,
                f"{row.loads_us:.1f}",
                f"{row.split:.2f}x",
                f"{row.reader:.2f}x",
                f"{row.demux:.2f}x",
            )
        ],
    )


def chunked_table(rows: list[ChunkedResult]) -> str:
    """The chunked-reading table."""
    return table(
        ("fed", "ms", "times whole"),
        [
            (
                "whole" if r.chunk is None else f"{r.chunk}-char chunks",
                f"{r.ms:.1f}",
                f"{r.ratio:.2f}",
            )
            for r in rows
        ],
    )


def hostile_table(rows: list[HostileResult], goal: float | None = None) -> str:
    """The hostile-shapes table; given a *goal* (times ``json.loads``), each row's verdict."""
    if goal is None:
        return table(
            ("shape", "chars", "ns/char", "times json.loads"),
            [(r.name, f"{r.chars:,}", f"{r.ns_per_char:.1f}", f"{r.ratio:.1f}") for r in rows],
        )
    return table(
        ("shape", "chars", "ns/char", "times json.loads", f"<= {goal:.0f}x"),
        [
            (
                r.name,
                f"{r.chars:,}",
                f"{r.ns_per_char:.1f}",
                f"{r.ratio:.1f}",
                "PASS" if r.ratio <= goal else "FAIL",
            )
            for r in rows
        ],
    )


if __name__ == "__main__":
    print("Throughput on large well-formed replies\n")
    print(demux_table(measure_demux()))
    print("\nA ~1 KB well-formed reply, in times json.loads of the same text\n")
    print(small_table(measure_small()))
    print("\nThe reader on a 1 MB reply, whole and in chunks\n")
    print(chunked_table(measure_chunked()))
    print("\nHostile shapes (split_text), against json.loads on a 1 MB well-formed reply\n")
    print(hostile_table(measure_hostile()))
