"""What every fuzz input must satisfy, shared by the hypothesis and atheris targets.

The checks hold for any input, so they need no knowledge of what the reply
was meant to say: no exception escapes, there is exactly one outcome per task,
each error names its own task, and an answer is only ever text the reply gave
(a JSON value written in it) for that task's index (which the reply names).
"""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CreateMessageResult, TextContent

from coalesce import TaskError, demux_reply
from coalesce._demux import split_text
from coalesce._reader import ReplyReader

__all__ = ["ORACLE_LIMIT", "check_reply_text", "decode_input", "gave", "read_in_chunks"]

ORACLE_LIMIT = 4096
"""Longest text whose answers are checked against every JSON value in it (quadratic)."""

_PLAIN = json.JSONDecoder(strict=False)
_VALUE_STARTS = frozenset('"{[-0123456789tfnNI')


def decode_input(data: bytes) -> str:
    """Turn fuzz bytes into a reply's text: invalid UTF-8 becomes lone surrogates."""
    return data.decode("utf-8", errors="surrogateescape")


def _compact(value: Any) -> str | None:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None


def gave(text: str, index: int, answer: str) -> bool:
    """Tell whether *text* names *index* and writes *answer* as a JSON value somewhere.

    An independent, slow oracle: it decodes a JSON value at every place one
    could start, with the plain standard decoder.
    """
    if str(index) not in text:
        return False
    for written in (
        json.dumps(answer, ensure_ascii=False),
        json.dumps(answer),
    ):
        if written in text:
            return True
    for start, char in enumerate(text):
        if char not in _VALUE_STARTS:
            continue
        try:
            value, _ = _PLAIN.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if value == answer and isinstance(value, str):
            return True
        if not isinstance(value, str) and _compact(value) == answer:
            return True
    return False


def read_in_chunks(text: str, n_tasks: int, cuts: list[int]) -> list[str | TaskError]:
    """Feed *text* to a reader split at *cuts*; check what it released against its verdict."""
    reader = ReplyReader(n_tasks)
    released: list[tuple[int, str]] = []
    for start, stop in zip([0, *cuts], [*cuts, len(text)], strict=True):
        released += reader.feed(text[start:stop])
    # Linear: each step consumes a character, but for a candidate's start and end.
    assert reader.steps <= 2 * len(text) + 10, (reader.steps, len(text))
    outcomes = reader.close()
    indexes = [index for index, _ in released]
    assert len(indexes) == len(set(indexes)), released
    for index, answer in released:
        # A released answer is the verdict, unless a later entry disagreed with it.
        outcome = outcomes[index]
        assert outcome == answer or isinstance(outcome, TaskError), (index, answer, outcome)
        if len(text) <= ORACLE_LIMIT:
            assert gave(text, index, answer), (index, answer, text)
    return outcomes


def check_reply_text(
    text: str, n_tasks: int, cuts: list[int] | None = None
) -> list[str | TaskError]:
    """Demux *text* for *n_tasks* tasks and check every invariant that holds for any input.

    The text is read whole, and fed to a reader in chunks split at *cuts*
    (sorted positions in *text*; by default every 7 characters), which must
    give the same outcomes.
    """
    outcomes = split_text(text, n_tasks)
    assert len(outcomes) == max(n_tasks, 0)
    if cuts is None:
        cuts = list(range(7, len(text), 7))
    assert read_in_chunks(text, n_tasks, cuts) == outcomes
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, TaskError):
            assert outcome.task_index == index, (index, outcome)
            assert len(outcome.reply_excerpt) <= 200
        else:
            assert isinstance(outcome, str)
            if len(text) <= ORACLE_LIMIT:
                assert gave(text, index, outcome), (index, outcome, text)
    content = TextContent(type="text", text=text)
    reply = CreateMessageResult(role="assistant", content=content, model="m")
    results = demux_reply(reply, n_tasks)
    for outcome, result in zip(outcomes, results, strict=True):
        if isinstance(outcome, TaskError):
            assert result == outcome
        else:
            assert isinstance(result, CreateMessageResult)
            assert result.content == TextContent(type="text", text=outcome)
    return outcomes
