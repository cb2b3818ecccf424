"""The demux rules, one test (or a few) each: see ``docs/explanation/demux-rules.rst``."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from mcp.types import (
    CreateMessageResult,
    CreateMessageResultWithTools,
    ImageContent,
    TextContent,
)

from coalesce import TaskError, demux_reply
from coalesce._demux import answer_result, read_well_formed, reply_text, split_text
from coalesce._reader import MAX_DEPTH, ReplyReader, max_reply_chars
from coalesce.testing import text_result


def reply(
    text: str, *, model: str = "m-1", stop_reason: str | None = "endTurn"
) -> CreateMessageResult:
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text=text),
        model=model,
        stop_reason=stop_reason,
    )


def entries(*pairs: tuple[Any, Any]) -> str:
    return json.dumps([{"task_index": index, "response": text} for index, text in pairs])


def texts(outcomes: list[str | TaskError]) -> list[str | None]:
    """The answers' texts, None for an error."""
    return [outcome if isinstance(outcome, str) else None for outcome in outcomes]


def reasons(outcomes: list[str | TaskError]) -> list[str | None]:
    """The errors' reasons, None for an answer; checks each error names its own task."""
    result: list[str | None] = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, TaskError):
            assert outcome.task_index == index
            result.append(outcome.reason)
        else:
            result.append(None)
    return result


# -- The result --------------------------------------------------------------


def test_answers_are_assistant_results_with_the_replys_model_and_stop_reason() -> None:
    results = demux_reply(reply(entries((1, "b"), (0, "a")), stop_reason="maxTokens"), 2)
    for result, text in zip(results, ["a", "b"], strict=True):
        assert isinstance(result, CreateMessageResult)
        assert result.role == "assistant"
        assert result.content == TextContent(type="text", text=text)
        assert result.model == "m-1"
        assert result.stop_reason == "maxTokens"


def test_no_tasks_no_outcomes() -> None:
    assert demux_reply(reply("anything"), 0) == []
    assert demux_reply(reply(entries((0, "a"))), 0) == []


def test_a_reply_built_without_validation_does_not_make_demux_raise() -> None:
    broken = CreateMessageResult.model_construct(
        content=TextContent.model_construct(text=entries((0, "a"))), model=None
    )
    [result] = demux_reply(broken, 1)
    assert isinstance(result, CreateMessageResult)
    assert result.content == TextContent(type="text", text="a")
    [error] = demux_reply(CreateMessageResult.model_construct(), 1)
    assert isinstance(error, TaskError)
    assert error.reason == "the reply holds no JSON array"


# -- Text from all text blocks -------------------------------------------------


def test_text_is_taken_from_every_text_block_and_only_text_blocks() -> None:
    image = ImageContent(type="image", data="AAAA", mime_type="image/png")
    first, second = '[{"task_index": 0, "response": "a"},', '{"task_index": 1, "response": "b"}]'
    multi = CreateMessageResultWithTools(
        role="assistant",
        content=[
            TextContent(type="text", text=first),
            image,
            TextContent(type="text", text=second),
        ],
        model="m-1",
    )
    assert reply_text(multi) == first + "\n" + second
    results = demux_reply(multi, 2)
    assert [r.content.text for r in results if isinstance(r, CreateMessageResult)] == ["a", "b"]  # type: ignore[union-attr]


def test_a_reply_with_no_text_gives_every_task_an_error() -> None:
    image = ImageContent(type="image", data="AAAA", mime_type="image/png")
    outcomes = demux_reply(CreateMessageResult(role="assistant", content=image, model="m"), 2)
    assert [o.reason for o in outcomes if isinstance(o, TaskError)] == [
        "the reply holds no JSON array"
    ] * 2


# -- Fast path first -----------------------------------------------------------


def test_a_well_formed_reply_is_decoded_whole() -> None:
    text = "  \n" + entries((0, "a"), (1, "b")) + "\n"
    assert read_well_formed(text, 2) == ["a", "b"]
    assert split_text(text, 2) == ["a", "b"]
    for other in ["```\n" + text, text[:-3] + ",]", entries((0, 1)), '{"task_0": "a"}']:
        assert read_well_formed(other, 1) is None, other


def test_json_that_is_not_an_array_of_entries_answers_nothing() -> None:
    text = json.dumps({"a": [{"task_index": 0, "response": "x"}], "b": []})
    assert reasons(split_text(text, 1)) == [
        "the reply's JSON object does not hold exactly one list"
    ]
    assert reasons(split_text('"[{\\"task_index\\": 0}]"', 1)) == ["the reply holds no JSON array"]


# -- Where the array may be ------------------------------------------------------


@pytest.mark.parametrize(
    "opener", ["```json\n", "```JSON\n", "```\n", "```json ", "~~~\n```json\n"]
)
def test_a_fenced_array_is_found(opener: str) -> None:
    text = opener + entries((0, "a"), (1, "b")) + "\n```\n"
    assert split_text(text, 2) == ["a", "b"]


def test_a_fenced_array_whose_answers_hold_fences_is_read_whole() -> None:
    text = "```json\n" + entries((0, "use ```json\n[{...}]\n``` here"), (1, "b")) + "\n```"
    assert split_text(text, 2) == ["use ```json\n[{...}]\n``` here", "b"]


def test_prose_with_brackets_before_and_after_the_array_is_ignored() -> None:
    text = (
        'Here [as asked] are the results: [{"oops": 1}] and [{ nothing }]: '
        + entries((0, "a"), (1, "b"))
        + ' Hope this helps [1] [{"task_index": 0, "response": "late"}]'
    )
    assert split_text(text, 2) == ["a", "b"]


def test_an_object_whose_single_list_holds_the_array_is_unwrapped() -> None:
    inner = entries((0, "a"), (1, "b"))
    assert split_text('{"results": ' + inner + ', "count": 2}', 2) == ["a", "b"]
    assert split_text('Sure! {"results": ' + inner + "} Done.", 2) == ["a", "b"]


def test_the_keyed_object_answers_each_task_by_its_key() -> None:
    text = '{"task_0": "a", "task_1": "b"}'
    assert split_text(text, 2) == ["a", "b"]
    assert split_text("```json\n" + text + "\n```", 2) == ["a", "b"]
    assert split_text('Sure: {"task_1": "b", "task_0": {"k": [1]}, "note": 3}', 2) == [
        '{"k":[1]}',
        "b",
    ]


def test_a_key_the_keyed_object_lacks_is_that_tasks_error() -> None:
    outcomes = split_text('{"task_0": "a", "task_2": null, "task_9": "x", "task_x": "y"}', 3)
    assert reasons(outcomes) == [None, "no entry answers task 1", "entry's 'response' is null"]
    cut = split_text('{"task_0": "a", "task_1": "b', 2)
    assert reasons(cut) == [None, "the reply was cut off before this task"]


def test_a_keyed_task_given_two_different_answers_is_an_error() -> None:
    assert reasons(split_text('{"task_0": "a", "task_0": "b", "task_1": "c"}', 2)) == [
        "two different answers",
        None,
    ]


def test_an_object_with_two_lists_is_not_guessed_at() -> None:
    text = json.dumps({"a": [{"task_index": 0, "response": "x"}], "b": [1]})
    assert reasons(split_text(text, 1)) == [
        "the reply's JSON object does not hold exactly one list"
    ]


def test_trailing_commas_are_tolerated() -> None:
    text = '[{"task_index": 0, "response": "a",}, {"task_index": 1, "response": "b"},]'
    assert split_text(text, 2) == ["a", "b"]
    assert split_text('[{"task_index": 0, "response": "a"},\n]', 1) == ["a"]


def test_a_raw_newline_inside_a_string_is_part_of_the_answer() -> None:
    assert split_text('[{"task_index": 0, "response": "line 1\nline 2"}]', 1) == ["line 1\nline 2"]


# -- Truncation -----------------------------------------------------------------


def test_a_cut_off_reply_keeps_its_complete_leading_entries() -> None:
    full = entries((0, "a"), (1, "b"), (2, "c"))
    cut = full[: full.index('"c"') + 2]  # inside task 2's response
    outcomes = split_text(cut, 4)
    assert texts(outcomes) == ["a", "b", None, None]
    assert reasons(outcomes)[2:] == ["the reply was cut off before this task"] * 2


@pytest.mark.parametrize("cut", range(len('{"task_index": 12, "response": "a\\u00e9b"}')))
def test_an_entry_cut_anywhere_is_dropped_not_guessed(cut: int) -> None:
    text = '[{"task_index": 0, "response": "x"}, {"task_index": 12, "response": "a\\u00e9b"}]'
    prefix = len('[{"task_index": 0, "response": "x"}, ')
    outcomes = split_text(text[: prefix + cut], 13)
    assert outcomes[0] == "x"
    assert all(isinstance(outcome, TaskError) for outcome in outcomes[1:])
    assert set(reasons(outcomes)[1:]) == {"the reply was cut off before this task"}


def test_a_reply_cut_in_its_fence_or_right_after_the_bracket_is_cut_off() -> None:
    for text in [
        "```json\n[",
        "```json\n[\n  ",
        "Here: [\n  {",
        '[{"task_index": 0, "response": nu',
    ]:
        assert set(reasons(split_text(text, 2))) == {"the reply was cut off before this task"}, text
    cut = split_text('[{"task_index": 0, "response": "a"}, tr', 2)
    assert reasons(cut) == [None, "the reply was cut off before this task"]


def test_a_malformed_array_keeps_its_leading_entries() -> None:
    text = entries((0, "a"))[:-1] + ' oops {"task_index": 1, "response": "b"}]'
    outcomes = split_text(text, 2)
    assert outcomes[0] == "a"
    assert reasons(outcomes)[1] == "the reply's JSON array breaks off at character 36"


# -- task_index -------------------------------------------------------------------


def test_task_index_may_be_an_int_or_a_string_of_digits() -> None:
    text = '[{"task_index": 0, "response": "a"}, {"task_index": "1", "response": "b"}]'
    assert split_text(text, 2) == ["a", "b"]
    assert split_text('[{"task_index": "002", "response": "c"}]', 3)[2] == "c"


@pytest.mark.parametrize(
    "task_index",
    [
        True,
        False,
        -1,
        3,
        1.0,
        "1.0",
        " 1",
        "-1",
        "one",
        "\u0661",
        None,
        [1],
        {"i": 1},
        "9" * 40,
        10**30,
    ],
)
def test_other_task_indexes_name_no_task(task_index: Any) -> None:
    text = json.dumps([{"task_index": task_index, "response": "x"}])
    assert reasons(split_text(text, 3)) == [f"no entry answers task {i}" for i in range(3)]


def test_entries_that_are_not_objects_are_ignored() -> None:
    text = (
        '["task_index", 1, null, {"task_index": 0, "response": "a"}, '
        '[{"task_index": 1, "response": "nested"}]]'
    )
    assert texts(split_text(text, 2)) == ["a", None]


def test_the_first_opening_of_a_task_array_is_the_answer() -> None:
    # What opens the answer: a "[" whose first entry starts with its task_index
    # or response key, after at most four scalars (and four scalar members).
    opened = '[1, "x", [2], {"a": 3}, {"id": 7, "response": "a", "task_index": 0}]'
    assert split_text(opened, 1) == ["a"]
    # Anything else before the first entry opens nothing: the search goes on,
    # and finds the array inside.
    nested = '[[[1]], {"task_index": 0, "response": "a"}, [{"task_index": 1, "response": "b"}]]'
    assert texts(split_text(nested, 2)) == [None, "b"]
    page = (
        '[{"notes": ["x"]}, {"task_index": 0, "response": "x"}, '
        '[{"task_index": 1, "response": "b"}]]'
    )
    assert texts(split_text(page, 2)) == [None, "b"]
    assert texts(split_text('[1, 2, 3, 4, 5, {"task_index": 0, "response": "a"}]', 1)) == [None]
    spaced = "[" + " " * 101 + '{"task_index": 0, "response": "a"}]'
    assert reasons(split_text(spaced, 1)) == ["the reply holds no JSON array"]


# -- response ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        (42, "42"),
        (1.5, "1.5"),
        (True, "true"),
        ([1, "é"], '[1,"é"]'),
        ({"a": {"b": None}}, '{"a":{"b":null}}'),
    ],
)
def test_a_non_string_response_is_its_compact_json_text(response: Any, answer: str) -> None:
    text = json.dumps([{"task_index": 0, "response": response}], indent=2)
    assert split_text(text, 1) == [answer]


def test_a_missing_or_null_response_is_an_error() -> None:
    text = (
        '[{"task_index": 0}, {"task_index": 1, "response": null}, '
        '{"task_index": 2, "response": ""}]'
    )
    assert reasons(split_text(text, 3)) == [
        "entry has no 'response'",
        "entry's 'response' is null",
        None,
    ]


def test_a_response_too_long_or_deep_to_write_is_an_error() -> None:
    huge = "1" * 5000
    text = f'[{{"task_index": 0, "response": {huge}}}, {{"task_index": 1, "response": "ok"}}]'
    outcomes = split_text(text, 2)
    assert reasons(outcomes) == ["entry's 'response' cannot be written as JSON text", None]
    assert outcomes[1] == "ok"


# -- Doubts ---------------------------------------------------------------------


def test_two_different_answers_for_one_task_are_an_error() -> None:
    text = entries((0, "a"), (1, "b"), (0, "A"), (1, "b"))
    outcomes = split_text(text, 2)
    assert reasons(outcomes) == ["two different answers", None]
    assert outcomes[1] == "b"


def test_an_entry_that_repeats_response_is_an_error() -> None:
    text = (
        '[{"task_index": 0, "response": "a", "response": "b"}, {"task_index": 1, "response": "c"}]'
    )
    assert reasons(split_text(text, 2)) == ["entry repeats key 'response'", None]


def test_entries_that_ran_together_are_an_error_for_every_task_they_name() -> None:
    text = '[{"task_index": 0, "response": "a", "task_index": 1, "response": "b"}]'
    assert reasons(split_text(text, 3)) == [
        "entry repeats key 'task_index'",
        "entry repeats key 'task_index'",
        "no entry answers task 2",
    ]
    # The same, found by the tolerant path.
    assert (
        reasons(split_text("```\n" + text[:-1] + ",]", 2)) == ["entry repeats key 'task_index'"] * 2
    )


def test_a_repeated_key_inside_a_response_value_is_json_as_usual() -> None:
    text = '[{"task_index": 0, "response": {"k": 1, "k": 2}}]'
    assert split_text(text, 1) == ['{"k":2}']


# -- Errors -----------------------------------------------------------------------


def test_absent_tasks_get_an_error_naming_them() -> None:
    outcomes = split_text(entries((1, "b")), 4)
    assert reasons(outcomes) == [
        "no entry answers task 0",
        None,
        "no entry answers task 2",
        "no entry answers task 3",
    ]


@pytest.mark.parametrize("text", ["", "   ", "I cannot help with that.", "null", "3", "{}", "[{]"])
def test_an_unusable_reply_gives_every_task_an_error(text: str) -> None:
    outcomes = split_text(text, 3)
    assert all(isinstance(outcome, TaskError) for outcome in outcomes)
    assert [o.task_index for o in outcomes if isinstance(o, TaskError)] == [0, 1, 2]


def test_errors_carry_a_short_excerpt_of_the_reply() -> None:
    text = "Sorry, " + "no " * 1000 + "can do."
    [error] = demux_reply(reply(text), 1)
    assert isinstance(error, TaskError)
    assert error.reply_excerpt.startswith("Sorry, no no")
    assert error.reply_excerpt.endswith("no can do.")
    assert len(error.reply_excerpt) <= 200
    with pytest.raises(
        TaskError, match=r"^task 0: the reply holds no JSON array \(reply began: 'Sorry"
    ):
        raise error


# -- Hostile input --------------------------------------------------------------


HOSTILE: dict[str, str] = {
    "nested brackets": "[" * 200_000,
    "nested arrays of objects": '[{"a":' * 100_000,
    "nested objects": '{"a":' * 200_000,
    "nested in a response": '[{"task_index": 0, "response": ' + "[" * 200_000,
    "closed deep nesting": "[" * 50_000 + "]" * 50_000,
    "brackets and braces": "[{" * 300_000,
    "broken values": '[{"a": [x ' * 100_000,
    "prose with brackets": "Here [as asked] (see [1]) {ok} " * 30_000,
    "quotes": '"' * 500_000,
    "backslashes": "\\" * 500_000,
    "whitespace arrays": "[" + " " * 500_000 + "{" + " " * 500_000,
    "objects without tasks": '[{"a": 1}, ' * 100_000,
    "lone surrogates": '[{"task_index": 0, "response": "\ud800\udfff\udc00"}]' + "\ud800" * 100_000,
    "escaped surrogates": '[{"task_index": 0, "response": "\\ud800"}] ' + "\\udc00[{" * 50_000,
    "huge int index": '[{"task_index": ' + "9" * 100_000 + ', "response": "x"}]',
    "huge float": '[{"task_index": 0, "response": 1' + "0" * 100_000 + ".5e99999}]",
    "huge string": '[{"task_index": 0, "response": "' + "é" * 1_000_000,
    "bad escapes": '[{"task_index": 0, "response": "\\x\\u12"}, ' * 10_000,
}


def read_chunked(text: str, n_tasks: int, size: int) -> tuple[list[tuple[int, str]], ReplyReader]:
    """Feed *text* to a reader in chunks of *size*; return what it released, and the reader."""
    reader = ReplyReader(n_tasks)
    released = []
    for start in range(0, len(text), size):
        released += reader.feed(text[start : start + size])
    return released, reader


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_gives_errors_not_a_crash(name: str) -> None:
    text = HOSTILE[name]
    outcomes = split_text(text, 3)
    assert len(outcomes) == 3
    for index, outcome in enumerate(outcomes):
        assert isinstance(outcome, str) or outcome.task_index == index
    results = demux_reply(reply(text), 3)
    assert [isinstance(r, TaskError) for r in results] == [not isinstance(o, str) for o in outcomes]
    _, reader = read_chunked(text, 3, 4096)
    assert reader.close() == outcomes


def test_hostile_input_deep_in_the_stack_does_not_raise_recursion_error() -> None:
    depth = sys.getrecursionlimit() - 60

    def nest(level: int) -> list[str | TaskError]:
        if level:
            return nest(level - 1)
        return split_text('[{"task_index": 0, "response": ' + "[" * 5_000 + "]" * 5_000 + "}]", 1)

    assert len(nest(depth)) == 1


def test_lone_surrogates_come_through_as_given() -> None:
    assert split_text('[{"task_index": 0, "response": "a\ud800"}]', 1) == ["a\ud800"]
    assert split_text('[{"task_index": 0, "response": "a\\ud800"}]', 1) == ["a\ud800"]


# -- Linear by construction --------------------------------------------------------
#
# The reader counts its tokenizer steps; each consumes at least one character,
# but for a candidate's start and end. Counting them, not timing, checks that
# nothing is read twice, whatever the shape and however the text is chunked.

SHAPES: dict[str, str] = {
    **HOSTILE,
    "prose with brackets before": "Here [as asked] [1] [{x}] " * 20_000 + entries((0, "a")),
    "fenced, trailing commas": "```json\n[" + '{"task_index": 0, "response": "a",},' * 20_000,
    "unterminated strings": '[{"a": "' * 20_000,
    "decode errors": '[{"a": [1 x] ' * 20_000,
    "escapes": '[{"task_index": 0, "response": "' + "\\u00e9\\n" * 50_000 + '"}]',
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_character_is_read_a_bounded_number_of_times(name: str) -> None:
    text = SHAPES[name]
    for size in (len(text), 4096, 7):
        _, reader = read_chunked(text, 3, size)
        assert reader.steps <= 2 * len(text) + 10, (size, reader.steps, len(text))


# -- An entry the reply did not complete is never an answer ----------------------


def test_an_entry_still_open_when_the_reply_ends_is_not_an_answer() -> None:
    # A stray "[" made task 3's response swallow the entries after it, and the
    # reply was cut before task 3's entry closed: salvage must not close it.
    text = (
        '[{"task_index": 3, "response": [{"task_index": 0, "response": "a"}, '
        '{"task_index": 1, "response": "b"}, {"task_index": 2, "response": "c"}, '
        '{"task_index": 4, "response": "e"}]'
    )
    assert reasons(split_text(text, 5)) == ["the reply was cut off before this task"] * 5
    fenced = split_text("Sure!\n```json\n" + text + "\n```", 5)
    assert all(isinstance(outcome, TaskError) for outcome in fenced)


def test_an_entry_closed_only_by_the_end_of_a_wrapper_is_not_an_answer() -> None:
    text = '{"results": [{"task_index": 0, "response": "a"}, {"task_index": 1, "response": "b"'
    assert reasons(split_text(text + "}", 2)) == [None, None]
    assert reasons(split_text(text, 2)) == [None, "the reply was cut off before this task"]


# -- No answer holds another task's entry ----------------------------------------


def test_entries_nested_in_a_broken_entry_are_never_routed() -> None:
    text = (
        '[{"task_index": 0, "response": "He said "[{"task_index": 1, "response": "pwned"}]" ok"}, '
        '{"task_index": 1, "response": "real"}]'
    )
    outcomes = split_text(text, 2)
    assert "pwned" not in texts(outcomes)
    assert reasons(outcomes) == ["the reply's JSON array breaks off at character 41"] * 2
    # The same with the response before the index: the entry is one already.
    swapped = text.replace('"task_index": 0, "response": "He said "', '"response": "He said "')
    assert "pwned" not in texts(split_text(swapped, 2))


def test_entries_after_a_break_are_not_taken() -> None:
    text = entries((0, "a"))[:-1] + ' oops, {"task_index": 1, "response": "b"}]'
    assert texts(split_text(text, 2)) == ["a", None]


def test_only_direct_members_of_the_array_are_entries() -> None:
    text = (
        '[{"task_index": 0, "response": "a", "more": [{"task_index": 1, "response": "x"}]}, '
        '[{"task_index": 1, "response": "y"}]]'
    )
    assert texts(split_text(text, 2)) == ["a", None]


# -- Read as it arrives ----------------------------------------------------------


def test_each_entry_is_released_when_its_closing_brace_arrives() -> None:
    text = '```json\n[{"task_index": 1, "response": "b"}, {"task_index": 0, "response": "a"}]'
    brace = text.index("}") + 1
    reader = ReplyReader(3)
    assert reader.feed(text[: brace - 1]) == []
    assert reader.feed(text[brace - 1 : brace]) == [(1, "b")]
    assert reader.feed(text[brace:]) == [(0, "a")]
    assert reasons(reader.close()) == [None, None, "no entry answers task 2"]


def test_a_task_is_released_once_and_a_later_conflict_shows_at_close() -> None:
    reader = ReplyReader(2)
    assert reader.feed(entries((0, "a"), (0, "a"), (1, "b"), (0, "A"))) == [(0, "a"), (1, "b")]
    assert reasons(reader.close()) == ["two different answers", None]


def test_every_split_of_a_reply_reads_as_the_whole() -> None:
    text = (
        'Here [as asked]: ```json\n{"results": [{"task_index": 0, "response": "a\\u00e9\\"\\\\"},'
        ' {"response": [1.5e3, true, null], "task_index": "1",},'
        ' {"task_index": 2, "response": -0}]}'
    )
    whole = split_text(text, 3)
    assert whole == ['aé"\\', "[1500.0,true,null]", "0"]
    for cut in range(len(text) + 1):
        for second in (cut, min(cut + 3, len(text))):
            reader = ReplyReader(3)
            released = reader.feed(text[:cut]) + reader.feed(text[cut:second])
            released += reader.feed(text[second:])
            assert reader.close() == whole, (cut, second)
            assert sorted(released) == [(0, whole[0]), (1, whole[1]), (2, whole[2])]


@pytest.mark.parametrize(
    "text",
    [
        "[H",
        "x [tr",
        "{ ",
        "[ {",
        "[ { x",
        "[1 ",
        '[{"a": "\\u12',
        "[[[",
        '{"task_0": "a',
        "[as] [1]",
        "[[```[-1",
    ],
)
def test_where_a_short_reply_is_split_never_matters(text: str) -> None:
    # Found by the fuzz targets: "[" then a letter at the very end was read
    # as a cut-off array when split there, and as prose when whole.
    whole = split_text(text, 2)
    for cut in range(len(text) + 1):
        reader = ReplyReader(2)
        reader.feed(text[:cut])
        reader.feed(text[cut:])
        assert reader.close() == whole, cut


def test_an_opening_that_a_chunk_cut_short_is_found_with_the_next_chunk() -> None:
    text = 'Sure! [{"task_index": 0, "response": "a"}, {"task_index": 1, "response": "b"}]'
    for cut in range(len(text) + 1):
        reader = ReplyReader(2)
        released = reader.feed(text[:cut]) + reader.feed(text[cut:])
        assert released == [(0, "a"), (1, "b")], cut
    keyed = '{"task_12": "x"}'
    for cut in range(len(keyed) + 1):
        reader = ReplyReader(13)
        released = reader.feed(keyed[:cut]) + reader.feed(keyed[cut:])
        assert released == [(12, "x")], cut


def test_no_opening_is_longer_than_the_text_kept_for_the_next_chunk() -> None:
    from re import _parser  # type: ignore[attr-defined]

    from coalesce._patterns import LONGEST_OPENING, OPENING

    assert _parser.parse(OPENING.pattern).getwidth()[1] < LONGEST_OPENING


@pytest.mark.parametrize(
    "member",
    [
        "1x",
        "01",
        "1.",
        "1.5e",
        "-",
        "tru",
        "nul",
        "NaN",
        "-Infinity",
        "-NaN",
        "1e5",
        "-0",
        "[1,]",
        "[,]",
        "[1 2]",
        "{}",
        '{"a": 1,}',
        '{"a" 1}',
        '{"a": [1]}',
        '"\\x"',
        '"\\u00e9"',
        '{"task_index": 1}',
        '{"response": "r"}',
        '{"task\\u005findex": 1}',
        '{"a": 1, "a": 2}',
        "[[]]",
        '"a" "b"',
    ],
)
def test_a_run_of_skipped_members_reads_as_the_tokenizer_does(member: str) -> None:
    # Whole, the members after the first entry are skipped a run at a time;
    # fed a character at a time, they are tokenized one by one.
    for where in (
        '[{"task_index": 0, "response": "a"}, MEMBER, MEMBER, {"task_index": 1, "response": "b"}]',
        '[{"task_index": 0, "response": [MEMBER, MEMBER, 2]}, {"task_index": 1, "response": "b"}]',
        '[{"task_index": 0, "response": {"k": MEMBER, "l": MEMBER}}, '
        '{"task_index": 1, "response": "b"}]',
    ):
        text = where.replace("MEMBER", member)
        whole = split_text(text, 2)
        _, reader = read_chunked(text, 2, 1)
        assert reader.close() == whole, text


# -- Too long to be real ----------------------------------------------------------


def test_a_reply_longer_than_its_batch_could_produce_is_refused_unparsed() -> None:
    assert max_reply_chars(100) == 16 * 100 + 65_536
    text = entries((0, "a"), (1, "b"))
    assert split_text(text, 2, max_chars=len(text)) == ["a", "b"]
    reason = (
        f"the reply is longer than its batch could legitimately produce "
        f"({len(text):,} characters; at most {len(text) - 1:,} expected)"
    )
    assert reasons(split_text(text, 2, max_chars=len(text) - 1)) == [reason] * 2
    [error] = demux_reply(reply(text), 1, max_chars=10)
    assert isinstance(error, TaskError)
    assert error.reason.startswith("the reply is longer than its batch could legitimately")


def test_a_reader_past_its_limit_stops_and_fails_the_tasks_not_yet_released() -> None:
    reader = ReplyReader(2, limit=40)
    text = entries((0, "a"), (1, "b"))
    assert reader.feed(text[:38]) == [(0, "a")]
    assert reader.feed(text[38:]) == []
    outcomes = reader.close()
    assert outcomes[0] == "a"
    assert reasons(outcomes)[1] == (
        f"the reply is longer than its batch could legitimately produce "
        f"({len(text)} characters; at most 40 expected)"
    )


# -- The answer's result -----------------------------------------------------------


def test_answer_result_is_a_validated_assistant_result() -> None:
    result = answer_result("hi", "m-1", "endTurn")
    assert result == CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text="hi"),
        model="m-1",
        stop_reason="endTurn",
    )
    assert answer_result("hi", None, 3).model == ""


# -- Never misroute -------------------------------------------------------------


def test_an_answer_is_only_ever_the_text_given_for_its_own_index() -> None:
    text = (
        '[{"response": "for 1", "task_index": 1}, {"task_index": 0}, '
        '{"task_index": 2, "response": "\\"}, {\\"task_index\\": 0, \\"response\\": \\"evil"}]'
    )
    assert texts(split_text(text, 3)) == [None, "for 1", '"}, {"task_index": 0, "response": "evil']


def test_an_array_that_starts_with_a_non_object_is_still_found() -> None:
    # Found by the property tests: the search only looked for "[" then "{".
    assert split_text('["note",{"task_index":"0","response":[]},]', 1) == ["[]"]
    assert split_text('Here: [1, {"task_index": 0, "response": "a"},]', 1) == ["a"]
    assert split_text('```\n[[1], {"task_index": 0, "response": "a"}]', 1) == ["a"]


def test_json_nested_up_to_max_depth_is_read_and_deeper_is_not() -> None:
    def nested(depth: int) -> str:
        # The response is depth - 2 levels deep: the array and the entry add two.
        inner = "[" * (depth - 2) + "1" + "]" * (depth - 2)
        return '[{"task_index": 0, "response": ' + inner + '}, {"task_index": 1, "response": "b"}]'

    assert texts(split_text(nested(MAX_DEPTH), 2)) == ["[" * 126 + "1" + "]" * 126, "b"]
    for text in [nested(MAX_DEPTH + 1), "```\n" + nested(MAX_DEPTH + 1)]:
        assert reasons(split_text(text, 2)) == ["the reply's JSON nests too deeply to read"] * 2


DEEP_TEXTS = [
    "[" * 900,
    "[" * 900 + "x",
    "[" * 900 + "]" * 900 + ' [{"task_index": 0, "response": "a"}]' + " pad" * 1000,
    '[{"task_index": 0, "response": "a"}, ' + "[" * 900 + '"abc',
    '[{"task_index": 0, "response": ' + "[" * 900 + "1" + "]" * 900 + "}]",
    '["' + "]" * 900 + '", ' + "[" * 120 + "x",
]


@pytest.mark.parametrize("index", range(len(DEEP_TEXTS)))
def test_deep_nesting_gives_the_same_outcome_from_any_stack_depth(index: int) -> None:
    # Found by atheris: the C decoder's RecursionError depends on the caller's
    # stack, so split_text and demux_reply (one frame deeper) disagreed on
    # hostile-atheris-deep-unbalanced.bin in the corpus.
    text = DEEP_TEXTS[index]

    def at_depth(frames: int) -> list[str | TaskError]:
        return at_depth(frames - 1) if frames else split_text(text, 2)

    outcomes = {repr(at_depth(frames)) for frames in (0, 200, 500, sys.getrecursionlimit() // 2)}
    assert len(outcomes) == 1, outcomes


def test_a_repeated_key_is_quoted_short_in_the_reason() -> None:
    key = "k" * 5000
    reply = text_result(f'[{{"task_index": 0, "{key}": 1, "{key}": 2, "response": "x"}}]')
    [outcome] = demux_reply(reply, 1)
    assert isinstance(outcome, TaskError)
    assert len(outcome.reason) < 100
    assert outcome.reason.startswith("entry repeats key 'kkk")
