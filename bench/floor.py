"""The floor under the service's HTTP overhead on this machine, measured beside the service.

    python -m bench.floor --data ../shared/data/aclImdb_v1.tar.gz [--rounds 2] [--json docs/floor.json]

#7 asks for an HTTP p50 at most 1.5 × the in-process call, and for 32 clients to get 3 × the
requests/s of one. This asks how far any Python service could go on the same stack (uvicorn
with uvloop and httptools, the aiohttp client on the same two cores), by serving the same real
reviews through servers with less and less in them, each started fresh, in this order every
round:

* ``service``: ``python -m app`` with its defaults (FastAPI, middleware, validation, metrics,
  the batcher and its worker thread);
* ``bare, thread hop``: :mod:`bench.bare`, a raw ASGI app that runs ``ModelRuntime.predict`` in
  a worker thread (no FastAPI, no validation, no metrics, no batcher);
* ``bare, inline``: the same on the event loop itself (no thread hop either);
* ``bare, echo``: a fixed answer without the model: the HTTP path alone.

Each server's one-client run alternates in blocks with the in-process ``ModelRuntime.predict``
on the same texts, as in :mod:`bench.service`, so every ratio comes from side-by-side figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import cli
from bench.service import InProcess, load, one_client_beside, serving

VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "service": ("app", ()),
    "bare, thread hop": ("bench.bare", ("--mode", "thread")),
    "bare, inline": ("bench.bare", ("--mode", "inline")),
    "bare, echo": ("bench.bare", ("--mode", "echo")),
}


def measure(
    bundle: Path,
    texts: list[str],
    module: str,
    flags: Sequence[str],
    reference: InProcess,
    threads: int,
    source: Path | None = None,
) -> dict:
    """One server's one-client p50 beside the in-process p50, and its 32-client requests/s;
    ``source``: the checkout whose code serves (default: this one)."""
    env = {"SENTIMENT_THREADS": str(threads)}
    with serving(bundle, env, flags, module=module, source=source) as (_, base, _):
        asyncio.run(load(base, texts[:32], 4))  # warm-up: connections, caches, thread pools
        single_rps, latencies, inproc = one_client_beside(base, texts, reference)
        rps_32, _ = asyncio.run(load(base, texts, 32))
    p50 = 1000 * float(np.percentile(latencies, 50))
    inproc_p50 = float(np.percentile(inproc, 50))
    return {
        "p50_ms": p50,
        "in_process_p50_ms": inproc_p50,
        "ratio": p50 / inproc_p50,
        "single_rps": single_rps,
        "rps_32": rps_32,
        "gain_32": rps_32 / single_rps,
    }


def floor(bundle: Path, texts: list[str], rounds: int = 2, threads: int = 2) -> dict:
    """Every variant in every round; per round, the echo server's p50 over the in-process p50
    (``http_alone_over_in_process``): the HTTP path's own share, which no app can remove."""
    reference = InProcess(bundle, threads)
    results: dict = {"requests": len(texts), "threads": threads, "rounds": []}
    for _ in range(rounds):
        row = {
            name: measure(bundle, texts, module, flags, reference, threads)
            for name, (module, flags) in VARIANTS.items()
        }
        echo = row["bare, echo"]
        row["http_alone_over_in_process"] = echo["p50_ms"] / echo["in_process_p50_ms"]
        results["rounds"].append(row)
    return results


def print_floor(results: dict) -> None:
    """One line per server per round."""
    print(f"floor: {results['requests']} real test reviews, {results['threads']} onnxruntime threads")
    for number, row in enumerate(results["rounds"], 1):
        for name in VARIANTS:
            r = row[name]
            print(
                f"  round {number}, {name}: p50 {r['p50_ms']:.2f} ms, "
                f"in process {r['in_process_p50_ms']:.2f} ms, "
                f"ratio {r['ratio']:.2f}; 1 client {r['single_rps']:.0f} req/s, 32 clients "
                f"{r['rps_32']:.0f} req/s, gain {r['gain_32']:.2f}"
            )
        alone = row["http_alone_over_in_process"]
        print(f"  round {number}: the HTTP path alone (echo p50 / in-process p50) {alone:.2f}")


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("How low the HTTP overhead can go on this machine: the service beside bare servers.")
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="times each server is measured, in turn")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads, both sides")
    args = parser.parse_args(argv)
    texts = cli.review_texts(args.data, args.requests)
    cli.publish(floor(args.bundle, texts, args.rounds, args.threads), print_floor, args.json)


if __name__ == "__main__":
    main()
