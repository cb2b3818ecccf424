"""A :class:`~coalesce.SamplingClient` that answers with OpenAI's Chat Completions API.

Importing this module imports the ``openai`` SDK (``pip install
'coalesce[openai]'``); nothing else in :mod:`coalesce` does.

What is sent (``POST /v1/chat/completions``, built against ``openai`` 3.57):

- ``system_prompt`` as a first ``system`` message (left out when empty);
- each ``SamplingMessage`` as a message of the same role, its text blocks as
  ``text`` parts and, in user messages, its images as ``image_url`` parts
  holding a ``data:`` URL;
- ``max_tokens`` as ``max_completion_tokens`` (``max_tokens`` is deprecated
  and refused by reasoning models), ``stop_sequences`` as ``stop`` and
  ``temperature`` as itself.

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

from typing import Literal, get_args

from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ImageContent,
    SamplingMessage,
    TextContent,
)
from openai import AsyncOpenAI, omit
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionMessageParam,
)

from ._common import blocks_of, check_supported, make_result, map_stop_reason
from ._models import ModelByHint, ModelChooser, resolve_model

__all__ = ["DEFAULT_MODEL", "OpenAIClient", "messages_request", "result_of"]

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


class OpenAIClient:
    """Answer MCP sampling requests with OpenAI's Chat Completions API.

    A :class:`~coalesce.SamplingClient`, so it can stand behind a coordinator
    or anywhere else a client is expected. It makes exactly one
    ``chat.completions.create`` call per request: retries, timeouts and the
    base URL are the SDK client's, configured where you build it.

    Args:
        sdk_client: The SDK's async client, e.g. ``AsyncOpenAI()``.
        model: A model name for every request, or a function of the
            request's ``model_preferences`` returning one (see
            :class:`~coalesce.adapters.ModelByHint`). The default,
            :data:`DEFAULT_MODEL`, follows the hints to a known family.
    """

    def __init__(self, sdk_client: AsyncOpenAI, *, model: str | ModelChooser = DEFAULT_MODEL):
        self._sdk_client = sdk_client
        self._model = model

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        """Send *params* as one Chat Completions call and return the reply.

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
        )
        return result_of(completion)
