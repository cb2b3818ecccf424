"""What a coordinator reports about its work, for tracing and metrics.

The coordinator tells an :class:`Observer` each thing worth measuring; the
default one does nothing. When an application has configured OpenTelemetry
(installed its SDK and set a tracer or meter provider), :func:`load_observer`
gives the one in :mod:`coalesce._otel`, which records spans and metrics there.
``import coalesce`` never imports OpenTelemetry; opening a coordinator imports
its API only if it is installed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from importlib.util import find_spec

__all__ = ["Observer", "load_observer"]


class Observer:
    """Receives the coordinator's events; this base class ignores them all."""

    def caller_context(self) -> object:
        """Capture the calling task's trace context when a request arrives (linked to its call)."""
        return None

    def call_started(
        self, group: Hashable, size: int, reason: str, callers: Sequence[object]
    ) -> object:
        """A call of *size* requests of *group* starts, flushed for *reason*.

        *callers* holds what :meth:`caller_context` captured for each request.
        Returns a handle that is passed to :meth:`call_ended`.
        """
        return None

    def call_ended(
        self,
        handle: object,
        *,
        input_tokens: int,
        output_tokens: int,
        unusable: int,
        error: BaseException | None,
    ) -> None:
        """The call that :meth:`call_started` returned *handle* for has ended.

        *unusable* counts the tasks the reply gave no usable answer for;
        *error* is what failed the whole call, if anything did.
        """

    def queued(self, group: Hashable, seconds: float) -> None:
        """A request of *group* left its queue for a call after waiting *seconds*."""

    def retried(self, group: Hashable) -> None:
        """A task of *group* is sent again alone after its coalesced reply failed it."""


def load_observer() -> Observer:
    """Return the OpenTelemetry observer if the application configured OpenTelemetry.

    Otherwise the silent one, so a program that does not trace pays nothing.
    """
    if find_spec("opentelemetry") is None:
        return Observer()
    from ._otel import OtelObserver, sdk_configured  # noqa: PLC0415 - only when installed

    return OtelObserver() if sdk_configured() else Observer()
