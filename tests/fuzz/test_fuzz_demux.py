"""Hypothesis-driven fuzz targets for the demux.

Under the default ``dev`` profile these run a few dozen examples each with
the rest of the suite; ``nox -s fuzz`` runs them under the ``fuzz`` profile,
with many thousands. Every input is checked by :mod:`tests.fuzz.checks`.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent

from coalesce import build_batch_request, demux_reply
from coalesce._demux import split_text
from tests.fuzz.checks import check_reply_text, decode_input
from tests.strategies import ModelReply, answer_texts, model_replies, request_lists

TOKENS = [
    "[", "]", "{", "}", '"', ",", ":", " ", "\n", "\\", "```", "```json\n",
    '"task_index"', '"response"', "task_index", "response", '"results"',
    "0", "1", "2", "-1", '"1"', "1e999", "9" * 30, "null", "true", "NaN", "tru",
    '"a"', '"b"', '"\\u00e9"', '"\\ud800"', "\\u12", "\ud800", "é", "Here [as asked]",
]  # fmt: skip
"""Pieces of replies (and of broken replies) that the structured fuzzer strings together."""

token_texts = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


@given(st.binary(max_size=2000), st.integers(0, 6))
def test_fuzz_bytes(data: bytes, n_tasks: int) -> None:
    check_reply_text(decode_input(data), n_tasks)


@given(token_texts, st.integers(0, 4))
def test_fuzz_reply_like_tokens(text: str, n_tasks: int) -> None:
    check_reply_text(text, n_tasks)


@st.composite
def mutated_replies(draw: st.DrawFn) -> tuple[str, int]:
    """A plausible model reply, then damaged: characters replaced, deleted or inserted."""
    answers = draw(st.lists(answer_texts, max_size=5))
    text = draw(model_replies(answers)).text
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from(TOKENS))
        cut = draw(st.integers(0, 3))
        text = text[:at] + piece + text[at + cut :]
    return text, len(answers)


@given(mutated_replies())
def test_fuzz_damaged_model_replies(case: tuple[str, int]) -> None:
    text, n_tasks = case
    check_reply_text(text, n_tasks)


@given(st.data(), mutated_replies())
def test_fuzz_chunked_reading_is_whole_reading(data: st.DataObject, case: tuple[str, int]) -> None:
    text, n_tasks = case
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(text) - 1, 1)), max_size=12)))
    check_reply_text(text, n_tasks, [cut for cut in cuts if cut < len(text)])


@given(st.data(), st.lists(answer_texts, max_size=8))
def test_fuzz_model_replies_give_each_task_its_own_answer(
    data: st.DataObject, answers: list[str]
) -> None:
    reply: ModelReply = data.draw(model_replies(answers))
    reply.check(split_text(reply.text, len(answers)), len(answers))
    check_reply_text(reply.text, len(answers))


@given(st.data(), request_lists(max_size=8))
def test_fuzz_round_trip(data: st.DataObject, requests: list[CreateMessageRequestParams]) -> None:
    answers = data.draw(st.lists(answer_texts, min_size=len(requests), max_size=len(requests)))
    batch = build_batch_request(requests)
    tasks = json.loads(batch.messages[0].content.text)["tasks"]  # type: ignore[union-attr]
    text = json.dumps(
        [{"task_index": t["task_index"], "response": answers[t["task_index"]]} for t in tasks],
        ensure_ascii=data.draw(st.booleans()),
        indent=data.draw(st.none() | st.integers(0, 2)),
    )
    reply = CreateMessageResult(
        role="assistant", content=TextContent(type="text", text=text), model="m"
    )
    results = demux_reply(reply, len(requests))
    assert [r.content.text for r in results] == answers  # type: ignore[union-attr]
