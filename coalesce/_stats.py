"""What a coordinator has done so far, as a frozen snapshot."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

__all__ = ["CoordinatorStats"]

_converter = cattrs.Converter()


@attrs.frozen
class CoordinatorStats:
    """A snapshot of a coordinator's counters, enough to see what coalescing saved.

    Read it as ``coord.stats``; every read is a new snapshot, so keep one
    and compare it with a later one to see what happened in between. The
    counts always balance: ``requests == answered + failed + cancelled +
    pending``.
    """

    requests: int = 0
    """Requests accepted by ``create_message``."""
    answered: int = 0
    """Requests whose caller got an answer."""
    failed: int = 0
    """Requests whose caller got an error (of any kind)."""
    cancelled: int = 0
    """Requests whose caller was cancelled before its outcome reached it."""
    model_calls: int = 0
    """Calls made to the client, of every kind (coalesced, alone, retried)."""
    coalesced_calls: int = 0
    """Calls that carried two or more tasks."""
    coalesced_requests: int = 0
    """Requests that were sent as part of a coalesced call."""
    retried_alone: int = 0
    """Requests sent again on their own after the coalesced reply failed them."""
    tokens_requested: int = 0
    """The sum of ``max_tokens`` over every call made to the client."""
    input_tokens: int = 0
    """Input tokens the model reported using, over every call (0 where not reported)."""
    output_tokens: int = 0
    """Output tokens the model reported using, over every call (0 where not reported)."""
    queue_wait_total: float = 0.0
    """Seconds requests waited in their queue before being sent, summed."""
    queue_wait_max: float = 0.0
    """The longest any request waited in its queue before being sent, in seconds."""
    adaptive_alone: int = 0
    """Requests sent alone because adaptive coalescing backed their group off."""
    adaptive_calls_saved: int = 0
    """Model calls adaptive coalescing saved: one per batch a backed-off group sent alone.

    Each such batch, sent coalesced to a model that does not follow the
    format, would have cost one failed call before its tasks went alone.
    """
    batch_sizes: dict[str, int] = attrs.field(factory=dict)
    """The current batch size of each group that adaptive coalescing resized, by group label.

    A group not named here batches up to ``max_batch``.
    """

    @property
    def pending(self) -> int:
        """Requests accepted that have no outcome yet (queued or in flight)."""
        return self.requests - self.answered - self.failed - self.cancelled

    @property
    def queue_wait_mean(self) -> float:
        """The mean of the seconds a sent request waited in its queue."""
        sent = (
            self.model_calls - self.retried_alone + self.coalesced_requests - self.coalesced_calls
        )
        return self.queue_wait_total / sent if sent > 0 else 0.0

    @property
    def requests_per_call(self) -> float:
        """Requests accepted per model call made (1.0 means nothing was saved)."""
        return self.requests / self.model_calls if self.model_calls else 0.0

    @property
    def calls_saved(self) -> int:
        """Model calls saved, against sending every request on its own."""
        # A request retried alone cost a call of its own after its batch.
        return max(0, self.coalesced_requests - self.coalesced_calls - self.retried_alone)

    def to_counts(self) -> dict[str, Any]:
        """Return the counters alone, by name: what a coordinator keeps and updates."""
        counts: dict[str, Any] = _converter.unstructure(self)
        del counts["batch_sizes"]
        return counts

    def to_dict(self) -> dict[str, Any]:
        """Return the counters and derived figures as plain JSON data, e.g. to export as metrics."""
        data = self.to_counts()
        data["pending"] = self.pending
        data["queue_wait_mean"] = self.queue_wait_mean
        data["requests_per_call"] = self.requests_per_call
        data["calls_saved"] = self.calls_saved
        return data
