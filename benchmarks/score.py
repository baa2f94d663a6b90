"""``python -m benchmarks score``: batch scoring's reviews/s beside its in-process ceiling.

The same IMDB test reviews (all 25,000 by default) go through:

* the ceiling: the bundle's tokenizer and an onnxruntime session of our own
  (:func:`benchmarks.engine.batched_seconds`: tokenise, group by length as the service does, one
  call per group, one thread), in one process, and in one process per core at once (their
  reviews over the time from the first start to the last end); no file, no pickling;
* ``python -m app.score`` on a JSONL file, with one worker and with one worker per core: the
  command's wall time, start-up, reading and writing included, and its main process's peak
  memory;
* ``python -m app.score --engine ray`` on the same reviews as Parquet, on a local Ray with every
  core (Ray's start included), when Ray is installed;
* the HTTP API, a server started as a user starts it, with 64 clients each sending
  ``/v1/predict/batch`` requests of 64 reviews.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from benchmarks import reviews, server
from benchmarks.engine import batched_seconds

ROOT = Path(__file__).resolve().parents[1]
HTTP_BATCH = 64  # texts per /v1/predict/batch request: the service's default limit


def _timed_share(bundle: Path, texts: Sequence[str], barrier) -> tuple[float, float]:
    """Start and end (monotonic, comparable across processes) of one process's share."""
    barrier.wait()  # every process has started; each loads its session inside batched_seconds
    started = time.monotonic()
    seconds = batched_seconds(bundle, texts)
    return started, started + seconds


def ceiling(bundle: Path, texts: Sequence[str], processes: int) -> float:
    """Reviews/s of :func:`batched_seconds` on ``processes`` processes at once, each a share."""
    if processes == 1:
        return len(texts) / batched_seconds(bundle, texts)
    context = multiprocessing.get_context("spawn")  # no onnxruntime threads inherited
    barrier = context.Manager().Barrier(processes)
    with context.Pool(processes) as pool:
        spans = pool.starmap(_timed_share, [(bundle, texts[i::processes], barrier) for i in range(processes)])
    return len(texts) / (max(end for _, end in spans) - min(start for start, _ in spans))


def command(arguments: list[str]) -> dict:
    """Run ``python -m app.score`` with ``arguments``: wall seconds and its main process's peak
    memory (VmHWM, read while it runs)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.score", *arguments, "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    while process.poll() is None:
        with contextlib.suppress(OSError, RuntimeError):  # it may have just exited
            peak = max(peak, server.peak_rss_mb(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"python -m app.score {' '.join(arguments)} failed: {err[-2000:]}")
    return {"seconds": seconds, "peak_rss_mb": peak, "summary": out.strip().splitlines()[-1]}


async def _client(session: aiohttp.ClientSession, base: str, batches: list[list[str]]) -> None:
    for texts in batches:
        async with session.post(f"{base}/v1/predict/batch", json={"texts": texts}) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"/v1/predict/batch answered {response.status}")


async def _http(base: str, texts: Sequence[str], clients: int) -> float:
    batches = [list(texts[i : i + HTTP_BATCH]) for i in range(0, len(texts), HTTP_BATCH)]
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=600)
    ) as session:
        await _client(session, base, batches[:1])  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(_client(session, base, batches[i::clients]) for i in range(clients)))
        return len(texts) / (time.perf_counter() - started)


def http(bundle: Path, texts: Sequence[str], clients: int) -> float:
    """Reviews/s through ``/v1/predict/batch`` with ``clients`` concurrent clients."""
    # a request's texts may queue behind 63 others: a longer deadline than the default 10 s
    with server.running(bundle, {"SENTIMENT_REQUEST_TIMEOUT_S": "600"}) as (_, base, _):
        return asyncio.run(_http(base, texts, clients))


def _ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def benchmark(bundle: Path, texts: Sequence[str], clients: int, engines: Sequence[str]) -> dict:
    """Every figure of the run, and the ratios the targets read."""
    cores = len(os.sched_getaffinity(0))
    figures: dict = {
        "reviews": len(texts),
        "cores": cores,
        "median_chars": statistics.median(map(len, texts)),
        "ceiling_one_process": ceiling(bundle, texts, 1),
        "ceiling_all_cores": ceiling(bundle, texts, cores),
    }
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "reviews.jsonl"
        source.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
        for name, workers in (("score_one_worker", 1), ("score_all_cores", cores)):
            run = command(
                [str(source), f"{folder}/{name}.jsonl", "--bundle", str(bundle), "--workers", str(workers)]
            )
            figures[name] = {**run, "reviews_per_s": len(texts) / run["seconds"]}
        if "ray" in engines and _ray_installed():
            import pyarrow as pa
            import pyarrow.parquet

            pa.parquet.write_table(pa.table({"text": list(texts)}), f"{folder}/reviews.parquet")
            run = command(
                ["--engine", "ray", f"{folder}/reviews.parquet", f"{folder}/ray", "--bundle", str(bundle)]
            )
            figures["ray"] = {**run, "reviews_per_s": len(texts) / run["seconds"]}
    if "http" in engines:
        figures["http"] = {
            "clients": clients,
            "batch": HTTP_BATCH,
            "reviews_per_s": http(bundle, texts, clients),
        }
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--reviews", type=int, default=25_000, help="test reviews to score (all: 25000)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients")
    parser.add_argument(
        "--engines",
        nargs="*",
        choices=("ray", "http"),
        default=["ray", "http"],
        help="the paths measured beside the command (Ray only where installed)",
    )


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/score.json``."""
    texts = reviews.review_texts(args.data, args.reviews)
    return benchmark(args.bundle, texts, args.clients, args.engines)
