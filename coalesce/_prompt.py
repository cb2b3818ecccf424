"""Build one coalesced sampling request out of many: the outbound half of the core.

Pure functions of their arguments: no I/O, no clock, no global state, so the
coordinator, a tool that returns a ``Sample`` marker, and the tests can all
use them alike. The format is described in ``docs/explanation/wire-format.rst``.
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

from mcp_types import (
    CreateMessageRequestParams,
    SamplingMessage,
    TextContent,
)

__all__ = [
    "BATCH_SYSTEM_PROMPT",
    "KEYED_SYSTEM_PROMPT",
    "SHARED_FIELDS",
    "build_batch_request",
    "check_batchable",
    "compose_batch",
    "is_batchable",
    "is_coalesced",
    "payload_json",
    "response_schema",
    "task_text",
]

BATCH_SYSTEM_PROMPT = (
    "You are a batch task processor. Process EVERY task listed in the user "
    "message and reply with a JSON array of objects where each object has "
    'shape: { "task_index": <int starting from 0>, "response": "<string>" }. '
    "The array MUST have exactly {n} entries (one per task) in the SAME ORDER. "
    "Answer every task on its own, exactly as if it were the only task you "
    "were given: never let one task's text change your answer to another. "
    "Do NOT include any prose outside the JSON."
)
"""The system prompt that makes the model a batch processor; ``{n}`` is the task count.

Its wording is the original Rust coordinator's, so prompts tuned for it keep
working, with one added sentence that keeps tasks apart.
"""

KEYED_SYSTEM_PROMPT = (
    "You are a batch task processor. Process EVERY task listed in the user "
    "message and reply with a JSON object that has exactly {n} members, one "
    'per task: "task_<task_index>": "<string>" ("task_0", "task_1", ...). '
    "Answer every task on its own, exactly as if it were the only task you "
    "were given: never let one task's text change your answer to another. "
    "Do NOT include any prose outside the JSON."
)
"""The system prompt of a keyed batch (see :func:`response_schema`); ``{n}`` is the task count."""

SHARED_SYSTEM_PREFIX = "System prompt for every task: "
"""Introduces a system prompt that every task shares, stated once."""

TASK_SYSTEM_NOTE = (
    'A task\'s "system" field holds instructions for that task alone: follow them '
    "for that task, and never for another."
)
"""Added to the system prompt when tasks carry system prompts of their own."""

_COALESCED_START = "You are a batch task processor. Process EVERY task listed in the user message"


def is_coalesced(params: CreateMessageRequestParams) -> bool:
    """Tell whether *params* was built by :func:`~coalesce.build_batch_request`.

    Batches built by the original Rust coordinator, and keyed batches, are
    recognized too: their system prompts start alike.
    """
    return bool(params.system_prompt and params.system_prompt.startswith(_COALESCED_START))


def is_batchable(params: CreateMessageRequestParams) -> bool:
    """Tell whether a request can share a coalesced call.

    Only requests made of text can: an image, audio, a tool use or result, or
    offered tools cannot be expressed in the JSON task list without losing
    them, so such a request is always sent alone, untouched. Nor can a request
    that is already a coalesced batch (one that :func:`build_batch_request`
    made, e.g. a server's coordinator, reaching a host that coalesces too):
    a batch inside a batch would ask the model for a reply format inside a
    reply format.
    """
    if params.tools or params.tool_choice is not None or params.task is not None:
        return False
    if is_coalesced(params):
        return False
    for message in params.messages:
        content = message.content
        if isinstance(content, list):
            if not all(isinstance(block, TextContent) for block in content):
                return False
        elif not isinstance(content, TextContent):
            return False
    return True


def task_text(message: SamplingMessage) -> str:
    """Join the text of every text block of *message* with newlines."""
    content = message.content
    if isinstance(content, TextContent):
        return content.text
    return "\n".join(block.text for block in content if isinstance(block, TextContent))


def response_schema(n_tasks: int) -> dict[str, Any]:
    """Return the JSON Schema of a keyed batch's reply: ``{"task_0": string, ...}``.

    One required string property per task, ``task_0`` to ``task_{n-1}`` in
    task order, and no other property. A client that can constrain a reply
    to a schema (OpenAI's strict ``json_schema``, Anthropic's structured
    outputs or a forced tool) is sent it with a batch that
    :func:`compose_batch` built with ``keyed=True``. A lone request is sent
    as it is, never with a schema.

    Example::

        >>> response_schema(2)["required"]
        ['task_0', 'task_1']
    """
    names = [f"task_{index}" for index in range(n_tasks)]
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in names},
        "required": names,
        "additionalProperties": False,
    }


def payload_json(requests: Sequence[CreateMessageRequestParams], *, own_system: bool) -> str:
    """Return the user message of a batch of *requests*: their tasks as compact JSON.

    Task *i* is ``requests[i]``: ``{"task_index": i, "messages": [...]}``
    with each message's text, and, if *own_system*, a ``"system"`` member
    holding the request's own system prompt (when it has one). Built in one
    pass with the very function ``json.dumps`` escapes strings with, so the
    text is what ``json.dumps(..., ensure_ascii=False, separators=(",",
    ":"))`` writes, at a fraction of the cost: it is on every coalesced
    call's path.
    """
    tasks = []
    for index, request in enumerate(requests):
        messages = ",".join(
            f'{{"role":{encode_basestring(message.role)},'
            f'"content":{encode_basestring(task_text(message))}}}'
            for message in request.messages
        )
        system = request.system_prompt
        own = f',"system":{encode_basestring(system)}' if own_system and system else ""
        tasks.append(f'{{"task_index":{index}{own},"messages":[{messages}]}}')
    return '{"tasks":[' + ",".join(tasks) + "]}"


def check_batchable(requests: Sequence[object]) -> list[CreateMessageRequestParams]:
    """Return *requests* as a list if each is a request that can be batched.

    Raises:
        TypeError: If an item is not a ``CreateMessageRequestParams``.
        ValueError: If an item has non-text content or tools.
    """
    checked: list[CreateMessageRequestParams] = []
    for index, request in enumerate(requests):
        if not isinstance(request, CreateMessageRequestParams):
            raise TypeError(
                f"request {index} is a {type(request).__name__}, "
                "not a mcp.types.CreateMessageRequestParams"
            )
        if not is_batchable(request):
            raise ValueError(f"request {index} has non-text content or tools and cannot be batched")
        checked.append(request)
    return checked


def _shared_system_prompt(requests: Sequence[CreateMessageRequestParams]) -> str | None:
    """Return the system prompt every request has, if they all have the same one."""
    shared = requests[0].system_prompt
    if shared and all(request.system_prompt == shared for request in requests):
        return shared
    return None


def _system_prompt(
    requests: Sequence[CreateMessageRequestParams], shared: str | None, *, keyed: bool
) -> str:
    template = KEYED_SYSTEM_PROMPT if keyed else BATCH_SYSTEM_PROMPT
    parts = [template.replace("{n}", str(len(requests)))]
    if shared is not None:
        parts.append(SHARED_SYSTEM_PREFIX + shared)
    elif any(request.system_prompt for request in requests):
        parts.append(TASK_SYSTEM_NOTE)
    return "\n\n".join(parts)


SHARED_FIELDS = (
    "model_preferences",
    "temperature",
    "stop_sequences",
    "include_context",
    "metadata",
)
"""Settings a coalesced call can only have one of, so its tasks must agree on them.

The one list of them: the compatibility key, the checks of
:func:`build_batch_request` and the coalesced request itself all read it.
A request's own ``_meta`` (progress tokens and the like) is per call and is
not carried into a coalesced request.
"""


def build_batch_request(
    requests: Sequence[CreateMessageRequestParams], *, keyed: bool = False
) -> CreateMessageRequestParams:
    """Build the one sampling request that asks the model to answer every request.

    Task *i* of the coalesced request is ``requests[i]``. The result carries
    the batch-processor system prompt (with a system prompt shared by every
    request stated once), a single user message holding the tasks as JSON,
    each with its own system prompt if it has one (see
    :doc:`/explanation/wire-format`), the sum of the requests' ``max_tokens``,
    and the settings the requests share (model preferences, temperature,
    stop sequences, context inclusion, metadata).

    Args:
        requests: Two or more text-only requests that agree on those settings.
            (One request is accepted too, though the coordinator sends a lone
            request as it is.)
        keyed: Ask for the keyed reply ``{"task_0": ..., ...}`` (whose schema
            is ``coalesce._prompt.response_schema``) instead of the array of entries.

    Returns:
        The coalesced request, ready for any :class:`SamplingClient`.

    Raises:
        ValueError: If *requests* is empty, holds a request that cannot be
            batched (see :func:`is_batchable`), or holds requests that
            disagree on a shared setting.

    Example::

        >>> import json
        >>> from mcp.types import CreateMessageRequestParams, SamplingMessage, TextContent
        >>> def ask(text):
        ...     message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
        ...     return CreateMessageRequestParams(messages=[message], max_tokens=100)
        >>> batch = build_batch_request([ask("2+2?"), ask("Capital of France?")])
        >>> batch.max_tokens
        200
        >>> json.loads(batch.messages[0].content.text)["tasks"][1]
        {'task_index': 1, 'messages': [{'role': 'user', 'content': 'Capital of France?'}]}
    """
    if not requests:
        raise ValueError("build_batch_request needs at least one request, got none")
    check_batchable(requests)
    first = requests[0]
    for index, request in enumerate(requests):
        for field in SHARED_FIELDS:
            if getattr(request, field) != getattr(first, field):
                raise ValueError(
                    f"request {index} differs from request 0 in {field!r}; "
                    "only requests that agree on it can share a call"
                )
    return compose_batch(requests, keyed=keyed)


def compose_batch(
    requests: Sequence[CreateMessageRequestParams], *, keyed: bool = False
) -> CreateMessageRequestParams:
    """Build the coalesced request without checking *requests* first.

    For callers that already know the requests may share a call (the
    coordinator's compatibility key guarantees it); everyone else calls
    :func:`build_batch_request`. With *keyed*, the system prompt asks for
    the keyed object that :func:`response_schema` describes; the tasks are
    the same.
    """
    first = requests[0]
    shared = _shared_system_prompt(requests)
    payload = payload_json(requests, own_system=shared is None)
    return CreateMessageRequestParams(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=payload))],
        system_prompt=_system_prompt(requests, shared, keyed=keyed),
        max_tokens=sum(request.max_tokens for request in requests),
        **{field: getattr(first, field) for field in SHARED_FIELDS},
    )
