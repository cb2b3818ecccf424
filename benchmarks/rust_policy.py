"""The Rust coordinator's coalescing policy, a faithful trio port of ``sampling_coordinator.rs``.

coalesce started as a redesign of that coordinator (rmcp's); its policy is
kept here as the reference the benchmarks compare :mod:`coalesce` with. One
worker task does everything, as its ``coordinator_worker`` does:

1. it waits for a first submission;
2. it counts the window from *then*, when it wakes with that submission, not
   from when the submission arrived (which may have been a whole call ago);
3. it gathers more until ``max_batch`` or the window's end;
4. it awaits the call (``flush_batch``) before it looks at the queue again,
   so batches go one after another, however many calls the model could take.

Submissions wait in a bounded channel of ``max_batch * 2 + 16``, as in the
original. The request builder and the demultiplexer are ported too, so the
prompt the model sees is the original's (its system prompt says "exactly N
entries" literally, repeats each task's system prompt, and keeps only
``model_preferences`` of the shared settings).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import outcome
import trio
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    SamplingMessage,
    TextContent,
)

from coalesce import SamplingClient

__all__ = ["RustCoordinator", "RustError", "open_rust_coordinator"]

DEFAULT_COALESCE_WINDOW = 5.0
DEFAULT_COALESCE_MAX_BATCH = 10

RUST_SYSTEM_PROMPT = (
    "You are a batch task processor. Process EVERY task listed in the "
    "user message and reply with a JSON array of objects where each "
    'object has shape: { "task_index": <int starting from 0>, '
    '"response": "<string>" }. The array MUST have exactly N entries '
    "(one per task) in the SAME ORDER. Do NOT include any prose outside "
    "the JSON."
)


class RustError(RuntimeError):
    """The original's ``SamplingError::Service(internal_error(...))``."""


class _Submission:
    __slots__ = ("done", "params", "result")

    def __init__(self, params: CreateMessageRequestParams) -> None:
        self.params = params
        self.done = trio.Event()
        self.result: outcome.Outcome[CreateMessageResult | CreateMessageResultWithTools] | None = (
            None
        )

    def send(
        self, result: outcome.Outcome[CreateMessageResult | CreateMessageResultWithTools]
    ) -> None:
        # A oneshot: the first send wins (the original ignores send errors).
        if self.result is None:
            self.result = result
            self.done.set()


class RustCoordinator:
    """The original's ``SamplingCoordinator``: ``create_message`` is its ``submit``."""

    def __init__(self, tx: trio.MemorySendChannel[_Submission]) -> None:
        self._tx = tx

    async def create_message(
        self, params: CreateMessageRequestParams
    ) -> CreateMessageResult | CreateMessageResultWithTools:
        """Submit *params* and wait for the worker to answer it."""
        submission = _Submission(params)
        try:
            await self._tx.send(submission)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise RustError("sampling coordinator worker is gone (channel closed)") from None
        await submission.done.wait()
        assert submission.result is not None
        return submission.result.unwrap()


@asynccontextmanager
async def open_rust_coordinator(
    inner: SamplingClient,
    *,
    window: float = DEFAULT_COALESCE_WINDOW,
    max_batch: int = DEFAULT_COALESCE_MAX_BATCH,
) -> AsyncIterator[RustCoordinator]:
    """Run the original's worker for the block's duration (``with_settings``).

    Leaving the block drops the sender, so the worker flushes what it holds
    and returns, as the original's worker does when its channel closes.
    """
    max_batch = max(max_batch, 1)
    tx, rx = trio.open_memory_channel[_Submission](max_batch * 2 + 16)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_coordinator_worker, rx, inner, window, max_batch)
        async with tx:
            yield RustCoordinator(tx)


async def _coordinator_worker(
    rx: trio.MemoryReceiveChannel[_Submission],
    inner: SamplingClient,
    window: float,
    max_batch: int,
) -> None:
    while True:
        try:
            first = await rx.receive()
        except trio.EndOfChannel:
            return
        buffer = [first]
        deadline = trio.current_time() + window
        while len(buffer) < max_batch:
            if trio.current_time() >= deadline:  # remaining.is_zero()
                break
            received = False
            with trio.move_on_at(deadline):  # tokio::time::timeout(remaining, rx.recv())
                try:
                    buffer.append(await rx.receive())
                except trio.EndOfChannel:
                    await _flush_batch(inner, buffer)
                    return
                received = True
            if not received:  # Err(_) => break
                break
        await _flush_batch(inner, buffer)


async def _flush_batch(inner: SamplingClient, batch: list[_Submission]) -> None:
    if not batch:
        return
    if len(batch) == 1:
        submission = batch[0]
        try:
            submission.send(outcome.Value(await inner.create_message(submission.params)))
        except Exception as exc:
            submission.send(outcome.Error(exc))
        return
    coalesced = build_coalesced_request([submission.params for submission in batch])
    try:
        rendered = await inner.create_message(coalesced)
    except Exception as exc:
        for submission in batch:
            submission.send(
                outcome.Error(RustError(f"sampling coordinator: coalesced RPC failed: {exc}"))
            )
        return
    if not isinstance(rendered, CreateMessageResult):  # the original's type admits no other
        for submission in batch:
            submission.send(outcome.Error(RustError("sampling coordinator: wrong reply type")))
        return
    try:
        per_task = demux_coalesced(rendered, len(batch))
    except RustError as parse_err:
        message = f"sampling coordinator: failed to parse coalesced response: {parse_err}"
        for submission in batch:
            submission.send(outcome.Error(RustError(message)))
        return
    for submission, task_result in zip(batch, per_task, strict=True):
        submission.send(task_result)


def _text_parts(message: SamplingMessage) -> list[str]:
    content = message.content
    blocks = content if isinstance(content, list) else [content]
    return [block.text for block in blocks if isinstance(block, TextContent)]


def build_coalesced_request(
    batch: Sequence[CreateMessageRequestParams],
) -> CreateMessageRequestParams:
    """Port of the original's ``build_coalesced_request``.

    ``serde_json``'s default map is ordered by key, hence ``sort_keys``; its
    ``to_string`` is compact and leaves non-ASCII text as it is.
    """
    tasks: list[dict[str, object]] = []
    system_parts = [RUST_SYSTEM_PROMPT]
    for idx, params in enumerate(batch):
        if params.system_prompt is not None:
            system_parts.append(f"Task-{idx} sub-system: {params.system_prompt}")
        task_messages = [
            {"role": message.role, "content": "\n".join(_text_parts(message))}
            for message in params.messages
        ]
        tasks.append({"task_index": idx, "messages": task_messages})
    user_payload = json.dumps(
        {"tasks": tasks}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    max_tokens = max(sum(params.max_tokens for params in batch), 1)
    return CreateMessageRequestParams(
        messages=[
            SamplingMessage(role="user", content=TextContent(type="text", text=user_payload))
        ],
        max_tokens=max_tokens,
        system_prompt="\n\n".join(system_parts),
        model_preferences=batch[0].model_preferences,
    )


def _extract_fenced_json(text: str) -> str | None:
    needle = "```json"
    start = text.find(needle)
    if start < 0:
        return None
    after = text[start + len(needle) :]
    end = after.find("```")
    if end < 0:
        return None
    return after[:end].strip()


def _extract_text_from_result(result: CreateMessageResult) -> str:
    if result.role != "assistant":
        raise RustError("response role was not Assistant")
    content: Any = result.content
    blocks = content if isinstance(content, list) else [content]
    out = "\n".join(block.text for block in blocks if isinstance(block, TextContent))
    if not out:
        raise RustError("no text content blocks")
    return out


def _index(entry: dict[str, object]) -> int | None:
    value = entry.get("task_index")
    return value if type(value) is int else None


def demux_coalesced(
    rendered: CreateMessageResult, n_tasks: int
) -> list[outcome.Outcome[CreateMessageResult | CreateMessageResultWithTools]]:
    """Port of the original's ``demux_coalesced``: one outcome per task, or ``RustError``."""
    text = _extract_text_from_result(rendered)
    try:
        parsed = json.loads(text)
    except ValueError as e:
        inner = _extract_fenced_json(text)
        if inner is None:
            raise RustError(f"top-level JSON parse: {e}") from None
        try:
            parsed = json.loads(inner)
        except ValueError as fe:
            raise RustError(f"fenced parse: {fe}") from None
    if not isinstance(parsed, list):
        raise RustError("response root is not a JSON array")
    out: list[outcome.Outcome[CreateMessageResult | CreateMessageResultWithTools]] = []
    for idx in range(n_tasks):
        # arr.iter().find(|e| e.get("task_index").and_then(as_i64) == Some(idx))
        entry = next((e for e in parsed if isinstance(e, dict) and _index(e) == idx), None)
        if entry is None:
            out.append(
                outcome.Error(RustError(f"sampling coordinator: response missing task_index {idx}"))
            )
            continue
        response = entry.get("response")
        response_text = response if isinstance(response, str) else ""
        out.append(
            outcome.Value(
                CreateMessageResult(
                    role="assistant",
                    content=TextContent(type="text", text=response_text),
                    model=rendered.model,
                )
            )
        )
    return out
