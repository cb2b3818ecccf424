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
    and compare it with a later one to see what happened in between.
    """

    requests: int = 0
    """Requests accepted by ``create_message``."""
    answered: int = 0
    """Requests whose caller got an answer."""
    failed: int = 0
    """Requests whose caller got an error (of any kind)."""
    cancelled: int = 0
    """Requests whose caller was cancelled before an outcome reached it."""
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

    @property
    def requests_per_call(self) -> float:
        """Requests accepted per model call made (1.0 means nothing was saved)."""
        return self.requests / self.model_calls if self.model_calls else 0.0

    @property
    def calls_saved(self) -> int:
        """Model calls saved, against sending every request on its own."""
        # A request retried alone cost a call of its own after its batch.
        return max(0, self.coalesced_requests - self.coalesced_calls - self.retried_alone)

    def to_dict(self) -> dict[str, Any]:
        """Return the counters as plain JSON data, e.g. to export as metrics."""
        data: dict[str, Any] = _converter.unstructure(self)
        data["requests_per_call"] = self.requests_per_call
        data["calls_saved"] = self.calls_saved
        return data
