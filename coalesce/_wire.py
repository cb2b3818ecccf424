"""The coalesced request's wire format, as frozen values and their JSON form.

The format is the seed's, kept so that prompts tuned for it keep working. The
request's one user message holds::

    {"tasks": [{"task_index": 0, "messages": [{"role": "user", "content": "..."}]}]}

and the model is asked to reply with a JSON array of::

    {"task_index": 0, "response": "..."}

These classes name that format; :data:`converter` turns them into and out of
plain JSON data.
"""

from __future__ import annotations

from typing import Literal

import attrs
import cattrs

__all__ = ["WireBatch", "WireMessage", "WireReplyEntry", "WireTask", "converter"]


@attrs.frozen
class WireMessage:
    """One message of a task's conversation, flattened to text."""

    role: Literal["user", "assistant"]
    """Who said it, as in MCP's ``SamplingMessage.role``."""
    content: str
    """The text of every text block of the message, joined by newlines."""


@attrs.frozen
class WireTask:
    """One task of a coalesced request."""

    task_index: int
    """The task's position in the batch, 0-based; the reply names it."""
    messages: tuple[WireMessage, ...]
    """The task's own conversation, in order."""


@attrs.frozen
class WireBatch:
    """The payload of the coalesced request's user message."""

    tasks: tuple[WireTask, ...]
    """Every task of the batch, in task-index order."""


@attrs.frozen
class WireReplyEntry:
    """One entry of the model's reply: the answer to one task."""

    task_index: int
    """Which task this answers."""
    response: str
    """The answer's text."""


converter = cattrs.Converter()
"""Turns the wire classes into plain JSON data and back."""
