"""Watch a coordinator: logs, stats, and OpenTelemetry spans and metrics.

Needs the ``otel`` extra (``pip install 'coalesce-llm[otel]'``) for the SDK.
Run it with ``python examples/observability.py``; the test suite runs it too.
"""

from __future__ import annotations

import json
import logging

import trio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from coalesce import open_coordinator, text_request
from coalesce.testing import ScriptedClient

# 1. Logging: WARNING and INFO carry what an operator must see (never prompt text).
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# 2. OpenTelemetry: configure the SDK once, as the application; coalesce finds it.
#    (A real service exports with OTLP; this program keeps everything in memory.)
spans = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


def drop_task_one(entries: list[dict[str, object]]) -> list[dict[str, object]]:
    """A model that forgets one task of each batch, so that something gets logged."""
    return [entry for entry in entries if entry["task_index"] != 1]


async def main() -> None:
    model = ScriptedClient(mangle=drop_task_one)
    tracer = trace.get_tracer("my-app")
    async with open_coordinator(model, window=0.5, max_batch=5) as coord:

        async def ask(index: int) -> None:
            with tracer.start_as_current_span(f"task {index}"):
                await coord.create_message(text_request(f"task {index}"), group="tenant-a")

        async with trio.open_nursery() as nursery:
            for index in range(5):
                nursery.start_soon(ask, index)

        # 3. The coordinator's own figures: repr for a glance, stats as JSON for metrics.
        print(repr(coord).split(" stats=")[0] + ">")
        print(json.dumps(coord.stats.to_dict(), sort_keys=True))

    for span in spans.get_finished_spans():
        if span.name == "coalesce call":
            attributes = span.attributes or {}
            print(
                f"span: batch_size={attributes['coalesce.batch_size']} "
                f"reason={attributes['coalesce.flush_reason']!r} callers={len(span.links)}"
            )
    data = reader.get_metrics_data()
    names = sorted(
        metric.name
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )
    print("metrics:", ", ".join(names))


if __name__ == "__main__":
    trio.run(main)
