"""Prometheus metrics of the model itself (HTTP request metrics come from the instrumentator)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


class ModelMetrics:
    """Inference latency, batch sizes, tokens per text and model info, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.inference_seconds = Histogram(
            "sentiment_inference_seconds",
            "Time of one onnxruntime call.",
            registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
        )
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
