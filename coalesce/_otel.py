"""OpenTelemetry spans and metrics for a coordinator (the ``otel`` extra).

Imported only by :func:`coalesce._telemetry.load_observer`, and only when an
application has configured an OpenTelemetry SDK (a tracer or meter provider
other than the API's default proxy): a program that does not trace pays
nothing.

- One span per model call, ``coalesce call``, with ``coalesce.batch_size``,
  ``coalesce.flush_reason``, ``coalesce.group``, the tokens the model
  reported (``gen_ai.usage.input_tokens`` / ``output_tokens``) and
  ``coalesce.unusable_tasks``, linked to the span of every caller it answers.
- Metrics: ``coalesce.batch_size`` and ``coalesce.queue_wait`` (histograms),
  ``coalesce.calls_saved`` (an up-down counter that matches
  ``CoordinatorStats.calls_saved``), ``coalesce.tasks_retried`` and
  ``coalesce.unusable_replies`` (counters).

Group labels go on spans only: as metric attributes they could take any
number of values.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from opentelemetry import metrics, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from ._telemetry import Observer

__all__ = ["OtelObserver", "sdk_configured"]

_NAME = "coalesce"
_GROUP_CHARS = 100
"""How much of a group label's ``repr`` a span carries."""


def sdk_configured() -> bool:
    """Tell whether the application set a tracer or meter provider of its own."""
    tracer_default = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    meter_default = type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
    return not (tracer_default and meter_default)


class OtelObserver(Observer):
    """Records each model call as a span and the coordinator's figures as metrics.

    Args:
        tracer_provider: Where spans go; the global provider by default.
        meter_provider: Where metrics go; the global provider by default.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_NAME, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_NAME, meter_provider=meter_provider)
        self._batch_size = meter.create_histogram(
            "coalesce.batch_size", unit="{request}", description="Requests per model call"
        )
        self._queue_wait = meter.create_histogram(
            "coalesce.queue_wait", unit="s", description="Time a request waited to be sent"
        )
        self._calls_saved = meter.create_up_down_counter(
            "coalesce.calls_saved", unit="{call}", description="Model calls saved by coalescing"
        )
        self._retried = meter.create_counter(
            "coalesce.tasks_retried", unit="{task}", description="Tasks sent again alone"
        )
        self._unusable = meter.create_counter(
            "coalesce.unusable_replies",
            unit="{reply}",
            description="Coalesced replies that left at least one task without an answer",
        )

    def caller_context(self) -> object:
        context = trace.get_current_span().get_span_context()
        return context if context.is_valid else None

    def call_started(
        self, group: Hashable, size: int, reason: str, callers: Sequence[object]
    ) -> object:
        links = [Link(context) for context in callers if isinstance(context, trace.SpanContext)]
        span = self._tracer.start_span(
            "coalesce call",
            kind=SpanKind.CLIENT,
            links=links,
            attributes={
                "coalesce.batch_size": size,
                "coalesce.flush_reason": reason,
                "coalesce.group": repr(group)[:_GROUP_CHARS],
            },
        )
        self._batch_size.record(size, {"coalesce.flush_reason": reason})
        if size > 1:
            self._calls_saved.add(size - 1)
        return span

    def call_ended(
        self,
        handle: object,
        *,
        input_tokens: int,
        output_tokens: int,
        unusable: int,
        error: BaseException | None,
    ) -> None:
        if not isinstance(handle, Span):
            return
        handle.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        handle.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        handle.set_attribute("coalesce.unusable_tasks", unusable)
        if unusable:
            self._unusable.add(1)
        if error is not None:
            handle.record_exception(error)
            handle.set_status(Status(StatusCode.ERROR, type(error).__name__))
        handle.end()

    def queued(self, group: Hashable, seconds: float) -> None:
        self._queue_wait.record(seconds)

    def retried(self, group: Hashable) -> None:
        self._retried.add(1)
        self._calls_saved.add(-1)  # the retry costs a call of its own
