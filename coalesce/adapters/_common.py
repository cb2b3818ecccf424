"""What every adapter does alike on either side of its SDK call.

Pure functions of MCP data: no I/O and no SDK, so each adapter module keeps
only its own API's shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ImageContent,
    SamplingMessage,
    TextContent,
)

from .._usage import usage_meta

__all__ = ["blocks_of", "check_supported", "make_result", "map_stop_reason"]

Block = TextContent | ImageContent
"""The content blocks the adapters send: text, and images where the API takes them."""


def check_supported(params: CreateMessageRequestParams, adapter: str) -> None:
    """Refuse a request the adapters cannot send faithfully.

    Tools, tool uses and results, and audio have no mapping here; sending the
    request without them would ask the model a different question, so it is
    refused before any network call.

    Raises:
        ValueError: If *params* offers tools or holds a block other than text
            or an image.
    """
    if params.tools or params.tool_choice is not None:
        raise ValueError(f"{adapter} does not support tools in sampling requests")
    for index, message in enumerate(params.messages):
        unsupported = [
            type(block).__name__ for block in _raw_blocks(message) if not _sendable(block)
        ]
        if unsupported:
            raise ValueError(
                f"{adapter} cannot send {', '.join(unsupported)} (message {index}); "
                "only text and images are supported"
            )


def _sendable(block: object) -> bool:
    return isinstance(block, TextContent | ImageContent)


def _raw_blocks(message: SamplingMessage) -> Sequence[object]:
    content = message.content
    return content if isinstance(content, list) else [content]


def blocks_of(message: SamplingMessage) -> list[Block]:
    """Return *message*'s content as a list of blocks, one block or many alike.

    Call :func:`check_supported` first: this keeps only text and images.
    """
    return [block for block in _raw_blocks(message) if isinstance(block, Block)]


def map_stop_reason(reason: str | None, table: Mapping[str, str]) -> str | None:
    """Translate an API's stop reason to MCP's name for it, passing unknown ones through.

    Unknown reasons stay as the API said them (MCP's ``stopReason`` is an open
    string), so a caller still sees the truth about a reason this version of
    the adapter does not know.
    """
    if reason is None:
        return None
    return table.get(reason, reason)


def make_result(
    *,
    text: str,
    model: str,
    stop_reason: str | None,
    usage: tuple[int, int] | None,
) -> CreateMessageResult:
    """Build the MCP result of one model call.

    Args:
        text: The reply's text.
        model: The model that answered, as the API named it.
        stop_reason: MCP's stop reason (see :func:`map_stop_reason`).
        usage: ``(input_tokens, output_tokens)`` as the API reported them, or
            ``None`` if it reported none; reported in ``_meta`` with
            :func:`coalesce.usage_meta` so the coordinator can count it.
    """
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text=text),
        model=model,
        stop_reason=stop_reason,
        _meta=usage_meta(*usage) if usage is not None else None,
    )
