"""Both model adapters against their real SDKs, over mock transports and loopback HTTP.

Each test that holds for both adapters takes the ``provider`` fixture: a
:class:`Provider` holds what differs between the two APIs (wire formats,
model names, error shapes), so one test checks both. Tests that take
``streamed`` run once through ``create_message`` and once through
``stream_message``, whose mock transport then serves the same reply as
server-sent events in the API's real streaming format. What only one API
has is tested at the end, under its name.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import Any, ClassVar, get_args

import anthropic
import httpx2
import openai
import pytest
import trio
from anthropic import AsyncAnthropic
from anthropic._data import DEPRECATED_MODELS
from anthropic.resources.messages import AsyncMessages
from anthropic.types import Model
from fake_llm_server import FakeLLMServer, serve_fake_llm
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
from openai.types.chat import ChatCompletion

import coalesce
from coalesce._usage import read_usage
from coalesce.adapters import ModelByHint, ModelChooser
from coalesce.adapters import anthropic as anthropic_adapter
from coalesce.adapters import openai as openai_adapter
from coalesce.adapters.anthropic import AnthropicClient
from coalesce.adapters.openai import OpenAIClient

Adapter = AnthropicClient | OpenAIClient

SDK_GENERATORS_LEFT_TO_TRIO = (
    r"ignore:Async generator '(anthropic|openai|httpx2|httpcore2)\.[\w.]+' was garbage collected"
    r":ResourceWarning"
)
"""The SDKs' own streaming generators, which trio's finalizer closes, with a warning.

Neither SDK, nor httpx2 and httpcore2 under them, closes the async
generators it reads a stream through: when a stream is closed early, and
with OpenAI's even at its end (it stops reading at ``[DONE]`` with
``break``), they are left to the event loop's finalizer, and trio's warns
about each one. The adapters close their
own generator and the HTTP response at once, which the tests below check;
this lets through only the SDKs' leftovers.
"""

pytestmark = pytest.mark.filterwarnings(SDK_GENERATORS_LEFT_TO_TRIO)

PNG = ImageContent(type="image", data="aGVsbG8=", mime_type="image/png")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"task_0": {"type": "string"}, "task_1": {"type": "string"}},
    "required": ["task_0", "task_1"],
    "additionalProperties": False,
}
"""A batch's response schema, as the coordinator builds it for two tasks."""

SCHEMA_REPLY = json.dumps({"task_0": "4", "task_1": "Paris"})

CHUNK = 3
"""How many characters of reply text each streamed delta carries."""


def text(role: str, body: str) -> SamplingMessage:
    return SamplingMessage.model_validate({"role": role, "content": {"type": "text", "text": body}})


def ask(body: str = "2+2?", **fields: Any) -> CreateMessageRequestParams:
    fields.setdefault("max_tokens", 100)
    return CreateMessageRequestParams(messages=[text("user", body)], **fields)


def prefer(*names: str) -> ModelPreferences:
    return ModelPreferences(hints=[ModelHint(name=name) for name in names], speed_priority=1.0)


def pieces(whole: str) -> list[str]:
    """*whole* cut into the deltas a mock stream serves."""
    return [whole[start : start + CHUNK] for start in range(0, len(whole), CHUNK)]


def sse(event: str | None, data: Any) -> str:
    """One server-sent event: an ``event:`` line if named, a ``data:`` line, a blank line."""
    name = f"event: {event}\n" if event is not None else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{name}data: {payload}\n\n"


class Provider(ABC):
    """What differs between the two APIs, for the tests that hold for both."""

    name: ClassVar[str]
    path: ClassVar[str]
    """The API's endpoint path."""
    default_model: ClassVar[str]
    """What ``DEFAULT_MODEL`` picks for a request without hints."""
    reply_model: ClassVar[str]
    """The model a mock reply says answered."""
    stream_fields: ClassVar[dict[str, Any]]
    """What ``stream_message`` adds to ``create_message``'s request body."""

    def __repr__(self) -> str:
        return self.name

    @abstractmethod
    def open(
        self,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        base_url: str | None = None,
        model: str | ModelChooser | None = None,
        **options: Any,
    ) -> AbstractAsyncContextManager[Adapter]:
        """An adapter around an SDK client over *transport* (or at *base_url*), closed after."""

    @abstractmethod
    def base_url(self, server: FakeLLMServer) -> str:
        """The SDK's ``base_url`` for the fake API server."""

    @abstractmethod
    def reply(
        self,
        content: str | None = "4",
        *,
        stop_reason: str | None = None,
        model: str | None = None,
        usage: tuple[int, int] | None = (11, 7),
    ) -> dict[str, Any]:
        """A response body as the API documents it; *stop_reason* in the API's words."""

    @abstractmethod
    def events(self, body: dict[str, Any]) -> str:
        """The reply *body* as the API streams it: server-sent events, text in deltas."""

    @abstractmethod
    def error(self, kind: str, message: str) -> dict[str, Any]:
        """An error response body."""

    @abstractmethod
    def body(
        self,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        *,
        system: str | None = None,
    ) -> dict[str, Any]:
        """The request body for a conversation of text *messages*, nothing optional."""

    @abstractmethod
    def schema_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        """What a ``response_schema`` adds to the request body."""

    @abstractmethod
    def system_of(self, body: dict[str, Any]) -> str:
        """The system prompt a request body sends."""

    @abstractmethod
    def max_tokens_of(self, body: dict[str, Any]) -> int:
        """The output token limit a request body sends."""


class AnthropicProvider(Provider):
    name = "anthropic"
    path = "/v1/messages"
    default_model = "claude-sonnet-5-5"
    reply_model = "claude-sonnet-5-5"
    stream_fields: ClassVar[dict[str, Any]] = {"stream": True}

    @asynccontextmanager
    async def open(
        self,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        base_url: str | None = None,
        model: str | ModelChooser | None = None,
        **options: Any,
    ) -> AsyncIterator[Adapter]:
        http_client = httpx2.AsyncClient(transport=transport) if transport is not None else None
        async with AsyncAnthropic(
            api_key="test-key", base_url=base_url, http_client=http_client, **options
        ) as client:
            yield AnthropicClient(client) if model is None else AnthropicClient(client, model=model)

    def base_url(self, server: FakeLLMServer) -> str:
        return server.anthropic_base_url

    def reply(
        self,
        content: str | None = "4",
        *,
        stop_reason: str | None = "end_turn",
        model: str | None = None,
        usage: tuple[int, int] | None = (11, 7),
    ) -> dict[str, Any]:
        """A Messages API response body, as documented for ``POST /v1/messages``."""
        assert usage is not None, "the Messages API always reports usage"
        return {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": model or self.reply_model,
            "content": [] if content is None else [{"type": "text", "text": content}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }

    def events(self, body: dict[str, Any]) -> str:
        """The Messages API's stream: ``message_start``, each block's events, ``message_delta``."""
        usage = dict(body["usage"])
        output_tokens = usage.pop("output_tokens")
        start = {
            **body,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        stream = [sse("message_start", {"type": "message_start", "message": start})]
        for index, block in enumerate(body["content"]):
            stream.append(
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            if index == 0:
                stream.append(sse("ping", {"type": "ping"}))
            stream.extend(
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
                for piece in pieces(block["text"])
            )
            stream.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        stream.append(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": body["stop_reason"],
                        "stop_sequence": body["stop_sequence"],
                    },
                    "usage": {"output_tokens": output_tokens},
                },
            )
        )
        stream.append(sse("message_stop", {"type": "message_stop"}))
        return "".join(stream)

    def error(self, kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}

    def body(
        self,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        *,
        system: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
        if system is not None:
            body["system"] = system
        return body

    def schema_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"output_config": {"format": {"type": "json_schema", "schema": schema}}}

    def system_of(self, body: dict[str, Any]) -> str:
        system: str = body["system"]
        return system

    def max_tokens_of(self, body: dict[str, Any]) -> int:
        limit: int = body["max_tokens"]
        return limit


class OpenAIProvider(Provider):
    name = "openai"
    path = "/v1/chat/completions"
    default_model = "gpt-5.5"
    reply_model = "gpt-5.5-2026-04-23"
    stream_fields: ClassVar[dict[str, Any]] = {
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    @asynccontextmanager
    async def open(
        self,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        base_url: str | None = None,
        model: str | ModelChooser | None = None,
        **options: Any,
    ) -> AsyncIterator[Adapter]:
        http_client = httpx2.AsyncClient(transport=transport) if transport is not None else None
        async with AsyncOpenAI(
            api_key="test-key", base_url=base_url, http_client=http_client, **options
        ) as client:
            yield OpenAIClient(client) if model is None else OpenAIClient(client, model=model)

    def base_url(self, server: FakeLLMServer) -> str:
        return server.openai_base_url

    def reply(
        self,
        content: str | None = "4",
        *,
        stop_reason: str | None = "stop",
        model: str | None = None,
        usage: tuple[int, int] | None = (11, 7),
        refusal: str | None = None,
    ) -> dict[str, Any]:
        """A Chat Completions response body, as documented for ``POST /v1/chat/completions``."""
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model or self.reply_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": stop_reason,
                    "logprobs": None,
                }
            ],
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            },
        }

    def events(self, body: dict[str, Any]) -> str:
        """Chat Completions' stream: ``chat.completion.chunk`` data lines, then ``[DONE]``.

        A first chunk with the role, one per delta, one with the finish
        reason, and (as ``include_usage`` asks) one with no choices and the
        usage.
        """

        def chunk(choices: list[dict[str, Any]], usage: Any = None) -> str:
            return sse(
                None,
                {
                    "id": body["id"],
                    "object": "chat.completion.chunk",
                    "created": body["created"],
                    "model": body["model"],
                    "system_fingerprint": None,
                    "choices": choices,
                    "usage": usage,
                },
            )

        def delta(fields: dict[str, Any], finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": fields, "logprobs": None, "finish_reason": finish_reason}
            return chunk([choice])

        (choice,) = body["choices"]
        message = choice["message"]
        stream = [delta({"role": "assistant", "content": "", "refusal": None})]
        stream.extend(delta({"content": piece}) for piece in pieces(message["content"] or ""))
        stream.extend(delta({"refusal": piece}) for piece in pieces(message["refusal"] or ""))
        stream.append(delta({}, choice["finish_reason"]))
        if body["usage"] is not None:
            stream.append(chunk([], body["usage"]))
        stream.append(sse(None, "[DONE]"))
        return "".join(stream)

    def error(self, kind: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def body(
        self,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        *,
        system: str | None = None,
    ) -> dict[str, Any]:
        prefix = [{"role": "system", "content": system}] if system is not None else []
        return {"model": model, "messages": prefix + messages, "max_completion_tokens": max_tokens}

    def schema_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "coalesced_batch", "strict": True, "schema": schema},
            }
        }

    def system_of(self, body: dict[str, Any]) -> str:
        first = body["messages"][0]
        assert first["role"] == "system"
        system: str = first["content"]
        return system

    def max_tokens_of(self, body: dict[str, Any]) -> int:
        limit: int = body["max_completion_tokens"]
        return limit


ANTHROPIC = AnthropicProvider()
OPENAI = OpenAIProvider()
PROVIDERS = [ANTHROPIC, OPENAI]


def case_id(value: object) -> str | None:
    """A parametrized case's id: the provider's name, the rest as pytest makes it."""
    return value.name if isinstance(value, Provider) else None


@pytest.fixture(params=PROVIDERS, ids=repr)
def provider(request: pytest.FixtureRequest) -> Provider:
    chosen: Provider = request.param
    return chosen


@pytest.fixture(params=[False, True], ids=["create", "stream"])
def streamed(request: pytest.FixtureRequest) -> bool:
    chosen: bool = request.param
    return chosen


class Recorder:
    """A mock transport that records each request and answers with a fixed response.

    A request whose body asks for ``"stream": true`` gets a successful reply
    as the API streams it, in deltas of :data:`CHUNK` characters.
    """

    def __init__(
        self, provider: Provider, status: int = 200, body: dict[str, Any] | None = None
    ) -> None:
        self.provider = provider
        self.status = status
        self.body = body if body is not None else provider.reply()
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.status == 200 and json.loads(request.content).get("stream"):
            return httpx2.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=self.provider.events(self.body).encode(),
            )
        return httpx2.Response(self.status, json=self.body)

    @property
    def sent(self) -> dict[str, Any]:
        """The JSON body of the only request."""
        (request,) = self.requests
        return self.provider_body(request)

    def provider_body(self, request: httpx2.Request) -> dict[str, Any]:
        assert request.method == "POST"
        assert request.url.path == self.provider.path
        body: dict[str, Any] = json.loads(request.content)
        return body

    def open(self, **options: Any) -> AbstractAsyncContextManager[Adapter]:
        """An adapter whose SDK client sends its requests here."""
        return self.provider.open(transport=httpx2.MockTransport(self), **options)


async def collect(adapter: Adapter, params: CreateMessageRequestParams, **kwargs: Any) -> list[str]:
    """Every chunk ``stream_message`` yields, the stream closed after."""
    async with aclosing(adapter.stream_message(params, **kwargs)) as stream:
        return [chunk async for chunk in stream]


async def answer(
    adapter: Adapter,
    params: CreateMessageRequestParams,
    *,
    streamed: bool,
    response_schema: dict[str, Any] | None = None,
) -> CreateMessageResult:
    """The reply, from ``create_message`` or from the end of ``stream_message``."""
    if not streamed:
        return await adapter.create_message(params, response_schema=response_schema)
    chunks = await collect(adapter, params, response_schema=response_schema)
    result = adapter.last_stream_result
    assert result is not None
    assert isinstance(result.content, TextContent)
    assert "".join(chunks) == result.content.text
    return result


async def call(
    provider: Provider,
    params: CreateMessageRequestParams,
    recorder: Recorder,
    *,
    streamed: bool = False,
    response_schema: dict[str, Any] | None = None,
    **options: Any,
) -> CreateMessageResult:
    async with recorder.open(**options) as adapter:
        return await answer(adapter, params, streamed=streamed, response_schema=response_schema)


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(parts)}


def part(body: str) -> dict[str, Any]:
    return {"type": "text", "text": body}


# --- Both adapters ---------------------------------------------------------------------------


async def test_is_a_sampling_client_that_takes_a_schema(provider: Provider) -> None:
    async with provider.open() as adapter:
        assert isinstance(adapter, coalesce.SamplingClient)
        assert type(adapter).supports_response_schema is True
        assert adapter.last_stream_result is None


async def test_request_body_maps_every_field(provider: Provider, streamed: bool) -> None:
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
    recorder = Recorder(provider)
    await call(provider, params, recorder, streamed=streamed)
    expected: dict[str, Any]
    if provider is ANTHROPIC:
        expected = {
            "model": "claude-sonnet-5-5",
            "max_tokens": 321,
            "messages": [
                user(part("Hello")),
                {"role": "assistant", "content": [part("Hi."), part("?")]},
                user(
                    part("Describe"),
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="},
                    },
                ),
            ],
            "system": "Be brief.",
            "stop_sequences": ["END", "STOP"],
        }
    else:
        expected = {
            "model": "gpt-5.5",
            "messages": [
                {"role": "system", "content": "Be brief."},
                user(part("Hello")),
                {"role": "assistant", "content": [part("Hi."), part("?")]},
                user(
                    part("Describe"),
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                ),
            ],
            "max_completion_tokens": 321,
            "stop": ["END", "STOP"],
            "temperature": 0.2,
        }
    assert recorder.sent == expected | (provider.stream_fields if streamed else {})


async def test_empty_optional_fields_are_left_out(provider: Provider, streamed: bool) -> None:
    recorder = Recorder(provider)
    await call(provider, ask(system_prompt="", stop_sequences=[]), recorder, streamed=streamed)
    expected = provider.body(provider.default_model, [user(part("2+2?"))], 100)
    assert recorder.sent == expected | (provider.stream_fields if streamed else {})


async def test_a_response_schema_is_sent_as_the_apis_structured_output(
    provider: Provider, streamed: bool
) -> None:
    recorder = Recorder(provider, body=provider.reply(SCHEMA_REPLY))
    result = await call(
        provider,
        ask("Two tasks", system_prompt="Batch.", max_tokens=200),
        recorder,
        streamed=streamed,
        response_schema=SCHEMA,
    )
    sent = recorder.sent
    expected = provider.body(
        provider.default_model, [user(part("Two tasks"))], 200, system="Batch."
    ) | provider.schema_fields(SCHEMA)
    assert sent == expected | (provider.stream_fields if streamed else {})
    # The schema goes out exactly as given, not rewritten by the SDK.
    (schema_field,) = provider.schema_fields(SCHEMA)
    assert json.dumps(sent[schema_field]) == json.dumps(
        provider.schema_fields(SCHEMA)[schema_field]
    )
    # The reply's text is the JSON object itself, which the reader takes apart.
    assert result.content == TextContent(type="text", text=SCHEMA_REPLY)
    assert json.loads(SCHEMA_REPLY) == {"task_0": "4", "task_1": "Paris"}


async def test_reply_text_model_and_usage(provider: Provider, streamed: bool) -> None:
    body = provider.reply("The answer is 4.", model="the-model-that-answered", usage=(5, 9))
    result = await call(provider, ask(), Recorder(provider, body=body), streamed=streamed)
    assert result.role == "assistant"
    assert result.content == TextContent(type="text", text="The answer is 4.")
    assert result.model == "the-model-that-answered"
    assert result.stop_reason == "endTurn"
    assert result.meta == coalesce.usage_meta(5, 9)


STOP_REASONS = [
    (ANTHROPIC, "end_turn", "endTurn"),
    (ANTHROPIC, "max_tokens", "maxTokens"),
    (ANTHROPIC, "stop_sequence", "stopSequence"),
    (ANTHROPIC, "tool_use", "toolUse"),
    (ANTHROPIC, "refusal", "refusal"),
    (ANTHROPIC, "pause_turn", "pause_turn"),
    (ANTHROPIC, "model_context_window_exceeded", "model_context_window_exceeded"),
    (ANTHROPIC, "something_new", "something_new"),
    (ANTHROPIC, None, None),
    (OPENAI, "stop", "endTurn"),
    (OPENAI, "length", "maxTokens"),
    (OPENAI, "tool_calls", "toolUse"),
    (OPENAI, "function_call", "toolUse"),
    (OPENAI, "content_filter", "content_filter"),
]


@pytest.mark.parametrize(("provider", "api_reason", "mcp_reason"), STOP_REASONS, ids=case_id)
async def test_stop_reason_mapping(
    provider: Provider, api_reason: str | None, mcp_reason: str | None, streamed: bool
) -> None:
    recorder = Recorder(provider, body=provider.reply(stop_reason=api_reason))
    result = await call(provider, ask(), recorder, streamed=streamed)
    assert result.stop_reason == mcp_reason


SDK_ERRORS = [
    (ANTHROPIC, 429, anthropic.RateLimitError, "rate_limit_error"),
    (ANTHROPIC, 401, anthropic.AuthenticationError, "authentication_error"),
    (ANTHROPIC, 529, anthropic.OverloadedError, "overloaded_error"),
    (ANTHROPIC, 400, anthropic.BadRequestError, "invalid_request_error"),
    (OPENAI, 429, openai.RateLimitError, "requests"),
    (OPENAI, 401, openai.AuthenticationError, "x"),
    (OPENAI, 503, openai.InternalServerError, "x"),
    (OPENAI, 400, openai.BadRequestError, "x"),
]


@pytest.mark.parametrize(("provider", "status", "error", "kind"), SDK_ERRORS, ids=case_id)
async def test_sdk_errors_reach_the_caller_unchanged(
    provider: Provider, status: int, error: type[Exception], kind: str, streamed: bool
) -> None:
    recorder = Recorder(provider, status, provider.error(kind, "nope"))
    with pytest.raises(error, match=rf"^Error code: {status} - "):
        await call(provider, ask(), recorder, streamed=streamed, max_retries=0)
    assert len(recorder.requests) == 1


async def test_only_the_sdk_retries(
    provider: Provider, streamed: bool, autojump_clock: Any
) -> None:
    recorder = Recorder(provider, 429, provider.error("rate_limit_error", "slow down"))
    with pytest.raises((anthropic.RateLimitError, openai.RateLimitError)):
        await call(provider, ask(), recorder, streamed=streamed, max_retries=2)
    assert len(recorder.requests) == 3  # the SDK's first try and its two retries, no more


def audio_message() -> SamplingMessage:
    return SamplingMessage(role="user", content=AudioContent(type="audio", data="", mime_type="x"))


def bmp_message() -> SamplingMessage:
    return SamplingMessage(
        role="user", content=ImageContent(type="image", data="", mime_type="bmp")
    )


REFUSED = [
    (
        ANTHROPIC,
        ask(tools=[Tool(name="t", input_schema={"type": "object"})]),
        r"^AnthropicClient does not support tools in sampling requests$",
    ),
    (
        ANTHROPIC,
        CreateMessageRequestParams(messages=[audio_message()], max_tokens=10),
        r"^AnthropicClient cannot send AudioContent \(message 0\); "
        r"only text and images are supported$",
    ),
    (
        ANTHROPIC,
        CreateMessageRequestParams(messages=[bmp_message()], max_tokens=10),
        r"^the Messages API takes images as image/jpeg, image/png, image/gif, image/webp, "
        r"not 'bmp'$",
    ),
    (
        OPENAI,
        ask(tools=[Tool(name="t", input_schema={"type": "object"})]),
        r"^OpenAIClient does not support tools in sampling requests$",
    ),
    (
        OPENAI,
        CreateMessageRequestParams(messages=[audio_message()], max_tokens=10),
        r"^OpenAIClient cannot send AudioContent \(message 0\); "
        r"only text and images are supported$",
    ),
    (
        OPENAI,
        CreateMessageRequestParams(
            messages=[text("user", "Draw"), SamplingMessage(role="assistant", content=PNG)],
            max_tokens=10,
        ),
        r"^the Chat Completions API takes no images in assistant messages \(message 1\)$",
    ),
    (
        OPENAI,
        CreateMessageRequestParams(messages=[bmp_message()], max_tokens=10),
        r"^the Chat Completions API takes images as image/jpeg, image/png, image/gif, "
        r"image/webp, not 'bmp'$",
    ),
]


@pytest.mark.parametrize(("provider", "params", "message"), REFUSED, ids=case_id)
async def test_what_cannot_be_sent_is_refused_before_any_call(
    provider: Provider, params: CreateMessageRequestParams, message: str, streamed: bool
) -> None:
    recorder = Recorder(provider)
    with pytest.raises(ValueError, match=message):
        await call(provider, params, recorder, streamed=streamed)
    assert recorder.requests == []


HINTS = [
    (ANTHROPIC, None, "claude-sonnet-5-5"),
    (ANTHROPIC, ModelPreferences(cost_priority=1.0), "claude-sonnet-5-5"),
    (ANTHROPIC, prefer("haiku"), "claude-haiku-5-5"),
    (ANTHROPIC, prefer("claude-3-haiku-20240307"), "claude-haiku-5-5"),
    (ANTHROPIC, prefer("Claude-OPUS"), "claude-opus-5-5"),
    (ANTHROPIC, prefer("gpt-4o", "opus", "haiku"), "claude-opus-5-5"),
    (ANTHROPIC, prefer("gpt-4o"), "claude-sonnet-5-5"),
    (ANTHROPIC, prefer(), "claude-sonnet-5-5"),
    (OPENAI, None, "gpt-5.5"),
    (OPENAI, ModelPreferences(cost_priority=1.0), "gpt-5.5"),
    (OPENAI, prefer("gpt-4o-mini"), "gpt-5.4-mini"),
    (OPENAI, prefer("NANO"), "gpt-5.4-mini"),
    (OPENAI, prefer("claude-sonnet", "mini"), "gpt-5.4-mini"),
    (OPENAI, prefer("gpt-4o"), "gpt-5.5"),
    (OPENAI, prefer("claude-3-haiku"), "gpt-5.5"),
]


@pytest.mark.parametrize(("provider", "preferences", "model"), HINTS, ids=case_id)
async def test_default_model_follows_hints_to_a_known_family(
    provider: Provider, preferences: ModelPreferences | None, model: str, streamed: bool
) -> None:
    recorder = Recorder(provider)
    await call(provider, ask(model_preferences=preferences), recorder, streamed=streamed)
    assert recorder.sent["model"] == model


async def test_a_fixed_model_ignores_hints(provider: Provider, streamed: bool) -> None:
    recorder = Recorder(provider)
    async with recorder.open(model="fixed-model-1") as adapter:
        params = ask(model_preferences=prefer("haiku", "mini"))
        await answer(adapter, params, streamed=streamed)
    assert recorder.sent["model"] == "fixed-model-1"


async def test_a_model_function_gets_the_preferences(provider: Provider) -> None:
    seen: list[ModelPreferences | None] = []

    def choose(preferences: ModelPreferences | None) -> str:
        seen.append(preferences)
        return "chosen-model-1"

    recorder = Recorder(provider)
    async with recorder.open(model=choose) as adapter:
        await adapter.create_message(ask(model_preferences=prefer("x")))
        await collect(adapter, ask())
    assert seen == [prefer("x"), None]
    assert [recorder.provider_body(r)["model"] for r in recorder.requests] == ["chosen-model-1"] * 2


# --- Streaming -------------------------------------------------------------------------------


async def test_a_stream_yields_the_text_deltas_as_they_come(provider: Provider) -> None:
    recorder = Recorder(provider, body=provider.reply("Hello, world"))
    async with recorder.open() as adapter:
        chunks = await collect(adapter, ask())
    assert chunks == ["Hel", "lo,", " wo", "rld"]


async def test_a_schema_constrained_stream_yields_the_json_in_pieces(provider: Provider) -> None:
    recorder = Recorder(provider, body=provider.reply(SCHEMA_REPLY))
    async with recorder.open() as adapter:
        chunks = await collect(adapter, ask(), response_schema=SCHEMA)
    assert chunks == pieces(SCHEMA_REPLY)
    assert len(chunks) > 1
    assert json.loads("".join(chunks)) == {"task_0": "4", "task_1": "Paris"}


async def test_the_stream_result_is_the_latest_finished_streams(provider: Provider) -> None:
    recorder = Recorder(provider)
    async with recorder.open() as adapter:
        await collect(adapter, ask())
        first = adapter.last_stream_result
        recorder.body = provider.reply("5", usage=(1, 2))
        await collect(adapter, ask())
        second = adapter.last_stream_result
    assert first is not None
    assert second is not None
    assert first.content == TextContent(type="text", text="4")
    assert (second.content, read_usage(second)) == (TextContent(type="text", text="5"), (1, 2))


class SlowStream(httpx2.AsyncByteStream):
    """A response body that sends its first part, then waits forever, and notes being closed."""

    def __init__(self, first: bytes) -> None:
        self.unsent = [first]
        self.closes = 0

    def __aiter__(self) -> SlowStream:
        return self

    async def __anext__(self) -> bytes:
        if self.unsent:
            return self.unsent.pop()
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        self.closes += 1


def leading_events(provider: Provider, whole: str, count: int) -> bytes:
    """The first *count* text deltas of *whole*'s stream, and all the events before them."""
    separator = "\n\n"
    events = provider.events(provider.reply(whole)).split(separator)
    last = json.dumps(pieces(whole)[count - 1])
    end = next(i for i, event in enumerate(events) if '"delta"' in event and last in event)
    return (separator.join(events[: end + 1]) + separator).encode()


async def test_closing_a_stream_early_closes_the_http_response(
    provider: Provider, autojump_clock: Any
) -> None:
    body = SlowStream(leading_events(provider, "Hello, world", 2))
    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    async with provider.open(transport=httpx2.MockTransport(handler)) as adapter:
        stream = adapter.stream_message(ask())
        with trio.fail_after(1):  # in virtual time: anything that waited would fail it
            assert await anext(stream) == "Hel"
            assert await anext(stream) == "lo,"
            assert body.closes == 0
            await stream.aclose()  # does not wait for the rest of the reply
        assert body.closes == 1
        assert adapter.last_stream_result is None  # an unfinished reply is no result
    assert len(requests) == 1


async def test_cancelling_a_stream_closes_the_http_response(
    provider: Provider, autojump_clock: Any
) -> None:
    body = SlowStream(leading_events(provider, "Hello, world", 1))

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    chunks: list[str] = []
    async with provider.open(transport=httpx2.MockTransport(handler)) as adapter:
        with trio.move_on_after(10) as scope:
            async with aclosing(adapter.stream_message(ask())) as stream:
                # A loop, not a comprehension: what came before the cancel is the point.
                async for chunk in stream:  # waits in the second delta, which never comes
                    chunks.append(chunk)  # noqa: PERF401
    assert scope.cancelled_caught
    assert chunks == ["Hel"]
    assert body.closes == 1


STREAM_ERRORS = [
    (
        ANTHROPIC,
        sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
        anthropic.APIStatusError,
        r"^\{'type': 'error', 'error': \{'type': 'overloaded_error', 'message': 'busy'\}\}$",
    ),
    (
        OPENAI,
        sse(None, {"error": {"message": "busy", "type": "server_error", "param": None}}),
        openai.APIError,
        r"^busy$",
    ),
]


@pytest.mark.parametrize(
    ("provider", "event", "error", "message"), STREAM_ERRORS, ids=["anthropic", "openai"]
)
async def test_an_error_in_the_middle_of_a_stream_is_raised_unchanged(
    provider: Provider, event: str, error: type[Exception], message: str
) -> None:
    first = leading_events(provider, "Hello, world", 1)

    def handler(request: httpx2.Request) -> httpx2.Response:
        stream = first + event.encode()
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=stream)

    chunks: list[str] = []
    async with provider.open(transport=httpx2.MockTransport(handler)) as adapter:
        with pytest.raises(error, match=message):
            async with aclosing(adapter.stream_message(ask())) as stream:
                # A loop, not a comprehension: what came before the error is the point.
                async for chunk in stream:
                    chunks.append(chunk)  # noqa: PERF401
        assert adapter.last_stream_result is None
    assert chunks == ["Hel"]


# --- Over loopback HTTP ----------------------------------------------------------------------


async def test_coalesced_batch_over_loopback_http(provider: Provider) -> None:
    requests = [ask("2+2?"), ask("Capital of France?", system_prompt="Be terse."), ask("Hi")]
    batch = coalesce.build_batch_request(requests)
    async with (
        serve_fake_llm() as server,
        provider.open(base_url=provider.base_url(server), max_retries=0) as adapter,
    ):
        reply = await adapter.create_message(batch)
    answers = coalesce.demux_reply(reply, len(requests))
    assert [a if isinstance(a, coalesce.TaskError) else a.content for a in answers] == [
        TextContent(type="text", text=f"You said: {question}")
        for question in ("2+2?", "Capital of France?", "Hi")
    ]
    assert reply.stop_reason == "endTurn"
    assert read_usage(reply) > (0, 0)
    ((path, body),) = server.requests
    assert path == provider.path
    assert provider.system_of(body) == batch.system_prompt
    assert provider.max_tokens_of(body) == 300


async def test_a_streamed_batch_over_loopback_http_is_the_same_reply(provider: Provider) -> None:
    batch = coalesce.build_batch_request([ask("2+2?"), ask("Capital of France?")])
    async with (
        serve_fake_llm() as server,
        provider.open(base_url=provider.base_url(server), max_retries=0) as adapter,
    ):
        whole = await adapter.create_message(batch)
        chunks = await collect(adapter, batch)
        streamed = adapter.last_stream_result
    assert isinstance(whole.content, TextContent)
    assert len(chunks) > 1
    assert "".join(chunks) == whole.content.text
    assert streamed == whole
    (_, sent_whole), (_, sent_streamed) = server.requests
    assert sent_streamed == sent_whole | provider.stream_fields


async def test_a_schema_constrained_batch_over_loopback_http(
    provider: Provider, streamed: bool
) -> None:
    batch = coalesce.build_batch_request([ask("2+2?"), ask("Capital of France?")])
    async with (
        serve_fake_llm() as server,
        provider.open(base_url=provider.base_url(server), max_retries=0) as adapter,
    ):
        reply = await answer(adapter, batch, streamed=streamed, response_schema=SCHEMA)
    assert isinstance(reply.content, TextContent)
    assert json.loads(reply.content.text) == {
        "task_0": "You said: 2+2?",
        "task_1": "You said: Capital of France?",
    }
    ((_, body),) = server.requests
    assert body.items() >= provider.schema_fields(SCHEMA).items()


async def test_truncation_over_loopback_http_says_max_tokens(provider: Provider) -> None:
    batch = coalesce.build_batch_request([ask("x" * 400, max_tokens=5), ask("y", max_tokens=5)])
    async with (
        serve_fake_llm() as server,
        provider.open(base_url=provider.base_url(server), max_retries=0) as adapter,
    ):
        reply = await adapter.create_message(batch)
    assert reply.stop_reason == "maxTokens"
    assert read_usage(reply)[1] == 10


# --- Anthropic only --------------------------------------------------------------------------


async def test_anthropic_drops_temperature_because_the_sdk_takes_none(streamed: bool) -> None:
    # anthropic 2.x's messages.create and messages.stream have no temperature parameter at all.
    async with AsyncAnthropic(api_key="x") as client:
        assert "temperature" not in inspect.signature(client.messages.create).parameters
        assert "temperature" not in inspect.signature(client.messages.stream).parameters
    recorder = Recorder(ANTHROPIC)
    await call(ANTHROPIC, ask(temperature=0.0), recorder, streamed=streamed)
    assert "temperature" not in recorder.sent


async def test_anthropic_joins_text_blocks_and_counts_cached_input(streamed: bool) -> None:
    body = ANTHROPIC.reply("4", model="claude-haiku-5-5")
    body["content"] = [part("The answer "), part("is 4.")]
    body["usage"] = {
        "input_tokens": 5,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 9,
    }
    result = await call(ANTHROPIC, ask(), Recorder(ANTHROPIC, body=body), streamed=streamed)
    assert result.content == TextContent(type="text", text="The answer is 4.")
    assert result.model == "claude-haiku-5-5"
    assert result.meta == coalesce.usage_meta(1105, 9)


async def test_anthropic_large_batches_need_an_sdk_timeout_unless_streamed() -> None:
    # What AnthropicClient's docstring warns about: the SDK itself refuses a
    # long non-streaming request under its default timeout.
    recorder = Recorder(ANTHROPIC)
    with pytest.raises(ValueError, match=r"^Streaming is required"):
        await call(ANTHROPIC, ask(max_tokens=30_000), recorder)
    assert recorder.requests == []
    await call(ANTHROPIC, ask(max_tokens=30_000), recorder, timeout=1800.0)
    assert recorder.sent["max_tokens"] == 30_000
    # A stream needs no such timeout.
    recorder = Recorder(ANTHROPIC)
    await call(ANTHROPIC, ask(max_tokens=30_000), recorder, streamed=True)
    assert recorder.sent["max_tokens"] == 30_000


def test_anthropic_default_models_are_current_in_the_installed_sdk() -> None:
    default = anthropic_adapter.DEFAULT_MODEL
    assert isinstance(default, ModelByHint)
    chosen = {model for _, model in default.families} | {default.default}
    known = set(get_args(get_args(Model)[0]))
    assert chosen <= known
    assert not chosen & set(DEPRECATED_MODELS)


def test_anthropic_structured_outputs_are_in_the_installed_sdk() -> None:
    # Why the schema goes in output_config rather than a forced tool: this SDK
    # takes it, on messages.create and messages.stream alike.
    for method in (AsyncMessages.create, AsyncMessages.stream):
        assert "output_config" in inspect.signature(method).parameters
    assert anthropic_adapter.output_config(None) is anthropic.omit
    assert (
        anthropic_adapter.output_config(SCHEMA) == ANTHROPIC.schema_fields(SCHEMA)["output_config"]
    )


# --- OpenAI only -----------------------------------------------------------------------------


async def test_openai_sends_temperature_zero(streamed: bool) -> None:
    recorder = Recorder(OPENAI)
    await call(OPENAI, ask(temperature=0.0), recorder, streamed=streamed)
    assert recorder.sent["temperature"] == 0.0


async def test_openai_refusal_is_the_reply_text(streamed: bool) -> None:
    body = OPENAI.reply(None, refusal="I can't help with that.")
    result = await call(OPENAI, ask(), Recorder(OPENAI, body=body), streamed=streamed)
    assert result.content == TextContent(type="text", text="I can't help with that.")


async def test_openai_no_usage_reports_none(streamed: bool) -> None:
    result = await call(
        OPENAI, ask(), Recorder(OPENAI, body=OPENAI.reply(usage=None)), streamed=streamed
    )
    assert result.meta is None
    assert read_usage(result) == (0, 0)


async def test_openai_stream_reads_only_the_first_choice() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        chunks = [
            {"index": 1, "delta": {"content": "other"}, "logprobs": None, "finish_reason": None},
            {"index": 0, "delta": {"content": "mine"}, "logprobs": None, "finish_reason": None},
            {"index": 1, "delta": {}, "logprobs": None, "finish_reason": "length"},
            {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"},
        ]
        events = "".join(
            sse(
                None,
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "gpt-test",
                    "choices": [choice],
                },
            )
            for choice in chunks
        )
        body = events + sse(None, "[DONE]")
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async with OPENAI.open(transport=httpx2.MockTransport(handler)) as adapter:
        assert await collect(adapter, ask()) == ["mine"]
        result = adapter.last_stream_result
    assert result is not None
    assert (result.model, result.stop_reason, result.meta) == ("gpt-test", "endTurn", None)


def test_openai_default_models_are_known_to_the_installed_sdk() -> None:
    default = openai_adapter.DEFAULT_MODEL
    assert isinstance(default, ModelByHint)
    chosen = {model for _, model in default.families} | {default.default}
    assert chosen <= set(get_args(ChatModel))


def test_openai_a_reply_without_choices_is_a_clear_error() -> None:
    completion = ChatCompletion(
        id="chatcmpl-1", choices=[], created=0, model="gpt-test", object="chat.completion"
    )
    with pytest.raises(
        ValueError, match=r"^the Chat Completions reply 'chatcmpl-1' holds no choices$"
    ):
        openai_adapter.result_of(completion)


def test_openai_response_format_is_strict_json_schema() -> None:
    assert openai_adapter.response_format(None) is openai.omit
    assert openai_adapter.response_format(SCHEMA) == OPENAI.schema_fields(SCHEMA)["response_format"]
    assert openai_adapter.RESPONSE_FORMAT_NAME == "coalesced_batch"
