"""Read a coalesced reply as it arrives, releasing each task's answer the moment its entry closes.

:class:`ReplyReader` is fed the reply's text in chunks of any size (a whole
reply is one chunk). It tokenizes the JSON once, left to right, keeping its
nesting on an explicit stack. Only an escape sequence, or an opening, that
a chunk's end cut short is carried over to the next chunk (both are
short); a string or number that spans chunks is gathered piece by piece,
never read again. So each character is looked at a bounded number of times
whatever the reply holds, and where the chunks split the text never changes
the outcome.

The rules are in ``docs/explanation/demux-rules.rst``. In short: the text is
searched, at C speed (see :mod:`coalesce._patterns`), for the first opening
of a task array (a ``[`` whose first entry starts with its ``task_index`` or
``response`` key), of a wrapper round one, or of the keyed form
(``{"task_0": ...}``); nothing before it is tokenized. An array's direct
member objects are its entries, and only an entry whose closing brace
arrived is ever an answer. The first place where the JSON breaks ends the
reading.
"""

from __future__ import annotations

import json
import re
import sys
from json.decoder import scanstring  # type: ignore[attr-defined]  # (typeshed lacks it)
from typing import Final

from ._errors import EXCERPT_CHARS, TaskError, excerpt
from ._patterns import (
    ARRAY_RUN,
    CUT_OPENING,
    ENTRIES_RUN,
    LONGEST_OPENING,
    OBJECT_RUN,
    STRING_BODY,
    find_opening,
)

__all__ = ["MAX_DEPTH", "ReplyReader", "max_reply_chars"]

MAX_DEPTH: Final = 128
"""How deep JSON may nest in a reply (arrays and objects within each other) and still be read."""

CHARS_PER_TOKEN: Final = 16
"""Characters of reply text one token may give, JSON escaping included: generous on purpose."""

CHARS_ALLOWANCE: Final = 65_536
"""Characters any reply may have beyond :data:`CHARS_PER_TOKEN` per token (fences, prose, keys)."""

NO_ARRAY: Final = "the reply holds no JSON array"
NO_SINGLE_LIST: Final = "the reply's JSON object does not hold exactly one list"
TOO_DEEP: Final = "the reply's JSON nests too deeply to read"
CUT_OFF: Final = "the reply was cut off before this task"
TWO_ANSWERS: Final = "two different answers"
NO_RESPONSE: Final = "entry has no 'response'"
NULL_RESPONSE: Final = "entry's 'response' is null"
UNWRITABLE: Final = "entry's 'response' cannot be written as JSON text"

_MAX_INDEX_DIGITS: Final = 18
"""Longest task index written in digits that is converted (``int`` of more is slow)."""

_WS: Final = re.compile(r"[ \t\n\r]*")
_BODY: Final = re.compile(STRING_BODY)
_PART_ESCAPE: Final = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?\Z")
_ALL_BODY: Final = _BODY.fullmatch
_WORD: Final = re.compile(r"[0-9A-Za-z.+\-]*")
_WORD_START: Final = frozenset("-0123456789tfnNI")  # of a number or a literal
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_LITERALS: Final = frozenset({"true", "false", "null", "NaN", "Infinity", "-Infinity"})
_KEYED_KEY: Final = re.compile(r"task_([0-9]+)\Z")
_DECODER: Final = json.JSONDecoder(strict=False)

_RUNS: Final = (ARRAY_RUN, OBJECT_RUN, ENTRIES_RUN, None, None)
"""For each kind of frame, what skips a run of its members that no rule looks at.

None for an entry and a top-level object: every key of theirs counts.
"""

# What the tokenizer expects next.
_SEARCH, _VALUE, _ITEM, _KEY, _COLON, _NEXT, _STRING, _WORD_, _DONE = range(9)
# What a frame on the stack is: plain containers, or ones whose members matter.
_ARRAY, _OBJECT, _ENTRIES, _ENTRY, _TOP = range(5)
_IS_OBJECT: Final = (False, True, False, True, True)
# What a capture is for.
_CAP_KEY, _CAP_INDEX, _CAP_RESPONSE, _CAP_KEYED = range(4)


def max_reply_chars(max_tokens: int) -> int:
    """Return the longest reply text a call of *max_tokens* tokens could legitimately produce.

    Generous on purpose (:data:`CHARS_PER_TOKEN` characters per token, plus
    :data:`CHARS_ALLOWANCE`), so that no real reply reaches it: a longer
    reply is refused unparsed.
    """
    return CHARS_PER_TOKEN * max(max_tokens, 0) + CHARS_ALLOWANCE


def index_named(digits: str, n_tasks: int) -> int | None:
    """Return the task that a string of ASCII digits names, or None if it names none."""
    if not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0") or "0"
    if len(digits) > _MAX_INDEX_DIGITS:
        return None
    index = int(digits)
    return index if index < n_tasks else None


def task_index(value: str, n_tasks: int) -> int | None:
    """Return the task that a ``task_index`` value (its JSON text) names, or None.

    An integer names its task, and so does a string of ASCII digits ("3"),
    which some models write; ``true``, ``1.0``, negative or too large
    indexes name none.
    """
    if value.startswith('"'):
        return index_named(scanstring(value, 1, False)[0], n_tasks)
    return index_named("0" if value == "-0" else value, n_tasks)


def answer_of(value: str) -> tuple[str, bool]:
    """Return ``(answer, True)`` for a response's JSON text, or ``(reason, False)``.

    A string is the answer; any other JSON value is answered by its JSON text,
    written compactly with non-ASCII kept; ``null``, or a value too long or
    deep to write, is not an answer.
    """
    if value.startswith('"'):
        return scanstring(value, 1, False)[0], True
    if value == "null":
        return NULL_RESPONSE, False
    try:
        decoded = _DECODER.decode(value)
        return json.dumps(decoded, ensure_ascii=False, separators=(",", ":")), True
    except (ValueError, RecursionError):
        return UNWRITABLE, False


class ReplyReader:
    """Reads one coalesced reply of *n_tasks* tasks, fed in chunks.

    Args:
        n_tasks: How many tasks the coalesced request held.
        limit: The most characters the reply may have (see
            :func:`max_reply_chars`); past it, reading stops and every task
            not yet released gets a :class:`~coalesce.TaskError`.

    Attributes:
        steps: Tokenizer steps taken so far. Each consumes at least one
            character but for a candidate's start and end, so this counts the
            reader's work without a clock.
    """

    def __init__(self, n_tasks: int, *, limit: int | None = None) -> None:
        self.n_tasks = n_tasks
        self.limit = limit
        self.steps = 0
        self._max = sys.maxsize if limit is None else limit
        self._fed = 0  # characters fed
        self._head = ""  # the reply's first and latest characters, for excerpts
        self._tail: list[str] = []
        self._pending = ""  # an escape sequence that the chunk's end cut short
        self._offset = 0  # where in the reply the text being read starts
        self._state = _SEARCH
        self._ending = ""  # why the reading stopped, if not at the answer's end
        self._stack: list[int] = []
        self._found = False  # the candidate named a task: it is the answer
        self._lists = 0  # list members of a top-level object
        self._slot = -1  # what the value after the current key is captured for
        self._keyed = -1  # the task that a top-level object's current key names
        self._cap = -1  # where in the current text the capture began, or -1
        self._cap_kind = self._cap_depth = 0
        self._cap_parts: list[str] = []
        self._word: list[str] = []
        self._word_at = 0
        self._in_key = False
        self._keys: list[str] = []  # the current entry's keys, indexes and response
        self._indexes: list[str] = []
        self._response: str | None = None
        self._answers: dict[int, str] = {}
        self._problems: dict[int, str] = {}
        self._released: list[tuple[int, str]] = []

    def feed(self, chunk: str) -> list[tuple[int, str]]:
        """Feed the reply's next text chunk.

        Returns:
            ``(task_index, answer_text)`` for each entry that this chunk
            completed (its closing brace arrived) with a usable answer, the
            first time that task gets one, in reply order.
        """
        fed = self._fed
        self._fed = total = fed + len(chunk)
        tail = self._tail
        tail.append(chunk)
        if len(tail) > 64:
            self._tail = ["".join(tail)[-EXCERPT_CHARS:]]
        if fed < EXCERPT_CHARS:
            self._head = (self._head + chunk)[:EXCERPT_CHARS]
        pending = self._pending
        text = pending + chunk if pending else chunk
        known = -1  # where the string that the text starts inside ends, once found
        if self._state == _STRING and total <= self._max:
            # The common case while a long answer streams: the text is all string,
            # or all but an escape sequence that the chunk's end cut short.
            if _ALL_BODY(text) is not None:
                if pending:
                    self._pending = ""
                if self._cap >= 0:
                    self._cap_parts.append(text)
                return []
            known = _BODY.match(text).end()  # type: ignore[union-attr]
            if _PART_ESCAPE.match(text, known):
                self._pending = text[known:]
                if self._cap >= 0:
                    self._cap_parts.append(text[:known])
                return []
        if self._state == _DONE or not chunk:
            return []
        if total > self._max:
            self._state, self._ending = _DONE, self._too_long()
            return []
        released: list[tuple[int, str]] = []
        self._released = released
        consumed = self._run(text, total - len(text), known)
        self._pending = text[consumed:]
        return released

    def close(self) -> list[str | TaskError]:
        """The reply has ended: return every task's outcome, in task order.

        Each is the task's answer text or a :class:`~coalesce.TaskError`. This
        is the verdict on the whole reply: a task whose entries disagree gets
        an error here even if :meth:`feed` released its first answer.
        """
        if self._state == _DONE:
            ending = self._ending
        elif self._state == _SEARCH and not self._pending:  # no opening, not even a cut one
            ending = NO_ARRAY
        else:
            ending = CUT_OFF
        quote = self._head
        if self._fed > EXCERPT_CHARS:
            half = (EXCERPT_CHARS - 5) // 2
            quote = f"{quote[:half]} ... {''.join(self._tail)[-half:]}"
        everyone = NO_SINGLE_LIST if self._lists > 1 and self._found else ""
        outcomes: list[str | TaskError] = []
        for index in range(self.n_tasks):
            answer = self._answers.get(index)
            problem = everyone or self._problems.get(index)
            if answer is None and self._fed > self._max:
                problem = self._too_long()
            if problem:
                outcomes.append(TaskError(index, problem, quote))
            elif answer is not None:
                outcomes.append(answer)
            else:
                outcomes.append(TaskError(index, ending or f"no entry answers task {index}", quote))
        return outcomes

    def _too_long(self) -> str:
        return (
            f"the reply is longer than its batch could legitimately produce "
            f"({self._fed:,} characters; at most {self._max:,} expected)"
        )

    # -- Routing -------------------------------------------------------------------

    def _answer(self, index: int, value: str) -> None:
        """Record *value* (JSON text) as task *index*'s answer; release it if it is the first."""
        answer, usable = answer_of(value)
        known = self._answers.get(index)
        if not usable:
            self._problems.setdefault(index, answer)
        elif known is None:
            self._answers[index] = answer
            if index not in self._problems:
                self._released.append((index, answer))
        elif known != answer:
            self._problems.setdefault(index, TWO_ANSWERS)

    def _entry_done(self) -> None:
        """An entry's closing brace arrived: route it."""
        indexes = [task_index(value, self.n_tasks) for value in self._indexes]
        keys = self._keys
        if len(set(keys)) < len(keys):
            # Entries that ran together: every task they name is in doubt.
            seen: set[str] = set()
            for repeated in keys:
                if repeated in seen:
                    break
                seen.add(repeated)
            reason = f"entry repeats key {excerpt(repeated, 40)!r}"
            for index in indexes:
                if index is not None:
                    self._problems.setdefault(index, reason)
        elif indexes and indexes[0] is not None:
            if self._response is None:
                self._problems.setdefault(indexes[0], NO_RESPONSE)
            else:
                self._answer(indexes[0], self._response)

    def _key_done(self, key: str, frame: int) -> None:
        """A key of an entry or of a top-level object was read."""
        if frame == _ENTRY:
            self._keys.append(key)
            if key == "task_index":
                self._slot, self._found = _CAP_INDEX, True
            elif key == "response":
                self._slot = _CAP_RESPONSE
        elif (keyed := _KEYED_KEY.match(key)) is not None:
            self._found = True
            index = task_index(keyed[1], self.n_tasks)
            if index is not None:
                self._slot, self._keyed = _CAP_KEYED, index

    def _value_done(self, value: str) -> None:
        """The captured value ended: *value* is its JSON text."""
        if self._cap_kind == _CAP_INDEX:
            self._indexes.append(value)
        elif self._cap_kind == _CAP_RESPONSE:
            self._response = value
        else:
            self._answer(self._keyed, value)

    # -- The tokenizer -------------------------------------------------------------

    def _run(self, s: str, offset: int, known: int = -1) -> int:
        """Tokenize *s*, at *offset* in the reply, from where the last chunk left off.

        *known*, if not -1, is where the string that *s* starts inside ends
        (or breaks), already found by :meth:`feed`.

        Returns:
            How much of *s* was consumed; the rest is an escape sequence that
            the chunk's end cut short, read again with the next chunk.
        """
        self._offset = offset
        stack = self._stack
        state = self._state
        pos, end = 0, len(s)
        steps = 0
        while pos < end:
            steps += 1
            if state == _STRING:
                if known < 0:
                    body_end = _BODY.match(s, pos).end()  # type: ignore[union-attr]
                else:
                    body_end, known = known, -1
                if body_end == end:
                    pos = end
                elif s[body_end] == '"':
                    pos = body_end + 1
                    if self._in_key:
                        state = _COLON
                        if self._cap >= 0 and self._cap_kind == _CAP_KEY:
                            raw = self._captured(s, pos)
                            self._key_done(scanstring(raw, 1, False)[0], stack[-1])
                    else:
                        state = _NEXT
                        if self._cap >= 0 and len(stack) == self._cap_depth:
                            self._value_done(self._captured(s, pos))
                elif _PART_ESCAPE.match(s, body_end):
                    pos = body_end  # the rest is read again with the next chunk
                    break
                else:
                    state, pos = self._break(body_end)
                continue
            if state == _WORD_:
                word_end = _WORD.match(s, pos).end()  # type: ignore[union-attr]
                self._word.append(s[pos:word_end])
                pos = word_end
                if pos == end:
                    break
                word = "".join(self._word)
                self._word = []
                if word not in _LITERALS and _NUMBER.match(word) is None:
                    state, pos = self._break(pos, self._word_at)
                    continue
                state = _NEXT
                if self._cap >= 0 and len(stack) == self._cap_depth:
                    self._value_done(self._captured(s, pos))
                continue
            if state == _SEARCH:
                start = find_opening(s, pos)
                if start < 0:
                    # Keep what may be an opening that the chunk's end cut short.
                    cut = CUT_OPENING.search(s, max(pos, end - LONGEST_OPENING))
                    pos = end if cut is None else cut.start()
                    break
                pos = start + 1
                is_array = s[start] == "["
                stack.append(_ENTRIES if is_array else _TOP)
                self._found = False
                self._lists = 0
                state = _ITEM if is_array else _KEY
                continue
            if state == _DONE:
                pos = end
                break
            if state in (_ITEM, _KEY) and len(stack) < MAX_DEPTH:
                run = _RUNS[stack[-1]]
                if run is not None and (run_end := run(s, pos).end()) > pos:  # type: ignore[union-attr]
                    pos = run_end
                    continue
            char = s[pos]
            if char in " \t\n\r":
                pos = _WS.match(s, pos).end()  # type: ignore[union-attr]
            elif state == _NEXT:
                if char == ",":
                    state = _KEY if _IS_OBJECT[stack[-1]] else _ITEM
                    pos = _WS.match(s, pos + 1).end()  # type: ignore[union-attr]
                elif char in "]}":
                    state, pos = self._close(s, pos, char)
                else:
                    state, pos = self._break(pos)
            elif state == _KEY:
                if char == '"':
                    self._in_key = True
                    if stack[-1] in (_ENTRY, _TOP):
                        self._cap, self._cap_kind, self._cap_parts = pos, _CAP_KEY, []
                    self._slot = -1
                    state = _STRING
                    pos += 1
                elif char == "}":
                    state, pos = self._close(s, pos, char)
                else:
                    state, pos = self._break(pos)
            elif state == _COLON:
                if char == ":":
                    state = _VALUE
                    pos = _WS.match(s, pos + 1).end()  # type: ignore[union-attr]
                else:
                    state, pos = self._break(pos)
            elif char == "]" and state == _ITEM:
                state, pos = self._close(s, pos, char)
            else:  # a value starts here: capture it if it matters
                depth = len(stack)
                if self._slot >= 0:
                    self._cap, self._cap_kind, self._cap_depth = pos, self._slot, depth
                    self._cap_parts = []
                    self._slot = -1
                if char == '"':
                    self._in_key = False
                    state = _STRING
                    pos += 1
                elif char in _WORD_START:
                    self._word_at = offset + pos
                    state = _WORD_
                elif char not in "[{":
                    state, pos = self._break(pos)
                elif depth >= MAX_DEPTH:
                    state, pos = self._break(pos, reason=TOO_DEEP)
                elif char == "{":
                    if stack[-1] == _ENTRIES:
                        stack.append(_ENTRY)
                        self._keys, self._indexes, self._response = [], [], None
                    else:
                        stack.append(_OBJECT)
                    state = _KEY
                    pos += 1
                else:
                    if stack[-1] == _TOP and self._cap < 0:
                        self._lists += 1
                        stack.append(_ENTRIES if self._lists == 1 else _ARRAY)
                    else:
                        stack.append(_ARRAY)
                    state = _ITEM
                    pos += 1
        self.steps += steps
        self._state = state
        if self._cap >= 0:
            self._cap_parts.append(s[self._cap : pos])
            self._cap = 0
        return pos

    def _captured(self, s: str, stop: int) -> str:
        """End the capture at *stop* in *s*; return the text captured since it began."""
        start, self._cap = self._cap, -1
        if self._cap_parts:
            return "".join(self._cap_parts) + s[:stop]
        return s[start:stop]

    def _close(self, s: str, pos: int, char: str) -> tuple[int, int]:
        """Close the innermost container with *char* at *pos*; return the new state and position."""
        stack = self._stack
        frame = stack[-1]
        if _IS_OBJECT[frame] != (char == "}"):
            return self._break(pos)
        stack.pop()
        if frame == _ENTRY:
            self._entry_done()
        if not stack:
            if self._found:
                self._ending = ""
                return _DONE, len(s)
            return _SEARCH, pos + 1  # an array or object that is not the answer
        if self._cap >= 0 and len(stack) == self._cap_depth:
            self._value_done(self._captured(s, pos + 1))
        return _NEXT, pos + 1

    def _break(self, pos: int, where: int = -1, reason: str = "") -> tuple[int, int]:
        """The answer's JSON is malformed at *pos* (*where* in the reply), or nests too deep.

        Either ends the reading: the text after a break may be inside a string
        the model forgot to escape, so none of it is trusted.
        """
        where = where if where >= 0 else self._offset + pos
        self._ending = reason or f"the reply's JSON array breaks off at character {where}"
        return _DONE, pos
