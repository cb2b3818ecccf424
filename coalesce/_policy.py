"""The batching policy: when a group of waiting requests is sent, and how much of it.

Pure functions of plain data (counts, token sums, times), in the way h11 keeps
its protocol state in tables: the trio layer in :mod:`coalesce._coordinator`
asks these questions and does the waiting, so every decision the coordinator
makes can be tested without a clock or a client.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Hashable
from operator import attrgetter
from typing import Any

import attrs
from mcp_types import CreateMessageRequestParams

from ._prompt import SHARED_FIELDS, is_batchable

__all__ = [
    "CoordinatorOptions",
    "FlushReason",
    "compatibility_key",
    "fits",
    "flush_reason",
]


class FlushReason(enum.Enum):
    """Why a batch was sent; logged with every flush and useful when tuning."""

    FULL = "full"
    """``max_batch`` requests were waiting."""
    TOKEN_CAP = "token cap"
    """The next request would have taken the batch past ``max_batch_tokens``."""
    WINDOW = "window"
    """The window since the first waiting request's arrival ran out."""
    IDLE = "idle"
    """``flush_when_idle`` is on and the group had no call in flight."""
    ADAPTED = "adapted"
    """The batch reached the size adaptive coalescing allows the group now."""
    ALONE = "alone"
    """The request cannot be batched (non-text content or tools)."""
    RETRY = "retry alone"
    """A task the coalesced reply did not answer usably, sent again on its own."""
    SHUTDOWN = "shutdown"
    """The coordinator's block ended, so everything pending goes at once."""


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def _check_positive_int(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not (finite and value >= 0):
        shown = value if isinstance(value, float) or abs(value) < 10**20 else "a huge int"
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {shown}")


@attrs.frozen
class CoordinatorOptions:
    """How a coordinator batches; see :func:`~coalesce.open_coordinator` for each knob."""

    window: float = 5.0
    """Seconds a batch may gather, counted from the arrival of its first request."""
    max_batch: int = 10
    """At most this many requests share one call; a full batch goes at once."""
    max_batch_tokens: int | None = None
    """A batch goes before the sum of its ``max_tokens`` would pass this."""
    max_concurrent_calls: int | None = None
    """At most this many calls to the client at once."""
    flush_when_idle: bool = False
    """Send at the end of the tick when the group has no call in flight."""
    max_pending: int | None = None
    """At most this many requests queued; more wait for room."""
    retry_alone: bool = True
    """Send a task whose answer was unusable again, on its own, once."""
    adaptive: bool = True
    """Learn each group's batch size from its replies (see :mod:`coalesce._adaptive`)."""

    def __attrs_post_init__(self) -> None:
        _check_seconds("window", self.window)
        _check_positive_int("max_batch", self.max_batch, optional=False)
        _check_positive_int("max_batch_tokens", self.max_batch_tokens, optional=True)
        _check_positive_int("max_concurrent_calls", self.max_concurrent_calls, optional=True)
        _check_positive_int("max_pending", self.max_pending, optional=True)
        _check_bool("flush_when_idle", self.flush_when_idle)
        _check_bool("retry_alone", self.retry_alone)
        _check_bool("adaptive", self.adaptive)

    def to_dict(self) -> dict[str, Any]:
        """Return the options as plain data: ``open_coordinator(client, **options.to_dict())``."""
        return attrs.asdict(self)


def _frozen(field: str, value: Any) -> Hashable:
    """Return a hashable stand-in for a request's setting *field*, a JSON-like value or model.

    Raises:
        TypeError: The value cannot be compared with another request's (keys
            of mixed types, a cycle, nesting too deep to write).
    """
    if value is None or isinstance(value, str | int | float):
        return value
    try:
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json", exclude_none=True)
        return json.dumps(value, sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(
            f"the request's {field!r} cannot be compared with other requests': "
            f"{type(exc).__name__}: {exc}"
        ) from None


_shared_settings = attrgetter(*SHARED_FIELDS)
_UNSET = (None,) * len(SHARED_FIELDS)


def compatibility_key(params: CreateMessageRequestParams, group: Hashable) -> Hashable | None:
    """Return the key under which *params* may share a call, or ``None`` if it must go alone.

    Requests share a call only when they agree on every setting a call can
    have just one of (model preferences, temperature, stop sequences, context
    inclusion, metadata) and on the caller's *group*: a coalesced call made
    for one tenant never carries another's task. The group's type is part of
    the key, so ``1`` and ``True`` (equal in Python) stay apart.

    Raises:
        TypeError: A shared setting cannot be compared (see :func:`_frozen`).
    """
    if not is_batchable(params):
        return None
    settings = _shared_settings(params)
    if settings == _UNSET:
        return (type(group).__qualname__, group)  # the common case: nothing to compare
    return (
        type(group).__qualname__,
        group,
        *(_frozen(field, value) for field, value in zip(SHARED_FIELDS, settings, strict=True)),
    )


def flush_reason(
    options: CoordinatorOptions,
    *,
    queued: int,
    queued_tokens: int,
    first_arrival: float,
    now: float,
    in_flight: int,
    closing: bool,
    alone: bool = False,
    limit: int | None = None,
) -> FlushReason | None:
    """Decide whether a group's waiting requests should be sent now, and why.

    Args:
        options: The coordinator's batching options.
        queued: How many requests of the group are waiting (at least one).
        queued_tokens: The sum of their ``max_tokens``.
        first_arrival: When the earliest of them arrived.
        now: The current time, on the same clock.
        in_flight: How many calls of this group are under way.
        closing: Whether the coordinator is shutting down gracefully.
        alone: Whether the group is a request that cannot be batched.
        limit: The batch size adaptive coalescing allows the group now, if
            below ``options.max_batch``.

    Returns:
        The reason to send now, or ``None`` to keep gathering until the
        window's deadline (``first_arrival + options.window``) or an event
        changes one of the inputs.
    """
    if alone:
        return FlushReason.ALONE
    if limit is not None and limit < options.max_batch:
        if queued >= limit:
            return FlushReason.ADAPTED
    elif queued >= options.max_batch:
        return FlushReason.FULL
    cap = options.max_batch_tokens
    if cap is not None and queued_tokens > cap:
        return FlushReason.TOKEN_CAP
    if closing:
        return FlushReason.SHUTDOWN
    if options.flush_when_idle and in_flight == 0:
        return FlushReason.IDLE
    if now >= first_arrival + options.window:
        return FlushReason.WINDOW
    return None


def fits(
    options: CoordinatorOptions,
    *,
    taken: int,
    taken_tokens: int,
    tokens: int,
    limit: int | None = None,
) -> bool:
    """Tell whether one more request of *tokens* ``max_tokens`` fits in a batch being cut.

    A batch holds at most ``max_batch`` requests and, when it holds more than
    one, at most ``max_batch_tokens`` tokens; the first request always fits,
    so a request over the cap by itself goes alone. *limit* is the batch
    size adaptive coalescing allows the group now, if it has learned one.
    """
    if taken >= (options.max_batch if limit is None else min(limit, options.max_batch)):
        return False
    if taken == 0:
        return True
    cap = options.max_batch_tokens
    return cap is None or taken_tokens + tokens <= cap
