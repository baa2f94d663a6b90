"""The service over HTTP on loopback: latency, throughput, batching, overhead, memory, start-up.

    python -m bench.service --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

For dynamic batching on and off it starts ``python -m app`` on a free loopback port and
measures, with real IMDB test reviews:

* time from process start to ``/readyz`` answering 200;
* RSS of the server at rest (after start-up and warm-up) and its peak under load;
* p50 / p99 latency of ``POST /v1/predict`` with one client sending one request at a time;
* requests/s with 1, 8, 32 and 64 concurrent clients (each sends its next request when its
  previous one is answered).

It also times the same texts through an in-process :class:`app.runtime.ModelRuntime`
(tokenise + onnxruntime, the work a request needs without HTTP), so the service's overhead is a
ratio measured in the same run: the in-process calls and the one-client HTTP requests (batching
on) alternate in blocks of the texts, so a drift of the machine's speed during the run (which
is common here) weighs on both sides alike. The load generator (aiohttp) shares the machine with the
server, as it does on any one-box benchmark: figures are for the pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import aiohttp
import numpy as np
import psutil

from app.runtime import ModelRuntime
from app.settings import Settings
from bench import cli

CLIENTS = (1, 8, 32, 64)
BLOCKS = 4  # the one-client HTTP run and the in-process reference alternate in this many blocks


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    bundle: Path,
    env: dict[str, str] | None = None,
    flags: Sequence[str] = (),
    output: IO | None = None,
    module: str = "app",
    source: Path | None = None,
) -> tuple[subprocess.Popen, str, float]:
    """A server process, its base URL, and seconds from launch until ``/readyz`` answered 200.

    ``python -m {module}`` takes ``python -m app``'s flags; it runs the code in ``source`` (a
    checkout of this repository) when given, else ours. The server logs at ``--log-level info``
    into ``output`` when given, else at ``warning`` to ours.
    """
    port = free_port()
    # absolute for a server in another checkout; not resolved, so that a symlinked bundle
    # folder stays the operator's switch that SIGHUP reads again
    environment = {**os.environ, "SENTIMENT_MODEL_DIR": str(Path(bundle).absolute()), **(env or {})}
    started = time.perf_counter()
    level = "info" if output else "warning"
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--log-level", level, *flags],
        env=environment,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        cwd=source,  # ``-m`` imports from the working folder first
    )
    base = f"http://127.0.0.1:{port}"
    probe = socket.create_connection
    while time.perf_counter() - started < 60:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before it was ready")
        try:
            with probe(("127.0.0.1", port), timeout=0.2) as connection:
                connection.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if connection.recv(32).startswith(b"HTTP/1.1 200"):
                    return process, base, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    process.kill()
    raise SystemExit("the server did not become ready within 60 s")


@contextlib.contextmanager
def serving(
    bundle: Path,
    env: dict[str, str] | None = None,
    flags: Sequence[str] = (),
    output: IO | None = None,
    module: str = "app",
    source: Path | None = None,
) -> Iterator[tuple[subprocess.Popen, str, float]]:
    """:func:`start_server` for the ``with`` block; the server is stopped when it ends."""
    process, base, ready_s = start_server(bundle, env, flags, output, module, source)
    try:
        yield process, base, ready_s
    finally:
        process.terminate()
        process.wait()


def metrics_text(base: str) -> str:
    """The server's ``/metrics`` page (Prometheus text)."""
    return urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()


async def send_each(
    session: aiohttp.ClientSession, base: str, texts: Sequence[str], spans: list[tuple[float, float]]
) -> None:
    """POST each text to ``/v1/predict`` in turn, appending each request's (sent, answered)
    ``perf_counter`` times to ``spans``."""
    for text in texts:
        started = time.perf_counter()
        async with session.post(f"{base}/v1/predict", json={"text": text}) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"/v1/predict answered {response.status}")
        spans.append((started, time.perf_counter()))


def seconds_of(spans: list[tuple[float, float]]) -> list[float]:
    """Each (start, end) span's seconds."""
    return [end - start for start, end in spans]


async def load(base: str, texts: list[str], clients: int) -> tuple[float, list[float]]:
    """Requests per second and latencies with ``clients`` concurrent clients sharing ``texts``."""
    spans: list[tuple[float, float]] = []
    shares = [texts[i::clients] for i in range(clients)]
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        await asyncio.gather(*(send_each(session, base, share[:2], []) for share in shares))  # connect, warm
        started = time.perf_counter()
        await asyncio.gather(*(send_each(session, base, share, spans) for share in shares))
        return len(texts) / (time.perf_counter() - started), seconds_of(spans)


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` in MB."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss / 2**20)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


class InProcess:
    """``ModelRuntime.predict`` (tokenise + onnxruntime) in this process, one text per call: the
    work a request needs without HTTP."""

    def __init__(self, bundle: Path, threads: int) -> None:
        self.runtime = ModelRuntime(Settings(model_dir=bundle, threads=threads))
        self.runtime.load()

    def milliseconds(self, texts: Sequence[str], warmup: int = 5) -> list[float]:
        """Milliseconds of each text's call, after ``warmup`` untimed calls (caches, thread pool)."""
        for text in texts[:warmup]:
            self.runtime.predict([text])
        times = []
        for text in texts:
            started = time.perf_counter()
            self.runtime.predict([text])
            times.append(1000 * (time.perf_counter() - started))
        return times


def in_process_ms(bundle: Path, texts: Sequence[str], threads: int) -> list[float]:
    """Milliseconds per text of ``ModelRuntime.predict`` (tokenise + onnxruntime), no HTTP."""
    return InProcess(bundle, threads).milliseconds(texts, warmup=20)


def one_client_beside(
    base: str, texts: list[str], reference: InProcess
) -> tuple[float, list[float], list[float]]:
    """One client's requests/s and latencies, and the in-process times of the same texts, taken
    in alternating blocks."""
    latencies: list[float] = []
    inproc: list[float] = []
    seconds = 0.0
    for block in (texts[i::BLOCKS] for i in range(min(BLOCKS, len(texts)))):
        inproc += reference.milliseconds(block)
        rps, block_latencies = asyncio.run(load(base, block, 1))
        latencies += block_latencies
        seconds += len(block) / rps
    return len(texts) / seconds, latencies, inproc


def measure_server(
    bundle: Path,
    texts: list[str],
    env: dict[str, str],
    clients: Sequence[int],
    reference: InProcess | None = None,
) -> dict:
    """Start-up, memory, latency and throughput of one server configuration; with ``reference``,
    the one-client run alternates with it (``in_process_ms`` in the result)."""
    with serving(bundle, env) as (process, base, ready_s):
        rest_mb = psutil.Process(process.pid).memory_info().rss / 2**20
        asyncio.run(load(base, texts[:32], 4))  # warm-up
        result: dict = {}
        with PeakRss(process.pid) as rss:
            rows = []
            for count in clients:
                if count == 1 and reference is not None:
                    rps, latencies, result["in_process_ms"] = one_client_beside(base, texts, reference)
                else:
                    rps, latencies = asyncio.run(load(base, texts, count))
                p50, p99 = (1000 * float(np.percentile(latencies, q)) for q in (50, 99))
                rows.append({"clients": count, "requests_per_s": rps, "p50_ms": p50, "p99_ms": p99})
        return {"ready_s": ready_s, "rss_rest_mb": rest_mb, "rss_peak_mb": rss.peak, "load": rows, **result}


def benchmark(bundle: Path, texts: list[str], clients: Sequence[int] = CLIENTS, threads: int = 2) -> dict:
    """All service figures, batching on and off, plus the in-process reference and the ratios."""
    if not clients or clients[0] != 1:
        raise ValueError("the first client count must be 1: the in-process reference runs beside it")
    reference = InProcess(bundle, threads)
    results: dict = {"requests": len(texts), "median_chars": statistics.median(map(len, texts))}
    for name, batching in (("batching_on", "true"), ("batching_off", "false")):
        env = {"SENTIMENT_BATCHING": batching, "SENTIMENT_THREADS": str(threads)}
        results[name] = measure_server(bundle, texts, env, clients, reference if batching == "true" else None)
    inproc = results["batching_on"].pop("in_process_ms")
    results["in_process_p50_ms"] = float(np.percentile(inproc, 50))
    results["in_process_p99_ms"] = float(np.percentile(inproc, 99))
    on = results["batching_on"]["load"]
    single = on[0]
    results["http_over_in_process_p50"] = single["p50_ms"] / results["in_process_p50_ms"]
    results["throughput_gain"] = {
        str(r["clients"]): r["requests_per_s"] / single["requests_per_s"] for r in on
    }
    return results


def print_service(results: dict) -> None:
    """Human-readable lines."""
    print(
        f"service: {results['requests']} real test reviews per run (median "
        f"{results['median_chars']:.0f} chars); "
        f"in-process p50 {results['in_process_p50_ms']:.2f} ms"
    )
    for name in ("batching_on", "batching_off"):
        r = results[name]
        rows = ", ".join(
            f"{x['clients']}: {x['requests_per_s']:.0f} req/s (p99 {x['p99_ms']:.0f} ms)" for x in r["load"]
        )
        print(
            f"  {name.replace('_', ' ')}: ready in {r['ready_s']:.2f} s, RSS {r['rss_rest_mb']:.0f} "
            "MB at rest, "
            f"{r['rss_peak_mb']:.0f} MB peak; 1 client p50 {r['load'][0]['p50_ms']:.2f} ms | {rows}"
        )
    gains = ", ".join(f"{k} clients {v:.2f}x" for k, v in results["throughput_gain"].items())
    print(
        f"  HTTP p50 / in-process p50 = {results['http_over_in_process_p50']:.2f}; batching on, "
        f"throughput vs 1 client: {gains}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("Latency, throughput, memory and start-up of the HTTP service.")
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    args = parser.parse_args(argv)
    texts = cli.review_texts(args.data, args.requests)
    results = benchmark(args.bundle, texts)
    cli.publish(results, print_service, args.json)


if __name__ == "__main__":
    main()
