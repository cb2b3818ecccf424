"""A :class:`~coalesce.SamplingClient` that answers with OpenAI's Chat Completions API.

Importing this module imports the ``openai`` SDK (``pip install
'coalesce-llm[openai]'``); nothing else in :mod:`coalesce` does.

What is sent (``POST /v1/chat/completions``, built against ``openai`` 3.57):

- ``system_prompt`` as a first ``system`` message (left out when empty);
- each ``SamplingMessage`` as a message of the same role, its text blocks as
  ``text`` parts and, in user messages, its images as ``image_url`` parts
  holding a ``data:`` URL;
- ``max_tokens`` as ``max_completion_tokens`` (``max_tokens`` is deprecated
  and refused by reasoning models), ``stop_sequences`` as ``stop`` and
  ``temperature`` as itself;
- a ``response_schema``, when given, as a strict JSON Schema response format:
  ``response_format={"type": "json_schema", "json_schema": {"name":
  "coalesced_batch", "strict": true, "schema": schema}}``;
- ``"stream": true`` and ``"stream_options": {"include_usage": true}`` from
  :meth:`OpenAIClient.stream_message`.

What is dropped: ``metadata`` (OpenAI's is for stored completions only) and
``include_context`` (adding context is the MCP host's job). Tools, tool
blocks, audio and images in assistant messages are refused with
:class:`ValueError`, as are images in a format the API does not take.

The reply's text (or its refusal, if it refused), model and finish reason
(``stop`` to ``endTurn``, ``length`` to ``maxTokens``, ``tool_calls`` and
``function_call`` to ``toolUse``; any other passes through) come back, and its
token usage goes into ``_meta`` with :func:`coalesce.usage_meta`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar, Literal, get_args

from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ImageContent,
    SamplingMessage,
    TextContent,
)
from openai import AsyncOpenAI, Omit, omit
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionMessageParam,
)
from openai.types.shared_params import ResponseFormatJSONSchema

from ._common import blocks_of, check_supported, make_result, map_stop_reason
from ._models import ModelByHint, ModelChooser, resolve_model

__all__ = [
    "DEFAULT_MODEL",
    "RESPONSE_FORMAT_NAME",
    "OpenAIClient",
    "messages_request",
    "response_format",
    "result_of",
]

DEFAULT_MODEL = ModelByHint(
    {
        "nano": "gpt-5.4-mini",
        "mini": "gpt-5.4-mini",
    },
    default="gpt-5.5",
)
"""How :class:`OpenAIClient` chooses a model unless told otherwise.

A hint naming a small model (``"mini"``, ``"gpt-4o-mini"``, ``"nano"``, ...)
picks ``gpt-5.4-mini``, the smallest current one; anything else gets
``gpt-5.5``.
"""

ImageMediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
IMAGE_MEDIA_TYPES: tuple[ImageMediaType, ...] = get_args(ImageMediaType)
"""The image formats the Chat Completions API takes."""

STOP_REASONS = {
    "stop": "endTurn",
    "length": "maxTokens",
    "tool_calls": "toolUse",
    "function_call": "toolUse",
}
"""OpenAI's finish reasons that MCP has its own names for.

``stop`` covers both a natural end and a stop sequence: the API does not say
which, so both are ``endTurn``.
"""


RESPONSE_FORMAT_NAME = "coalesced_batch"
"""The ``name`` of the JSON Schema response format a ``response_schema`` is sent as."""


def response_format(response_schema: dict[str, Any] | None) -> ResponseFormatJSONSchema | Omit:
    """Return the ``response_format`` that constrains the reply to *response_schema*.

    Strict: the API decodes the reply so that its content is a JSON document
    valid against the schema (which must be in the subset strict mode takes,
    as a batch's schema is). ``omit`` (nothing sent) without one.
    """
    if response_schema is None:
        return omit
    return {
        "type": "json_schema",
        "json_schema": {"name": RESPONSE_FORMAT_NAME, "strict": True, "schema": response_schema},
    }


def _text_part(block: TextContent) -> ChatCompletionContentPartTextParam:
    return {"type": "text", "text": block.text}


def _image_part(block: ImageContent) -> ChatCompletionContentPartImageParam:
    if block.mime_type not in IMAGE_MEDIA_TYPES:
        raise ValueError(
            f"the Chat Completions API takes images as {', '.join(IMAGE_MEDIA_TYPES)}, "
            f"not {block.mime_type!r}"
        )
    return {
        "type": "image_url",
        "image_url": {"url": f"data:{block.mime_type};base64,{block.data}"},
    }


def _message(message: SamplingMessage, index: int) -> ChatCompletionMessageParam:
    blocks = blocks_of(message)
    if message.role == "user":
        return {
            "role": "user",
            "content": [
                _text_part(block) if isinstance(block, TextContent) else _image_part(block)
                for block in blocks
            ],
        }
    texts = [block for block in blocks if isinstance(block, TextContent)]
    if len(texts) != len(blocks):
        raise ValueError(
            f"the Chat Completions API takes no images in assistant messages (message {index})"
        )
    return {"role": "assistant", "content": [_text_part(block) for block in texts]}


def messages_request(params: CreateMessageRequestParams) -> list[ChatCompletionMessageParam]:
    """Return the Chat Completions ``messages`` for *params*: its system prompt, then its turns.

    Raises:
        ValueError: If *params* holds something this adapter cannot send
            (tools, tool blocks, audio, an image in an assistant message or
            in another format).
    """
    check_supported(params, "OpenAIClient")
    messages: list[ChatCompletionMessageParam] = []
    if params.system_prompt:
        messages.append({"role": "system", "content": params.system_prompt})
    messages.extend(_message(message, index) for index, message in enumerate(params.messages))
    return messages


def result_of(completion: ChatCompletion) -> CreateMessageResult:
    """Return the MCP result for the Chat Completions API's reply *completion*.

    Raises:
        ValueError: If the reply holds no choice (the API asked for one).
    """
    if not completion.choices:
        raise ValueError(f"the Chat Completions reply {completion.id!r} holds no choices")
    choice = completion.choices[0]
    usage = completion.usage
    return make_result(
        text=choice.message.content or choice.message.refusal or "",
        model=completion.model,
        stop_reason=map_stop_reason(choice.finish_reason, STOP_REASONS),
        usage=(usage.prompt_tokens, usage.completion_tokens) if usage is not None else None,
    )


class _StreamedReply:
    """What the chunks of one streamed completion add up to, besides its text."""

    def __init__(self, model: str) -> None:
        self.texts: list[str] = []
        self.model = model
        self.finish_reason: str | None = None
        self.usage: tuple[int, int] | None = None

    def add(self, chunk: ChatCompletionChunk) -> list[str]:
        """Take in *chunk*; return its new text (content, or a refusal's)."""
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            self.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        new: list[str] = []
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            new.extend(text for text in (choice.delta.content, choice.delta.refusal) if text)
            self.finish_reason = choice.finish_reason or self.finish_reason
        self.texts.extend(new)
        return new

    def result(self) -> CreateMessageResult:
        return make_result(
            text="".join(self.texts),
            model=self.model,
            stop_reason=map_stop_reason(self.finish_reason, STOP_REASONS),
            usage=self.usage,
        )


class OpenAIClient:
    """Answer MCP sampling requests with OpenAI's Chat Completions API.

    A :class:`~coalesce.SamplingClient`, so it can stand behind a coordinator
    or anywhere else a client is expected. It makes exactly one
    ``chat.completions.create`` call per request (streamed from
    :meth:`stream_message`): retries, timeouts and the base URL are the SDK
    client's, configured where you build it.

    Args:
        sdk_client: The SDK's async client, e.g. ``AsyncOpenAI()``.
        model: A model name for every request, or a function of the
            request's ``model_preferences`` returning one (see
            :class:`~coalesce.adapters.ModelByHint`). The default,
            :data:`DEFAULT_MODEL`, follows the hints to a known family.
    """

    supports_response_schema: ClassVar[bool] = True
    """Both methods take a ``response_schema``, sent as a strict JSON Schema response format."""

    last_stream_result: CreateMessageResult | None
    """The whole reply of the latest :meth:`stream_message` that ran to its end.

    What :meth:`create_message` would have returned for it: the full text,
    the model, the stop reason and, in ``_meta``, the token usage from the
    stream's final usage chunk (no ``_meta`` if the server sent none). ``None``
    until a stream has ended; a stream closed early leaves it as it was.

    It is set just before the stream's last ``__anext__`` returns, so read it
    right after your ``async for`` loop, before your next ``await``: another
    stream on this client may end later and replace it.
    """

    def __init__(self, sdk_client: AsyncOpenAI, *, model: str | ModelChooser = DEFAULT_MODEL):
        self._sdk_client = sdk_client
        self._model = model
        self.last_stream_result = None

    async def create_message(
        self,
        params: CreateMessageRequestParams,
        *,
        response_schema: dict[str, Any] | None = None,
    ) -> CreateMessageResult:
        """Send *params* as one Chat Completions call and return the reply.

        Args:
            params: The sampling request.
            response_schema: A JSON Schema the reply's content must satisfy,
                sent as a strict response format (see :func:`response_format`);
                the result's text is then that JSON document.

        Raises:
            ValueError: If *params* holds something this adapter cannot send.
            openai.APIError: Whatever the SDK raises (``RateLimitError``,
                ``AuthenticationError``, ``InternalServerError``, ...),
                unchanged, after the SDK's own retries.
        """
        messages = messages_request(params)
        completion = await self._sdk_client.chat.completions.create(
            model=resolve_model(self._model, params.model_preferences),
            messages=messages,
            max_completion_tokens=params.max_tokens,
            stop=params.stop_sequences or omit,
            temperature=params.temperature if params.temperature is not None else omit,
            response_format=response_format(response_schema),
        )
        return result_of(completion)

    async def stream_message(
        self,
        params: CreateMessageRequestParams,
        *,
        response_schema: dict[str, Any] | None = None,
    ) -> AsyncGenerator[str, None]:
        """Send *params* as one streamed Chat Completions call; yield the reply's text as it comes.

        An async generator: each item is one chunk's content delta (or, if
        the model refuses, its refusal delta), in order, so the items joined
        are the text :meth:`create_message` would return. The request is the
        same as :meth:`create_message`'s, plus ``"stream": true`` and
        ``"stream_options": {"include_usage": true}``. When the stream ends,
        :attr:`last_stream_result` holds the whole reply with its finish
        reason and usage.

        Closing the generator early (``await stream.aclose()``, or leaving an
        ``async with contextlib.aclosing(...)`` block) closes the HTTP
        response, which ends the request.

        Args:
            params: The sampling request.
            response_schema: As for :meth:`create_message`; the streamed text
                is then the JSON document, piece by piece.

        Raises:
            ValueError: If *params* holds something this adapter cannot send
                (raised by the first ``__anext__``, before any call).
            openai.APIError: Whatever the SDK raises, unchanged, including an
                error in the middle of the stream.
        """
        messages = messages_request(params)
        model = resolve_model(self._model, params.model_preferences)
        stream = await self._sdk_client.chat.completions.create(
            model=model,
            messages=messages,
            max_completion_tokens=params.max_tokens,
            stop=params.stop_sequences or omit,
            temperature=params.temperature if params.temperature is not None else omit,
            response_format=response_format(response_schema),
            stream=True,
            stream_options={"include_usage": True},
        )
        reply = _StreamedReply(model)
        async with stream:
            async for chunk in stream:
                for text in reply.add(chunk):
                    yield text
        self.last_stream_result = reply.result()
