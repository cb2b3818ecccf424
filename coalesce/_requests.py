"""The checks a sampling request passes before anything is queued or sent.

Shared by the coordinator and the MCP sampling callback, which must tell a bad
request (the caller's mistake) from a failure of the call itself.
"""

from __future__ import annotations

from mcp_types import CreateMessageRequestParams

__all__ = ["check_request"]


def check_request(params: object, group: object) -> None:
    """Refuse, at once and with a clear message, a request no call could serve.

    Raises:
        TypeError: *params* is not a ``CreateMessageRequestParams``, or
            *group* is not hashable.
        ValueError: *params* asks for fewer than one token or has no messages.
    """
    if not isinstance(params, CreateMessageRequestParams):
        raise TypeError(
            f"create_message takes a mcp.types.CreateMessageRequestParams, "
            f"got {type(params).__name__}"
        )
    if params.max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {params.max_tokens}")
    if not params.messages:
        raise ValueError("a sampling request needs at least one message, got none")
    try:
        hash(group)
    except TypeError:
        raise TypeError(f"group must be hashable, got {type(group).__name__}") from None
