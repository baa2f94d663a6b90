"""HTTP latency and throughput of ``/v1/predict`` on loopback, with dynamic batching on and off.

    python -m bench.service --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

Starts ``python -m app`` on a free loopback port for each setting, sends real IMDB reviews,
and prints p50/p99 latency with one client and requests/s with 1 and 32 concurrent clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from training.data import load_imdb


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(bundle: Path, batching: bool) -> tuple[subprocess.Popen, str]:
    """A server process and its base URL, once ready."""
    port = _free_port()
    env = {**os.environ, "SENTIMENT_MODEL_DIR": str(bundle), "SENTIMENT_BATCHING": str(batching).lower()}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--log-level", "warning"], env=env
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not become ready")


async def _client(base: str, texts: list[str], latencies: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for text in texts:
            started = time.perf_counter()
            response = await client.post("/v1/predict", json={"text": text})
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)


async def load(base: str, texts: list[str], clients: int) -> tuple[float, list[float]]:
    """Requests per second and latencies with ``clients`` concurrent clients sharing ``texts``."""
    latencies: list[float] = []
    shares = [texts[i::clients] for i in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(_client(base, share, latencies) for share in shares))
    return len(texts) / (time.perf_counter() - started), latencies


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: measure and print."""
    parser = argparse.ArgumentParser(description="Latency and throughput of /v1/predict over HTTP.")
    parser.add_argument("--data", help="IMDB archive or folder (default: $IMDB_DATA)")
    parser.add_argument("--bundle", type=Path, default=Path("models/default"), help="model bundle folder")
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients for the throughput run")
    args = parser.parse_args(argv)
    reviews = load_imdb(args.data).test
    texts = [review.text for review in random.Random(0).sample(reviews, args.requests)]
    median_chars = statistics.median(map(len, texts))
    print(f"{args.requests} real IMDB test reviews per run; median {median_chars:.0f} characters")
    for batching in (True, False):
        process, base = start_server(args.bundle, batching)
        try:
            asyncio.run(load(base, texts[:20], 4))  # warm-up
            single_rps, latencies = asyncio.run(load(base, texts, 1))
            many_rps, many_latencies = asyncio.run(load(base, texts, args.clients))
        finally:
            process.terminate()
            process.wait()
        p50, p99 = (1000 * float(np.percentile(latencies, q)) for q in (50, 99))
        print(
            f"batching {'on ' if batching else 'off'}: 1 client p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"{single_rps:.1f} req/s | {args.clients} clients {many_rps:.1f} req/s "
            f"(p99 {1000 * float(np.percentile(many_latencies, 99)):.0f} ms, {many_rps / single_rps:.2f}x)"
        )


if __name__ == "__main__":
    main()
