"""How a client reports the tokens a model call used, so the coordinator can count them.

A client that knows its model's token usage (the adapters in
:mod:`coalesce.adapters` do) puts it in the result's ``_meta`` under
:data:`USAGE_META_KEY` as ``{"input_tokens": int, "output_tokens": int}``.
The coordinator adds it to :class:`~coalesce.CoordinatorStats` and does not
copy it into the answers it hands to each task.
"""

from __future__ import annotations

from typing import Any

from mcp_types import CreateMessageResult, CreateMessageResultWithTools

__all__ = ["USAGE_META_KEY", "read_usage", "usage_meta"]

USAGE_META_KEY = "coalesce/usage"
"""The ``_meta`` key under which a result reports its model call's token usage."""


def usage_meta(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Return the ``_meta`` mapping that reports a call's token usage."""
    return {USAGE_META_KEY: {"input_tokens": input_tokens, "output_tokens": output_tokens}}


def read_usage(result: CreateMessageResult | CreateMessageResultWithTools) -> tuple[int, int]:
    """Return ``(input_tokens, output_tokens)`` reported by *result*, or zeros.

    Anything malformed counts as not reported: usage is for statistics and
    must never fail a caller.
    """
    meta = result.meta
    if not isinstance(meta, dict):
        return (0, 0)
    usage = meta.get(USAGE_META_KEY)
    if not isinstance(usage, dict):
        return (0, 0)
    values = (usage.get("input_tokens"), usage.get("output_tokens"))
    return tuple(v if type(v) is int and v >= 0 else 0 for v in values)  # type: ignore[return-value]
