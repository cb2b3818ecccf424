"""Split a coalesced reply into each task's own answer: the inbound half of the core.

Pure: no I/O, no clock, no global state. Model replies are untrusted input, so
:func:`demux_reply` never raises, whatever the reply holds, and takes time
linear in the reply's size. The rules it applies, with an example each, are in
``docs/explanation/demux-rules.rst``; :class:`~coalesce._reader.ReplyReader`
applies them, over a whole reply here or chunk by chunk as a reply streams.

The one rule above all others: an answer is only ever the text that the reply
gave for that task's index. Anything doubtful (two different answers, an entry
that repeats a key, a missing response, an entry the reply did not complete)
becomes that task's :class:`~coalesce.TaskError`, never a guess.
"""

from __future__ import annotations

import json
from typing import Any, Final

from mcp_types import CreateMessageResult, CreateMessageResultWithTools, TextContent

from ._errors import TaskError, excerpt
from ._patterns import OPENING
from ._reader import TWO_ANSWERS, ReplyReader, index_named

__all__ = ["answer_result", "demux_reply", "reply_text", "split_text"]

_FAST: Final = json.JSONDecoder(object_pairs_hook=tuple, strict=False)
"""Decodes a well-formed reply at C speed, each object as its ``(key, value)`` pairs.

Pairs, not a dict, so that a repeated key is seen rather than lost.
"""


def reply_text(reply: CreateMessageResult | CreateMessageResultWithTools) -> str:
    """Return the text of every text block of *reply*, joined by newlines.

    The content may be one block or a list of blocks; blocks that are not
    text (an image, audio) are skipped. A reply built without validation that
    holds something else entirely has no text, rather than raising.
    """
    content: Any = getattr(reply, "content", None)
    blocks = content if isinstance(content, list) else [content]
    texts = [getattr(block, "text", None) for block in blocks if isinstance(block, TextContent)]
    return "\n".join(text for text in texts if isinstance(text, str))


def split_text(text: str, n_tasks: int, *, max_chars: int | None = None) -> list[str | TaskError]:
    """Give each of *n_tasks* tasks its answer's text from the reply's *text*, or its error.

    This is :func:`demux_reply` on plain text: a :class:`~coalesce._reader.ReplyReader`
    fed the whole text as one chunk. A well-formed reply (a bare JSON array
    of ``{"task_index", "response"}`` entries with string responses) is
    decoded once at C speed instead, with the same outcome.

    Args:
        text: The coalesced reply's text.
        n_tasks: How many tasks the coalesced request held.
        max_chars: The longest reply the batch could produce (see
            :func:`~coalesce._reader.max_reply_chars`); a longer one is
            refused unparsed.

    Returns:
        One entry per task, in task order: the text the reply gave for that
        task, or a :class:`~coalesce.TaskError` naming the task.
    """
    if n_tasks <= 0:
        return []
    if max_chars is None or len(text) <= max_chars:
        outcomes = read_well_formed(text, n_tasks)
        if outcomes is not None:
            return outcomes
    reader = ReplyReader(n_tasks, limit=max_chars)
    reader.feed(text)
    return reader.close()


def read_well_formed(text: str, n_tasks: int) -> list[str | TaskError] | None:
    """Read a well-formed reply at C speed, or return None to leave it to the reader.

    Well-formed: the text is a JSON array, and each element is an object of
    exactly ``task_index`` (an int or a string of digits) and ``response`` (a
    string). Anything else (a fence, prose, a wrapper, a repeated key, a
    non-string response) returns None, and so does a text that does not
    start with the reader's :data:`~coalesce._patterns.OPENING`. The outcome
    is the reader's, which the property tests check.
    """
    if not text.rstrip(" \t\n\r").endswith("]"):
        return None  # not a whole array: decoding it all would be wasted
    if OPENING.match(text, len(text) - len(text.lstrip(" \t\n\r"))) is None:
        return None  # the reader would find no answer here, or not this one
    try:
        entries = _FAST.decode(text)
    except (ValueError, RecursionError):
        return None
    if type(entries) is not list or not entries:
        return None
    answers: dict[int, str] = {}
    conflicts: set[int] = set()
    for entry in entries:
        if type(entry) is not tuple or len(entry) != 2:
            return None
        (first, named), (second, response) = entry
        if first == "response" and second == "task_index":
            named, response = response, named
        elif first != "task_index" or second != "response":
            return None
        if type(response) is not str:
            return None
        if type(named) is int:
            index = named if 0 <= named < n_tasks else None
        elif type(named) is str:
            index = index_named(named, n_tasks)
        else:
            return None
        if index is not None and answers.setdefault(index, response) != response:
            conflicts.add(index)
    outcomes: list[str | TaskError] = []
    for index in range(n_tasks):
        answer = answers.get(index)
        if answer is None or index in conflicts:
            reason = TWO_ANSWERS if answer is not None else f"no entry answers task {index}"
            outcomes.append(TaskError(index, reason, excerpt(text)))
        else:
            outcomes.append(answer)
    return outcomes


def answer_result(text: str, model: Any, stop_reason: Any) -> CreateMessageResult:
    """Build one task's answer: the assistant's *text*, with the coalesced reply's model.

    What the coordinator releases to a caller, whether the whole reply was
    read or only the caller's entry of a streaming one. Built through
    pydantic's public constructor (validation is the cheap way here). A reply
    that was itself built without validation may hold a ``model`` or
    ``stop_reason`` that fails validation; the answer then gets
    ``model=""`` and ``stop_reason=None`` rather than raising.
    """
    content = TextContent(type="text", text=text)
    try:
        return CreateMessageResult(
            role="assistant", content=content, model=model, stop_reason=stop_reason
        )
    except ValueError:  # pydantic's ValidationError is a ValueError
        return CreateMessageResult(role="assistant", content=content, model="", stop_reason=None)


def demux_reply(
    reply: CreateMessageResult | CreateMessageResultWithTools,
    n_tasks: int,
    *,
    max_chars: int | None = None,
) -> list[CreateMessageResult | TaskError]:
    """Give each of *n_tasks* tasks its own answer from the coalesced *reply*, or its own error.

    The reply should be the JSON array of ``{"task_index": int, "response":
    string}`` that :func:`build_batch_request` asks for, or the keyed object
    ``{"task_0": string, ...}``, but it may also be fenced, wrapped in prose
    or in an object, have trailing commas, or be truncated; see
    :doc:`/explanation/demux-rules` for every rule.

    Never raises, whatever the reply holds, and takes time linear in its size.

    Args:
        reply: The model's reply to the coalesced request.
        n_tasks: How many tasks the coalesced request held.
        max_chars: The longest reply text the batch could legitimately
            produce (see ``coalesce._reader.max_reply_chars``); a longer
            reply is refused without being parsed, every task getting a
            :class:`TaskError`. None: no limit.

    Returns:
        One entry per task, in task order: a ``CreateMessageResult`` holding
        that task's answer as one text block (with the reply's ``model`` and
        ``stop_reason``), or a :class:`TaskError` saying why it has none.
    """
    if n_tasks <= 0:
        return []
    model = getattr(reply, "model", "")
    stop_reason = getattr(reply, "stop_reason", None)
    return [
        outcome if isinstance(outcome, TaskError) else answer_result(outcome, model, stop_reason)
        for outcome in split_text(reply_text(reply), n_tasks, max_chars=max_chars)
    ]
