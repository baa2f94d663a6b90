"""OpenTelemetry spans of each prediction request, when ``SENTIMENT_OPENTELEMETRY`` is on.

FastAPI's native telemetry makes the request's span (a server span, from the globally
configured tracer provider). Under it, this module adds one span per stage of a prediction:
``tokenize``, ``queue`` (waiting for the batcher or the inference pool), ``infer`` (the
onnxruntime call) and ``serialise`` (the service's result to the response). Each span, the
request's too, carries the request's ID as ``request.id``, so a trace and a log line find each
other.

The stage spans are recorded when the response starts, from the times the service measured
(:class:`app.metrics.StageTimes`), laid end to end from the start of the service's work: the
onnxruntime call runs on a batcher thread for many requests at once, where no request's span
is current, and timing it again here would cost every request for nothing. Exporting needs the
OpenTelemetry SDK and an exporter (``pip install opentelemetry-sdk`` and, e.g.,
``opentelemetry-exporter-otlp``), set up as the global tracer provider before the app starts.
"""

from __future__ import annotations

import time

from opentelemetry import trace

from app.context import RequestContext

NS = 1_000_000_000


class RequestSpans:
    """Tags the request's span with its ID and adds its prediction's stage spans."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("app")
        # perf_counter has no epoch; spans need one: the offset between the two clocks, once
        self.offset_ns = time.time_ns() - int(time.perf_counter() * NS)

    def tag(self, context: RequestContext) -> None:
        """The request's span (FastAPI's, when one is being recorded) gets the request's ID."""
        trace.get_current_span().set_attribute("request.id", context.id)

    def record(self, context: RequestContext) -> None:
        """The stage spans of the request's prediction, children of the current (request's) span."""
        times = context.times
        if times is None:
            return
        begin = times.started
        stages = (
            ("tokenize", begin, times.tokenize, {"texts": context.texts, "tokens": context.tokens}),
            ("queue", begin + times.tokenize, times.queue, {}),
            (
                "infer",
                begin + times.tokenize + times.queue,
                times.infer,
                {"batch.size": times.batch, "model.version": context.model_version or ""},
            ),
            ("serialise", begin + times.total, times.serialise, {}),
        )
        for name, start, seconds, attributes in stages:
            span = self.tracer.start_span(
                name, start_time=self._ns(start), attributes={"request.id": context.id, **attributes}
            )
            span.end(end_time=self._ns(start + seconds))

    def _ns(self, perf_seconds: float) -> int:
        return int(perf_seconds * NS) + self.offset_ns
