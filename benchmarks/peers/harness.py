"""``python -m benchmarks peers``: the service beside BentoML, LitServe, Ray Serve, TorchServe and
a tutorial's FastAPI app, all serving the same bundle on this machine, and the in-process
batched ceiling, in one run.

Every server is started from its own pinned environment (:mod:`benchmarks.peers.servers`),
pinned to the server cores, and loaded by ``wrk`` (:mod:`benchmarks.peers.load`) on the load
cores with the same real IMDB test reviews, each answer's label checked against the in-process
model's. The servers alternate: each round starts every server in turn (a rotated order each
round), times its cold start to the first correct answer, warms it, loads it at each client
count, reads its memory and stops it. Each round also measures the ceiling: onnxruntime alone
on the same reviews' token ids, sorted by length, in batches of 64, with 2 threads (and 1),
tokenising excluded (:func:`benchmarks.model_speed.per_review`). Every figure is the median of
the rounds with their range.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from benchmarks import engine, reviews
from benchmarks.peers import load, servers

CLIENTS = (1, 8, 32, 64)
CEILING_BATCH = 64


@contextlib.contextmanager
def pinned(cores: str | None) -> Iterator[None]:
    """This process (and threads it starts meanwhile) on ``cores`` ("0,1", "2-3") for the block."""
    if not cores:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, _cpus(cores))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _cpus(cores: str) -> set[int]:
    chosen: set[int] = set()
    for part in cores.split(","):
        low, _, high = part.partition("-")
        chosen |= set(range(int(low), int(high or low) + 1))
    return chosen


def ceiling(bundle: Path, sequences: Sequence[Sequence[int]], threads: int, cores: str | None) -> float:
    """Reviews/s of onnxruntime alone: ``sequences`` sorted by length, 64 a call, ``threads``
    intra-op threads, on ``cores`` (the best of three passes)."""
    from benchmarks.model_speed import onnx_runner, per_review  # imports torch: only for a ceiling

    with pinned(cores):
        session = engine.session(bundle / "model.onnx", threads)
        ordered = sorted(sequences, key=len)
        return 1000 / per_review(onnx_runner(session), ordered, CEILING_BATCH)["wall_ms"]


def measure(
    server: servers.Server,
    bundle: Path,
    first: tuple[str, str],
    texts_file: Path,
    clients: Sequence[int],
    args: argparse.Namespace,
) -> dict:
    """One server's round: cold start to the first correct answer to ``first`` (text, label),
    a warm-up, one wrk run per client count, then its memory."""
    running = servers.Running(server, bundle, args.server_cores)
    try:
        text, label = first
        cold_s = running.first_answer(server.template.replace("%s", json.dumps(text)), label)
        url = f"http://127.0.0.1:{running.port}"
        load.run(url, texts_file, server.path, server.template, 8, args.warmup, args.load_cores)
        rows = [
            load.run(url, texts_file, server.path, server.template, count, args.seconds, args.load_cores)
            for count in clients
        ]
        memory = running.memory_mb()
    finally:
        running.stop()
    print(
        f"  {server.name}: cold {cold_s:.1f} s, "
        + ", ".join(f"{r['clients']}: {r['requests_per_s']:.0f}/s p99 {r['p99_ms']:.0f} ms" for r in rows)
        + f", errors {sum(r['errors'] for r in rows)}",
        file=sys.stderr,
    )
    return {"cold_start_s": cold_s, "load": rows, **memory}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and range of one figure over the rounds."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rounds: list[dict], clients: Sequence[int]) -> dict:
    """A server's figures over the rounds: each with median and range."""
    by_clients = []
    for index, count in enumerate(clients):
        rows = [r["load"][index] for r in rounds]
        by_clients.append(
            {
                "clients": count,
                **{key: spread([r[key] for r in rows]) for key in ("requests_per_s", "p50_ms", "p99_ms")},
                "errors": sum(r["errors"] for r in rows),
                "checked": sum(r["checked"] for r in rows),
                # wrk's own CPU, in cores: what the load generator took from the machine
                "wrk_cores": spread([r["wrk_cpu_s"] / r["seconds"] for r in rows]),
            }
        )
    return {
        "saturation_requests_per_s": spread(
            [max(r["requests_per_s"] for r in rnd["load"]) for rnd in rounds]
        ),
        "cold_start_s": spread([r["cold_start_s"] for r in rounds]),
        "rss_mb": spread([r["rss_mb"] for r in rounds]),
        "pss_mb": spread([r["pss_mb"] for r in rounds]),
        "processes": max(r["processes"] for r in rounds),
        "errors": sum(row["errors"] for row in by_clients),
        "load": by_clients,
        "rounds": rounds,
    }


def paired_p50_ratio(ours: list[dict], theirs: list[dict], row: int) -> dict[str, float]:
    """p50 at load row ``row`` of one server over another's, round by round (as the ceiling
    ratio is): the machine's speed may drift between rounds, never within one server's pair."""
    return spread(
        [a["load"][row]["p50_ms"] / b["load"][row]["p50_ms"] for a, b in zip(ours, theirs, strict=True)]
    )


def benchmark(bundle: Path, texts: Sequence[str], args: argparse.Namespace) -> dict:
    """All servers' figures, the ceilings and the service's ratio to the 2-thread ceiling."""
    sequences = reviews.token_ids(bundle, texts)
    session = engine.session(bundle / "model.onnx", 1)
    labels = [
        ("negative", "positive")[int(np.argmax(engine.probabilities(session, [ids])[0]))] for ids in sequences
    ]
    texts_file = load.write_reviews(servers.PEERS / "reviews.tsv", texts, labels)
    chosen = [
        s
        for s in servers.catalogue(
            args.peer_threads, args.peer_max_batch, args.peer_wait_ms, args.peer_workers
        )
        if s.name in args.servers
    ]
    for server in chosen:
        server.install()
    rounds: dict[str, list[dict]] = {server.name: [] for server in chosen}
    ceilings: list[dict[str, float]] = []
    for index in range(args.rounds):
        ceilings.append({f"threads_{t}": ceiling(bundle, sequences, t, args.server_cores) for t in (2, 1)})
        print(
            f"round {index + 1}: ceiling {ceilings[-1]['threads_2']:.0f} reviews/s (2 threads)",
            file=sys.stderr,
        )
        order = chosen[index % len(chosen) :] + chosen[: index % len(chosen)]
        for server in order:
            rounds[server.name].append(
                measure(server, bundle, (texts[0], labels[0]), texts_file, args.clients, args)
            )
    figures: dict = {
        "reviews": len(texts),
        "median_chars": statistics.median(map(len, texts)),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "clients": list(args.clients),
        "server_cores": args.server_cores,
        "load_cores": args.load_cores,
        "ceiling": {key: spread([c[key] for c in ceilings]) for key in ceilings[0]},
        "servers": {},
    }
    for server in chosen:
        summary = summarise(rounds[server.name], args.clients)
        figures["servers"][server.name] = {
            "batching": server.batching,
            "size_mb": server.size_mb(),
            **summary,
        }
    if "service" in rounds and "service-before" in rounds and 1 in args.clients:
        figures["one_client_p50_over_before"] = paired_p50_ratio(
            rounds["service"], rounds["service-before"], list(args.clients).index(1)
        )
    if "service" in rounds:
        figures["service_over_ceiling"] = spread(
            [
                max(r["requests_per_s"] for r in rnd["load"]) / c["threads_2"]
                for rnd, c in zip(rounds["service"], ceilings, strict=True)
            ]
        )
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    every = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    names = [server.name for server in servers.catalogue(1, 32, 5)]
    parser.add_argument("--servers", nargs="+", default=names, choices=names, help="servers to measure")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each starts every server once")
    parser.add_argument("--seconds", type=int, default=6, help="seconds of load per client count")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up load (8 clients)")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="client counts")
    parser.add_argument("--reviews", type=int, default=500, help="IMDB test reviews in the mix")
    parser.add_argument("--server-cores", default=every, help="cores of every server and of the ceiling")
    parser.add_argument("--load-cores", default=every, help="cores of wrk")
    parser.add_argument("--peer-threads", type=int, default=1, help="onnxruntime threads of a peer's worker")
    parser.add_argument(
        "--peer-workers", type=int, default=2, help="model workers of a batching peer (the service runs 2)"
    )
    parser.add_argument("--peer-max-batch", type=int, default=32, help="a peer's largest batch")
    parser.add_argument("--peer-wait-ms", type=float, default=5, help="a peer's longest wait for a batch")


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/peers.json``."""
    return benchmark(args.bundle, reviews.review_texts(args.data, args.reviews), args)
