"""The front door for plain text: ``text_request`` and ``result_text``."""

from __future__ import annotations

import pytest
import trio
from mcp_types import (
    AudioContent,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ImageContent,
    TextContent,
    ToolUseContent,
)

from coalesce import open_coordinator, result_text, text_request
from coalesce.testing import ScriptedClient, is_coalesced


def test_a_text_request_is_one_user_message_with_the_defaults() -> None:
    params = text_request("What is 2 + 2?")
    assert isinstance(params, CreateMessageRequestParams)
    assert [(m.role, m.content) for m in params.messages] == [
        ("user", TextContent(type="text", text="What is 2 + 2?"))
    ]
    assert params.max_tokens == 1024
    assert params.system_prompt is None
    assert params.temperature is None
    assert params.stop_sequences is None


def test_a_text_request_carries_every_setting() -> None:
    params = text_request(
        "Name a colour.", system="One word.", max_tokens=5, temperature=0.2, stop=["\n", "."]
    )
    assert params.system_prompt == "One word."
    assert params.max_tokens == 5
    assert params.temperature == 0.2
    assert params.stop_sequences == ["\n", "."]


def test_one_stop_sequence_may_be_a_plain_string() -> None:
    assert text_request("x", stop="\n\n").stop_sequences == ["\n\n"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"text": b"bytes"}, TypeError, r"^text_request takes the prompt as a str, got bytes$"),
        ({"text": "x", "system": 3}, TypeError, r"^system must be a str or None, got int$"),
        ({"text": "x", "max_tokens": 0}, ValueError, r"^max_tokens must be at least 1, got 0$"),
        ({"text": "x", "max_tokens": True}, TypeError, r"^max_tokens must be an int, got bool$"),
        ({"text": "x", "max_tokens": 1.5}, TypeError, r"^max_tokens must be an int, got float$"),
    ],
)
def test_a_bad_argument_is_refused_with_what_was_wrong(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        text_request(**kwargs)  # type: ignore[arg-type]


def answer(content: object) -> CreateMessageResult:
    return CreateMessageResult.model_construct(role="assistant", model="m", content=content)


def test_result_text_reads_one_block_or_several_and_skips_what_is_not_text() -> None:
    text = TextContent(type="text", text="first")
    image = ImageContent(type="image", data="AAAA", mime_type="image/png")
    audio = AudioContent(type="audio", data="AAAA", mime_type="audio/wav")
    second = TextContent(type="text", text="second")
    assert result_text(answer(text)) == "first"
    assert result_text(answer([text, image, audio, second])) == "first\nsecond"
    assert result_text(answer(image)) == ""
    assert result_text(answer(None)) == ""


def test_result_text_reads_a_reply_with_tool_calls() -> None:
    result = CreateMessageResultWithTools(
        role="assistant",
        model="m",
        content=[
            TextContent(type="text", text="Let me look that up."),
            ToolUseContent(type="tool_use", id="1", name="search", input={}),
        ],
    )
    assert result_text(result) == "Let me look that up."


async def test_the_front_door_goes_through_a_coordinator(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(lambda text: text.upper(), latency=1.0)
    answers: dict[str, str] = {}
    async with open_coordinator(model, window=0.5, max_batch=10) as coord:

        async def ask(question: str) -> None:
            answers[question] = result_text(await coord.create_message(text_request(question)))

        async with trio.open_nursery() as nursery:
            for question in ["one", "two", "three"]:
                nursery.start_soon(ask, question)
    assert answers == {"one": "ONE", "two": "TWO", "three": "THREE"}
    assert [is_coalesced(params) for params in model.requests] == [True]
