"""Fakes for testing code that uses :mod:`coalesce`, without a model.

:class:`ScriptedClient` is a model that speaks the coalesced wire format: it
answers every task of a batch (and every lone request) with a text derived
from that task, so a test can check that each caller got its own answer. It
records what it was sent, can be slow (in event-loop time, so trio's ``MockClock`` makes
that free), can fail on demand, and can mangle its replies the way real
models do. :class:`CannedClient` plays back fixed replies in order.

Example::

    from coalesce import open_coordinator
    from coalesce.testing import ScriptedClient, text_request, result_text

    model = ScriptedClient(lambda task: task.upper())
    async with open_coordinator(model, window=0.1) as coord:
        result = await coord.create_message(text_request("hello"))
    assert result_text(result) == "HELLO"
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any

import anyio
import anyio.lowlevel
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    SamplingMessage,
    TextContent,
)

from . import _text
from ._prompt import is_coalesced, task_text

__all__ = [
    "CannedClient",
    "ScriptedClient",
    "StreamingClient",
    "TaskReply",
    "is_coalesced",
    "replies",
    "result_text",
    "tasks_of",
    "text_request",
    "text_result",
]

TaskReply = dict[str, Any]
"""One entry of a coalesced reply, ``{"task_index": i, "response": text}``."""


def text_request(
    text: str,
    *,
    max_tokens: int = 100,
    system_prompt: str | None = None,
    **fields: Any,
) -> CreateMessageRequestParams:
    """Return a one-message text request: the usual thing a test sends.

    Extra keyword arguments (``temperature``, ``model_preferences`` ...) are
    passed to ``CreateMessageRequestParams``. Outside tests, use
    :func:`coalesce.text_request`, whose reply length suits a real model.
    """
    return CreateMessageRequestParams(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=text))],
        max_tokens=max_tokens,
        system_prompt=system_prompt,
        **fields,
    )


def text_result(text: str, *, model: str = "scripted-model", **fields: Any) -> CreateMessageResult:
    """Return an assistant reply holding *text*."""
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text=text),
        model=model,
        **fields,
    )


def result_text(result: CreateMessageResult | CreateMessageResultWithTools) -> str:
    """Return the text of *result* (every text block, joined by newlines).

    The same as :func:`coalesce.result_text`.
    """
    return _text.result_text(result)


def tasks_of(params: CreateMessageRequestParams) -> list[str]:
    """Return the text of each task a request asks for, in task order.

    For a coalesced request that is each task's messages' contents joined by
    newlines; for a lone request, the one text made the same way, so a model
    that answers a task from its text answers it the same way either way.
    """
    if not is_coalesced(params):
        return ["\n".join(task_text(message) for message in params.messages)]
    payload = json.loads(task_text(params.messages[0]))
    return [
        "\n".join(message["content"] for message in task["messages"]) for task in payload["tasks"]
    ]


class ScriptedClient:
    """A fake model that answers each task with ``answer(task_text)``.

    Args:
        answer: Makes a task's answer from its text; by default
            ``"answer to: " + text``.
        latency: Seconds (event-loop time) each call takes, or a function of the
            number of tasks in the call.
        model: The model name its replies carry.
        mangle: Rewrites a coalesced reply before it is sent: it gets the
            list of ``{"task_index", "response"}`` entries and returns new
            entries or the reply's raw text, to drop, duplicate, shuffle or
            garble answers as real models sometimes do.

    Attributes:
        requests: Every request it received, in order of arrival.
        in_flight: Calls under way now.
        max_in_flight: The most calls that were ever under way at once.
    """

    def __init__(
        self,
        answer: Callable[[str], str] | None = None,
        *,
        latency: float | Callable[[int], float] = 0.0,
        model: str = "scripted-model",
        mangle: Callable[[list[TaskReply]], list[TaskReply] | str] | None = None,
        schema: bool = False,
    ) -> None:
        self.answer: Callable[[str], str] = (
            answer if answer is not None else (lambda text: f"answer to: {text}")
        )
        self.supports_response_schema = schema
        self.schemas: list[dict[str, Any] | None] = []
        self.latency = latency
        self.model = model
        self.mangle = mangle
        self.requests: list[CreateMessageRequestParams] = []
        self.in_flight: int = 0
        self.max_in_flight: int = 0
        self._failures: list[BaseException] = []

    @property
    def calls(self) -> int:
        """How many calls it has received."""
        return len(self.requests)

    @property
    def coalesced_requests(self) -> list[CreateMessageRequestParams]:
        """The requests it received that were coalesced batches."""
        return [params for params in self.requests if is_coalesced(params)]

    def fail_next(self, error: BaseException, times: int = 1) -> None:
        """Make the next *times* calls raise *error* (after their latency)."""
        self._failures.extend([error] * times)

    def reply_for(
        self, params: CreateMessageRequestParams, response_schema: dict[str, Any] | None = None
    ) -> CreateMessageResult:
        """Return the reply it gives to *params*, without waiting or recording.

        Given a *response_schema*, a coalesced reply is the keyed object
        ``{"task_0": ..., ...}`` that the schema asks for; else the array.
        """
        tasks = tasks_of(params)
        if not is_coalesced(params):
            return text_result(self.answer(tasks[0]), model=self.model, stop_reason="endTurn")
        entries: list[TaskReply] = [
            {"task_index": index, "response": self.answer(text)} for index, text in enumerate(tasks)
        ]
        mangled = self.mangle(entries) if self.mangle is not None else entries
        if isinstance(mangled, str):
            text = mangled
        elif response_schema is not None:
            keyed = {f"task_{entry['task_index']}": entry["response"] for entry in mangled}
            text = json.dumps(keyed, ensure_ascii=False)
        else:
            text = json.dumps(mangled, ensure_ascii=False)
        return text_result(text, model=self.model, stop_reason="endTurn")

    async def create_message(
        self,
        params: CreateMessageRequestParams,
        *,
        response_schema: dict[str, Any] | None = None,
    ) -> CreateMessageResult:
        """Answer *params* after the configured latency, or fail if told to.

        *response_schema* is recorded in ``schemas``; it is only ever
        sent to a client made with ``schema=True``.
        """
        self._started(params, response_schema)
        try:
            latency = self.latency
            delay = latency(len(tasks_of(params))) if callable(latency) else latency
            await anyio.sleep(delay)
            if self._failures:
                raise self._failures.pop(0)
            return self.reply_for(params, response_schema)
        finally:
            self._ended()

    def _started(
        self, params: CreateMessageRequestParams, response_schema: dict[str, Any] | None
    ) -> None:
        """Record a call that starts: what it asked, and how many are under way."""
        self.requests.append(params)
        self.schemas.append(response_schema)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _ended(self) -> None:
        self.in_flight -= 1


class StreamingClient(ScriptedClient):
    """A :class:`ScriptedClient` that also streams, as the model adapters do.

    Its ``stream_message`` yields the same reply text as ``create_message``
    would return, *chunk* characters at a time: the first after the call's
    latency, each next one *chunk_latency* seconds later (event-loop time), as
    a model writes its answers one after another.

    Args:
        chunk: Characters per streamed chunk.
        chunk_latency: Seconds between chunks.
        **kwargs: As for :class:`ScriptedClient`.

    Attributes:
        streams_closed_early: Streams that were closed before their end (every
            caller still waiting had left).
        last_stream_result: The whole reply of the last stream that ran to its
            end, as the adapters keep it (the coordinator reads its usage).
    """

    def __init__(self, *args: Any, chunk: int = 16, chunk_latency: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.chunk = chunk
        self.chunk_latency = chunk_latency
        self.streams_closed_early: int = 0
        self.last_stream_result: CreateMessageResult | None = None

    async def stream_message(
        self,
        params: CreateMessageRequestParams,
        *,
        response_schema: dict[str, Any] | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the reply to *params* in chunks, after the configured latency."""
        self._started(params, response_schema)
        finished = False
        try:
            latency = self.latency
            await anyio.sleep(latency(len(tasks_of(params))) if callable(latency) else latency)
            if self._failures:
                raise self._failures.pop(0)
            reply = self.reply_for(params, response_schema)
            text = result_text(reply)
            for start in range(0, len(text), self.chunk):
                if start:
                    await anyio.sleep(self.chunk_latency)
                yield text[start : start + self.chunk]
            finished = True
            self.last_stream_result = reply
        finally:
            self._ended()
            if not finished:
                self.streams_closed_early += 1


class CannedClient:
    """A fake client that plays back fixed replies, one per call, in order.

    Each reply is a text (sent back as the assistant's text), a whole
    ``CreateMessageResult``, or an exception to raise. When the script runs
    out, *default* is used for every further call (an ``AssertionError`` if
    there is none).

    Attributes:
        requests: Every request it received, in order.
    """

    def __init__(
        self,
        replies: Iterable[
            str | CreateMessageResult | CreateMessageResultWithTools | BaseException
        ] = (),
        *,
        default: str
        | CreateMessageResult
        | CreateMessageResultWithTools
        | BaseException
        | None = None,
        model: str = "canned-model",
    ) -> None:
        self._replies = list(replies)
        self._default = default
        self.model = model
        self.requests: list[CreateMessageRequestParams] = []

    @property
    def calls(self) -> int:
        """How many calls it has received."""
        return len(self.requests)

    async def create_message(
        self, params: CreateMessageRequestParams
    ) -> CreateMessageResult | CreateMessageResultWithTools:
        """Return (or raise) the next scripted reply."""
        self.requests.append(params)
        await anyio.lowlevel.checkpoint()
        if self._replies:
            reply = self._replies.pop(0)
        elif self._default is not None:
            reply = self._default
        else:
            raise AssertionError(f"CannedClient has no reply left for call {self.calls}")
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            return text_result(reply, model=self.model)
        return reply


def replies(answers: Sequence[str]) -> str:
    """Return a well-formed coalesced reply's text: task *i* answered ``answers[i]``."""
    return json.dumps(
        [{"task_index": index, "response": text} for index, text in enumerate(answers)],
        ensure_ascii=False,
    )
