"""The regular expressions that let the reply reader pass text at C speed.

Two kinds, each of which changes nothing but what the reader costs:

- **Openings.** The answer starts at the first :data:`OPENING`: a ``[``
  whose first entry starts with its ``task_index`` or ``response`` key
  (after at most four flat values in the array and four members with flat
  values in the entry), the same as an object's first member (the wrapper),
  or an object whose first key is ``task_<n>`` (the keyed form). Nothing
  before it is tokenized, so no prose or broken JSON before it costs more
  than a scan. Each part of an opening is bounded, so an opening that a
  chunk's end cut short is short; :data:`CUT_OPENING` finds it, and the
  reader keeps it for the next chunk, so where chunks split never matters.
- **Runs.** Inside the answer, members that no rule looks at (a scalar, a
  flat array or object; in the answer's array, an object with no
  ``task_index`` key), each followed by its comma, are skipped a run at a
  time. A run accepts exactly what the reader's tokenizer would accept,
  leaving it where the tokenizer would be: the fuzz targets check that
  reading whole (long runs) and in 7-character chunks (few) agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

__all__ = [
    "ARRAY_RUN",
    "CUT_OPENING",
    "ENTRIES_RUN",
    "KEY_HINT",
    "LONGEST_OPENING",
    "OBJECT_RUN",
    "OPENING",
    "STRING_BODY",
    "find_opening",
]

STRING_BODY: Final = r'[^"\\]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\]*+)*+'
"""A JSON string's body, up to its closing quote, a bad escape or the text's end."""

# -- Openings ---------------------------------------------------------------------

Part = tuple[str, str]
"""A part of an opening: its pattern, and a pattern for its proper prefixes (the empty one too)."""


def _prefixes(word: str) -> str:
    """Return a pattern matching every proper prefix of *word*, the empty one included."""
    pattern = ""
    for char in reversed(word[:-1]):
        pattern = f"(?:{re.escape(char)}{pattern})?"
    return pattern


def _literal(text: str) -> Part:
    return re.escape(text), _prefixes(text)


def _sequence(*parts: Part) -> Part:
    """The parts one after another; cut short, every part before the cut is whole."""
    cuts = ["".join(whole for whole, _ in parts[:at]) + cut for at, (_, cut) in enumerate(parts)]
    return "".join(whole for whole, _ in parts), f"(?:{'|'.join(cuts)})"


def _up_to_four(part: Part) -> Part:
    whole, cut = part
    return f"(?:{whole}){{0,4}}", f"(?:{whole}){{0,3}}{cut}"


_SPACE: Part = (r"[ \t\n\r]{0,100}",) * 2
_SHORT_STRING: Part = r'"[^"\\]{0,64}"', r'(?:"[^"\\]{0,64})?'
_SCALAR: Part = (
    r'(?:"[^"\\]{0,64}"|-?[0-9][0-9.eE+\-]{0,31}|true|false|null'
    r"|\[[^\[\]{}]{0,64}\]|\{[^\[\]{}]{0,128}\})",
    r'(?:"[^"\\]{0,64}|-?(?:[0-9][0-9.eE+\-]{0,31})?|[tfn][a-z]{0,3}'
    r"|\[[^\[\]{}]{0,64}|\{[^\[\]{}]{0,128})?",
)
_COMMA = _sequence(_SPACE, _literal(","), _SPACE)
_ENTRY_KEY: Part = (
    r'"(?:task_index|response)"',
    rf'(?:"(?:{_prefixes("task_index" + chr(34))}|{_prefixes("response" + chr(34))}))?',
)
_ARRAY_OPENING = _sequence(
    _literal("["),
    _SPACE,
    _up_to_four(_sequence(_SCALAR, _COMMA)),  # members before the first entry
    _literal("{"),
    _SPACE,
    _up_to_four(_sequence(_SHORT_STRING, _SPACE, _literal(":"), _SPACE, _SCALAR, _COMMA)),
    _ENTRY_KEY,
)
_KEYED_OPENING = _sequence(
    _literal("{"),
    _SPACE,
    (r'"task_[0-9]{1,32}"', rf'(?:"{_prefixes("task_")}|"task_[0-9]{{0,32}})?'),
)
_WRAPPER_OPENING = _sequence(
    _literal("{"), _SPACE, _SHORT_STRING, _SPACE, _literal(":"), _SPACE, _ARRAY_OPENING
)

OPENING: Final = re.compile(f"{_ARRAY_OPENING[0]}|{_KEYED_OPENING[0]}|{_WRAPPER_OPENING[0]}")
"""The opening of a task array, of a wrapper round one, or of a keyed object."""

CUT_OPENING: Final = re.compile(
    f"(?:{_ARRAY_OPENING[1]}|{_KEYED_OPENING[1]}|{_WRAPPER_OPENING[1]})\\Z"
)
"""What the text's end may have cut short of an :data:`OPENING` (and a little more)."""

LONGEST_OPENING: Final = 4400
"""More characters than any :data:`OPENING` can have."""

KEY_HINT: Final = re.compile(r'"(?:task_index"|response"|task_[0-9])')
"""The key that every :data:`OPENING` ends with: where to look for one."""


def find_opening(text: str, pos: int = 0) -> int:
    """Return where the first :data:`OPENING` at or after *pos* in *text* starts, or -1.

    An opening ends with a key that :data:`KEY_HINT` finds at C speed, so
    only the text before such a key is searched, and each character at most
    once: a place that opens nothing up to one key opens nothing up to a
    later one either, since no opening holds one of these keys before its last.
    """
    searched = pos
    while (key := KEY_HINT.search(text, searched)) is not None:
        opening = OPENING.search(text, max(searched, key.start() - LONGEST_OPENING), key.end() + 34)
        if opening is not None:
            return opening.start()
        searched = key.start() + 1
    return -1


# -- Runs -------------------------------------------------------------------------

_RUN_STRING: Final = rf'"{STRING_BODY}"'
# No lookahead for a word's end: in a run, a word is followed by spaces and a
# comma (or the flat value's end), so "1x" or "0123" never makes a member.
# The alternatives are flat, most common first: Python's regular expressions
# are markedly faster so.
_RUN_SCALARS: Final = (
    r"(?:[1-9][0-9]*+|0|-(?:[1-9][0-9]*+|0))(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+",
    _RUN_STRING,
    "true",
    "false",
    "null",
    "NaN",
    "-?+Infinity",
)
_RUN_SCALAR: Final = f"(?:{'|'.join(_RUN_SCALARS)})"
_W: Final = r"[ \t\n\r]*+"


def _flat(opener: str, member: str, closer: str) -> str:
    return rf"\{opener}{_W}(?:{member}{_W},{_W})*+(?:{member}{_W})?+\{closer}"


_FLAT_ARRAY: Final = _flat("[", _RUN_SCALAR, "]")
_FLAT_OBJECT: Final = _flat("{", f"{_RUN_STRING}{_W}:{_W}{_RUN_SCALAR}", "}")
_UNNAMED_ENTRY: Final = _flat("{", rf'"(?!task_index")[^"\\]*+"{_W}:{_W}{_RUN_SCALAR}', "}")


def _run(*items: str) -> re.Pattern[str]:
    return re.compile(rf"(?:(?:{'|'.join(items)}){_W},{_W})*+")


RunMatch = Callable[[str, int], "re.Match[str] | None"]
"""A compiled run's ``match``: from a position, the run there (always a match, maybe empty)."""

ARRAY_RUN: Final[RunMatch] = _run(*_RUN_SCALARS, _FLAT_ARRAY, _FLAT_OBJECT).match
"""Members of an array that no rule looks at."""

OBJECT_RUN: Final[RunMatch] = _run(
    rf"{_RUN_STRING}{_W}:{_W}(?:{_RUN_SCALAR}|{_FLAT_ARRAY}|{_FLAT_OBJECT})"
).match
"""Members of an object (not an entry) that no rule looks at."""

ENTRIES_RUN: Final[RunMatch] = _run(*_RUN_SCALARS, _FLAT_ARRAY, _UNNAMED_ENTRY).match
"""Members of the answer's array that name no task."""
