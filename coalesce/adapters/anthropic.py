"""A :class:`~coalesce.SamplingClient` that answers with Anthropic's Messages API.

Importing this module imports the ``anthropic`` SDK (``pip install
'coalesce-llm[anthropic]'``); nothing else in :mod:`coalesce` does.

What is sent (``POST /v1/messages``, built against ``anthropic`` 2.16):

- each ``SamplingMessage`` as a message of the same role, its text blocks as
  ``text`` blocks and its images as base64 ``image`` blocks;
- ``system_prompt`` as ``system`` (left out when empty);
- ``max_tokens`` and ``stop_sequences`` as themselves;
- a ``response_schema``, when given, as the API's structured outputs:
  ``output_config={"format": {"type": "json_schema", "schema": schema}}``;
- ``"stream": true`` from :meth:`AnthropicClient.stream_message`.

What is dropped: ``temperature``, which this SDK's ``messages.create`` no
longer accepts; ``metadata`` (Anthropic's takes only a ``user_id``);
``include_context`` (adding context is the MCP host's job). Tools, tool
blocks and audio are refused with :class:`ValueError`, as are images in a
format the API does not take.

The reply's text blocks are joined into one text, its stop reason is mapped
to MCP's (``end_turn`` to ``endTurn``, ``max_tokens`` to ``maxTokens``,
``stop_sequence`` to ``stopSequence``, ``tool_use`` to ``toolUse``; any
other passes through), and its token usage goes into ``_meta`` with
:func:`coalesce.usage_meta`, input counting cached tokens too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar, Literal, get_args

from anthropic import AsyncAnthropic, Omit, omit
from anthropic.types import (
    ImageBlockParam,
    Message,
    MessageParam,
    OutputConfigParam,
    TextBlockParam,
    Usage,
)
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ImageContent,
    SamplingMessage,
    TextContent,
)

from ._common import blocks_of, check_supported, make_result, map_stop_reason
from ._models import ModelByHint, ModelChooser, resolve_model

__all__ = ["DEFAULT_MODEL", "AnthropicClient", "messages_request", "output_config", "result_of"]

DEFAULT_MODEL = ModelByHint(
    {
        "opus": "claude-opus-5-5",
        "sonnet": "claude-sonnet-5-5",
        "haiku": "claude-haiku-5-5",
    },
    default="claude-sonnet-5-5",
)
"""How :class:`AnthropicClient` chooses a model unless told otherwise.

A hint naming ``opus``, ``sonnet`` or ``haiku`` (``"claude-3-haiku"``,
``"sonnet"``, ...) picks that family's current model; anything else gets
``claude-sonnet-5-5``.
"""

ImageMediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
IMAGE_MEDIA_TYPES: tuple[ImageMediaType, ...] = get_args(ImageMediaType)
"""The image formats the Messages API takes."""

STOP_REASONS = {
    "end_turn": "endTurn",
    "max_tokens": "maxTokens",
    "stop_sequence": "stopSequence",
    "tool_use": "toolUse",
}
"""Anthropic's stop reasons that MCP has its own names for."""


def _block(block: TextContent | ImageContent) -> TextBlockParam | ImageBlockParam:
    if isinstance(block, TextContent):
        return {"type": "text", "text": block.text}
    for media_type in IMAGE_MEDIA_TYPES:
        if media_type == block.mime_type:
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": block.data},
            }
    raise ValueError(
        f"the Messages API takes images as {', '.join(IMAGE_MEDIA_TYPES)}, not {block.mime_type!r}"
    )


def _message(message: SamplingMessage) -> MessageParam:
    blocks = [_block(block) for block in blocks_of(message)]
    if message.role == "user":
        return {"role": "user", "content": blocks}
    return {"role": "assistant", "content": blocks}


def messages_request(params: CreateMessageRequestParams) -> list[MessageParam]:
    """Return the Messages API ``messages`` for *params*' conversation.

    Raises:
        ValueError: If *params* holds something this adapter cannot send
            (tools, tool blocks, audio, an image in another format).
    """
    check_supported(params, "AnthropicClient")
    return [_message(message) for message in params.messages]


def output_config(response_schema: dict[str, Any] | None) -> OutputConfigParam | Omit:
    """Return the ``output_config`` that constrains the reply to *response_schema*.

    Structured outputs: the API decodes the reply's text so that it is a JSON
    document valid against the schema. ``omit`` (nothing sent) without one.
    """
    if response_schema is None:
        return omit
    return {"format": {"type": "json_schema", "schema": response_schema}}


def _input_tokens(usage: Usage) -> int:
    return (
        usage.input_tokens
        + (usage.cache_creation_input_tokens or 0)
        + (usage.cache_read_input_tokens or 0)
    )


def result_of(message: Message) -> CreateMessageResult:
    """Return the MCP result for the Messages API's reply *message*."""
    return make_result(
        text="".join(block.text for block in message.content if block.type == "text"),
        model=message.model,
        stop_reason=map_stop_reason(message.stop_reason, STOP_REASONS),
        usage=(_input_tokens(message.usage), message.usage.output_tokens),
    )


class AnthropicClient:
    """Answer MCP sampling requests with Anthropic's Messages API.

    A :class:`~coalesce.SamplingClient`, so it can stand behind a coordinator
    or anywhere else a client is expected. It makes exactly one Messages API
    call per request (``messages.create``, or ``messages.stream`` from
    :meth:`stream_message`): retries, timeouts and the base URL are the SDK
    client's, configured where you build it.

    Args:
        sdk_client: The SDK's async client, e.g. ``AsyncAnthropic()``.
        model: A model name for every request, or a function of the
            request's ``model_preferences`` returning one (see
            :class:`~coalesce.adapters.ModelByHint`). The default,
            :data:`DEFAULT_MODEL`, follows the hints to a known family.

    Note:
        A coalesced request asks for the sum of its tasks' ``max_tokens``.
        With the SDK client's default timeout, the SDK refuses (with
        ``ValueError``) a non-streaming request whose ``max_tokens`` could
        take more than ten minutes (about 21,000 tokens); give the SDK
        client an explicit ``timeout`` to allow larger batches.
        :meth:`stream_message` streams, so it has no such limit.
    """

    supports_response_schema: ClassVar[bool] = True
    """Both methods take a ``response_schema``, sent as structured outputs."""

    last_stream_result: CreateMessageResult | None
    """The whole reply of the latest :meth:`stream_message` that ran to its end.

    What :meth:`create_message` would have returned for it: the full text,
    the model, the stop reason and, in ``_meta``, the token usage (read it
    with the same code that reads :meth:`create_message`'s). ``None`` until
    a stream has ended; a stream closed early leaves it as it was.

    It is set just before the stream's last ``__anext__`` returns, so read it
    right after your ``async for`` loop, before your next ``await``: another
    stream on this client may end later and replace it.
    """

    def __init__(self, sdk_client: AsyncAnthropic, *, model: str | ModelChooser = DEFAULT_MODEL):
        self._sdk_client = sdk_client
        self._model = model
        self.last_stream_result = None

    async def create_message(
        self,
        params: CreateMessageRequestParams,
        *,
        response_schema: dict[str, Any] | None = None,
    ) -> CreateMessageResult:
        """Send *params* as one Messages API call and return the reply.

        Args:
            params: The sampling request.
            response_schema: A JSON Schema the reply's text must satisfy, sent
                as structured outputs (see :func:`output_config`); the result's
                text is then that JSON document.

        Raises:
            ValueError: If *params* holds something this adapter cannot send.
            anthropic.APIError: Whatever the SDK raises (``RateLimitError``,
                ``AuthenticationError``, ``OverloadedError``, ...), unchanged,
                after the SDK's own retries.
        """
        messages = messages_request(params)
        message = await self._sdk_client.messages.create(
            model=resolve_model(self._model, params.model_preferences),
            max_tokens=params.max_tokens,
            messages=messages,
            system=params.system_prompt or omit,
            stop_sequences=params.stop_sequences or omit,
            output_config=output_config(response_schema),
        )
        return result_of(message)

    async def stream_message(
        self,
        params: CreateMessageRequestParams,
        *,
        response_schema: dict[str, Any] | None = None,
    ) -> AsyncGenerator[str, None]:
        """Send *params* as one streamed Messages API call; yield the reply's text as it comes.

        An async generator: each item is one ``text_delta`` of the reply, in
        order, so the items joined are the text :meth:`create_message` would
        return. The request is the same as :meth:`create_message`'s, plus
        ``"stream": true``. When the stream ends, :attr:`last_stream_result`
        holds the whole reply with its stop reason and usage.

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
            anthropic.APIError: Whatever the SDK raises, unchanged, including
                an ``error`` event in the middle of the stream.
        """
        messages = messages_request(params)
        async with self._sdk_client.messages.stream(
            model=resolve_model(self._model, params.model_preferences),
            max_tokens=params.max_tokens,
            messages=messages,
            system=params.system_prompt or omit,
            stop_sequences=params.stop_sequences or omit,
            output_config=output_config(response_schema),
        ) as stream:
            async for event in stream:
                if event.type == "text":
                    yield event.text
            message = await stream.get_final_message()
        self.last_stream_result = result_of(message)
