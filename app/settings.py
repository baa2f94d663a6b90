"""Service settings: one pydantic-settings class, read from ``SENTIMENT_*`` environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# rate-limit stores (limits' storage schemes) whose client the service installs
RATE_LIMIT_STORES = ("memory", "redis", "rediss", "redis+unix")


class Settings(BaseSettings):
    """Everything an operator can set; a bad value stops start-up with a message naming it."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_", frozen=True)

    model_dir: Path = Field(Path("models/default"), description="Model bundle folder to serve.")
    threads: int = Field(1, ge=1, le=64, description="onnxruntime intra-op threads per inference.")
    max_text_chars: int = Field(
        100_000, ge=1, description="Longest accepted text, in characters; longer is a 413."
    )
    max_tokens: int | None = Field(
        None, ge=1, description="Tokens read per text (the first ones); default: the bundle's training cap."
    )
    max_batch_texts: int = Field(64, ge=1, description="Most texts in one /v1/predict/batch request.")
    max_body_bytes: int = Field(
        2_000_000, ge=1024, description="Largest request body accepted, checked before parsing; else 413."
    )
    max_batch_size: int = Field(32, ge=1, description="Most texts coalesced into one onnxruntime call.")
    max_batch_tokens: int = Field(
        4096,
        ge=1,
        description="Most padded tokens (texts x longest) in one coalesced call: bounds its memory.",
    )
    batch_wait_ms: float = Field(
        0.0, ge=0, le=1000, description="How long a request waits for others to share its call."
    )
    memory_arena: bool = Field(
        True, description="onnxruntime's CPU memory arena (faster reuse, higher peak memory)."
    )
    spin_wait: bool = Field(
        True,
        description="onnxruntime's intra-op threads spin after a call, waiting for the next "
        "(lower latency back to back; a spinning thread holds a core the web server could use). "
        "No effect with one thread.",
    )
    inference_workers: int = Field(
        2, ge=1, le=64, description="Batches run at once, each on its own onnxruntime call and threads."
    )
    batching: bool = Field(True, description="Coalesce concurrent requests (dynamic batching).")
    trace_enabled: bool = Field(True, description="Serve /v1/trace.")
    trace_max_tokens: int = Field(400, ge=1, description="Most tokens a trace covers.")
    trace_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Traces and saliency maps computed at once, on threads of their own (never "
        "the predictions' threads).",
    )
    trace_queue: int = Field(
        2,
        ge=0,
        description="Traces and saliency maps waiting for a trace worker; beyond it, a quick 429.",
    )
    trace_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="onnxruntime intra-op threads of the session that traces and saliency use, "
        "apart from the predictions' session.",
    )
    api_key: SecretStr | None = Field(
        None,
        min_length=1,
        description="When set, traces, the inspector's data and reloads need it in the X-API-Key header.",
    )
    protect_predictions: bool = Field(
        False, description="With an API key set, prediction endpoints need it too (not only traces)."
    )
    max_in_flight: int = Field(
        256, ge=1, description="Model requests handled at once; more get a 429 at once instead of a queue."
    )
    max_connections: int = Field(
        1024, ge=1, description="Open client connections; one beyond it is closed as it is accepted."
    )
    max_header_bytes: int = Field(
        65_536,
        ge=1024,
        description="Largest request line and headers; beyond, a 431 and the connection closes.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="A request's headers must arrive within this time of its first byte (or of the "
        "connection's opening); else a 408 and the connection closes (slowloris).",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A request's body must arrive within this time of its headers; else a 408 and the "
        "connection closes. A model request counts as in flight only once its body is read.",
    )
    request_timeout_s: float = Field(
        10.0, gt=0, le=3600, description="A model request not answered in this time gets a 504."
    )
    drain_s: float = Field(
        5.0, ge=0, le=600, description="On SIGTERM: seconds of 503 readiness before the listener closes."
    )
    rate_limit: str | None = Field(
        None,
        description="Per-client limit on model requests, e.g. '100/second' (slowapi syntax); off when unset.",
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="Where rate-limit counts live: 'memory://' (each process counts alone, so N "
        "replicas allow N times the limit) or 'redis://host:port' (one count shared by every "
        "replica). An unreachable store lets requests through and counts "
        "sentiment_rate_limit_store_errors_total.",
    )
    rate_limit_store_timeout_s: float = Field(
        0.02,
        gt=0,
        le=5,
        description="Longest wait for the rate-limit store per request; past it the request is "
        "served (fail open), so a dead Redis costs each request this at most.",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="Peers trusted to name the client in X-Forwarded-For (comma-separated addresses "
        "or networks, or '*'); the rate limit keys on that client. From any other peer the header "
        "is ignored. uvicorn's default.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (JSON list); CORS is off when empty."
    )
    model_name: str | None = Field(None, description="Name the model is served under (default: card name).")
    opentelemetry: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry spans, metrics and logs, sent to the globally "
        "configured providers, and under each request's span one span per prediction stage "
        "(tokenize, queue, infer, serialise), all with the request's ID; exporting needs the "
        "OpenTelemetry SDK (requirements/tracing.txt) and an exporter, which the service image "
        "does not install. Off, each request skips FastAPI's provider lookups; the Prometheus "
        "metrics stay.",
    )

    # The language model (app/lm.py, app/lm_service.py): /v1/lm/*
    lm_bundle: Path | None = Field(
        Path("models/lm"),
        description="Language-model bundle folder served at /v1/lm/*. At the default path, a missing "
        "folder leaves the LM off (the routes answer 404 lm_not_loaded, GET /v1/lm says why); a "
        "path set explicitly must exist. Empty: off.",
    )
    lm_max_tokens: int = Field(
        400,
        ge=1,
        le=5000,
        description="Tokens of a prompt (its last ones) or a scored text (its first) the LM reads.",
    )
    lm_max_new_tokens: int = Field(
        200, ge=1, le=2000, description="Most tokens one /v1/lm/generate may ask for; more is a 422."
    )
    lm_max_candidates: int = Field(
        8, ge=2, le=64, description="Most continuations a sentiment-steered generation samples (one batch)."
    )
    lm_queue: int = Field(
        4, ge=0, description="LM jobs waiting for the LM's worker (one step each); beyond it, a quick 429."
    )

    # Operations: logs, the prediction log (app/logs.py, app/tracking.py, app/prediction_log.py)
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text (development) or JSON, one object a line (collectors)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe log level written; python -m app --log-level overrides it."
    )
    access_log: bool = Field(
        True,
        description="One line per request (level info, logger app.access): ID, route, status, latency "
        "and, for predictions, texts, tokens, batch size and model version.",
    )
    prediction_log: Path | None = Field(
        None,
        description="JSONL file of served predictions (request ID, time, model version, label, score, "
        "tokens, <unk> share, latency), rotated by size; off when unset. Never blocks a request: "
        "entries that find the writer's queue full are dropped and counted.",
    )
    prediction_log_sample: float = Field(
        1.0, ge=0, le=1, description="Share of prediction requests written to the prediction log."
    )
    prediction_log_text: Literal["off", "hash", "full"] = Field(
        "off", description="The text in the prediction log: left out, its SHA-256, or in full."
    )
    prediction_log_max_bytes: int = Field(
        100_000_000, ge=1024, description="Size at which the prediction log is rotated."
    )
    prediction_log_backups: int = Field(
        5, ge=1, le=1000, description="Rotated prediction log files kept (.1 the newest)."
    )
    prediction_log_queue: int = Field(
        10_000, ge=1, description="Entries waiting for the prediction log's writer; beyond, dropped."
    )
    match_index: Path | None = Field(
        None,
        description="The inspector's corpus index (python -m app.match_index); default: beside "
        "the model folder, named after it (models/default.match_index.npz), loaded when present.",
    )

    @field_validator("lm_bundle", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("model_name")
    @classmethod
    def _name_is_url_safe(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError("model_name may hold only letters, digits, '-', '_' and '.'")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_is_known(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in RATE_LIMIT_STORES:
            raise ValueError(f"not a rate-limit store: {value!r}; e.g. 'memory://' or 'redis://redis:6379'")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for entry in value.split(","):
            if entry.strip() != "*":
                try:
                    ipaddress.ip_network(entry.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{entry.strip()!r} is not an address, a network or '*'") from None
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value is not None:
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError as error:
                raise ValueError(
                    f"not a rate limit ({error}); e.g. '100/second' or '10/second;500/minute'"
                ) from None
        return value
