"""AnthropicClient against the real ``anthropic`` SDK, over mock transports and loopback HTTP."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, get_args

import anthropic
import httpx2
import pytest
from anthropic import AsyncAnthropic
from anthropic._data import DEPRECATED_MODELS
from anthropic.types import Model
from fake_llm_server import serve_fake_llm
from mcp.types import (
    AudioContent,
    CreateMessageRequestParams,
    CreateMessageResult,
    ImageContent,
    ModelHint,
    ModelPreferences,
    SamplingMessage,
    TextContent,
    Tool,
)

import coalesce
from coalesce._usage import read_usage
from coalesce.adapters import ModelByHint
from coalesce.adapters.anthropic import DEFAULT_MODEL, AnthropicClient

Handler = Callable[[httpx2.Request], httpx2.Response]


def text(role: str, body: str) -> SamplingMessage:
    return SamplingMessage.model_validate({"role": role, "content": {"type": "text", "text": body}})


def ask(body: str = "2+2?", **fields: Any) -> CreateMessageRequestParams:
    fields.setdefault("max_tokens", 100)
    return CreateMessageRequestParams(messages=[text("user", body)], **fields)


def reply(
    content: str = "4",
    *,
    stop_reason: str | None = "end_turn",
    model: str = "claude-sonnet-5-5",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Messages API response body, as documented for ``POST /v1/messages``."""
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": content}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 11, "output_tokens": 7},
    }


class Recorder:
    """A mock transport that records each request and answers with a fixed response."""

    def __init__(self, status: int = 200, body: dict[str, Any] | None = None) -> None:
        self.status = status
        self.body = body if body is not None else reply()
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(self.status, json=self.body)

    @property
    def sent(self) -> dict[str, Any]:
        """The JSON body of the only request."""
        (request,) = self.requests
        assert request.method == "POST"
        assert request.url.path == "/v1/messages"
        body: dict[str, Any] = json.loads(request.content)
        return body


def sdk(handler: Handler, **options: Any) -> AsyncAnthropic:
    transport = httpx2.MockTransport(handler)
    return AsyncAnthropic(
        api_key="test-key", http_client=httpx2.AsyncClient(transport=transport), **options
    )


async def call(
    params: CreateMessageRequestParams, recorder: Recorder, **options: Any
) -> CreateMessageResult:
    async with sdk(recorder, **options) as client:
        return await AnthropicClient(client).create_message(params)


async def test_is_a_sampling_client() -> None:
    async with AsyncAnthropic(api_key="x") as client:
        assert isinstance(AnthropicClient(client), coalesce.SamplingClient)


async def test_request_body_maps_every_field() -> None:
    image = ImageContent(type="image", data="aGVsbG8=", mime_type="image/png")
    params = CreateMessageRequestParams(
        messages=[
            text("user", "Hello"),
            text("assistant", "Hi. What now?"),
            SamplingMessage(
                role="user",
                content=[TextContent(type="text", text="Describe"), image],
            ),
        ],
        system_prompt="Be brief.",
        max_tokens=321,
        stop_sequences=["END", "STOP"],
        temperature=0.2,
        metadata={"trace": "x"},
        include_context="thisServer",
    )
    recorder = Recorder()
    await call(params, recorder)
    assert recorder.sent == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 321,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hi. What now?"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="},
                    },
                ],
            },
        ],
        "system": "Be brief.",
        "stop_sequences": ["END", "STOP"],
    }


async def test_temperature_is_dropped_because_the_sdk_takes_none() -> None:
    # anthropic 2.x's messages.create has no temperature parameter at all.
    async with AsyncAnthropic(api_key="x") as client:
        assert "temperature" not in inspect.signature(client.messages.create).parameters
    recorder = Recorder()
    await call(ask(temperature=0.0), recorder)
    assert "temperature" not in recorder.sent


async def test_empty_optional_fields_are_left_out() -> None:
    recorder = Recorder()
    await call(ask(system_prompt="", stop_sequences=[]), recorder)
    assert recorder.sent == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]}],
    }


async def test_reply_text_model_and_usage() -> None:
    body = reply("4", model="claude-haiku-5-5")
    body["content"] = [{"type": "text", "text": "The answer "}, {"type": "text", "text": "is 4."}]
    body["usage"] = {
        "input_tokens": 5,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 9,
    }
    result = await call(ask(), Recorder(body=body))
    assert result.role == "assistant"
    assert result.content == TextContent(type="text", text="The answer is 4.")
    assert result.model == "claude-haiku-5-5"
    assert result.stop_reason == "endTurn"
    assert result.meta == coalesce.usage_meta(1105, 9)


@pytest.mark.parametrize(
    ("api_reason", "mcp_reason"),
    [
        ("end_turn", "endTurn"),
        ("max_tokens", "maxTokens"),
        ("stop_sequence", "stopSequence"),
        ("tool_use", "toolUse"),
        ("refusal", "refusal"),
        ("pause_turn", "pause_turn"),
        ("model_context_window_exceeded", "model_context_window_exceeded"),
        ("something_new", "something_new"),
        (None, None),
    ],
)
async def test_stop_reason_mapping(api_reason: str | None, mcp_reason: str | None) -> None:
    result = await call(ask(), Recorder(body=reply(stop_reason=api_reason)))
    assert result.stop_reason == mcp_reason


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
    ],
)
async def test_sdk_errors_reach_the_caller_unchanged(
    status: int, error: type[Exception], kind: str
) -> None:
    body = {"type": "error", "error": {"type": kind, "message": "nope"}}
    recorder = Recorder(status, body)
    with pytest.raises(error, match=r"^Error code: \d+ - "):
        await call(ask(), recorder, max_retries=0)
    assert len(recorder.requests) == 1


async def test_only_the_sdk_retries(autojump_clock: Any) -> None:
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    recorder = Recorder(429, body)
    with pytest.raises(anthropic.RateLimitError):
        await call(ask(), recorder, max_retries=2)
    assert len(recorder.requests) == 3  # the SDK's first try and its two retries, no more


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            ask(tools=[Tool(name="t", input_schema={"type": "object"})]),
            r"^AnthropicClient does not support tools in sampling requests$",
        ),
        (
            CreateMessageRequestParams(
                messages=[
                    SamplingMessage(
                        role="user", content=AudioContent(type="audio", data="", mime_type="x")
                    )
                ],
                max_tokens=10,
            ),
            r"^AnthropicClient cannot send AudioContent \(message 0\); "
            r"only text and images are supported$",
        ),
        (
            CreateMessageRequestParams(
                messages=[
                    SamplingMessage(
                        role="user", content=ImageContent(type="image", data="", mime_type="bmp")
                    )
                ],
                max_tokens=10,
            ),
            r"^the Messages API takes images as image/jpeg, image/png, image/gif, image/webp, "
            r"not 'bmp'$",
        ),
    ],
)
async def test_what_cannot_be_sent_is_refused_before_any_call(
    params: CreateMessageRequestParams, message: str
) -> None:
    recorder = Recorder()
    with pytest.raises(ValueError, match=message):
        await call(params, recorder)
    assert recorder.requests == []


async def test_large_batches_need_an_sdk_timeout() -> None:
    # What AnthropicClient's docstring warns about: the SDK itself refuses a
    # long non-streaming request under its default timeout.
    recorder = Recorder()
    with pytest.raises(ValueError, match=r"^Streaming is required"):
        await call(ask(max_tokens=30_000), recorder)
    assert recorder.requests == []
    await call(ask(max_tokens=30_000), recorder, timeout=1800.0)
    assert recorder.sent["max_tokens"] == 30_000


def prefer(*names: str) -> ModelPreferences:
    return ModelPreferences(hints=[ModelHint(name=name) for name in names], speed_priority=1.0)


@pytest.mark.parametrize(
    ("preferences", "model"),
    [
        (None, "claude-sonnet-5-5"),
        (ModelPreferences(cost_priority=1.0), "claude-sonnet-5-5"),
        (prefer("haiku"), "claude-haiku-5-5"),
        (prefer("claude-3-haiku-20240307"), "claude-haiku-5-5"),
        (prefer("Claude-OPUS"), "claude-opus-5-5"),
        (prefer("gpt-4o", "opus", "haiku"), "claude-opus-5-5"),
        (prefer("gpt-4o"), "claude-sonnet-5-5"),
        (prefer(), "claude-sonnet-5-5"),
    ],
)
async def test_default_model_follows_hints_to_a_known_family(
    preferences: ModelPreferences | None, model: str
) -> None:
    recorder = Recorder()
    await call(ask(model_preferences=preferences), recorder)
    assert recorder.sent["model"] == model


async def test_a_fixed_model_ignores_hints() -> None:
    recorder = Recorder()
    async with sdk(recorder) as client:
        adapter = AnthropicClient(client, model="claude-opus-4-8")
        await adapter.create_message(ask(model_preferences=prefer("haiku")))
    assert recorder.sent["model"] == "claude-opus-4-8"


async def test_a_model_function_gets_the_preferences() -> None:
    seen: list[ModelPreferences | None] = []

    def choose(preferences: ModelPreferences | None) -> str:
        seen.append(preferences)
        return "claude-haiku-4-5"

    recorder = Recorder()
    async with sdk(recorder) as client:
        adapter = AnthropicClient(client, model=choose)
        await adapter.create_message(ask(model_preferences=prefer("x")))
        await adapter.create_message(ask())
    assert seen == [prefer("x"), None]
    assert [json.loads(r.content)["model"] for r in recorder.requests] == ["claude-haiku-4-5"] * 2


def test_default_models_are_current_in_the_installed_sdk() -> None:
    assert isinstance(DEFAULT_MODEL, ModelByHint)
    chosen = {model for _, model in DEFAULT_MODEL.families} | {DEFAULT_MODEL.default}
    known = set(get_args(get_args(Model)[0]))
    assert chosen <= known
    assert not chosen & set(DEPRECATED_MODELS)


async def test_coalesced_batch_over_loopback_http() -> None:
    requests = [ask("2+2?"), ask("Capital of France?", system_prompt="Be terse."), ask("Hi")]
    batch = coalesce.build_batch_request(requests)
    async with (
        serve_fake_llm() as server,
        AsyncAnthropic(
            api_key="unused", base_url=server.anthropic_base_url, max_retries=0
        ) as client,
    ):
        reply = await AnthropicClient(client).create_message(batch)
    answers = coalesce.demux_reply(reply, len(requests))
    assert [a if isinstance(a, coalesce.TaskError) else a.content for a in answers] == [
        TextContent(type="text", text=f"You said: {question}")
        for question in ("2+2?", "Capital of France?", "Hi")
    ]
    assert reply.stop_reason == "endTurn"
    assert read_usage(reply) > (0, 0)
    ((path, body),) = server.requests
    assert path == "/v1/messages"
    assert body["system"] == batch.system_prompt
    assert body["max_tokens"] == 300


async def test_truncation_over_loopback_http_says_max_tokens() -> None:
    batch = coalesce.build_batch_request([ask("x" * 400, max_tokens=5), ask("y", max_tokens=5)])
    async with (
        serve_fake_llm() as server,
        AsyncAnthropic(
            api_key="unused", base_url=server.anthropic_base_url, max_retries=0
        ) as client,
    ):
        reply = await AnthropicClient(client).create_message(batch)
    assert reply.stop_reason == "maxTokens"
    assert read_usage(reply)[1] == 10
