"""The one interface the coordinator needs from whatever answers sampling requests."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mcp_types import CreateMessageRequestParams, CreateMessageResult, CreateMessageResultWithTools

__all__ = ["SamplingClient"]


@runtime_checkable
class SamplingClient(Protocol):
    """Anything that answers one MCP ``sampling/createMessage`` request.

    This is the shape of an MCP server session's sampling call, of the model
    adapters in ``coalesce.adapters``, of the fakes in
    :mod:`coalesce.testing`, and of :class:`~coalesce.Coordinator` itself, so
    a coordinator can stand wherever a client stood.
    """

    async def create_message(
        self, params: CreateMessageRequestParams
    ) -> CreateMessageResult | CreateMessageResultWithTools:
        """Send one sampling request and return the model's reply.

        A reply to a request that offers tools may be a
        ``CreateMessageResultWithTools``; any other is a ``CreateMessageResult``.
        """
        ...
