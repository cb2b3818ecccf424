"""Coalescing on both sides of MCP: a server's tools and a host's sampling callback.

Server side, a tool that asks its client for many samplings:

* :func:`session_client` turns an ``mcp`` server session into a
  :class:`~coalesce.SamplingClient`, to open a coordinator on (protocol
  2025-11-25, ``mode="legacy"``);
* :func:`sample_batch` asks for a whole batch with one ``Sample`` resolver, in
  either protocol, and the tool gets a :data:`BatchAnswers` list.

Client side, a host whose servers send it sampling requests:
:func:`sampling_callback` answers them through a coordinator on the host's own
model, grouped per server connection or by a :data:`GroupFn`; a FastMCP
``Client`` takes the same as its ``sampling_handler``, from
:func:`fastmcp_sampling_handler`.

This module imports the MCP SDK's server and client code; ``import coalesce``
does not, until one of these names is first used. ``session_client``,
``sample_batch``, ``sampling_callback`` and ``BatchAnswers`` are also
importable from :mod:`coalesce` itself. Nothing here imports FastMCP.
"""

from typing import TypeAlias as _TypeAlias

from . import _mcp_client, _mcp_server
from ._fastmcp import fastmcp_sampling_handler
from ._mcp_client import sampling_callback
from ._mcp_server import sample_batch, session_client
from ._public import fixup_module_metadata as _fixup_module_metadata

BatchAnswers: _TypeAlias = _mcp_server.BatchAnswers
"""Each task's answer from :func:`sample_batch`, or why it has none.

A ``list[CreateMessageResult | TaskError]`` with one entry per request, in the
order the resolver returned them: request *i*'s own answer, or the
:class:`~coalesce.TaskError` that says why the model's reply had no usable
answer for it.
"""

GroupFn: _TypeAlias = _mcp_client.GroupFn
"""Chooses a request's coalescing group from its ``mcp`` request context.

A function of the ``ClientRequestContext`` that returns a hashable key, for
:func:`sampling_callback`'s *group*: requests share a model call only when
their keys are equal.
"""

__all__ = [
    "BatchAnswers",
    "GroupFn",
    "fastmcp_sampling_handler",
    "sample_batch",
    "sampling_callback",
    "session_client",
]

_fixup_module_metadata(__name__, globals(), __all__)
