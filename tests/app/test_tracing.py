"""OpenTelemetry: with SENTIMENT_OPENTELEMETRY on, a prediction's request span has a child span
per stage, each with the request's ID; off, nothing is recorded."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

REVIEW = "A moving, beautifully acted film."
STAGES = ("tokenize", "queue", "infer", "serialise")


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """The spans the SDK records, in memory. The global provider can be set once per process:
    an SDK provider another test set is reused."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_a_prediction_has_a_span_per_stage_under_its_request_span(make_client, exporter) -> None:
    client = make_client(opentelemetry=True)
    exporter.clear()
    response = client.post("/v1/predict", json={"text": REVIEW}, headers={"x-request-id": "trace-1"})
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    (request,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert request.attributes["request.id"] == "trace-1"
    assert request.attributes["http.route"] == "/v1/predict"
    # FastAPI adds spans of its own operations (dependencies, the endpoint) beside the stages
    stages = {span.name: span for span in spans if span.name in STAGES}
    assert list(stages) == list(STAGES)
    for span in stages.values():
        assert span.parent.span_id == request.context.span_id
        assert span.context.trace_id == request.context.trace_id
        assert span.attributes["request.id"] == "trace-1"
        assert request.start_time <= span.start_time <= span.end_time <= request.end_time
    tokenize, queue, infer, serialise = stages.values()
    assert tokenize.end_time <= queue.start_time <= queue.end_time <= infer.start_time
    assert infer.end_time <= serialise.start_time
    assert infer.attributes["batch.size"] == 1 and infer.attributes["model.version"] == "test"
    assert tokenize.attributes["tokens"] == response.json()["tokens"]


def test_off_nothing_is_recorded(make_client, exporter) -> None:
    client = make_client()
    exporter.clear()
    assert client.post("/v1/predict", json={"text": REVIEW}).status_code == 200
    assert exporter.get_finished_spans() == ()
