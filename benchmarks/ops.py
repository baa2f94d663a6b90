"""``python -m benchmarks ops``: what each operations feature costs a request.

It starts ``python -m app`` once per configuration, logging at level info into a file, and sends
real IMDB test reviews to ``POST /v1/predict`` with 1 client and with 32 (each client sends its
next request when its previous one is answered):

* ``off``: no access line, no prediction log, no tracing (the baseline);
* ``defaults``: the service as shipped (a text access line per request);
* ``json logs``: a JSON access line per request (``SENTIMENT_LOG_FORMAT=json``);
* ``prediction log``: every prediction written to the prediction log (100 % sampling);
* ``tracing``: OpenTelemetry on, with the SDK recording every span and a batch processor
  handing them to an exporter that discards them (serialising and sending spans to a collector
  happen on the processor's thread and are not counted).

The cost of a feature is its configuration's figure minus ``off``'s: the one-client p50, and the
time per request at 32 clients (1 / throughput). The configurations run one after another; on a
busy machine their difference is within the noise, as the figures' spread shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks import reviews
from benchmarks.service import load
from tests.serving import start_server

CLIENTS = (1, 32)
# the tracing configuration's SDK set-up, run by the server's interpreter at start-up (the way
# opentelemetry-instrument sets it up: a sitecustomize module on PYTHONPATH)
SITECUSTOMIZE = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Discard(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Discard()))
trace.set_tracer_provider(provider)
"""


def configurations(folder: Path) -> dict[str, dict[str, str]]:
    """Each configuration's environment; files it writes go into ``folder``."""
    site = folder / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    quiet = {"SENTIMENT_ACCESS_LOG": "false"}
    python_path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {
        "off": quiet,
        "defaults": {},
        "json logs": {"SENTIMENT_LOG_FORMAT": "json"},
        "prediction log": {**quiet, "SENTIMENT_PREDICTION_LOG": str(folder / "predictions.jsonl")},
        "tracing": {**quiet, "SENTIMENT_OPENTELEMETRY": "true", "PYTHONPATH": python_path},
    }


def measure(
    bundle: Path, texts: Sequence[str], env: dict[str, str], log: Path, clients: Sequence[int]
) -> dict:
    """p50, p99 and requests/s at each client count for one configuration, and the access lines
    and prediction log entries it wrote."""
    with log.open("w") as output:
        process, base, _ = start_server(bundle, env, output=output)
    try:
        asyncio.run(load(base, texts[:32], 4))  # warm-up
        rows = {}
        for count in clients:
            rps, records = asyncio.run(load(base, texts, count))
            latencies = sorted(1000 * (end - start) for start, end, _ in records)
            rows[str(count)] = {
                "requests_per_s": rps,
                "p50_ms": latencies[len(latencies) // 2],
                "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            }
    finally:
        process.terminate()
        process.wait(timeout=20)
    predictions = Path(env.get("SENTIMENT_PREDICTION_LOG", "/nonexistent"))
    return {
        "load": rows,
        "access_lines": sum("app.access" in line for line in log.open()),
        "prediction_log_entries": sum(1 for _ in predictions.open()) if predictions.exists() else 0,
    }


def benchmark(bundle: Path, texts: Sequence[str], clients: Sequence[int] = CLIENTS) -> dict:
    """Every configuration's figures, and each one's cost against ``off``."""
    results: dict = {"requests": len(texts), "clients": list(clients), "configurations": {}}
    with TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, env in configurations(folder).items():
            results["configurations"][name] = measure(
                bundle, texts, env, folder / f"{name.replace(' ', '-')}.log", clients
            )
    off = results["configurations"]["off"]["load"]
    results["costs"] = {
        name: {
            count: {
                "p50_us": 1000 * (figures["load"][count]["p50_ms"] - off[count]["p50_ms"]),
                "us_per_request": 1e6
                * (1 / figures["load"][count]["requests_per_s"] - 1 / off[count]["requests_per_s"]),
            }
            for count in off
        }
        for name, figures in results["configurations"].items()
        if name != "off"
    }
    one = str(clients[0])
    results["defaults_p50_over_off"] = (
        results["configurations"]["defaults"]["load"][one]["p50_ms"] / off[one]["p50_ms"]
    )
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="concurrent clients")


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/ops.json``."""
    texts = reviews.review_texts(args.data, args.requests)
    return benchmark(args.bundle, texts, args.clients)
