"""Find the JSON array of task entries in a model's reply, in time linear in its size.

A model asked for a JSON array does not always give a bare one: it may fence
it in Markdown, chat before and after it, wrap it in an object, leave trailing
commas, or run out of tokens half-way through it. :func:`read_array` reads all
of these, and never raises on anything a model could send.

Model replies are untrusted, so the work is bounded by the size of the
reply: the text is scanned forward for places where an array could start
(``[`` then a JSON value), each such candidate is read forward from its
start at most once, and the whole search stops when it has examined
:data:`WORK_FACTOR` times the reply's size (each step counts what it
examined, including the line counting that a :class:`json.JSONDecodeError`
does). Values are decoded by the C scanner of the standard
:mod:`json` module one at a time, so a deeply nested value raises (and we
catch) ``RecursionError`` instead of recursing here.

:class:`Work` counts what a read costs, so the tests can check that it grows
linearly with the reply, without timing anything.
"""

from __future__ import annotations

import enum
import json
import json.scanner
import re
from collections.abc import Callable
from typing import Any, Final, cast

import attrs

__all__ = [
    "MAX_DEPTH",
    "WORK_FACTOR",
    "WORK_LIMIT_FACTOR",
    "WORK_SLACK",
    "Ending",
    "Found",
    "HugeInt",
    "NotFound",
    "RepeatedKeys",
    "Work",
    "nests_deeper_than",
    "read_array",
]

WORK_FACTOR: Final = 12
"""How many times its own size in characters the search may examine, per reply.

Every candidate is read forward from where it starts, but a candidate that
turns out not to be the array is followed by the next ``[`` after its start,
which may lie inside what was just read (the array of entries can be nested
in a malformed wrapper). Each step of the search adds what it examined to
:attr:`Work.chars`, and the search gives up when that passes this many times
the reply's size (plus :data:`WORK_SLACK`), so it is linear whatever the
reply. A well-formed reply, fenced, chatty or truncated, needs a few times
its size at most.
"""

WORK_SLACK: Final = 4096
"""Characters the search may examine beyond :data:`WORK_FACTOR` times the reply's size."""

WORK_LIMIT_FACTOR: Final = WORK_FACTOR + 8
"""What a whole read examines at most, in times the reply's size (plus :data:`WORK_SLACK`).

The budget is checked before each decode, so a read may go past it by what
one decode and the steps around it examine (a decoding error counts the
lines before it, and the rest of a string it could not close), plus the
fast path's own decode of the whole text.
"""

PRETRY_LIMIT: Final = 2
"""How many candidates are first tried whole by the C decoder, before piece by piece.

Trying the whole array at once reads a fenced or chatty but well-formed reply
at C speed; a candidate that fails that try is read again piece by piece. The
limit keeps a reply full of broken candidates from paying a failed try for
each of them.
"""

MAX_DEPTH: Final = 128
"""How deep JSON may nest in a reply (arrays and objects within each other) and still be read.

The C decoder recurses once per level and raises ``RecursionError`` at a
depth that depends on how deep the caller's own stack already is, so without
a limit of our own the same reply could be read at one call site and not at
another. Anything that nests deeper than this is treated as if the decoder
had given up on it, wherever the demux is called from (unless the caller's
stack is already within this many frames of the recursion limit).
"""

NO_ARRAY: Final = "the reply holds no JSON array"
NO_SINGLE_LIST: Final = "the reply's JSON object does not hold exactly one list"
TOO_DEEP: Final = "the reply's JSON nests too deeply to read"
GAVE_UP: Final = "the reply holds no readable JSON array (too many malformed brackets)"

_WS_CHARS: Final = " \t\n\r"
_WS: Final = re.compile(r"[ \t\n\r]*")
# Where an array of entries could start: "[" then the start of a JSON value
# (for an object, its first key's quote or its "}"), or the end of a reply cut
# off right there. Not "[" then a letter: that is prose ("[as asked]").
_CANDIDATE: Final = re.compile(
    r"\[[ \t\n\r]*(?:\{[ \t\n\r]*(?:[\"}]|\Z)|[\"\[\-0-9]|true|false|null|\Z)"
)
# What a JSON literal (or a number's sign) looks like when the text ends inside it.
_LITERALS: Final = ("true", "false", "null", "NaN", "Infinity", "-Infinity")
# What the C scanner sees between a value's start and where it failed: whole
# strings (whose brackets do not count) and brackets.
_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class RepeatedKeys(dict[str, Any]):
    """A JSON object that names some key more than once.

    The last value of each key wins, as in :func:`json.loads`; the object also
    keeps every member in order, so that the demux can tell which task
    indexes an entry named (two entries that ran together name two).

    Attributes:
        pairs: Every ``(key, value)`` member, in order, repeats included.
        repeated: The first key that appeared a second time.
    """

    __slots__ = ("pairs", "repeated")

    pairs: list[tuple[str, Any]]
    repeated: str

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                self.repeated = key
                break
            seen.add(key)


@attrs.frozen
class HugeInt:
    """An integer literal longer than :func:`int` converts (``sys.int_info``'s digit limit).

    Kept as its text so that reading a reply never fails on it; it is neither
    a task index nor writable as a response.
    """

    literal: str
    """The digits, as the reply gave them."""


def object_from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, as a :class:`RepeatedKeys` if a key repeats.

    Used as the decoder's ``object_pairs_hook``, so that an entry that names
    ``response`` twice is caught instead of silently keeping the last one.
    """
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    return RepeatedKeys(pairs)


def parse_int(literal: str) -> int | HugeInt:
    """Convert a JSON integer literal, keeping one too long for :func:`int` as text."""
    try:
        return int(literal)
    except ValueError:
        return HugeInt(literal)


DECODER: Final = json.JSONDecoder(
    object_pairs_hook=object_from_pairs, parse_int=parse_int, strict=False
)
"""Decodes replies: repeated keys marked, huge integers kept, raw control characters allowed.

``strict=False`` accepts a raw newline inside a string, which models write
often; the newline is then part of the text they gave.
"""

# typeshed types make_scanner's argument as a scanner; any decoder-like context is what it takes.
_scan_once: Final[Callable[[str, int], tuple[Any, int]]] = json.scanner.make_scanner(
    cast("Any", DECODER)
)
"""Decodes one JSON value at an index; raises ``StopIteration`` (cheap) if none starts there."""


@attrs.define
class Work:
    """What reading one reply cost, counted so that tests can check it grows linearly.

    Attributes:
        decode_calls: How many times a JSON value was decoded (by the C scanner).
        decode_failures: How many of those raised :class:`json.JSONDecodeError`.
        chars: Characters examined by every scan, decode and error report, added up.
    """

    decode_calls: int = 0
    decode_failures: int = 0
    chars: int = 0


class Ending(enum.Enum):
    """How the array that was found ends."""

    COMPLETE = "complete"
    """The array is closed; anything after it is ignored."""
    CUT_OFF = "cut off"
    """The reply ends inside the array: the model ran out of tokens."""
    BROKEN = "broken"
    """The array is malformed after its leading entries."""


@attrs.frozen
class Found:
    """The array of entries that a reply holds, or its readable leading part.

    Attributes:
        entries: The array's complete elements, in order. A truncated or
            malformed element is left out, never guessed at.
        ending: Whether the array is complete, cut off, or broken.
        where: The index in the reply's text where the array ended or broke.
    """

    entries: list[Any]
    ending: Ending
    where: int


@attrs.frozen
class NotFound:
    """The reply holds no array of entries that can be read.

    Attributes:
        reason: Why, in a few words.
    """

    reason: str


class _CutOff(Exception):
    """The text ended inside the candidate."""


class _Broken(Exception):
    """The candidate is malformed at ``where``."""

    def __init__(self, where: int) -> None:
        super().__init__(where)
        self.where = where


class _GiveUp(Exception):
    """The search has used up its work budget."""


class _TooDeep(Exception):
    """The value at ``where`` nests deeper than :data:`MAX_DEPTH`."""

    def __init__(self, where: int) -> None:
        super().__init__(where)
        self.where = where


def read_array(text: str, work: Work | None = None) -> Found | NotFound:
    """Find the JSON array of task entries in *text*.

    First the whole (stripped) text is decoded as JSON, which is all a
    well-behaved reply needs: a bare array, or an object with a single list
    member, is the answer. Only if that fails, the text is searched for an
    array, which may be fenced, surrounded by prose, truncated, or have
    trailing commas. The first array that holds an object with
    a ``task_index`` member (or that the text ends inside) is the answer.

    Args:
        text: The reply's text.
        work: Counts the work done, if given.

    Returns:
        The array found, with how it ends, or why none was found.
    """
    if work is None:
        work = Work()
    stripped = text.strip()
    work.decode_calls += 1
    work.chars += len(stripped)
    try:
        value = DECODER.decode(stripped)
    except json.JSONDecodeError as error:
        work.decode_failures += 1
        work.chars += error.pos
    except RecursionError:
        # The search meets the same nesting, and says so (deterministically).
        pass
    else:
        if not nests_deeper_than(value, MAX_DEPTH):
            return _from_value(value)
    return _Search(text, work).run()


def nests_deeper_than(value: object, limit: int) -> bool:
    """Tell whether *value* nests lists and dicts more than *limit* levels deep.

    Iterative, so that it cannot itself recurse too deep, and it only visits
    lists and dicts, so a list of flat entries costs little.
    """
    if not isinstance(value, (list, dict)):
        return False
    stack: list[tuple[list[Any] | dict[str, Any], int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return True
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


def _from_value(value: object) -> Found | NotFound:
    """Take the entries out of a reply that was valid JSON as a whole."""
    if isinstance(value, list):
        return Found(value, Ending.COMPLETE, 0)
    if isinstance(value, dict):
        members = value.pairs if isinstance(value, RepeatedKeys) else value.items()
        lists = [member for _, member in members if isinstance(member, list)]
        if len(lists) == 1:
            return Found(lists[0], Ending.COMPLETE, 0)
        return NotFound(NO_SINGLE_LIST)
    return NotFound(NO_ARRAY)


def _has_entry(entries: list[Any]) -> bool:
    """Tell whether *entries* holds an object that names a task, i.e. looks like the answer."""
    return any(isinstance(entry, dict) and "task_index" in entry for entry in entries)


class _Search:
    """One forward search of a reply's text for its array of entries."""

    def __init__(self, text: str, work: Work) -> None:
        self.text = text
        self.end = len(text)
        self.work = work
        self.budget = work.chars + WORK_FACTOR * self.end + WORK_SLACK

    def run(self) -> Found | NotFound:
        """Try each candidate in turn, within the work budget."""
        try:
            return self._run()
        except _GiveUp:
            return NotFound(GAVE_UP)

    def _run(self) -> Found | NotFound:
        text, work = self.text, self.work
        pos = 0
        tried = 0
        while True:
            if work.chars > self.budget:
                raise _GiveUp
            match = _CANDIDATE.search(text, pos)
            if match is None:
                work.chars += self.end - pos
                return NotFound(NO_ARRAY)
            work.chars += match.end() - pos
            start = match.start()
            # The next candidate starts after this one's "[", maybe inside it.
            pos = start + 1
            if tried < PRETRY_LIMIT:
                tried += 1
                whole = self._whole(start)
                if whole is not None:
                    if _has_entry(whole[0]):
                        return Found(whole[0], Ending.COMPLETE, whole[1])
                    continue
            entries: list[Any] = []
            try:
                where = self._array(start, entries)
            except _CutOff:
                return Found(entries, Ending.CUT_OFF, self.end)
            except _Broken as broken:
                if _has_entry(entries):
                    return Found(entries, Ending.BROKEN, broken.where)
                continue
            except _TooDeep as deep:
                if _has_entry(entries):
                    return Found(entries, Ending.BROKEN, deep.where)
                return NotFound(TOO_DEEP)
            if _has_entry(entries):
                return Found(entries, Ending.COMPLETE, where)

    def _whole(self, start: int) -> tuple[list[Any], int] | None:
        """Decode the candidate at *start* whole, at C speed; None if it is not valid JSON."""
        try:
            value, end = self._decode(start, attempt=True)
        except (_CutOff, _Broken, _TooDeep):
            return None
        if not isinstance(value, list):
            # The C scanner read "[" as the start of a list, so this is unreachable.
            return None
        return value, end

    def _skip(self, i: int) -> int:
        """Return the index of the first non-whitespace character at or after *i*."""
        if i < self.end and self.text[i] in _WS_CHARS:
            match = _WS.match(self.text, i)
            if match is not None:
                self.work.chars += match.end() - i
                return match.end()
        return i

    def _array(self, start: int, entries: list[Any]) -> int:
        """Read the array at *start* piece by piece into *entries*; return the index after it.

        Tolerates trailing commas. Raises ``_CutOff``, ``_Broken`` or
        ``_TooDeep``, with *entries* holding the complete elements read
        before that.

        Each entry is first decoded whole by the C scanner, which is several
        times faster than reading it member by member; after the first entry
        that fails that (a trailing comma inside it, or the cut), the rest
        are read member by member, so that at most one decoding error is
        paid for.
        """
        text, end = self.text, self.end
        i = start + 1
        whole = True
        while True:
            i = self._skip(i)
            if i >= end:
                raise _CutOff
            char = text[i]
            if char == "]":
                return i + 1
            if char != "{":
                value, i = self._decode(i, 1)
            elif whole:
                try:
                    value, i = self._decode(i, 1, attempt=True)
                except (_CutOff, _Broken, _TooDeep):
                    whole = False
                    value, i = self._object(i)
            else:
                value, i = self._object(i)
            entries.append(value)
            i = self._skip(i)
            if i >= end:
                raise _CutOff
            char = text[i]
            if char == ",":
                i += 1
            elif char == "]":
                return i + 1
            else:
                raise _Broken(i)

    def _object(self, start: int) -> tuple[dict[str, Any], int]:
        """Read the object at *start* member by member, tolerating a trailing comma."""
        text, end = self.text, self.end
        pairs: list[tuple[str, Any]] = []
        i = start + 1
        while True:
            i = self._skip(i)
            if i >= end:
                raise _CutOff
            char = text[i]
            if char == "}":
                return object_from_pairs(pairs), i + 1
            if char != '"':
                raise _Broken(i)
            key, i = self._decode(i, 2)
            i = self._skip(i)
            if i >= end:
                raise _CutOff
            if text[i] != ":":
                raise _Broken(i)
            value, i = self._decode(self._skip(i + 1), 2)
            pairs.append((key, value))
            i = self._skip(i)
            if i >= end:
                raise _CutOff
            char = text[i]
            if char == ",":
                i += 1
            elif char == "}":
                return object_from_pairs(pairs), i + 1
            else:
                raise _Broken(i)

    def _decode(self, i: int, level: int = 0, *, attempt: bool = False) -> tuple[Any, int]:
        """Decode the one JSON value at *i* with the C scanner, mapping its failures.

        Whether the C scanner recurses too deep depends on the caller's
        stack, so any value that nests deeper than :data:`MAX_DEPTH` (less
        the *level* it is at in the candidate array: 1 for an entry, 2 for a
        member of one) is ``_TooDeep`` however the scanner ended: in
        ``RecursionError``, in success, or in a syntax error (or the text's
        end) reached below that depth. The result is then the same from any
        call site. An *attempt* (a whole array or entry, read again piece by
        piece if it fails) skips that check on failure: any failure leads to
        the same place.
        """
        text, end, work = self.text, self.end, self.work
        if i >= end:
            raise _CutOff
        if work.chars > self.budget:
            raise _GiveUp
        work.decode_calls += 1
        try:
            value, after = _scan_once(text, i)
        except StopIteration as stop:
            # Nothing decodable at stop.value (maybe nested below i).
            failed_at: int = stop.value
            work.chars += failed_at - i + 1
            if not attempt:
                self._check_depth(i, failed_at, level)
            if failed_at == i and end - i <= len("-Infinity") and _is_literal_prefix(text[i:]):
                raise _CutOff from None
            raise _Broken(failed_at) from None
        except json.JSONDecodeError as error:
            work.decode_failures += 1
            # Building the error counted the lines before error.pos.
            work.chars += error.pos + error.pos - i
            if not attempt:
                self._check_depth(i, error.pos, level)
            if error.msg.startswith("Unterminated string"):
                work.chars += end - error.pos
                raise _CutOff from None
            if self._skip(error.pos) >= end or (
                error.msg.startswith("Invalid \\uXXXX escape") and end - error.pos <= 6
            ):
                raise _CutOff from None
            raise _Broken(error.pos) from None
        except RecursionError:
            # The scanner read an unknown part of the rest before giving up.
            work.chars += end - i
            raise _TooDeep(i) from None
        work.chars += after - i
        if nests_deeper_than(value, MAX_DEPTH - level):
            raise _TooDeep(i)
        return value, after

    def _check_depth(self, start: int, stop: int, level: int) -> None:
        """Raise ``_TooDeep`` if the scanner went below :data:`MAX_DEPTH` in *start*:*stop*."""
        text = self.text
        if text.count("[", start, stop) + text.count("{", start, stop) <= MAX_DEPTH - level:
            return
        self.work.chars += stop - start
        depth = 0
        for token in _TOKEN.finditer(text, start, stop):
            char = text[token.start()]
            if char in "[{":
                depth += 1
                if depth > MAX_DEPTH - level:
                    raise _TooDeep(start)
            elif char in "]}":
                depth -= 1


def _is_literal_prefix(rest: str) -> bool:
    """Tell whether *rest* is the start of a JSON literal that the text's end cut short."""
    return any(literal.startswith(rest) for literal in _LITERALS)
