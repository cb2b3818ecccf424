"""The checks a sampling request passes before anything is counted, queued or sent.

Shared by the coordinator and the MCP sampling callback, which must tell a bad
request (the caller's mistake) from a failure of the call itself. A request
built without validation (``model_construct``) may lack fields or hold
anything in them, so every field the library reads is checked here, once.
"""

from __future__ import annotations

from mcp_types import CreateMessageRequestParams, SamplingMessage

__all__ = ["check_request"]


def check_request(params: object, group: object) -> None:
    """Refuse, at once and with a clear message, a request no call could serve.

    Raises:
        TypeError: *params* is not a ``CreateMessageRequestParams``, lacks a
            required field or holds a wrong type in one (a request built with
            ``model_construct``), or *group* is not hashable.
        ValueError: *params* asks for fewer than one token or has no messages.
    """
    if not isinstance(params, CreateMessageRequestParams):
        raise TypeError(
            f"create_message takes a mcp.types.CreateMessageRequestParams, "
            f"got {type(params).__name__}"
        )
    for field in ("messages", "max_tokens"):
        if not hasattr(params, field):
            raise TypeError(
                f"the request has no {field!r} field (was it built with model_construct?)"
            )
    max_tokens = params.max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(
            f"the request's 'max_tokens' must be an int, got {type(max_tokens).__name__}"
        )
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    messages: object = params.messages
    if not isinstance(messages, list) or not all(
        isinstance(message, SamplingMessage) for message in messages
    ):
        raise TypeError("the request's 'messages' must be a list of mcp.types.SamplingMessage")
    if not messages:
        raise ValueError("a sampling request needs at least one message, got none")
    try:
        hash(group)
    except TypeError:
        raise TypeError(f"group must be hashable, got {type(group).__name__}") from None
