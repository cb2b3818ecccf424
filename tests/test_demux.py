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
from coalesce._demux import reply_text, split_text
from coalesce._jsonscan import (
    MAX_DEPTH,
    WORK_LIMIT_FACTOR,
    WORK_SLACK,
    Ending,
    Found,
    Work,
    read_array,
)
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


def test_a_well_formed_reply_takes_one_decode() -> None:
    work = Work()
    assert split_text("  \n" + entries((0, "a"), (1, "b")) + "\n", 2, work) == ["a", "b"]
    assert work.decode_calls == 1
    assert work.decode_failures == 0


def test_the_tolerant_path_runs_only_when_the_fast_path_fails() -> None:
    # Valid JSON that is not an array is not searched for arrays inside it.
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
        '["task_index", 1, null, [{"task_index": 1, "response": "nested"}], '
        '{"task_index": 0, "response": "a"}]'
    )
    assert texts(split_text(text, 2)) == ["a", None]


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


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_gives_errors_not_a_crash(name: str) -> None:
    text = HOSTILE[name]
    work = Work()
    outcomes = split_text(text, 3, work)
    assert len(outcomes) == 3
    for index, outcome in enumerate(outcomes):
        assert isinstance(outcome, str) or outcome.task_index == index
    assert work.chars <= WORK_LIMIT_FACTOR * len(text) + WORK_SLACK
    results = demux_reply(reply(text), 3)
    assert [isinstance(r, TaskError) for r in results] == [not isinstance(o, str) for o in outcomes]


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


# -- Linear time --------------------------------------------------------------------
#
# The work counter adds up the characters each step examined (regex scans,
# decodes, and the line counting a JSONDecodeError does); the search gives up
# beyond WORK_FACTOR times the reply's size. These tests check that the
# counting is honest enough to catch a rescan: the work per character must
# not grow with the size of the input. No clock is read.

GROWING: dict[str, Any] = {
    "prose with brackets": lambda n: "Here [as asked] [1] [{x}] " * n + entries((0, "a")),
    "fenced, trailing commas": lambda n: (
        "```json\n[" + '{"task_index": 0, "response": "a",},' * n + "]\n```"
    ),
    "cut off": lambda n: "Sure:\n```json\n" + entries(*((i, "é" * 10) for i in range(n)))[:-5],
    "broken values": lambda n: '[{"a": [x ' * n + entries((0, "a")),
    "nested arrays": lambda n: '[{"a":' * n + "1" + "}]" * n,
    "wrapped in prose brackets": lambda n: "[\n" * n + '{"results": ' + entries((0, "a")) + "}",
    "objects without tasks": lambda n: '[{"a": 1}, ' * n + "x " + entries((0, "a")),
    "unterminated strings": lambda n: '[{"a": "' * n,
    "decode errors": lambda n: '[{"a": [1 x] ' * n,
}


@pytest.mark.parametrize("name", list(GROWING))
def test_work_grows_linearly(name: str) -> None:
    make = GROWING[name]
    per_char = []
    for n in (1_000, 8_000):
        text = make(n)
        work = Work()
        split_text(text, 2, work)
        per_char.append((work.chars / len(text), work.decode_calls / len(text)))
    (chars_small, calls_small), (chars_big, calls_big) = per_char
    # Quadratic work would grow eightfold per character here.
    assert chars_big <= chars_small * 1.5 + 0.5, per_char
    assert calls_big <= calls_small * 1.5 + 0.01, per_char
    assert chars_big <= WORK_LIMIT_FACTOR, per_char


def test_a_well_formed_reply_costs_a_few_times_its_size() -> None:
    answers = [(i, f"answer {i} " * 20) for i in range(500)]
    for text, times in [
        (entries(*answers), 1),  # the fast path alone
        ("```json\n" + entries(*answers) + "\n```", 2),  # and the array whole
        # and the array piece by piece; a failed whole try is not rescanned
        # for its depth (that cost a 1 MB reply 50 ms in a Python loop).
        ("Here you are [as asked]:\n" + entries(*answers)[:-1] + ",]\nHope this helps [1]", 3),
        # and the errors' line counting, and the cut entry member by member
        (entries(*answers)[:-30], 7),
    ]:
        work = Work()
        assert split_text(text, 500, work)[:499] == [answer for _, answer in answers[:499]]
        assert len(text) <= work.chars <= (times + 0.1) * len(text), (times, work)


# -- Never misroute -------------------------------------------------------------


def test_an_answer_is_only_ever_the_text_given_for_its_own_index() -> None:
    text = (
        '[{"response": "for 1", "task_index": 1}, {"task_index": 0}, '
        '{"task_index": 2, "response": "\\"}, {\\"task_index\\": 0, \\"response\\": \\"evil"}]'
    )
    assert texts(split_text(text, 3)) == [None, "for 1", '"}, {"task_index": 0, "response": "evil']


def test_read_array_reports_how_the_array_ends() -> None:
    found = read_array(entries((0, "a"))[:-1])
    assert isinstance(found, Found)
    assert found.ending is Ending.CUT_OFF
    assert found.entries == [{"task_index": 0, "response": "a"}]


def test_an_array_that_starts_with_a_non_object_is_still_found() -> None:
    # Found by the property tests: the search only looked for "[" then "{".
    assert split_text('["note",{"task_index":"0","response":[]},]', 1) == ["[]"]
    assert split_text('Here: [1, {"task_index": 0, "response": "a"},]', 1) == ["a"]
    assert split_text('```\n[[1], {"task_index": 0, "response": "a"}]', 1) == ["a"]


def test_the_tolerant_path_decodes_entries_whole_until_one_fails() -> None:
    answers = [(i, f"answer {i}") for i in range(200)]
    for text in [
        entries(*answers)[:-1] + ",]",
        entries(*answers)[:-20],
        '[{"task_index": 0, "response": "answer 0",}, ' + entries(*answers[1:])[1:],
    ]:
        work = Work()
        outcomes = split_text(text, 200, work)
        assert texts(outcomes)[:150] == [answer for _, answer in answers[:150]]
        # The fast path, the whole array, the entry that failed whole, and
        # (cut) the member that failed in it.
        assert work.decode_failures <= 4
        # One decode per entry whole, until one fails; member by member is four.
        assert work.decode_calls <= len(answers) + 10 or text.startswith('[{"task_index": 0, "r')


def test_brackets_that_cannot_open_an_array_of_entries_cost_no_decoding() -> None:
    # Found slow before the candidate pattern looked past "[{": 2 s for 600 KB.
    for text in ["[{" * 100_000, "[{x " * 100_000, "[ {\n" * 100_000, "[as asked] " * 100_000]:
        work = Work()
        assert set(reasons(split_text(text, 2, work))) <= {
            "the reply holds no JSON array",
            "the reply was cut off before this task",
        }
        assert work.decode_calls <= 10, work


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
