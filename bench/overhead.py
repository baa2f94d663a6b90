"""Where one request's time goes: in process (no sockets), and over loopback.

    python -m bench.overhead --bundle models/default [--data ../shared/data/aclImdb_v1.tar.gz]

In process, it sends ``/v1/predict`` requests through httpx's ASGI transport to the real app
(lifespan, middleware, routing, validation, batcher) one at a time and takes the medians of:
the whole request, ``SentimentService.predict`` inside it (tokenising, batcher, thread hop,
inference), the onnxruntime call alone, and ``GET /healthz`` through the same stack (the floor
of any request). What the request costs beyond ``predict`` and ``/healthz`` is the framework's
handling of a prediction: body parsing and validation, dependencies, response validation.

With ``--data`` (or ``$IMDB_DATA``), it also starts ``python -m app`` and sends real test
reviews from one client over loopback, then splits the mean request by the server's own
Prometheus metrics (their sums and counts before and after):

* outside the app: what the client measured beyond the HTTP metrics' handler time, i.e. the
  client, loopback, uvicorn's HTTP parsing and Starlette's error middleware outside them;
* the app: the handler time beyond inference (middleware, body parsing, dependencies,
  tokenising, batcher and thread hop, response);
* onnxruntime (``sentiment_inference_seconds``).

It also times as many bare ``GET /healthz`` from the same client (the HTTP stack's floor), and
the same texts through an in-process ``ModelRuntime.predict`` (the reference).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import Settings
from bench import cli, service

TEXT = "A wonderful, moving film with great acting and a superb story, and a score that stays. " * 3


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


async def _measure(settings: Settings, requests: int) -> dict:
    app = create_app(settings)
    sentiment = app.state.service
    times: dict[str, list[float]] = {"predict": [], "inference": []}
    predict, infer = sentiment.predict, sentiment.batcher._infer

    async def timed_predict(texts):
        started = time.perf_counter()
        result = await predict(texts)
        times["predict"].append(time.perf_counter() - started)
        return result

    def timed_infer(sequences, model):
        started = time.perf_counter()
        result = infer(sequences, model)
        times["inference"].append(time.perf_counter() - started)
        return result

    sentiment.predict, sentiment.batcher._infer = timed_predict, timed_infer
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(50):  # warm-up
                await client.post("/v1/predict", json={"text": TEXT})
            for values in times.values():
                values.clear()
            whole, health = [], []
            for _ in range(requests):
                started = time.perf_counter()
                (await client.post("/v1/predict", json={"text": TEXT})).raise_for_status()
                whole.append(time.perf_counter() - started)
                started = time.perf_counter()
                await client.get("/healthz")
                health.append(time.perf_counter() - started)
    return {
        "request_ms": _median_ms(whole),
        "service_predict_ms": _median_ms(times["predict"]),
        "inference_ms": _median_ms(times["inference"]),
        "healthz_ms": _median_ms(health),
    }


def metric_sums(text: str) -> dict[str, float]:
    """From Prometheus text: sum and count of ``/v1/predict``'s handler seconds (all methods) and
    of onnxruntime calls."""
    wanted = {
        "http_request_duration_seconds_sum": "sum",
        "http_request_duration_seconds_count": "count",
        "sentiment_inference_seconds_sum": "inference_sum",
        "sentiment_inference_seconds_count": "inference_count",
    }
    sums = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = wanted.get(sample.name)
            if key and (key.startswith("inference") or sample.labels.get("handler") == "/v1/predict"):
                sums[key] += sample.value
    return sums


async def _one_client(base: str, texts: list[str]) -> tuple[list[float], list[float]]:
    """Latencies of ``/v1/predict`` for each text in turn, then of as many bare ``GET /healthz``."""
    spans: list[tuple[float, float]] = []
    health: list[float] = []
    async with aiohttp.ClientSession() as session:
        await service.send_each(session, base, texts, spans)
        for _ in texts:
            started = time.perf_counter()
            async with session.get(f"{base}/healthz") as response:
                await response.read()
            health.append(time.perf_counter() - started)
    return service.seconds_of(spans), health


def over_loopback(bundle: Path, texts: list[str], threads: int = 2) -> dict:
    """Mean milliseconds of one client's requests over loopback, split by the server's metrics."""
    inproc = service.in_process_ms(bundle, texts, threads)
    with service.serving(bundle, {"SENTIMENT_THREADS": str(threads)}) as (_, base, _):
        asyncio.run(service.load(base, texts[:32], 1))  # warm-up
        before = metric_sums(service.metrics_text(base))
        latencies, health = asyncio.run(_one_client(base, texts))
        after = metric_sums(service.metrics_text(base))
    delta = {key: after[key] - before[key] for key in after}
    if delta["count"] != len(texts) or delta["inference_count"] != len(texts):
        raise SystemExit(f"the server counted {delta} for {len(texts)} requests")
    client_ms = 1000 * statistics.fmean(latencies)
    handler_ms = 1000 * delta["sum"] / delta["count"]
    inference_ms = 1000 * delta["inference_sum"] / delta["inference_count"]
    return {
        "requests": len(texts),
        "client_mean_ms": client_ms,
        "client_p50_ms": 1000 * statistics.median(latencies),
        "outside_app_ms": client_ms - handler_ms,
        "app_ms": handler_ms - inference_ms,
        "inference_ms": inference_ms,
        "healthz_p50_ms": 1000 * statistics.median(health),
        "in_process_mean_ms": statistics.fmean(inproc),
        "in_process_p50_ms": statistics.median(inproc),
    }


def print_overhead(figures: dict) -> None:
    """Human-readable lines."""
    rest = figures["request_ms"] - figures["service_predict_ms"] - figures["healthz_ms"]
    print(
        f"in process: request {figures['request_ms']:.2f} ms = service.predict "
        f"{figures['service_predict_ms']:.2f} (of which onnxruntime {figures['inference_ms']:.2f}) "
        f"+ a bare GET /healthz {figures['healthz_ms']:.2f} + the prediction route's own handling {rest:.2f}"
    )
    loop = figures.get("loopback")
    if loop:
        print(
            f"over loopback, {loop['requests']} real reviews, 1 client: mean {loop['client_mean_ms']:.2f} ms "
            f"(p50 {loop['client_p50_ms']:.2f}) = outside the app (client, loopback, uvicorn) "
            f"{loop['outside_app_ms']:.2f} + app "
            f"{loop['app_ms']:.2f} + onnxruntime {loop['inference_ms']:.2f}; in-process "
            f"ModelRuntime.predict mean {loop['in_process_mean_ms']:.2f} ms "
            f"(p50 {loop['in_process_p50_ms']:.2f}); a bare GET /healthz p50 {loop['healthz_p50_ms']:.2f} ms"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("Where a request's time goes, in process.")
    parser.add_argument("--requests", type=int, default=400, help="requests to time")
    args = parser.parse_args(argv)
    figures = asyncio.run(_measure(Settings(model_dir=args.bundle), args.requests))
    data = args.data or os.environ.get("IMDB_DATA")
    if data:
        texts = cli.review_texts(data, args.requests)
        figures["loopback"] = over_loopback(args.bundle, texts)
    cli.publish(figures, print_overhead, args.json)


if __name__ == "__main__":
    main()
