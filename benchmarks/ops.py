"""``python -m benchmarks ops``: what each operations feature costs a request.

It starts ``python -m app`` once per configuration and round, logging at level info into a
file, and sends real IMDB test reviews to ``POST /v1/predict`` with 1 client and with 32 (each
client sends its next request when its previous one is answered):

* ``off``: no access line, no prediction log, no tracing (the baseline);
* ``defaults``: the service as shipped (a text access line per request);
* ``json logs``: a JSON access line per request (``SENTIMENT_LOG_FORMAT=json``);
* ``prediction log``: every prediction written to the prediction log (100 % sampling);
* ``tracing``: OpenTelemetry on, with the SDK recording every span and a batch processor
  handing them to an exporter that counts and discards them (serialising and sending spans to a
  collector happen on the processor's thread and are not counted).

The configurations alternate: each round runs every one in turn, starting one further along the
list each round, so neither a slow spell of the machine nor a place in the order falls on one
configuration alone. The cost of a feature in a round is its configuration's figure
minus the same round's ``off``: the one-client p50, and the time per request at 32 clients
(1 / throughput). Every figure is the median over the rounds with its range; the bound on the
defaults (one-client p50 at most 1.05 × ``off``) is resolved only when the range of that ratio
stays under it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
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
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Discard(SpanExporter):
    # counts the spans (a line per batch, on the processor's thread), then drops them
    def export(self, spans):
        with open(os.environ["BENCHMARK_SPANS"], "a") as counted:
            counted.write(f"{len(spans)}\\n")
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
        "tracing": {
            **quiet,
            "SENTIMENT_OPENTELEMETRY": "true",
            "PYTHONPATH": python_path,
            "BENCHMARK_SPANS": str(folder / "spans.txt"),
        },
    }


def measure(
    bundle: Path, texts: Sequence[str], env: dict[str, str], log: Path, clients: Sequence[int]
) -> dict:
    """p50, p99 and requests/s at each client count for one configuration, and the access lines,
    prediction log entries and spans it wrote."""
    predictions = Path(env.get("SENTIMENT_PREDICTION_LOG", "/nonexistent"))
    spans = Path(env.get("BENCHMARK_SPANS", "/nonexistent"))
    for written in (predictions, spans):  # the previous round's
        written.unlink(missing_ok=True)
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
        process.wait(timeout=20)  # the exporter gets the last spans as the server exits
    return {
        "load": rows,
        "access_lines": sum("app.access" in line for line in log.open()),
        "prediction_log_entries": sum(1 for _ in predictions.open()) if predictions.exists() else 0,
        "spans_exported": sum(map(int, spans.read_text().split())) if spans.exists() else 0,
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and range of one figure over the rounds."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def cost(measured: dict, off: dict) -> dict:
    """One round's cost of a configuration at each client count: its figures minus ``off``'s."""
    return {
        count: {
            "p50_us": 1000 * (load["p50_ms"] - off[count]["p50_ms"]),
            "us_per_request": 1e6 * (1 / load["requests_per_s"] - 1 / off[count]["requests_per_s"]),
        }
        for count, load in measured["load"].items()
    }


def summarise(rounds: Sequence[dict]) -> dict:
    """A configuration's load figures over its rounds, each as median and range."""
    return {
        count: {key: spread([r["load"][count][key] for r in rounds]) for key in first}
        for count, first in rounds[0]["load"].items()
    }


def benchmark(bundle: Path, texts: Sequence[str], clients: Sequence[int] = CLIENTS, rounds: int = 3) -> dict:
    """Every configuration's figures over ``rounds`` alternating rounds, and each one's cost
    against ``off`` in the same round."""
    measured: dict[str, list[dict]] = {}
    with TemporaryDirectory() as scratch:
        folder = Path(scratch)
        environments = configurations(folder)
        names = list(environments)
        for index in range(rounds):
            start = index % len(names)
            for name in names[start:] + names[:start]:
                log = folder / f"{name.replace(' ', '-')}.log"
                measured.setdefault(name, []).append(measure(bundle, texts, environments[name], log, clients))
    measured = {name: measured[name] for name in names}  # the record lists them in the list's order
    offs = measured["off"]
    costs = {
        name: [cost(r, off["load"]) for r, off in zip(runs, offs, strict=True)]
        for name, runs in measured.items()
        if name != "off"
    }
    one = str(clients[0])
    ratios = [
        r["load"][one]["p50_ms"] / off["load"][one]["p50_ms"]
        for r, off in zip(measured["defaults"], offs, strict=True)
    ]
    return {
        "requests": len(texts),
        "clients": list(clients),
        "rounds": rounds,
        "configurations": {
            name: {"load": summarise(runs), "rounds": runs} for name, runs in measured.items()
        },
        "costs": {
            name: {
                count: {key: spread([c[count][key] for c in per_round]) for key in per_round[0][count]}
                for count in per_round[0]
            }
            for name, per_round in costs.items()
        },
        "defaults_p50_over_off": {**spread(ratios), "rounds": ratios},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="concurrent clients")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds; each runs every configuration once, in turn"
    )


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/ops.json``."""
    texts = reviews.review_texts(args.data, args.requests)
    return benchmark(args.bundle, texts, args.clients, args.rounds)
