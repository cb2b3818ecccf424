"""Hypothesis strategies shared by the tests: requests, answers, and model replies.

A model reply here is what a model might plausibly send back for a coalesced
request: the JSON array of entries, shuffled, with some entries dropped or
repeated, maybe fenced, wrapped in an object or in chatty prose, with trailing
commas, maybe cut off. Each :class:`ModelReply` knows the truth about itself,
so a test can check that every task got exactly its own answer or an error.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import attrs
from hypothesis import strategies as st
from mcp.types import CreateMessageRequestParams, SamplingMessage, TextContent

__all__ = [
    "ModelReply",
    "answer_texts",
    "json_values",
    "model_replies",
    "prose",
    "request_lists",
    "text_requests",
]

answer_texts = st.one_of(
    st.text(),
    st.text(st.characters(categories=["Cs", "Cc", "Zs", "Lo", "So", "Po"])),
    st.sampled_from(['"', "\\", "\\u00e9", "```", "[{", "}]", '"},{"task_index":1,"response":"']),
)
"""Any unicode text, lone surrogates, control characters and JSON look-alikes included."""

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
"""Arbitrary JSON data (no NaN or infinities, which JSON cannot write)."""

_OPENS_A_VALUE = re.compile(r'\[[\s\[]*(?:["{]|\Z)')

prose = st.text(
    alphabet=st.sampled_from(list("Here are the results [as asked] (1) 2. Hope this helps!'\"\n")),
    max_size=40,
).filter(lambda text: _OPENS_A_VALUE.search(text) is None)
"""Chatty text around a reply, with brackets and quotes, but never one that opens a JSON value.

A ``[`` then (maybe after spaces) a quote, a ``{`` or the prose's end would
open an array whose string or object runs into the real reply: a different
reply, not the same reply with prose around it. (The reader reads each
character once, so it does not go back to look for an array inside a
broken one.)
"""


@st.composite
def text_requests(draw: st.DrawFn) -> CreateMessageRequestParams:
    """A text-only sampling request that can share a coalesced call.

    Its conversation has one to three messages, each one text block or a list
    of them; it may have its own system prompt. The settings that coalesced
    requests must agree on are left at their defaults.
    """
    messages = []
    for _ in range(draw(st.integers(1, 3))):
        texts = draw(st.lists(answer_texts, min_size=1, max_size=2))
        blocks = [TextContent(type="text", text=text) for text in texts]
        role: Literal["user", "assistant"] = draw(st.sampled_from(["user", "assistant"]))
        if len(blocks) == 1 and draw(st.booleans()):
            messages.append(SamplingMessage(role=role, content=blocks[0]))
        else:
            messages.append(SamplingMessage(role=role, content=list[Any](blocks)))
    return CreateMessageRequestParams(
        messages=messages,
        system_prompt=draw(st.none() | st.text(max_size=20)),
        max_tokens=draw(st.integers(1, 4096)),
    )


def request_lists(min_size: int = 1, max_size: int = 6) -> st.SearchStrategy[list[Any]]:
    """Lists of :func:`text_requests` that :func:`coalesce.build_batch_request` accepts."""
    return st.lists(text_requests(), min_size=min_size, max_size=max_size)


@attrs.frozen
class ModelReply:
    """A model's reply to a coalesced request, with the truth about it.

    Attributes:
        text: The reply's text.
        given: For each task index the reply has a well-formed entry for, the
            answer's text that entry gives.
        conflicted: Indexes that the reply answers twice, differently.
        cut: Whether the reply was cut short (then some of *given* may be lost).
    """

    text: str
    given: dict[int, str]
    conflicted: frozenset[int]
    cut: bool

    def check(self, outcomes: list[Any], n_tasks: int) -> None:
        """Assert that *outcomes* gives each task its own answer, or an error naming it.

        An uncut reply must answer every task it gave a single answer for.
        """
        assert len(outcomes) == n_tasks
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, str):
                assert index in self.given, (index, outcome)
                # A cut may have dropped the second, different answer.
                assert self.cut or index not in self.conflicted, (index, outcome)
                assert outcome == self.given[index], (index, outcome, self.given[index])
            else:
                assert outcome.task_index == index, (index, outcome)
                if not self.cut and index in self.given and index not in self.conflicted:
                    raise AssertionError(f"task {index} lost its answer: {outcome}")


def _answer_of(response: Any) -> str | None:
    """The answer text an entry's response gives (None for a null response)."""
    if response is None:
        return None
    if isinstance(response, str):
        return response
    return json.dumps(response, ensure_ascii=False, separators=(",", ":"))


def _entry(draw: st.DrawFn, index: int, response: Any, trailing: bool) -> str:
    """Write one entry as JSON text, the way some model might."""
    ensure_ascii = draw(st.booleans())
    space = draw(st.sampled_from(["", " ", "\n  "]))
    task_index = str(index) if not draw(st.integers(0, 9)) else index
    members = [
        f'"task_index":{space}{json.dumps(task_index)}',
        f'"response":{space}{json.dumps(response, ensure_ascii=ensure_ascii)}',
    ]
    if draw(st.booleans()):
        members.reverse()
    return "{" + f",{space}".join(members) + ("," if trailing else "") + "}"


@st.composite
def model_replies(draw: st.DrawFn, answers: list[Any]) -> ModelReply:
    """A reply to a batch whose task *i* should be answered with ``answers[i]``.

    Args:
        draw: Hypothesis' draw function.
        answers: Each task's response: usually a string, but any JSON value
            (a non-string one is answered by its JSON text, and ``None`` by no
            answer).
    """
    n_tasks = len(answers)
    order = draw(st.permutations(range(n_tasks))) if n_tasks else []
    dropped = draw(st.sets(st.sampled_from(range(n_tasks)))) if n_tasks else set()
    doubled = draw(st.sets(st.sampled_from(range(n_tasks)))) if n_tasks else set()
    conflicts = draw(st.sets(st.sampled_from(range(n_tasks)))) if n_tasks else set()
    trailing = draw(st.booleans())
    given: dict[int, str] = {}
    conflicted: set[int] = set()
    entries: list[str] = []
    for index in order:
        if index in dropped:
            continue
        entries.append(_entry(draw, index, answers[index], trailing and draw(st.booleans())))
        answer = _answer_of(answers[index])
        if answer is not None:
            given[index] = answer
        if index in doubled:
            entries.append(_entry(draw, index, answers[index], False))
        if index in conflicts:
            other = draw(answer_texts)
            if other != answer:
                entries.append(_entry(draw, index, other, False))
                conflicted.add(index)
    if draw(st.booleans()):
        # Junk the demux must ignore: non-objects, objects naming no task.
        junk = draw(st.sampled_from(['"note"', "7", "null", '{"task_index":-1,"response":"x"}']))
        entries.insert(draw(st.integers(0, len(entries))), junk)
    sep = draw(st.sampled_from([",", ", ", ",\n"]))
    text = "[" + sep.join(entries) + ("," if trailing and entries else "") + "]"
    if draw(st.booleans()):
        text = '{"results": ' + text + "}"
    fence = draw(st.sampled_from(["", "```json\n", "```JSON\n", "```\n"]))
    if fence:
        text = fence + text + "\n```"
    if draw(st.booleans()):
        text = draw(prose) + "\n" + text + "\n" + draw(prose)
    cut = draw(st.booleans())
    if cut:
        text = text[: draw(st.integers(0, len(text)))]
    return ModelReply(text, given, frozenset(conflicted), cut)
