"""Simulated models that speak the coalesced wire format.

Each task is answered with a text derived from that task alone
(:func:`expected_answer`), so a caller that receives another caller's answer
is caught.
"""

from __future__ import annotations

import json
import math

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
    "InstantModel",
    "SimulatedModel",
    "expected_answer",
    "is_batch",
    "prompt_chars",
    "request_text",
    "tasks_in",
]

BASE_LATENCY = 2.0
"""Seconds every call takes, whatever it carries."""
PER_TASK_LATENCY = 0.2
"""Seconds each task of a call adds."""

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


class InstantModel:
    """A model that answers at once (one checkpoint), for measuring CPU cost.

    It does a real model client's share of the work and no more: read the
    request, produce the reply object.
    """

    def __init__(self) -> None:
        self.calls = 0

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        """Answer *params* after one checkpoint."""
        self.calls += 1
        await trio.lowlevel.checkpoint()
        return answer(params)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of *sorted_values* (``fraction`` in (0, 1])."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]
