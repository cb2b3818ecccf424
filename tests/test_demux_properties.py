"""Properties of the demux that hold for any requests and any reply (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent

from coalesce import TaskError, build_batch_request, demux_reply
from coalesce._demux import read_well_formed, split_text
from coalesce._patterns import CUT_OPENING, OPENING
from coalesce._reader import ReplyReader
from tests.strategies import (
    ModelReply,
    answer_texts,
    json_values,
    model_replies,
    request_lists,
)


def as_reply(text: str) -> CreateMessageResult:
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text=text), model="m"
    )


def answer_model(request: CreateMessageRequestParams, answers: list[str]) -> str:
    """A model that reads the coalesced request and answers task i with answers[i].

    Non-ASCII is written as it is: escaped, two lone surrogates that form a
    pair (``"\\ud800\\udc00"``) are one character to any JSON reader.
    """
    payload = json.loads(request.messages[0].content.text)  # type: ignore[union-attr]
    return json.dumps(
        [
            {"task_index": task["task_index"], "response": answers[task["task_index"]]}
            for task in payload["tasks"]
        ],
        ensure_ascii=False,
    )


@given(st.data(), request_lists())
def test_each_task_gets_its_own_answer_or_its_own_error(
    data: st.DataObject, requests: list[CreateMessageRequestParams]
) -> None:
    answers = data.draw(st.lists(answer_texts, min_size=len(requests), max_size=len(requests)))
    build_batch_request(requests)  # the batch these answers are for
    reply: ModelReply = data.draw(model_replies(answers))
    reply.check(split_text(reply.text, len(requests)), len(requests))


@given(st.data(), st.lists(json_values, max_size=6))
def test_any_json_response_comes_back_as_its_json_text(
    data: st.DataObject, answers: list[Any]
) -> None:
    reply: ModelReply = data.draw(model_replies(answers))
    reply.check(split_text(reply.text, len(answers)), len(answers))


@given(st.text(), st.integers(0, 5))
def test_demux_never_raises_on_any_text(text: str, n_tasks: int) -> None:
    outcomes = demux_reply(as_reply(text), n_tasks)
    assert len(outcomes) == n_tasks
    for index, outcome in enumerate(outcomes):
        assert not isinstance(outcome, TaskError) or outcome.task_index == index


@given(json_values, st.integers(0, 5))
def test_demux_never_raises_on_any_json_value(value: Any, n_tasks: int) -> None:
    for text in (json.dumps(value), json.dumps([value, {"task_index": 0, "response": value}])):
        outcomes = split_text(text, n_tasks)
        assert len(outcomes) == n_tasks


@given(st.data(), request_lists())
def test_any_unicode_answer_survives_the_round_trip(
    data: st.DataObject, requests: list[CreateMessageRequestParams]
) -> None:
    answers = data.draw(st.lists(answer_texts, min_size=len(requests), max_size=len(requests)))
    batch = build_batch_request(requests)
    results = demux_reply(as_reply(answer_model(batch, answers)), len(requests))
    assert [
        result.content.text  # type: ignore[union-attr]
        for result in results
        if isinstance(result, CreateMessageResult)
    ] == answers


@given(st.data(), st.lists(answer_texts, max_size=6))
def test_a_reply_fed_in_chunks_reads_as_the_whole_reply(
    data: st.DataObject, answers: list[str]
) -> None:
    text = data.draw(model_replies(answers)).text
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=10)))
    reader = ReplyReader(len(answers))
    released: list[tuple[int, str]] = []
    for start, stop in zip([0, *cuts], [*cuts, len(text)], strict=True):
        released += reader.feed(text[start:stop])
    whole = ReplyReader(len(answers))
    assert whole.feed(text) == released
    assert reader.close() == whole.close() == split_text(text, len(answers))


@given(st.data(), st.lists(answer_texts, max_size=6))
def test_the_fast_path_agrees_with_the_reader(data: st.DataObject, answers: list[str]) -> None:
    reply: ModelReply = data.draw(model_replies(answers))
    fast = read_well_formed(reply.text, len(answers))
    reader = ReplyReader(len(answers))
    reader.feed(reply.text)
    assert fast is None or fast == reader.close()
    plain = json.dumps([{"task_index": i, "response": text} for i, text in enumerate(answers)])
    fast = read_well_formed(plain, len(answers))
    reader = ReplyReader(len(answers))
    reader.feed(plain)
    assert fast == reader.close() == answers or not answers


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.from_regex(OPENING, fullmatch=True))
def test_every_opening_cut_short_is_kept_for_the_next_chunk(opening: str) -> None:
    # The reader keeps what CUT_OPENING.matches at a chunk's end; an opening
    # it missed would be found whole but lost when a chunk split it.
    for end in range(len(opening)):
        assert CUT_OPENING.match(opening[:end]) is not None, (opening, end)
