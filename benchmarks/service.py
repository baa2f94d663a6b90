"""``python -m benchmarks service``: the HTTP service beside its in-process ceiling, in one run.

For dynamic batching on and off it starts ``python -m app`` on a loopback port and measures,
with real IMDB test reviews sent to ``POST /v1/predict``:

* time from process start to ``/readyz`` answering 200;
* the server's memory after start-up and warm-up, and its peak (the kernel's high-water mark);
* latency with one client sending one request at a time;
* requests/s and latency with 1, 8, 32 and 64 concurrent clients, each sending its next request
  when its previous one is answered;
* with batching on, where the one client's time goes, stage by stage, from the ``Server-Timing``
  header the app sends with each answer (:mod:`benchmarks.server_timing`).

The ceiling is the same texts through :class:`benchmarks.engine.InProcess` (tokenise and one
onnxruntime call, no HTTP). Its calls and the one-client HTTP requests alternate in blocks of the
texts, so a drift of the machine's speed during the run weighs on both alike, and the HTTP ratio
comes from side-by-side figures. The load generator (aiohttp) shares the machine with the
server, as on any one-box benchmark: the figures are for the pair.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import numpy as np

from benchmarks import reviews, server, server_timing
from benchmarks.engine import InProcess

CLIENTS = (1, 8, 32, 64)
BLOCKS = 4  # the one-client HTTP run and the in-process ceiling alternate in this many blocks
# one request's record: sent and answered (perf_counter seconds), and its Server-Timing stages
Request = tuple[float, float, dict[str, float]]


async def send_each(
    session: aiohttp.ClientSession, base: str, texts: Sequence[str], log: list[Request]
) -> None:
    """POST each text to ``/v1/predict`` in turn, appending each request's record to ``log``."""
    for text in texts:
        started = time.perf_counter()
        async with session.post(f"{base}/v1/predict", json={"text": text}) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"/v1/predict answered {response.status}")
            stages = server_timing.parse(", ".join(response.headers.getall("Server-Timing", [])))
        log.append((started, time.perf_counter(), stages))


async def load(base: str, texts: Sequence[str], clients: int) -> tuple[float, list[Request]]:
    """Requests per second and each request's record, with ``clients`` concurrent clients
    sharing ``texts``."""
    log: list[Request] = []
    shares = [texts[i::clients] for i in range(clients)]
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(send_each(session, base, share[:2], []) for share in shares))  # connect, warm
        started = time.perf_counter()
        await asyncio.gather(*(send_each(session, base, share, log) for share in shares))
        return len(texts) / (time.perf_counter() - started), log


def one_client_beside(
    base: str, texts: Sequence[str], ceiling: InProcess
) -> tuple[float, list[Request], list[float]]:
    """One client's requests/s and records, and the in-process milliseconds of the same texts,
    taken in alternating blocks."""
    log: list[Request] = []
    inproc: list[float] = []
    seconds = 0.0
    for block in (texts[i::BLOCKS] for i in range(min(BLOCKS, len(texts)))):
        inproc += ceiling.milliseconds(block)
        rps, block_log = asyncio.run(load(base, block, 1))
        log += block_log
        seconds += len(block) / rps
    return len(texts) / seconds, log, inproc


def _row(clients: int, rps: float, log: list[Request]) -> dict:
    latencies = [1000 * (end - start) for start, end, _ in log]
    p50, p99 = (float(np.percentile(latencies, q)) for q in (50, 99))
    return {"clients": clients, "requests_per_s": rps, "p50_ms": p50, "p99_ms": p99}


def measure_server(
    bundle: Path,
    texts: Sequence[str],
    env: dict[str, str],
    clients: Sequence[int],
    ceiling: InProcess | None = None,
) -> dict:
    """Start-up, memory, latency and throughput of one server configuration; with ``ceiling``,
    the one-client run alternates with it (``in_process_ms`` and ``stages`` in the result)."""
    with server.running(bundle, env) as (process, base, ready_s):
        rest_mb = server.rss_mb(process.pid)
        asyncio.run(load(base, texts[:32], 4))  # warm-up
        result: dict = {}
        rows = []
        for count in clients:
            if count == 1 and ceiling is not None:
                rps, log, result["in_process_ms"] = one_client_beside(base, texts, ceiling)
                result["stages"] = server_timing.breakdown(
                    [(1000 * (end - start), stages) for start, end, stages in log]
                )
            else:
                rps, log = asyncio.run(load(base, texts, count))
            rows.append(_row(count, rps, log))
        peak_mb = server.peak_rss_mb(process.pid)
    return {"ready_s": ready_s, "rss_rest_mb": rest_mb, "rss_peak_mb": peak_mb, "load": rows, **result}


def benchmark(bundle: Path, texts: Sequence[str], clients: Sequence[int] = CLIENTS, threads: int = 2) -> dict:
    """All service figures, batching on and off, the in-process ceiling and the ratios."""
    if not clients or clients[0] != 1:
        raise ValueError("the first client count must be 1: the in-process ceiling runs beside it")
    ceiling = InProcess(bundle, threads)
    results: dict = {
        "requests": len(texts),
        "median_chars": statistics.median(map(len, texts)),
        "threads": threads,
    }
    for name, batching in (("batching_on", "true"), ("batching_off", "false")):
        env = {"SENTIMENT_BATCHING": batching, "SENTIMENT_THREADS": str(threads)}
        results[name] = measure_server(bundle, texts, env, clients, ceiling if batching == "true" else None)
    on = results["batching_on"]
    inproc = on.pop("in_process_ms")
    results["stages"] = on.pop("stages")
    results["in_process_p50_ms"] = float(np.percentile(inproc, 50))
    results["in_process_p99_ms"] = float(np.percentile(inproc, 99))
    single = on["load"][0]
    results["http_over_in_process_p50"] = single["p50_ms"] / results["in_process_p50_ms"]
    results["throughput_gain"] = {
        str(r["clients"]): r["requests_per_s"] / single["requests_per_s"] for r in on["load"]
    }
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=list(CLIENTS), help="concurrent clients, 1 first"
    )
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads, server and ceiling")


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/service.json``."""
    texts = reviews.review_texts(args.data, args.requests)
    return benchmark(args.bundle, texts, args.clients, args.threads)
