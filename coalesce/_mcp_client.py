"""The client side of MCP: a host that answers a server's sampling requests.

:func:`sampling_callback` is what a host passes as ``Client(...,
sampling_callback=...)``: the sampling requests its servers send at once
(several tool calls at a time in protocol 2025-11-25, or the many ``Sample``
requests of one ``InputRequiredResult`` in 2026-07-28) go through one
coordinator, so the host's own model is called fewer times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

from mcp.client.session import ClientRequestContext, SamplingFnT
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ErrorData,
)

from ._coordinator import Coordinator
from ._errors import BatchCallError, CoordinatorClosed, TaskError
from ._requests import check_request

__all__ = ["GroupFn", "sampling_callback"]

logger = logging.getLogger("coalesce")

GroupFn = Callable[[ClientRequestContext], Hashable]
"""Chooses a request's coalescing group from its ``mcp`` request context."""


def _by_connection(context: ClientRequestContext) -> Hashable:
    """The default group: the client session, i.e. one server connection."""
    return context.session


class _CoalescingSampler:
    """The sampling callback :func:`sampling_callback` returns."""

    __slots__ = ("_coord", "_group")

    def __init__(self, coord: Coordinator, group: GroupFn) -> None:
        self._coord = coord
        self._group = group

    def __repr__(self) -> str:
        return f"sampling_callback({self._coord!r}, group={self._group!r})"

    async def __call__(
        self,
        context: ClientRequestContext,
        params: CreateMessageRequestParams,
    ) -> CreateMessageResult | CreateMessageResultWithTools | ErrorData:
        try:
            check_request(params, None)
        except (TypeError, ValueError) as exc:
            return ErrorData(code=INVALID_PARAMS, message=f"invalid sampling request: {exc}")
        try:
            key = self._group(context)
            hash(key)
        except Exception:
            logger.exception("coalesce: the sampling callback's group function failed")
            return ErrorData(
                code=INTERNAL_ERROR, message="the host could not route this sampling request"
            )
        try:
            return await self._coord.create_message(params, group=key)
        except Exception as exc:
            return _error_data(exc)


def _error_data(exc: Exception) -> ErrorData:
    """Turn a failed request into the ``ErrorData`` a server receives.

    The message says what failed in a sentence and never quotes the model's
    reply (a coalesced reply holds other tasks' answers) or the host's
    exception text (it may name the host's endpoints or keys): those go to
    the ``coalesce`` logger, for the host's eyes only.
    """
    if isinstance(exc, TaskError):
        logger.info("coalesce: sampling request had no usable answer: %s", exc)
        return ErrorData(
            code=INTERNAL_ERROR,
            message=f"the host's model gave no usable answer to this request ({exc.reason})",
        )
    if isinstance(exc, CoordinatorClosed):
        return ErrorData(
            code=INTERNAL_ERROR, message="the host stopped answering sampling requests"
        )
    cause: BaseException = exc
    if isinstance(exc, BatchCallError) and exc.__cause__ is not None:
        cause = exc.__cause__
    if isinstance(cause, MCPError):
        # The host's own client speaks MCP errors: they are meant for the peer.
        return cause.error
    logger.warning("coalesce: the host's model call failed", exc_info=exc)
    return ErrorData(
        code=INTERNAL_ERROR,
        message=f"the host's model call failed ({type(cause).__name__})",
    )


def sampling_callback(coord: Coordinator, *, group: GroupFn | None = None) -> SamplingFnT:
    """Return a sampling callback that coalesces a host's incoming sampling requests.

    Pass it as ``mcp.client.client.Client(..., sampling_callback=...)``. Each
    ``sampling/createMessage`` request a server sends becomes a
    ``coord.create_message`` call, so the requests that arrive together share
    calls to the coordinator's client (the host's own model). It serves both
    protocol modes ``mcp`` speaks: a server's standalone requests
    (``mode="legacy"``, 2025-11-25), and the ``Sample`` requests of a tool's
    ``InputRequiredResult`` (2026-07-28), which the client receives several
    at once.

    By default requests of different server connections (``ClientSession``
    objects) never share a call: a server's prompts are its own, and a
    coalesced prompt puts every task in front of the model together, so one
    server's text could steer the answer given to another. Pass *group* to
    choose another key; requests share a call only when their keys are
    equal. Several ``Client`` objects may share one callback.

    Each request gets exactly one outcome: its own ``CreateMessageResult``,
    or an ``ErrorData`` with a one-sentence message (never a traceback): the
    model gave no usable answer to this task, the model call failed (the
    exception's type only; its text is logged on the ``coalesce`` logger), the
    coordinator has closed, or the request was invalid (``INVALID_PARAMS``).
    An ``MCPError`` raised by the coordinator's client is passed on as its
    ``ErrorData``. In protocol 2026-07-28 ``mcp`` ends the whole tool call
    with that error on the host's side (``MCPError`` from ``call_tool``) and
    cancels the call's other sampling requests.

    Args:
        coord: The coordinator whose client is the host's model; it must
            stay open while the ``Client`` is in use.
        group: Called with each request's ``ClientRequestContext`` to give
            its coalescing key; by default ``context.session``.

    Returns:
        The callback.

    Example::

        async with open_coordinator(model, window=0.05, max_batch=10) as coord:
            async with Client(server, sampling_callback=sampling_callback(coord)) as client:
                result = await client.call_tool("summarise_all", {"documents": documents})
    """
    if not isinstance(coord, Coordinator):
        raise TypeError(
            f"sampling_callback takes a coalesce.Coordinator, got {type(coord).__name__}"
        )
    if group is not None and not callable(group):
        raise TypeError(f"group must be a function of the request context, got {group!r}")
    return _CoalescingSampler(coord, _by_connection if group is None else group)
