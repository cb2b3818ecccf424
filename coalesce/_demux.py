"""Split a coalesced reply into each task's own answer: the inbound half of the core.

Pure: no I/O, no clock, no global state. Model replies are untrusted input, so
:func:`demux_reply` never raises, whatever the reply holds.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CreateMessageResult, TextContent

from ._errors import TaskError

__all__ = ["demux_reply", "reply_text"]


def reply_text(reply: CreateMessageResult) -> str:
    """Return the text of every text block of *reply*, joined by newlines."""
    content: Any = reply.content
    blocks = content if isinstance(content, list) else [content]
    return "\n".join(block.text for block in blocks if isinstance(block, TextContent))


def _answer(text: str, reply: CreateMessageResult) -> CreateMessageResult:
    return CreateMessageResult.model_construct(
        role="assistant",
        content=TextContent.model_construct(type="text", text=text),
        model=reply.model,
        stop_reason=reply.stop_reason,
    )


def demux_reply(reply: CreateMessageResult, n_tasks: int) -> list[CreateMessageResult | TaskError]:
    """Give each of *n_tasks* tasks its own answer from the coalesced *reply*, or its own error.

    Returns one entry per task, in task order.
    """
    text = reply_text(reply)
    try:
        data = json.loads(text)
    except ValueError:
        return [TaskError(i, "the reply is not a JSON array", text) for i in range(n_tasks)]
    if not isinstance(data, list):
        return [TaskError(i, "the reply is not a JSON array", text) for i in range(n_tasks)]
    found: dict[int, str] = {}
    for entry in data:
        if isinstance(entry, dict):
            index = entry.get("task_index")
            response = entry.get("response")
            if type(index) is int and 0 <= index < n_tasks and isinstance(response, str):
                found[index] = response
    return [
        _answer(found[i], reply) if i in found else TaskError(i, "no entry answers it", text)
        for i in range(n_tasks)
    ]
