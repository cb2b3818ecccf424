"""FastMCP's client side: a ``sampling_handler`` that coalesces.

FastMCP's ``Client(..., sampling_handler=...)`` calls its handler as
``handler(messages, params, context)`` and turns whatever it raises into an
``INTERNAL_ERROR`` whose message is the exception's text. The handler here
answers through a coordinator, exactly as :func:`~coalesce.mcp.sampling_callback`
does for an ``mcp`` ``Client``.

Nothing here imports FastMCP: the handler only speaks the ``mcp`` types
FastMCP passes through (its ``context`` is the SDK's ``ClientRequestContext``),
so ``import coalesce`` and ``import coalesce.mcp`` never load it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ErrorData,
    SamplingMessage,
)

from ._coordinator import Coordinator
from ._mcp_client import GroupFn, sampling_callback

__all__ = ["fastmcp_sampling_handler"]

_Handler = Callable[
    [list[SamplingMessage], CreateMessageRequestParams, ClientRequestContext],
    Awaitable[CreateMessageResult | CreateMessageResultWithTools],
]


class _FastMCPSampler:
    """The sampling handler :func:`fastmcp_sampling_handler` returns."""

    __slots__ = ("_callback",)

    def __init__(self, coord: Coordinator, group: GroupFn | None) -> None:
        self._callback = sampling_callback(coord, group=group)

    def __repr__(self) -> str:
        return f"fastmcp_sampling_handler({self._callback!r})"

    async def __call__(
        self,
        messages: list[SamplingMessage],
        params: CreateMessageRequestParams,
        context: ClientRequestContext,
    ) -> CreateMessageResult | CreateMessageResultWithTools:
        # *messages* is params.messages: FastMCP passes both.
        outcome = await self._callback(context, params)
        if isinstance(outcome, ErrorData):
            # FastMCP answers the server with INTERNAL_ERROR and str() of what
            # the handler raises: the one-sentence message sampling_callback
            # chose, never the host's own exception text.
            raise MCPError(outcome.code, outcome.message, outcome.data)
        return outcome


def fastmcp_sampling_handler(coord: Coordinator, *, group: GroupFn | None = None) -> _Handler:
    """Return a FastMCP ``sampling_handler`` that coalesces a client's sampling requests.

    Pass it as ``fastmcp.Client(..., sampling_handler=...)``: the sampling
    requests the client's servers send at once share calls to the
    coordinator's client (the host's own model)::

        async with open_coordinator(model, window=0.05, max_batch=10) as coord:
            handler = fastmcp_sampling_handler(coord)
            async with fastmcp.Client(server, sampling_handler=handler) as client:
                result = await client.call_tool("summarise_all", {"documents": documents})

    It is :func:`sampling_callback` in FastMCP's calling convention
    (``handler(messages, params, context)``), with the same grouping (by
    default, one group per server connection) and the same outcomes: each
    request gets its own ``CreateMessageResult`` (or
    ``CreateMessageResultWithTools``), or fails with the one-sentence message
    :func:`sampling_callback` would send. FastMCP sends every failure to the
    server as ``INTERNAL_ERROR`` with that message, so an invalid request
    arrives there as ``INTERNAL_ERROR`` rather than ``INVALID_PARAMS``.

    FastMCP is not a dependency of coalesce and this function does not import
    it.

    Args:
        coord: The coordinator whose client is the host's model; it must
            stay open while the FastMCP ``Client`` is in use.
        group: Called with each request's ``mcp`` ``ClientRequestContext``
            (FastMCP's handler *context*) to give its coalescing key; by
            default ``context.session``.

    Returns:
        The handler, an async callable ``(messages, params, context)``.

    Raises:
        TypeError: *coord* is not a coordinator, or *group* is not callable.
    """
    if not isinstance(coord, Coordinator):
        raise TypeError(
            f"fastmcp_sampling_handler takes a coalesce.Coordinator, got {type(coord).__name__}"
        )
    return _FastMCPSampler(coord, group)
