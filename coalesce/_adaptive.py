"""Adaptive coalescing: how large a group's batches may be, learned from its replies.

Pure, like the rest of the policy: a frozen value per compatibility group, and
functions that return the next value. The coordinator keeps one per group
that has learned something, asks :func:`batch_limit` before it cuts a batch,
and reports each coalesced reply with :func:`after_reply`.

- A clean reply (every task answered) grows the limit by one, up to
  ``max_batch``: additive increase.
- A reply that drops some tasks halves it, but not below two:
  multiplicative decrease, as TCP does.
- A reply that leaves most tasks unusable means the model does not follow
  the batch format: the group backs off and sends its requests alone. After
  ``2 * max_batch`` requests sent alone it probes with one batch, and the
  gap doubles after every failed probe (to at most ``64 * max_batch``). A
  probe that comes back usable resumes coalescing.

A model that never follows the format then costs about one extra call per
probe instead of one per batch; one that always follows it never leaves
``max_batch``.
"""

from __future__ import annotations

import attrs

__all__ = ["Adaptive", "after_alone", "after_reply", "batch_limit", "start"]

_PROBE_GAP = 2
"""Requests sent alone before the first probe, in multiples of ``max_batch``."""
_MAX_PROBE_GAP = 64
"""The longest gap between probes, in multiples of ``max_batch``."""


@attrs.frozen
class Adaptive:
    """What one group has learned about how well the model follows the batch format."""

    limit: int
    """The largest batch the group may send now (at least 2 unless backed off)."""
    backed_off: bool = False
    """Whether the group sends its requests alone, probing now and then."""
    alone: int = 0
    """Requests sent alone since the group backed off or last probed."""
    gap: int = 0
    """Requests to send alone before the next probe."""


def start(max_batch: int) -> Adaptive:
    """Return the state of a group that has learned nothing: batches of *max_batch*."""
    return Adaptive(limit=max_batch)


def batch_limit(state: Adaptive) -> int:
    """Return how many requests the group's next batch may hold (1: send alone)."""
    if state.backed_off and state.alone < state.gap:
        return 1
    return state.limit


def after_alone(state: Adaptive) -> Adaptive:
    """Note one request sent alone because the group is backed off."""
    return attrs.evolve(state, alone=state.alone + 1)


def after_probe(state: Adaptive) -> Adaptive:
    """Note that a probe was sent: the next one waits twice as long, unless this one works."""
    return attrs.evolve(state, alone=0, gap=state.gap * 2)


def after_reply(state: Adaptive, *, size: int, unusable: int, max_batch: int) -> Adaptive:
    """Return what the group knows after a coalesced reply of *size* tasks, *unusable* of them bad.

    Args:
        state: What the group knew before.
        size: The tasks the coalesced call carried (two or more).
        unusable: How many of them the reply gave no usable answer.
        max_batch: The coordinator's ``max_batch``, the most the limit grows to.
    """
    if unusable * 2 > size:  # most tasks unusable: the model does not follow the format
        if state.backed_off:
            return state  # a failed probe: after_probe already doubled the gap
        return Adaptive(
            limit=max(2, state.limit // 2),
            backed_off=True,
            gap=min(_PROBE_GAP * max_batch, _MAX_PROBE_GAP * max_batch),
        )
    if unusable:
        return Adaptive(limit=max(2, min(state.limit, size) // 2))
    return Adaptive(limit=min(max_batch, state.limit + 1))
