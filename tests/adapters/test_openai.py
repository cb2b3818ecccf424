"""OpenAIClient against the real ``openai`` SDK, over mock transports and loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_args

import httpx2
import openai
import pytest
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
from openai import AsyncOpenAI
from openai.types import ChatModel

import coalesce
from coalesce._usage import read_usage
from coalesce.adapters import ModelByHint
from coalesce.adapters.openai import DEFAULT_MODEL, OpenAIClient

Handler = Callable[[httpx2.Request], httpx2.Response]

PNG = ImageContent(type="image", data="aGVsbG8=", mime_type="image/png")


def text(role: str, body: str) -> SamplingMessage:
    return SamplingMessage.model_validate({"role": role, "content": {"type": "text", "text": body}})


def ask(body: str = "2+2?", **fields: Any) -> CreateMessageRequestParams:
    fields.setdefault("max_tokens", 100)
    return CreateMessageRequestParams(messages=[text("user", body)], **fields)


def reply(
    content: str | None = "4",
    *,
    finish_reason: str = "stop",
    model: str = "gpt-5.5-2026-04-23",
    refusal: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Chat Completions response body, as documented for ``POST /v1/chat/completions``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage or {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
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
        assert request.url.path == "/v1/chat/completions"
        body: dict[str, Any] = json.loads(request.content)
        return body


def sdk(handler: Handler, **options: Any) -> AsyncOpenAI:
    transport = httpx2.MockTransport(handler)
    return AsyncOpenAI(
        api_key="test-key", http_client=httpx2.AsyncClient(transport=transport), **options
    )


async def call(
    params: CreateMessageRequestParams, recorder: Recorder, **options: Any
) -> CreateMessageResult:
    async with sdk(recorder, **options) as client:
        return await OpenAIClient(client).create_message(params)


async def test_is_a_sampling_client() -> None:
    async with AsyncOpenAI(api_key="x") as client:
        assert isinstance(OpenAIClient(client), coalesce.SamplingClient)


async def test_request_body_maps_every_field() -> None:
    params = CreateMessageRequestParams(
        messages=[
            text("user", "Hello"),
            SamplingMessage(
                role="assistant",
                content=[TextContent(type="text", text="Hi."), TextContent(type="text", text="?")],
            ),
            SamplingMessage(role="user", content=[TextContent(type="text", text="Describe"), PNG]),
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
        "model": "gpt-5.5",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Hi."}, {"type": "text", "text": "?"}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                ],
            },
        ],
        "max_completion_tokens": 321,
        "stop": ["END", "STOP"],
        "temperature": 0.2,
    }


async def test_empty_optional_fields_are_left_out() -> None:
    recorder = Recorder()
    await call(ask(system_prompt="", stop_sequences=[]), recorder)
    assert recorder.sent == {
        "model": "gpt-5.5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]}],
        "max_completion_tokens": 100,
    }


async def test_temperature_zero_is_sent() -> None:
    recorder = Recorder()
    await call(ask(temperature=0.0), recorder)
    assert recorder.sent["temperature"] == 0.0


async def test_reply_text_model_and_usage() -> None:
    result = await call(ask(), Recorder(body=reply("The answer is 4.")))
    assert result.role == "assistant"
    assert result.content == TextContent(type="text", text="The answer is 4.")
    assert result.model == "gpt-5.5-2026-04-23"
    assert result.stop_reason == "endTurn"
    assert result.meta == coalesce.usage_meta(11, 7)


async def test_a_refusal_is_the_reply_text() -> None:
    result = await call(ask(), Recorder(body=reply(None, refusal="I can't help with that.")))
    assert result.content == TextContent(type="text", text="I can't help with that.")


async def test_no_usage_reports_none() -> None:
    body = reply()
    body["usage"] = None
    result = await call(ask(), Recorder(body=body))
    assert result.meta is None
    assert read_usage(result) == (0, 0)


@pytest.mark.parametrize(
    ("api_reason", "mcp_reason"),
    [
        ("stop", "endTurn"),
        ("length", "maxTokens"),
        ("tool_calls", "toolUse"),
        ("function_call", "toolUse"),
        ("content_filter", "content_filter"),
    ],
)
async def test_stop_reason_mapping(api_reason: str, mcp_reason: str) -> None:
    result = await call(ask(), Recorder(body=reply(finish_reason=api_reason)))
    assert result.stop_reason == mcp_reason


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, openai.RateLimitError),
        (401, openai.AuthenticationError),
        (503, openai.InternalServerError),
        (400, openai.BadRequestError),
    ],
)
async def test_sdk_errors_reach_the_caller_unchanged(status: int, error: type[Exception]) -> None:
    body = {"error": {"message": "nope", "type": "x", "param": None, "code": None}}
    recorder = Recorder(status, body)
    with pytest.raises(error, match=rf"^Error code: {status} - "):
        await call(ask(), recorder, max_retries=0)
    assert len(recorder.requests) == 1


async def test_only_the_sdk_retries(autojump_clock: Any) -> None:
    body = {"error": {"message": "slow down", "type": "requests", "param": None, "code": None}}
    recorder = Recorder(429, body)
    with pytest.raises(openai.RateLimitError):
        await call(ask(), recorder, max_retries=2)
    assert len(recorder.requests) == 3  # the SDK's first try and its two retries, no more


def audio_message() -> SamplingMessage:
    return SamplingMessage(role="user", content=AudioContent(type="audio", data="", mime_type="x"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            ask(tools=[Tool(name="t", input_schema={"type": "object"})]),
            r"^OpenAIClient does not support tools in sampling requests$",
        ),
        (
            CreateMessageRequestParams(messages=[audio_message()], max_tokens=10),
            r"^OpenAIClient cannot send AudioContent \(message 0\); "
            r"only text and images are supported$",
        ),
        (
            CreateMessageRequestParams(
                messages=[text("user", "Draw"), SamplingMessage(role="assistant", content=PNG)],
                max_tokens=10,
            ),
            r"^the Chat Completions API takes no images in assistant messages \(message 1\)$",
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
            r"^the Chat Completions API takes images as image/jpeg, image/png, image/gif, "
            r"image/webp, not 'bmp'$",
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


def prefer(*names: str) -> ModelPreferences:
    return ModelPreferences(hints=[ModelHint(name=name) for name in names], cost_priority=1.0)


@pytest.mark.parametrize(
    ("preferences", "model"),
    [
        (None, "gpt-5.5"),
        (ModelPreferences(cost_priority=1.0), "gpt-5.5"),
        (prefer("gpt-4o-mini"), "gpt-5.4-mini"),
        (prefer("NANO"), "gpt-5.4-mini"),
        (prefer("claude-sonnet", "mini"), "gpt-5.4-mini"),
        (prefer("gpt-4o"), "gpt-5.5"),
        (prefer("claude-3-haiku"), "gpt-5.5"),
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
        adapter = OpenAIClient(client, model="gpt-5.2")
        await adapter.create_message(ask(model_preferences=prefer("mini")))
    assert recorder.sent["model"] == "gpt-5.2"


async def test_a_model_function_gets_the_preferences() -> None:
    seen: list[ModelPreferences | None] = []

    def choose(preferences: ModelPreferences | None) -> str:
        seen.append(preferences)
        return "gpt-5.4"

    recorder = Recorder()
    async with sdk(recorder) as client:
        adapter = OpenAIClient(client, model=choose)
        await adapter.create_message(ask(model_preferences=prefer("x")))
        await adapter.create_message(ask())
    assert seen == [prefer("x"), None]
    assert [json.loads(r.content)["model"] for r in recorder.requests] == ["gpt-5.4"] * 2


def test_default_models_are_known_to_the_installed_sdk() -> None:
    assert isinstance(DEFAULT_MODEL, ModelByHint)
    chosen = {model for _, model in DEFAULT_MODEL.families} | {DEFAULT_MODEL.default}
    assert chosen <= set(get_args(ChatModel))


async def test_coalesced_batch_over_loopback_http() -> None:
    requests = [ask("2+2?"), ask("Capital of France?", system_prompt="Be terse."), ask("Hi")]
    batch = coalesce.build_batch_request(requests)
    async with (
        serve_fake_llm() as server,
        AsyncOpenAI(api_key="unused", base_url=server.openai_base_url, max_retries=0) as client,
    ):
        reply = await OpenAIClient(client).create_message(batch)
    answers = coalesce.demux_reply(reply, len(requests))
    assert [a if isinstance(a, coalesce.TaskError) else a.content for a in answers] == [
        TextContent(type="text", text=f"You said: {question}")
        for question in ("2+2?", "Capital of France?", "Hi")
    ]
    assert reply.stop_reason == "endTurn"
    assert read_usage(reply) > (0, 0)
    ((path, body),) = server.requests
    assert path == "/v1/chat/completions"
    assert body["messages"][0] == {"role": "system", "content": batch.system_prompt}
    assert body["max_completion_tokens"] == 300


async def test_truncation_over_loopback_http_says_max_tokens() -> None:
    batch = coalesce.build_batch_request([ask("x" * 400, max_tokens=5), ask("y", max_tokens=5)])
    async with (
        serve_fake_llm() as server,
        AsyncOpenAI(api_key="unused", base_url=server.openai_base_url, max_retries=0) as client,
    ):
        reply = await OpenAIClient(client).create_message(batch)
    assert reply.stop_reason == "maxTokens"
    assert read_usage(reply)[1] == 10


def test_a_reply_without_choices_is_a_clear_error() -> None:
    from openai.types.chat import ChatCompletion

    from coalesce.adapters.openai import result_of

    completion = ChatCompletion(
        id="chatcmpl-1", choices=[], created=0, model="gpt-test", object="chat.completion"
    )
    with pytest.raises(
        ValueError, match=r"^the Chat Completions reply 'chatcmpl-1' holds no choices$"
    ):
        result_of(completion)
