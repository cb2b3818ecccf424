"""Spans and metrics through OpenTelemetry, on both backends, with the SDK's in-memory readers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import coalesce._coordinator as coordinator_module
from coalesce import open_coordinator
from coalesce._otel import OtelObserver
from coalesce._telemetry import Observer, load_observer
from coalesce.testing import ScriptedClient, text_request

from .helpers import submit_all

pytestmark = pytest.mark.anyio


def drop_second(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["task_index"] != 1]


async def test_a_call_is_a_span_linked_to_its_callers_and_metrics_add_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    observer = OtelObserver(tracer_provider, MeterProvider(metric_readers=[reader]))
    monkeypatch.setattr(coordinator_module, "load_observer", lambda: observer)
    tracer = tracer_provider.get_tracer("test")

    model = ScriptedClient(mangle=drop_second)
    async with open_coordinator(model, window=3600.0, max_batch=3) as coord:
        callers: list[trace.SpanContext] = []

        async def ask(text: str) -> None:
            with tracer.start_as_current_span(f"caller {text}") as span:
                callers.append(span.get_span_context())
                await coord.create_message(text_request(text), group="tenant-a")

        async with anyio.create_task_group() as task_group:
            for text in ("a", "b", "c"):
                task_group.start_soon(ask, text)
        stats = coord.stats

    calls = [span for span in spans.get_finished_spans() if span.name == "coalesce call"]
    assert len(calls) == 2  # the batch of 3, then task 1 alone
    batch, retry = sorted(
        calls, key=lambda span: str((span.attributes or {})["coalesce.flush_reason"])
    )
    assert dict(batch.attributes or {}) == {
        "coalesce.batch_size": 3,
        "coalesce.flush_reason": "full",
        "coalesce.group": "'tenant-a'",
        "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 0,
        "coalesce.unusable_tasks": 1,
    }
    assert {link.context.span_id for link in batch.links} == {c.span_id for c in callers}
    assert (retry.attributes or {})["coalesce.flush_reason"] == "retry alone"
    assert len(retry.links) == 1

    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert points["coalesce.calls_saved"][0].value == stats.calls_saved == 1
    assert points["coalesce.tasks_retried"][0].value == 1
    assert points["coalesce.unusable_replies"][0].value == 1
    assert sum(p.count for p in points["coalesce.batch_size"]) == 2
    assert sum(p.sum for p in points["coalesce.batch_size"]) == 4
    assert points["coalesce.queue_wait"][0].count == 3


async def test_a_failed_call_marks_its_span_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    observer = OtelObserver(tracer_provider, MeterProvider())
    monkeypatch.setattr(coordinator_module, "load_observer", lambda: observer)
    model = ScriptedClient()
    model.fail_next(ConnectionError("down"))
    async with open_coordinator(model, window=3600.0, max_batch=2) as coord:
        await submit_all(coord, [text_request("a"), text_request("b")])
    [span] = spans.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.status.description == "ConnectionError"
    assert [event.name for event in span.events] == ["exception"]


def test_without_a_configured_sdk_the_observer_is_silent() -> None:
    assert type(load_observer()) is Observer


def test_import_coalesce_imports_no_opentelemetry() -> None:
    code = "import sys, coalesce; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_observability_example_runs_as_documented() -> None:
    example = Path(__file__).parent.parent / "examples" / "observability.py"
    out = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, check=True, timeout=60
    )
    lines = out.stdout.splitlines()
    assert lines[0].startswith("<coalesce.Coordinator open window=0.5, max_batch=5, ")
    stats = json.loads(lines[1])
    assert (stats["requests"], stats["model_calls"], stats["retried_alone"]) == (5, 2, 1)
    assert lines[2:] == [
        "span: batch_size=5 reason='full' callers=5",
        "span: batch_size=1 reason='retry alone' callers=1",
        "metrics: coalesce.batch_size, coalesce.calls_saved, coalesce.queue_wait, "
        "coalesce.tasks_retried, coalesce.unusable_replies",
    ]
    assert out.stderr == (
        "WARNING coalesce: coalesced reply left tasks unusable group='tenant-a' size=5 "
        "unusable=1 reason=no entry answers task 1\n"
    )
