"""What batching saves onnxruntime per review: wall and CPU time by batch size, on the same reviews.

    python -m bench.batching --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

``bench.engines`` compares a median review alone with the mean over all reviews in batches of
64, two different sets of lengths. This runs one set of real test reviews, sorted by length (the
batcher groups by length too), through the served graph at each batch size, and reports per
review the wall time and the CPU time of this process. Throughput at many clients is bounded by
the CPU a request costs (``bench.levers``), so the CPU column says how far batching can lift it.
With 2 threads the CPU includes onnxruntime's threads spinning between steps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import onnxruntime

from bench import cli
from model.bundle import ONNX_FILE, onnx_session
from model.inputs import pad_batch

BATCH_SIZES = (1, 8, 32, 64)


def per_review(
    session: onnxruntime.InferenceSession,
    sequences: Sequence[Sequence[int]],
    batch_size: int,
    repeats: int = 3,
) -> dict:
    """Wall and CPU milliseconds per review over ``sequences`` in order, ``batch_size`` per call;
    the repeat with the least wall time is kept."""
    feeds = []
    for start in range(0, len(sequences), batch_size):
        ids, lengths = pad_batch(sequences[start : start + batch_size])
        feeds.append({"token_ids": ids, "lengths": lengths})
    session.run(["probabilities"], feeds[0])  # warm-up
    best = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for feed in feeds:
            session.run(["probabilities"], feed)
        spent = (time.perf_counter() - wall, time.process_time() - cpu)
        if best is None or spent[0] < best[0]:
            best = spent
    return {"wall_ms": 1000 * best[0] / len(sequences), "cpu_ms": 1000 * best[1] / len(sequences)}


def batching(bundle: Path, texts: Sequence[str], sizes: Sequence[int] = BATCH_SIZES) -> dict:
    """Per thread count (1, 2) and batch size: wall and CPU ms per review, and the CPU saved
    against one review per call."""
    if not sizes or sizes[0] != 1:
        raise ValueError(f"the first batch size must be 1 (the others are compared with it), got {sizes}")
    sequences = sorted(cli.token_ids(bundle, texts), key=len)
    lengths = [len(s) for s in sequences]
    results: dict = {"reviews": len(sequences), "mean_tokens": sum(lengths) / len(lengths), "rows": []}
    for threads in (1, 2):
        session = onnx_session(bundle / ONNX_FILE, threads)
        rows = [{"threads": threads, "batch": size, **per_review(session, sequences, size)} for size in sizes]
        for row in rows:
            row["cpu_vs_batch_1"] = row["cpu_ms"] / rows[0]["cpu_ms"]
        results["rows"] += rows
    return results


def print_batching(results: dict) -> None:
    """Human-readable lines."""
    print(f"batching: {results['reviews']} real test reviews, mean {results['mean_tokens']:.0f} tokens")
    for r in results["rows"]:
        print(
            f"  {r['threads']} thread(s), batch {r['batch']:2d}: wall {r['wall_ms']:.2f} ms/review, "
            f"CPU {r['cpu_ms']:.2f} ms/review ({r['cpu_vs_batch_1']:.2f}x batch 1's)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("onnxruntime's wall and CPU time per review by batch size, on the same reviews.")
    parser.add_argument("--reviews", type=int, default=512, help="real test reviews to run")
    args = parser.parse_args(argv)
    texts = cli.review_texts(args.data, args.reviews)
    cli.publish(batching(args.bundle, texts), print_batching, args.json)


if __name__ == "__main__":
    main()
