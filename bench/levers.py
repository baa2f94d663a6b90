"""Serving levers side by side: one server per setting, the same texts, 1 and 32 clients.

    python -m bench.levers --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

Each lever is a set of ``SENTIMENT_*`` settings (or server flags) for ``python -m app``. For
each it prints the one-client p50 latency and requests/s, the requests/s with 32 clients, and,
from the server's own Prometheus metrics, the mean coalesced batch, and where the 32 clients'
CPU went: the server's CPU time per request, the wall time of its onnxruntime calls per request,
and the load generator's (this process's) CPU time per request. So a change can be kept or
dropped on figures from one run. (Under contention a call's wall time exceeds its CPU time, so
the onnxruntime figure is an upper bound on its CPU time with one thread, and a sum over
concurrent calls with several workers.)

On a machine whose cores both serve and generate the load, the gain over one client is bounded
by ``cores x mean one-client latency / CPU per request at 32 clients`` (the 32 clients cannot be
answered faster than the cores this process may use can pay for them); ``ceiling_32`` is that
bound, from this run. When the cores are saturated the gain equals it, by definition.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench import cli
from bench.overhead import metric_sums
from bench.service import load, metrics_text, serving

LEVERS: dict[str, dict[str, str]] = {
    "batching off, 2 threads": {"SENTIMENT_BATCHING": "false", "SENTIMENT_THREADS": "2"},
    "batching, wait 2 ms, 2 threads, 1 worker": {
        "SENTIMENT_BATCH_WAIT_MS": "2",
        "SENTIMENT_THREADS": "2",
        "SENTIMENT_INFERENCE_WORKERS": "1",
    },
    "batching, wait 0, 2 threads, 1 worker (default)": {},
    "batching, wait 0, 1 thread, 1 worker": {
        "SENTIMENT_BATCH_WAIT_MS": "0",
        "SENTIMENT_THREADS": "1",
        "SENTIMENT_INFERENCE_WORKERS": "1",
    },
    "batching, wait 0, 1 thread, 2 workers": {
        "SENTIMENT_BATCH_WAIT_MS": "0",
        "SENTIMENT_THREADS": "1",
        "SENTIMENT_INFERENCE_WORKERS": "2",
    },
    "batching, wait 0, 2 threads, 2 workers": {
        "SENTIMENT_BATCH_WAIT_MS": "0",
        "SENTIMENT_THREADS": "2",
        "SENTIMENT_INFERENCE_WORKERS": "2",
    },
    "default, asyncio loop": {"--loop": "asyncio"},
    "default, no spin-waiting": {"SENTIMENT_SPIN_WAIT": "false"},
    "default, FastAPI's OpenTelemetry on": {"SENTIMENT_OPENTELEMETRY": "true"},
    "1 thread, 2 workers, no spin-waiting": {
        "SENTIMENT_THREADS": "1",
        "SENTIMENT_INFERENCE_WORKERS": "2",
        "SENTIMENT_SPIN_WAIT": "false",
    },
}


def _batch_metrics(base: str) -> dict[str, float]:
    """The server's ``sentiment_batch_size`` sum and count of coalesced texts, its onnxruntime
    calls' seconds (``inference_sum``) and its ``/v1/predict`` requests so far (``requests``)."""
    text = metrics_text(base)
    (family,) = (f for f in text_string_to_metric_families(text) if f.name == "sentiment_batch_size")
    sizes = {sample.name: sample.value for sample in family.samples if not sample.labels}
    sums = metric_sums(text)
    return {**sizes, "inference_sum": sums["inference_sum"], "requests": sums["count"]}


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of ``process`` (all its threads) so far."""
    times = process.cpu_times()
    return times.user + times.system


def measure(bundle: Path, texts: list[str], setting: dict[str, str]) -> dict:
    """One server with ``setting``: p50 and req/s at 1 client, req/s, batch and CPU at 32."""
    env = {k: v for k, v in setting.items() if not k.startswith("--")}
    flags = [item for k, v in setting.items() if k.startswith("--") for item in (k, v)]
    with serving(bundle, env, flags) as (process, base, _):
        asyncio.run(load(base, texts[:40], 4))  # warm-up
        single_rps, latencies = asyncio.run(load(base, texts, 1))
        server, client = psutil.Process(process.pid), psutil.Process()
        before = _batch_metrics(base)
        server_before, client_before = _cpu_seconds(server), _cpu_seconds(client)
        many_rps, _ = asyncio.run(load(base, texts, 32))
        server_cpu, client_cpu = _cpu_seconds(server) - server_before, _cpu_seconds(client) - client_before
        after = _batch_metrics(base)
    count = after["sentiment_batch_size_count"] - before["sentiment_batch_size_count"]
    batched = after["sentiment_batch_size_sum"] - before["sentiment_batch_size_sum"]
    # per request the server counted: ``load`` sends each client's first two texts untimed first
    requests = after["requests"] - before["requests"]
    per_request = {
        "server_cpu_ms_per_request_32": 1000 * server_cpu / requests,
        "inference_ms_per_request_32": 1000 * (after["inference_sum"] - before["inference_sum"]) / requests,
        "client_cpu_ms_per_request_32": 1000 * client_cpu / requests,
    }
    cpu_ms = per_request["server_cpu_ms_per_request_32"] + per_request["client_cpu_ms_per_request_32"]
    return {
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "single_rps": single_rps,
        "rps_32": many_rps,
        "gain_32": many_rps / single_rps,
        "mean_batch_32": batched / max(count, 1),
        **per_request,
        "ceiling_32": len(os.sched_getaffinity(0)) * (1000 / single_rps) / cpu_ms,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("Serving settings side by side.")
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--only", nargs="+", choices=list(LEVERS), default=list(LEVERS), help="levers to run")
    args = parser.parse_args(argv)
    texts = cli.review_texts(args.data, args.requests)
    results = {}
    started = time.perf_counter()
    for name in args.only:
        r = results[name] = measure(args.bundle, texts, LEVERS[name])
        print(
            f"{name:<48} 1 client p50 {r['p50_ms']:5.2f} ms, {r['single_rps']:4.0f} req/s | 32 clients "
            f"{r['rps_32']:4.0f} req/s ({r['gain_32']:.2f}x), mean batch {r['mean_batch_32']:.1f}, "
            f"CPU ms/request: server {r['server_cpu_ms_per_request_32']:.2f} (onnxruntime calls "
            f"{r['inference_ms_per_request_32']:.2f} wall), client {r['client_cpu_ms_per_request_32']:.2f}; "
            f"gain ceiling {r['ceiling_32']:.2f}x"
        )
    print(f"({time.perf_counter() - started:.0f} s)")
    cli.publish(results, lambda _: None, args.json)  # the rows were printed as they came


if __name__ == "__main__":
    main()
