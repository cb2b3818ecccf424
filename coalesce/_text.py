"""The front door for plain text: make a request from a prompt, read an answer's text.

A coordinator speaks MCP's sampling types, ``CreateMessageRequestParams`` in
and ``CreateMessageResult`` out, because that is what MCP servers, hosts and
the model adapters exchange. Code that only has a prompt and wants a string
back needs neither the types nor MCP: :func:`text_request` and
:func:`result_text` are the two conversions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    SamplingMessage,
    TextContent,
)

__all__ = ["DEFAULT_MAX_TOKENS", "result_text", "text_request"]

DEFAULT_MAX_TOKENS = 1024
"""The reply length :func:`text_request` asks for unless told otherwise: a few paragraphs."""


def text_request(
    text: str,
    *,
    system: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float | None = None,
    stop: str | Sequence[str] | None = None,
) -> CreateMessageRequestParams:
    """Return a sampling request that asks the model one question, as a user message.

    Args:
        text: The prompt: what the user says to the model.
        system: A system prompt, or ``None`` for none.
        max_tokens: The most tokens the answer may take.
        temperature: The sampling temperature, or ``None`` to leave it to the model.
        stop: A stop sequence, or several, or ``None``.

    Returns:
        The request, ready for :meth:`Coordinator.create_message
        <coalesce.Coordinator.create_message>` or any other
        :class:`~coalesce.SamplingClient`.

    Raises:
        TypeError: *text* or *system* is not a string.
        ValueError: *max_tokens* is less than 1.

    Example:
        >>> from coalesce import text_request
        >>> params = text_request("Name a prime number.", system="Answer in one word.")
        >>> params.messages[0].content.text
        'Name a prime number.'
        >>> params.system_prompt, params.max_tokens
        ('Answer in one word.', 1024)
    """
    if not isinstance(text, str):
        raise TypeError(f"text_request takes the prompt as a str, got {type(text).__name__}")
    if system is not None and not isinstance(system, str):
        raise TypeError(f"system must be a str or None, got {type(system).__name__}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(f"max_tokens must be an int, got {type(max_tokens).__name__}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    fields: dict[str, Any] = {}
    if temperature is not None:
        fields["temperature"] = temperature
    if stop is not None:
        fields["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return CreateMessageRequestParams(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=text))],
        system_prompt=system,
        max_tokens=max_tokens,
        **fields,
    )


def result_text(result: CreateMessageResult | CreateMessageResultWithTools) -> str:
    """Return the text of an answer: every text block of *result*, joined by newlines.

    Blocks that are not text (an image, audio, a tool call) are skipped, so
    an answer without text gives ``""``.

    Example:
        >>> from mcp_types import CreateMessageResult, TextContent
        >>> from coalesce import result_text
        >>> result_text(
        ...     CreateMessageResult(
        ...         role="assistant", model="m", content=TextContent(type="text", text="7")
        ...     )
        ... )
        '7'
    """
    content: Any = getattr(result, "content", None)
    blocks = content if isinstance(content, list) else [content]
    return "\n".join(block.text for block in blocks if isinstance(block, TextContent))
