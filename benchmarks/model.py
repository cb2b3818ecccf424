"""Simulated models that speak the coalesced wire format.

Each task is answered with a text derived from that task alone
(:func:`expected_answer`), so a caller that receives another caller's answer
is caught.

- :class:`SimulatedModel`: ``2.0 s + 0.2 s`` per task, the whole reply at once.
- :class:`StreamingModel`: the same, but a coalesced reply streams: the
  fixed latency first, then the reply's text evenly over the decode time.
- :class:`FormatModel`: follows the batch format only on the coalesced calls
  it is told to (a format-blind model never does).
- :class:`InstantModel`: answers at once, natively on trio or asyncio, for
  measuring CPU cost.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    SamplingMessage,
    TextContent,
)

__all__ = [
    "BASE_LATENCY",
    "PER_TASK_LATENCY",
    "STREAM_CHUNK",
    "FormatModel",
    "InstantModel",
    "SimulatedModel",
    "StreamingModel",
    "expected_answer",
    "is_batch",
    "prompt_chars",
    "request_text",
    "tasks_in",
]

BASE_LATENCY = 2.0
"""Seconds every call takes, whatever it carries."""
PER_TASK_LATENCY = 0.2
"""Seconds each task of a call adds: the time to decode its answer."""
STREAM_CHUNK = 16
"""Characters per chunk of a streamed reply (a few tokens)."""

_BATCH_MARKER = "You are a batch task processor."


def _text(message: SamplingMessage) -> str:
    content = message.content
    blocks = content if isinstance(content, list) else [content]
    return "\n".join(block.text for block in blocks if isinstance(block, TextContent))


def request_text(params: CreateMessageRequestParams) -> str:
    """Return a lone request's task: its messages' texts, joined by newlines."""
    return "\n".join(_text(message) for message in params.messages)


def expected_answer(task: str) -> str:
    """Return the one right answer to *task*: derived from its text and nothing else."""
    return f"answer ({len(task)} chars) to: {task[::-1]}"


def is_batch(params: CreateMessageRequestParams) -> bool:
    """Tell whether *params* is a coalesced request (the Rust coordinator's or coalesce's)."""
    return bool(params.system_prompt and params.system_prompt.startswith(_BATCH_MARKER))


def tasks_in(params: CreateMessageRequestParams) -> list[tuple[int, str]]:
    """Return ``(task_index, task_text)`` for each task *params* asks for."""
    if not is_batch(params):
        return [(0, request_text(params))]
    payload = json.loads(_text(params.messages[0]))
    return [
        (task["task_index"], "\n".join(message["content"] for message in task["messages"]))
        for task in payload["tasks"]
    ]


def prompt_chars(params: CreateMessageRequestParams) -> int:
    """Return the characters a call sends as prompt: system prompt and messages."""
    return len(params.system_prompt or "") + sum(len(_text(m)) for m in params.messages)


def answer(params: CreateMessageRequestParams) -> CreateMessageResult:
    """Return the model's reply to *params*: a plain answer, or a JSON array for a batch."""
    if is_batch(params):
        entries = [
            {"task_index": index, "response": expected_answer(task)}
            for index, task in tasks_in(params)
        ]
        text = json.dumps(entries, ensure_ascii=False)
    else:
        text = expected_answer(request_text(params))
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text=text),
        model="simulated",
        stop_reason="endTurn",
    )


def prose_reply(params: CreateMessageRequestParams) -> CreateMessageResult:
    """Return a format-blind model's reply to a batch: every answer, one per line, as prose."""
    lines = [f"{index + 1}. {expected_answer(task)}" for index, task in tasks_in(params)]
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text="Sure! Here are the answers:\n" + "\n".join(lines)),
        model="simulated",
        stop_reason="endTurn",
    )


class SimulatedModel:
    """A model taking ``2.0 s + 0.2 s`` per task in the call, in trio time.

    Args:
        serial: Serve one call at a time, the others queueing in arrival
            order (a host that asks a person to approve each call), rather
            than any number at once.

    Attributes:
        calls: Calls received.
        tasks: Tasks received, over every call.
        prompt_chars: Prompt characters received, over every call.
        max_in_flight: The most calls being served at once.
    """

    def __init__(self, *, serial: bool) -> None:
        self.serial = serial
        self._lock = trio.Lock()
        self.calls = 0
        self.tasks = 0
        self.prompt_chars = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        """Answer *params* after the simulated latency."""
        self.calls += 1
        self.prompt_chars += prompt_chars(params)
        n_tasks = len(tasks_in(params))
        self.tasks += n_tasks
        if self.serial:
            async with self._lock:
                return await self._serve(params, n_tasks)
        return await self._serve(params, n_tasks)

    async def _serve(self, params: CreateMessageRequestParams, n_tasks: int) -> CreateMessageResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await trio.sleep(BASE_LATENCY + PER_TASK_LATENCY * n_tasks)
        finally:
            self.in_flight -= 1
        return answer(params)


class StreamingModel(SimulatedModel):
    """A :class:`SimulatedModel` that also streams, as the model adapters do.

    ``stream_message`` waits the fixed :data:`BASE_LATENCY`, then yields the
    reply's text in :data:`STREAM_CHUNK`-character chunks spread evenly over
    the decode time (:data:`PER_TASK_LATENCY` per task), so the whole reply
    ends when ``create_message``'s would, and the entry of task *k* of *n*
    closes about ``(k + 1) / n`` of the way through the decode time.
    ``create_message`` (used for lone requests) is unchanged.
    """

    async def stream_message(
        self,
        params: CreateMessageRequestParams,
        *,
        response_schema: dict[str, Any] | None = None,
    ) -> AsyncIterator[str]:
        """Yield the reply to *params* in chunks, evenly over its decode time."""
        self.calls += 1
        self.prompt_chars += prompt_chars(params)
        n_tasks = len(tasks_in(params))
        self.tasks += n_tasks
        if self.serial:
            async with self._lock:
                async for chunk in self._stream(params, n_tasks):
                    yield chunk
        else:
            async for chunk in self._stream(params, n_tasks):
                yield chunk

    async def _stream(self, params: CreateMessageRequestParams, n_tasks: int) -> AsyncIterator[str]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await trio.sleep(BASE_LATENCY)
            content = answer(params).content
            assert isinstance(content, TextContent)
            text = content.text
            per_char = PER_TASK_LATENCY * n_tasks / len(text)
            for start in range(0, len(text), STREAM_CHUNK):
                chunk = text[start : start + STREAM_CHUNK]
                await trio.sleep(per_char * len(chunk))
                yield chunk
        finally:
            self.in_flight -= 1


class FormatModel(SimulatedModel):
    """A parallel :class:`SimulatedModel` that may ignore the batch format.

    Lone requests are always answered well. The *n*-th coalesced call (from
    1) is answered in the batch format if ``follows(n)``, and otherwise with
    every answer as prose (:func:`prose_reply`), which no reader can route:
    what a model that cannot follow the format does.

    Attributes:
        batches: Coalesced calls received.
        followed: Coalesced calls answered in the batch format.
        sizes: Tasks carried by each call, in order of arrival.
    """

    def __init__(self, follows: Callable[[int], bool]) -> None:
        super().__init__(serial=False)
        self.follows = follows
        self.batches = 0
        self.followed = 0
        self.sizes: list[int] = []

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        """Answer *params* after the simulated latency, in the format or not."""
        n_tasks = len(tasks_in(params))
        self.sizes.append(n_tasks)
        follows = True
        if is_batch(params):
            self.batches += 1
            follows = self.follows(self.batches)
            self.followed += follows
        result = await super().create_message(params)
        return result if follows else prose_reply(params)


async def _asyncio_checkpoint() -> None:
    await asyncio.sleep(0)


class InstantModel:
    """A model that answers at once (one checkpoint), for measuring CPU cost.

    It does a real model client's share of the work and no more: read the
    request, produce the reply object. Its checkpoint is the event loop's own
    (``trio.lowlevel.checkpoint``, or ``asyncio.sleep(0)``), not anyio's, so
    a direct call pays no backend lookup that coalesce would not.

    Args:
        backend: ``"trio"`` or ``"asyncio"``, the loop it will run on.
    """

    def __init__(self, backend: str = "trio") -> None:
        self.calls = 0
        self._checkpoint: Callable[[], Awaitable[None]] = (
            trio.lowlevel.checkpoint if backend == "trio" else _asyncio_checkpoint
        )

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        """Answer *params* after one checkpoint."""
        self.calls += 1
        await self._checkpoint()
        return answer(params)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of *sorted_values* (``fraction`` in (0, 1])."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]
