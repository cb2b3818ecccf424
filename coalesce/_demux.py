"""Split a coalesced reply into each task's own answer: the inbound half of the core.

Pure: no I/O, no clock, no global state. Model replies are untrusted input, so
:func:`demux_reply` never raises, whatever the reply holds, and takes time
linear in the reply's size. The rules it applies, with an example each, are in
``docs/explanation/demux-rules.rst``; :mod:`coalesce._jsonscan` finds the
array, and this module routes its entries to their tasks.

The one rule above all others: an answer is only ever the text that the reply
gave for that task's index. Anything doubtful (two different answers, an entry
that repeats a key, a missing response) becomes that task's
:class:`~coalesce.TaskError`, never a guess.
"""

from __future__ import annotations

import json
from typing import Any, Final

from mcp_types import CreateMessageResult, CreateMessageResultWithTools, TextContent

from ._errors import TaskError, excerpt
from ._jsonscan import Ending, NotFound, RepeatedKeys, Work, read_array

__all__ = ["demux_reply", "reply_text", "split_text"]

_MAX_INDEX_DIGITS: Final = 18
"""Longest task index written as a string of digits that is converted (``int`` of more is slow)."""

CUT_OFF: Final = "the reply was cut off before this task"
TWO_ANSWERS: Final = "two different answers"
NO_RESPONSE: Final = "entry has no 'response'"
NULL_RESPONSE: Final = "entry's 'response' is null"
UNWRITABLE: Final = "entry's 'response' cannot be written as JSON text"


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


def _task_index(value: object, n_tasks: int) -> int | None:
    """Return the task *value* names, or None if it names none of the *n_tasks*.

    An int names its task, and so does a string of ASCII digits ("3"), which
    some models write; a bool is not an int here, and a negative or too large
    index names no task.
    """
    if type(value) is int:
        return value if 0 <= value < n_tasks else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        digits = value.lstrip("0") or "0"
        if len(digits) <= _MAX_INDEX_DIGITS:
            index = int(digits)
            return index if index < n_tasks else None
    return None


def _json_text(value: object) -> str | None:
    """Return *value*'s compact JSON text, or None if it cannot be written.

    A response that is not a string (a number, an object) is the JSON text
    the model gave, written compactly and without escaping non-ASCII. An
    integer too long to convert, or nesting too deep to write, cannot be.
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None


def split_text(text: str, n_tasks: int, work: Work | None = None) -> list[str | TaskError]:
    """Give each of *n_tasks* tasks its answer's text from the reply's *text*, or its error.

    This is :func:`demux_reply` on plain text, for the tests and fuzz targets
    as much as for it.

    Args:
        text: The coalesced reply's text.
        n_tasks: How many tasks the coalesced request held.
        work: Counts the work done, if given (see :class:`~coalesce._jsonscan.Work`).

    Returns:
        One entry per task, in task order: the text the reply gave for that
        task, or a :class:`~coalesce.TaskError` naming the task.
    """
    if n_tasks <= 0:
        return []
    quote = excerpt(text)
    found = read_array(text, work)
    if isinstance(found, NotFound):
        return [TaskError(index, found.reason, quote) for index in range(n_tasks)]
    answers: dict[int, str] = {}
    problems: dict[int, str] = {}
    for entry in found.entries:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry, RepeatedKeys):
            # Entries that ran together: every task they name is in doubt.
            # The key is the model's text: quote a short excerpt of it only.
            reason = f"entry repeats key {excerpt(entry.repeated, 40)!r}"
            for key, value in entry.pairs:
                index = _task_index(value, n_tasks) if key == "task_index" else None
                if index is not None:
                    problems.setdefault(index, reason)
            continue
        index = _task_index(entry.get("task_index"), n_tasks)
        if index is None:
            continue
        response = entry.get("response")
        if response is None:
            problems.setdefault(index, NULL_RESPONSE if "response" in entry else NO_RESPONSE)
            continue
        answer = response if isinstance(response, str) else _json_text(response)
        if answer is None:
            problems.setdefault(index, UNWRITABLE)
            continue
        if answers.setdefault(index, answer) != answer:
            problems.setdefault(index, TWO_ANSWERS)
    if found.ending is Ending.CUT_OFF:
        absent = CUT_OFF
    elif found.ending is Ending.BROKEN:
        absent = f"the reply's JSON array breaks off at character {found.where}"
    else:
        absent = ""
    results: list[str | TaskError] = []
    for index in range(n_tasks):
        if index in problems:
            results.append(TaskError(index, problems[index], quote))
        elif index in answers:
            results.append(answers[index])
        else:
            results.append(TaskError(index, absent or f"no entry answers task {index}", quote))
    return results


def _answer(text: str, model: Any, stop_reason: Any) -> CreateMessageResult:
    """Build one task's answer: the assistant's *text*, from the coalesced reply's model.

    Validated construction is the cheap way here: with pydantic 2.14,
    ``model_construct`` (a Python loop over the fields) costs about three
    times as much as validation (done in Rust) for these two small models. A
    reply that was itself built without validation may hold a ``model`` or
    ``stop_reason`` that fails validation; its answers are then constructed
    without it, rather than raising.
    """
    content = TextContent(type="text", text=text)
    try:
        return CreateMessageResult(
            role="assistant", content=content, model=model, stop_reason=stop_reason
        )
    except ValueError:  # pydantic's ValidationError is a ValueError
        return CreateMessageResult.model_construct(
            role="assistant", content=content, model=model, stop_reason=stop_reason
        )


def demux_reply(
    reply: CreateMessageResult | CreateMessageResultWithTools, n_tasks: int
) -> list[CreateMessageResult | TaskError]:
    """Give each of *n_tasks* tasks its own answer from the coalesced *reply*, or its own error.

    The reply should be the JSON array of ``{"task_index": int, "response":
    string}`` that :func:`build_batch_request` asks for, but it may also be
    fenced, wrapped in prose or in an object, have trailing commas, or be
    truncated; see :doc:`/explanation/demux-rules` for every rule.

    Never raises, whatever the reply holds, and takes time linear in its size.

    Args:
        reply: The model's reply to the coalesced request.
        n_tasks: How many tasks the coalesced request held.

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
        outcome if isinstance(outcome, TaskError) else _answer(outcome, model, stop_reason)
        for outcome in split_text(reply_text(reply), n_tasks)
    ]
