"""Prometheus metrics: the model's own (:class:`ModelMetrics`), HTTP requests' (:class:`HttpMetrics`),
and where each prediction request's time went (:class:`StageTimes`)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.routes import find_route
from model.reference import NEAR_HALF

# A prediction request's stages, the names of its Server-Timing metrics and of the stage label
STAGES = ("tokenize", "queue", "infer", "serialise", "total")


@dataclass(slots=True)
class StageTimes:
    """Where one prediction request's time in the service went, in seconds.

    ``tokenize``: tokenising its texts. ``queue``: from handing them to the batcher (or, without
    batching, the inference pool) until the onnxruntime call that answers them starts (the first
    of them, when its texts run in several). ``infer``: that onnxruntime call (the sum, with
    several). ``total``: the service's whole time, from the route's call to the result.
    ``serialise``: after ``total``, from the service's result to the response's start (the
    protocol's codec, the response model and the JSON encoding). ``batch``: texts in the largest
    onnxruntime call that answered the request.
    """

    started: float = field(default_factory=time.perf_counter)
    tokenize: float = 0.0
    queue: float = 0.0
    infer: float = 0.0
    serialise: float = 0.0
    total: float = 0.0
    batch: int = 0

    def stages(self) -> tuple[float, float, float, float, float]:
        """The durations in :data:`STAGES` order."""
        return self.tokenize, self.queue, self.infer, self.serialise, self.total

    def server_timing(self) -> str:
        """A ``Server-Timing`` header value (W3C Server Timing): each stage, in milliseconds."""
        return (
            f"tokenize;dur={self.tokenize * 1000:.3f}, queue;dur={self.queue * 1000:.3f}, "
            f"infer;dur={self.infer * 1000:.3f}, serialise;dur={self.serialise * 1000:.3f}, "
            f"total;dur={self.total * 1000:.3f}"
        )


class ModelMetrics:
    """Inference latency, per-stage request times, batch sizes, tokens per text and model info,
    in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.drift = DriftMetrics(registry)
        self.saturation = SaturationMetrics(registry)
        self.inference_seconds = Histogram(
            "sentiment_inference_seconds",
            "Time of one onnxruntime call.",
            registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
        )
        self.stage_seconds = Histogram(
            "sentiment_stage_seconds",
            "Time of one prediction request in each stage: tokenize, queue (waiting for the batcher "
            "or the inference pool), infer (onnxruntime), total (the service's whole time) and "
            "serialise (after it: from the service's result to the response).",
            ["stage"],
            registry=registry,
            buckets=(
                0.0001,
                0.00025,
                0.0005,
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
            ),
        )
        self._stage_children = [self.stage_seconds.labels(stage) for stage in STAGES]  # looked up once
        self.trace_seconds = Histogram(
            "sentiment_trace_seconds",
            "Time of one trace (inference and gate recomputation).",
            registry=registry,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )
        self.batch_size = Histogram(
            "sentiment_batch_size",
            "Texts per onnxruntime call.",
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.tokens = Histogram(
            "sentiment_tokens_per_text",
            "Tokens the model read per text.",
            registry=registry,
            buckets=(8, 16, 32, 64, 128, 256, 512, 1024, 2048),
        )
        self.ready = Gauge(
            "sentiment_model_ready", "1 when the model is loaded and warmed up.", registry=registry
        )
        self.info = Info("sentiment_model", "The served model.", registry=registry)
        self.timeouts = Counter(
            "sentiment_timeouts", "Model requests answered 504 (not done in time).", registry=registry
        )
        self.rejected = Counter(
            "sentiment_rejected",
            "Model requests refused with 429, by reason.",
            ["reason"],
            registry=registry,
        )
        self.rate_limit_store_errors = Counter(
            "sentiment_rate_limit_store_errors",
            "Model requests served unlimited because the rate-limit store failed or was late.",
            registry=registry,
        )
        self.connections_closed = Counter(
            "sentiment_connections_closed",
            "Connections the server closed before a request was read: too many connections, "
            "headers too large, headers or body too slow.",
            ["reason"],
            registry=registry,
        )

    def observe_stages(self, times: StageTimes) -> None:
        """Count one prediction request's stage times."""
        for child, seconds in zip(self._stage_children, times.stages(), strict=True):
            child.observe(seconds)


# Drift: what the served predictions look like, beside what the bundle's test set looked like
SCORE_BUCKETS = tuple(round(0.05 * step, 2) for step in range(1, 21))
UNK_RATE_BUCKETS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
NEAR_HALF_WINDOW = 1000  # predictions the share near 0.5 is taken over


class DriftMetrics:
    """The distributions a drift shows in: the served scores, the ``<unk>`` share of each text
    (the tokens per text are :class:`ModelMetrics`' ``sentiment_tokens_per_text``), and the
    share of the last :data:`NEAR_HALF_WINDOW` predictions near 0.5, beside the same share on
    the bundle's test set (:mod:`model.reference`); and the prediction log's drops."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scores = Histogram(
            "sentiment_prediction_score",
            "P(positive) of each served prediction.",
            registry=registry,
            buckets=SCORE_BUCKETS,
        )
        self.unk_rate = Histogram(
            "sentiment_unk_rate",
            "Share of each served text's tokens that are <unk> (outside the vocabulary).",
            registry=registry,
            buckets=UNK_RATE_BUCKETS,
        )
        self.near_half = Gauge(
            "sentiment_near_half_share",
            f"Share of the last {NEAR_HALF_WINDOW} predictions with a score within 0.1 of 0.5 "
            "(the model unsure); 0 before any.",
            registry=registry,
        )
        self.reference_near_half = Gauge(
            "sentiment_reference_near_half_share",
            "The same share on the served bundle's test set (its drift reference); NaN without one.",
            registry=registry,
        )
        self.reference_near_half.set(float("nan"))
        self.log_dropped = Counter(
            "sentiment_prediction_log_dropped",
            "Prediction log entries dropped because its writer was behind (its queue full).",
            registry=registry,
        )
        self._window: deque[bool] = deque(maxlen=NEAR_HALF_WINDOW)
        self._near = 0  # True values in the window; only the event loop changes it
        self.near_half.set_function(lambda: self._near / len(self._window) if self._window else 0.0)

    def observe(self, score: float, unk_rate: float) -> None:
        """Count one served prediction (on the event loop)."""
        self.scores.observe(score)
        self.unk_rate.observe(unk_rate)
        near = abs(score - 0.5) < NEAR_HALF
        if len(self._window) == NEAR_HALF_WINDOW:
            self._near -= self._window[0]
        self._window.append(near)
        self._near += near


class SaturationMetrics:
    """How full the service is, read at each scrape: model requests in flight, and the texts,
    tokens and oldest wait in the batcher's queue. What an autoscaler should scale on: unlike
    CPU, they rise with the load whether or not onnxruntime's threads spin, and before the
    in-flight cap turns requests into 429s."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.in_flight = Gauge(
            "sentiment_in_flight_requests",
            "Model requests being handled (admitted by the in-flight cap, not yet answered).",
            registry=registry,
        )
        self.queued_texts = Gauge(
            "sentiment_queued_texts", "Texts waiting in the batcher's queue for a worker.", registry=registry
        )
        self.queued_tokens = Gauge(
            "sentiment_queued_tokens", "Tokens of the texts in the batcher's queue.", registry=registry
        )
        self.oldest_wait = Gauge(
            "sentiment_batcher_wait_seconds",
            "How long the oldest text in the batcher's queue has waited; 0 when none waits.",
            registry=registry,
        )


# The instrumentator's default metrics' names, labels and buckets, so that dashboards and alerts
# written for it keep working (it matched every request's path against the routes again).
# fmt: off
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5,
                   7.5, 10, 30, 60)
# fmt: on
LATENCY_BY_HANDLER_BUCKETS = (0.1, 0.5, 1)  # few: one series per bucket per handler and method


class HttpMetrics:
    """Pure ASGI middleware: request counts, sizes and latencies by route template.

    It reads the route FastAPI matched from the scope after the app ran, and keeps each label
    combination's metric children in a dict: one lookup per request. prometheus-fastapi-instrumentator,
    which this replaces, matched the path against every route again and looked up four labelled
    children on every request. Only a request that reached no route (a 404,
    a static file, or one refused by a limit before routing) is matched here.

    The handler label is the route's path, which holds the ``APIRouter`` prefix; an
    ``include_router(prefix=...)`` would not be in it (this app sets none).
    """

    def __init__(
        self, app: ASGIApp, registry: CollectorRegistry, excluded: tuple[str, ...] = ("/metrics",)
    ) -> None:
        self.app = app
        self.excluded = excluded
        self.requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ["method", "status", "handler"],
            registry=registry,
        )
        self.request_size = Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler.",
            ["handler"],
            registry=registry,
        )
        self.response_size = Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler.",
            ["handler"],
            registry=registry,
        )
        self.latency_highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.disconnects = Counter(
            "http_client_disconnects_total",
            "Requests whose client went away before a response was started, by handler; they are "
            "not in http_requests_total, so a client's abort never counts as a server error.",
            ["method", "handler"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler.",
            ["method", "handler"],
            buckets=LATENCY_BY_HANDLER_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], tuple] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None  # none by the end: a disconnect if the client left, else a 500
        response_size, disconnected = 0, False
        root_path = scope.get("root_path", "")  # a mount changes it in place

        async def send_counted(message: Message) -> None:
            nonlocal status, response_size
            if message["type"] == "http.response.start":
                status = message["status"]
                response_size = _content_length(message["headers"])
            await send(message)

        async def receive_watched() -> Message:
            nonlocal disconnected
            message = await receive()
            disconnected = disconnected or message["type"] == "http.disconnect"
            return message

        failed = True
        try:
            await self.app(scope, receive_watched, send_counted)
            failed = False
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route") or find_route({**scope, "root_path": root_path})
            if status is None and (failed or not disconnected):
                status = 500  # the app raised, or returned without answering: the server sends 500
            self._observe(scope, route, status, response_size, seconds)

    def _observe(
        self, scope: Scope, route: BaseRoute | None, status: int | None, response_size: int, seconds: float
    ) -> None:
        """Count one request; ``status`` None: the client went away before any response."""
        # paths that match no route share one label, so a scan of random paths cannot grow
        # the metrics without bound
        handler = getattr(route, "path", None) or "none"
        if handler in self.excluded:  # by route, not raw path: a root path or a 404 can't slip in
            return
        if status is None:
            self.disconnects.labels(scope["method"], handler).inc()
            return
        key = (scope["method"], f"{str(status)[0]}xx", handler)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(*key),
                self.request_size.labels(handler),
                self.response_size.labels(handler),
                self.latency.labels(key[0], handler),
            )
        requests, request_size, response_size_summary, latency = children
        requests.inc()
        request_size.observe(_content_length(scope["headers"]))
        response_size_summary.observe(response_size)
        self.latency_highr.observe(seconds)
        latency.observe(seconds)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
