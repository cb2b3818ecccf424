"""The prompt builder: the seed's wire format, and what it does better."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.types import (
    AudioContent,
    CreateMessageRequestParams,
    ImageContent,
    ModelPreferences,
    SamplingMessage,
    TextContent,
    Tool,
)

from coalesce import build_batch_request, is_batchable
from coalesce._prompt import BATCH_SYSTEM_PROMPT, batch_payload, payload_json
from coalesce._wire import converter
from coalesce.testing import tasks_of, text_request


def payload(params: CreateMessageRequestParams) -> object:
    content = params.messages[0].content
    assert isinstance(content, TextContent)
    return json.loads(content.text)


def test_wire_format_is_the_seeds() -> None:
    batch = build_batch_request([text_request("a", max_tokens=10), text_request("b", max_tokens=5)])
    assert payload(batch) == {
        "tasks": [
            {"task_index": 0, "messages": [{"role": "user", "content": "a"}]},
            {"task_index": 1, "messages": [{"role": "user", "content": "b"}]},
        ]
    }
    assert len(batch.messages) == 1
    assert batch.messages[0].role == "user"
    assert batch.max_tokens == 15
    assert batch.system_prompt == BATCH_SYSTEM_PROMPT.replace("{n}", "2")
    assert "exactly 2 entries" in batch.system_prompt
    assert '"task_index": <int starting from 0>, "response": "<string>"' in batch.system_prompt


def test_every_text_block_of_a_message_is_kept() -> None:
    message = SamplingMessage(
        role="user",
        content=[TextContent(type="text", text="one"), TextContent(type="text", text="two")],
    )
    request = CreateMessageRequestParams(messages=[message], max_tokens=10)
    batch = build_batch_request([request, text_request("x")])
    assert payload(batch)["tasks"][0]["messages"] == [{"role": "user", "content": "one\ntwo"}]  # type: ignore[index]


ROLES: list[tuple[Literal["user", "assistant"], str]] = [
    ("user", "hi"),
    ("assistant", "hello"),
    ("user", "bye"),
]


def test_a_conversation_keeps_its_roles_in_order() -> None:
    turns = [
        SamplingMessage(role=role, content=TextContent(type="text", text=text))
        for role, text in ROLES
    ]
    request = CreateMessageRequestParams(messages=turns, max_tokens=10)
    batch = build_batch_request([request, text_request("x")])
    assert payload(batch)["tasks"][0]["messages"] == [  # type: ignore[index]
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]


def test_per_task_system_prompts_become_sub_system_lines() -> None:
    batch = build_batch_request(
        [
            text_request("a", system_prompt="Be terse."),
            text_request("b"),
            text_request("c", system_prompt="Rhyme."),
        ]
    )
    assert batch.system_prompt is not None
    assert batch.system_prompt.endswith(
        "\n\nTask-0 sub-system: Be terse.\n\nTask-2 sub-system: Rhyme."
    )


def test_a_shared_system_prompt_is_stated_once() -> None:
    batch = build_batch_request([text_request(t, system_prompt="Be terse.") for t in "abc"])
    assert batch.system_prompt is not None
    assert batch.system_prompt.endswith("\n\nSystem prompt for every task: Be terse.")


def test_shared_settings_are_carried_over() -> None:
    settings: dict[str, Any] = {
        "model_preferences": ModelPreferences(intelligence_priority=0.9),
        "temperature": 0.2,
        "stop_sequences": ["STOP"],
        "include_context": "none",
        "metadata": {"k": "v"},
    }
    batch = build_batch_request([text_request(t, **settings) for t in "ab"])
    for name, value in settings.items():
        assert getattr(batch, name) == value


@pytest.mark.parametrize(
    ("requests", "error", "message"),
    [
        ([], ValueError, r"^build_batch_request needs at least one request, got none$"),
        (
            ["nope"],
            TypeError,
            r"^request 0 is a str, not a mcp\.types\.CreateMessageRequestParams$",
        ),
        (
            [text_request("a"), text_request("b", temperature=1.0)],
            ValueError,
            r"^request 1 differs from request 0 in 'temperature'; only requests that agree",
        ),
    ],
)
def test_misuse_is_refused(requests: list[object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build_batch_request(requests)  # type: ignore[arg-type]


IMAGE = ImageContent(type="image", data="aGk=", mime_type="image/png")
AUDIO = AudioContent(type="audio", data="aGk=", mime_type="audio/wav")


@pytest.mark.parametrize(
    "update",
    [
        {"messages": [SamplingMessage(role="user", content=IMAGE)]},
        {
            "messages": [
                SamplingMessage(role="user", content=[TextContent(type="text", text="x"), AUDIO])
            ]
        },
        {"tools": [Tool(name="t", input_schema={"type": "object"})]},
    ],
)
def test_non_text_content_and_tools_are_not_batchable(update: dict[str, object]) -> None:
    request = text_request("x").model_copy(update=update)
    assert not is_batchable(request)
    with pytest.raises(ValueError, match=r"^request 1 has non-text content or tools"):
        build_batch_request([text_request("a"), request])


@given(st.lists(st.text(), min_size=1, max_size=8))
def test_any_task_text_survives_the_wire(texts: list[str]) -> None:
    batch = build_batch_request([text_request(text) for text in texts])
    assert tasks_of(batch) == texts


@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.text()), min_size=1),
        min_size=1,
        max_size=6,
    )
)
def test_the_payload_is_what_json_dumps_writes_of_the_wire_classes(
    conversations: list[list[tuple[Literal["user", "assistant"], str]]],
) -> None:
    requests = [
        CreateMessageRequestParams(
            messages=[
                SamplingMessage(role=role, content=TextContent(type="text", text=text))
                for role, text in conversation
            ],
            max_tokens=10,
        )
        for conversation in conversations
    ]
    expected = json.dumps(
        converter.unstructure(batch_payload(requests)), ensure_ascii=False, separators=(",", ":")
    )
    assert payload_json(requests) == expected
    content = build_batch_request(requests).messages[0].content
    assert isinstance(content, TextContent)
    assert content.text == expected
