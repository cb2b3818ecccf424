"""The server side of MCP: a tool that asks its client for many samplings.

Two routes, one for each way a tool can sample:

* :func:`session_client` turns an ``mcp`` server session into a
  :class:`~coalesce.SamplingClient`, so a tool can open a coordinator on it and
  fan out its requests. That needs a connection that can carry standalone
  server-to-client requests (protocol 2025-11-25, ``mode="legacy"``).
* :func:`sample_batch` is for ``Resolve`` resolvers, the only way a tool samples
  in the current protocol (2026-07-28, where requests ride an
  ``InputRequiredResult``), and which also works in the legacy one. It needs no
  coordinator: one resolver asks for every task in one coalesced ``Sample`` and
  the tool gets each task's own answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from mcp.server.mcpserver import Resolve, Sample
from mcp.server.session import ServerSession
from mcp.server.validation import validate_sampling_tools, validate_tool_use_result_messages
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ErrorData,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ._client import SamplingClient
from ._demux import demux_reply
from ._errors import TaskError
from ._prompt import SHARED_FIELDS, build_batch_request, check_batchable

__all__ = ["BatchAnswers", "sample_batch", "session_client"]

BatchAnswers = list[CreateMessageResult | TaskError]
"""What a tool gets from :func:`sample_batch`: task *i*'s answer, or its :class:`TaskError`."""


def _no_back_channel(protocol_version: str) -> NoBackChannelError:
    """The ``NoBackChannelError`` of a session on the current protocol, saying what to do.

    The SDK's own type and code, so code that catches ``NoBackChannelError``
    or ``MCPError`` still does, and a coalesced call's message names it; only
    the text is new.
    """
    error = NoBackChannelError("sampling/createMessage")
    error.error = ErrorData(
        code=error.code,
        message=(
            f"session_client cannot send a sampling request: the client negotiated protocol "
            f"{protocol_version}, which has no back-channel for a tool's own requests. Sample "
            "with coalesce.mcp.sample_batch (a Resolve resolver, which works in every protocol), "
            'or have the client connect in legacy mode (mcp Client(..., mode="legacy"), '
            "protocol 2025-11-25)."
        ),
    )
    error.args = (error.code, error.message, None)
    return error


class _SessionClient:
    """A :class:`SamplingClient` that sends over one ``mcp`` server session."""

    __slots__ = ("_metadata", "_session")

    def __init__(self, session: ServerSession, related_request_id: str | int | None) -> None:
        self._session = session
        self._metadata = (
            None
            if related_request_id is None
            else ServerMessageMetadata(related_request_id=related_request_id)
        )

    def __repr__(self) -> str:
        return f"session_client({self._session!r})"

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        # The checks ServerSession.create_message makes before sending, so a
        # request fails here exactly as it would there (MCPError, ValueError).
        validate_sampling_tools(self._session.client_capabilities, params.tools, params.tool_choice)
        validate_tool_use_result_messages(params.messages)
        try:
            return await self._session.send_request(
                CreateMessageRequest(params=params),
                CreateMessageResult,
                metadata=self._metadata,
            )
        except NoBackChannelError as exc:
            version = self._session.protocol_version
            if version not in MODERN_PROTOCOL_VERSIONS:
                # No back-channel in the legacy protocol either (stateless
                # HTTP, say): legacy mode would not help, so say nothing new.
                raise
            raise _no_back_channel(version) from exc


def session_client(
    session: ServerSession,
    *,
    related_request_id: str | int | None = None,
) -> SamplingClient:
    """Return a :class:`~coalesce.SamplingClient` that samples through an MCP server session.

    Each ``create_message`` sends one ``sampling/createMessage`` request to the
    session's client, as ``ServerSession.create_message`` does, but through
    ``send_request`` with the request types, so it raises no
    ``MCPDeprecationWarning`` (sampling is deprecated in protocol 2026-07-28
    and served on 2025-11-25). Open a coordinator on it to coalesce a tool's
    requests::

        async with open_coordinator(session_client(ctx.session), window=0.05) as coord:
            ...

    The protocol's errors reach the caller as the ``mcp`` exceptions a direct
    call raises: ``MCPError`` when the client answers with an error or lacks
    the ``sampling.tools`` capability a request needs, ``NoBackChannelError``
    (an ``MCPError``) when the connection cannot carry a standalone request
    (protocol 2026-07-28: use :func:`sample_batch` there), ``ValueError`` for
    malformed tool-use messages, ``pydantic.ValidationError`` when the client's
    answer is not a ``CreateMessageResult``. When the client negotiated
    protocol 2026-07-28, the ``NoBackChannelError`` says what to do instead:
    sample with :func:`sample_batch`, or connect the client in legacy mode
    (it is chained ``from`` the SDK's own). A coordinator passes them on
    unchanged for a request sent alone and as the ``__cause__`` of a
    :class:`~coalesce.BatchCallError` for a coalesced one.

    Answers are read as ``CreateMessageResult`` (text, image or audio), the
    shape every :class:`~coalesce.SamplingClient` returns; a request that lets
    the model use tools, and so may be answered with tool calls, is better
    sent with ``ServerSession.create_message`` directly.

    Args:
        session: The session of the request being handled (``ctx.session`` in
            an ``MCPServer`` tool). One client per session: a coordinator
            opened on it only ever sends to that session's client.
        related_request_id: Send the requests on that request's channel (as
            ``ServerSession.create_message(related_request_id=...)`` does),
            e.g. ``ctx.request_id``, which streamable HTTP routes back on the
            tool call's own response stream. By default they go on the
            connection's standalone channel.

    Returns:
        The client, usable as long as *session* is.
    """
    if not isinstance(session, ServerSession):
        raise TypeError(
            f"session_client takes a mcp.server.session.ServerSession, got {type(session).__name__}"
        )
    return _SessionClient(session, related_request_id)


RequestsFn = Callable[
    ..., Sequence[CreateMessageRequestParams] | Awaitable[Sequence[CreateMessageRequestParams]]
]
"""A resolver that returns the sampling requests of a batch (sync or async)."""


def _as_sample(params: CreateMessageRequestParams) -> Sample:
    return Sample(
        params.messages,
        max_tokens=params.max_tokens,
        system_prompt=params.system_prompt,
        **{field: getattr(params, field) for field in SHARED_FIELDS},
    )


def _checked(requests: object) -> list[CreateMessageRequestParams]:
    if isinstance(requests, str | bytes) or not isinstance(requests, Sequence):
        raise TypeError(
            "a sample_batch resolver must return a sequence of "
            f"mcp.types.CreateMessageRequestParams, got {type(requests).__name__}"
        )
    return check_batchable(requests)


def sample_batch(requests: RequestsFn) -> Resolve:
    """Return a ``Resolve`` marker that answers many sampling requests with one ``Sample``.

    A tool samples through resolvers: a parameter annotated
    ``Annotated[T, Resolve(fn)]`` is filled by running ``fn`` before the tool
    body, and a resolver that returns a ``Sample`` asks the client's model.
    In protocol 2026-07-28 that is the only way a tool can sample (the
    requests ride an ``InputRequiredResult`` and the client retries the call
    with the answers); in 2025-11-25 each ``Sample`` is sent as a standalone
    request, one resolver after another. Either way, N resolvers cost the
    client N sampling requests.

    With this marker they cost one. *requests* is a resolver that returns the
    batch's requests; it takes what any resolver may take (tool arguments by
    name, the ``Context``, other ``Resolve`` parameters). The marker's
    resolver coalesces them with :func:`~coalesce.build_batch_request` into a
    single ``Sample`` (a lone request goes as it is, and no request at all
    asks nothing), and the parameter receives a :data:`~coalesce.mcp.BatchAnswers` list:
    ``answers[i]`` is request *i*'s own ``CreateMessageResult``. A task the
    model's reply left without a usable answer (see
    :func:`~coalesce.demux_reply`) is sent again alone, as a coordinator
    does, in one more round; so a model that ignores the batch format costs
    one failed request more than sending each alone, never a failed tool.
    Only past ``RETRY_SLOTS`` (32) failed tasks does a task keep the
    :class:`~coalesce.TaskError` saying why. A failed sampling request fails
    the tool call, as it does for any ``Sample``.

    Example::

        def summary_requests(documents: list[str]) -> list[CreateMessageRequestParams]:
            return [summary_request(document) for document in documents]

        @server.tool()
        async def summarise_all(
            documents: list[str],
            answers: Annotated[BatchAnswers, sample_batch(summary_requests)],
        ) -> list[str]:
            return [answer_text(answer) for answer in answers]

    Args:
        requests: A resolver (function or coroutine function) returning the
            requests, in the order their answers are wanted. They must be
            text-only and agree on the settings a call has one of (see
            :func:`~coalesce.build_batch_request`); the resolver must return
            the same requests on every round of a call, as any ``Sample``
            must render identically across rounds.

    Returns:
        The marker, for ``Annotated[BatchAnswers, sample_batch(requests)]``.

    Raises:
        TypeError: *requests* is not callable. (A resolver that returns
            something other than a sequence of requests, or requests that
            cannot be batched, makes the tool call fail with that error.)
    """
    if not callable(requests):
        raise TypeError(f"sample_batch takes a resolver function, got {type(requests).__name__}")
    plan = Resolve(requests)

    async def ask(batch: object) -> Sample | None:
        checked = _checked(batch)
        if not checked:
            return None
        if len(checked) == 1:
            return _as_sample(checked[0])
        return _as_sample(build_batch_request(checked))

    async def split(batch: object, reply: CreateMessageResult | None) -> BatchAnswers:
        size = len(_checked(batch))
        if reply is None or size == 0:
            return []
        if size == 1:
            return [reply]
        return demux_reply(reply, size)

    # The framework reads a resolver's parameters from its annotations, which
    # must be live objects here (they name this call's resolvers).
    ask.__annotations__ = {
        "batch": Annotated[Sequence[CreateMessageRequestParams], plan],
        "return": Sample | None,
    }
    split.__annotations__ = {
        "batch": Annotated[Sequence[CreateMessageRequestParams], plan],
        "reply": Annotated[CreateMessageResult | None, Resolve(ask)],
        "return": BatchAnswers,
    }
    # Their wire keys (`module:qualname`) name the tool author's resolver.
    name = getattr(requests, "__name__", type(requests).__name__)
    split.__qualname__ = f"sample_batch.{name}.split"
    ask.__qualname__ = f"sample_batch.{name}.ask"
    retries = [_retry_slot(plan, Resolve(split), name, slot) for slot in range(RETRY_SLOTS)]
    return Resolve(_merge(plan, Resolve(split), retries, name))


RETRY_SLOTS = 32
"""How many tasks of one ``sample_batch`` the reply may fail and still have them retried alone.

A resolver asks at most one ``Sample``, and the resolvers of a tool are fixed
when it is registered, so retries take one resolver each: a task the
coalesced reply left unusable is sent again alone by the next free slot.
Beyond this many, a task keeps its ``TaskError``.
"""


def _retry_slot(
    plan: Resolve, split: Resolve, name: str, slot: int
) -> Callable[..., Awaitable[Sample | None]]:
    """The resolver that sends the *slot*-th task the coalesced reply failed again, alone."""

    async def retry(batch: object, answers: BatchAnswers) -> Sample | None:
        checked = _checked(batch)
        failed = [i for i, answer in enumerate(answers) if isinstance(answer, TaskError)]
        if len(checked) < 2 or slot >= len(failed):
            return None
        return _as_sample(checked[failed[slot]])

    retry.__annotations__ = {
        "batch": Annotated[Sequence[CreateMessageRequestParams], plan],
        "answers": Annotated[BatchAnswers, split],
        "return": Sample | None,
    }
    retry.__qualname__ = f"sample_batch.{name}.retry{slot}"
    return retry


def _merge(
    plan: Resolve, split: Resolve, retries: list[Callable[..., Any]], name: str
) -> Callable[..., Awaitable[BatchAnswers]]:
    """The resolver that gives each failed task its answer sent alone, in task order."""
    slots = [f"retry{slot}" for slot in range(len(retries))]

    async def merge(**given: Any) -> BatchAnswers:
        answers: BatchAnswers = list(given["answers"])
        failed = [i for i, answer in enumerate(answers) if isinstance(answer, TaskError)]
        for index, slot in zip(failed, slots, strict=False):
            reply = given[slot]
            if isinstance(reply, CreateMessageResult):
                answers[index] = reply
        return answers

    parameters = [
        inspect.Parameter(parameter, inspect.Parameter.KEYWORD_ONLY)
        for parameter in ("batch", "answers", *slots)
    ]
    merge.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    merge.__annotations__ = {
        "batch": Annotated[Sequence[CreateMessageRequestParams], plan],
        "answers": Annotated[BatchAnswers, split],
        **{
            slot: Annotated[CreateMessageResult | None, Resolve(retry)]
            for slot, retry in zip(slots, retries, strict=True)
        },
        "return": BatchAnswers,
    }
    merge.__qualname__ = f"sample_batch.{name}"
    return merge
