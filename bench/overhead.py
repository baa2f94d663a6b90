"""Where one request's time goes, in process (no sockets): the app, the service, the model.

    python -m bench.overhead --bundle models/default

Sends ``/v1/predict`` requests through httpx's ASGI transport to the real app (lifespan,
middleware, routing, validation, batcher) one at a time and takes the medians of: the whole
request, ``SentimentService.predict`` inside it (tokenising, batcher, thread hop, inference),
the onnxruntime call alone, and ``GET /healthz`` through the same stack (the floor of any
request). What the request costs beyond ``predict`` and ``/healthz`` is the framework's
handling of a prediction: body parsing and validation, dependencies, response validation.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence

import httpx

from app.main import create_app
from app.settings import Settings
from bench import cli

TEXT = "A wonderful, moving film with great acting and a superb story, and a score that stays. " * 3


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


async def _measure(settings: Settings, requests: int) -> dict:
    app = create_app(settings)
    service = app.state.service
    times: dict[str, list[float]] = {"predict": [], "inference": []}
    predict, infer = service.predict, service.batcher._infer

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

    service.predict, service.batcher._infer = timed_predict, timed_infer
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


def print_overhead(figures: dict) -> None:
    """Human-readable line."""
    rest = figures["request_ms"] - figures["service_predict_ms"] - figures["healthz_ms"]
    print(
        f"in process: request {figures['request_ms']:.2f} ms = service.predict "
        f"{figures['service_predict_ms']:.2f} (of which onnxruntime {figures['inference_ms']:.2f}) "
        f"+ a bare GET /healthz {figures['healthz_ms']:.2f} + the prediction route's own handling {rest:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("Where a request's time goes, in process.")
    parser.add_argument("--requests", type=int, default=400, help="requests to time")
    args = parser.parse_args(argv)
    figures = asyncio.run(_measure(Settings(model_dir=args.bundle), args.requests))
    cli.publish(figures, print_overhead, args.json)


if __name__ == "__main__":
    main()
