"""onnxruntime vs PyTorch eager on the same weights: time per review at batch 1 and 64, 1 and 2 threads.

    python -m bench.engines --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

The PyTorch model is rebuilt from the bundle's ONNX weights (``training.export.model_from_onnx``)
and checked to give the same probabilities (max |dp| <= 1e-5) before anything is timed. Both
engines see the same real test reviews: one per call (median), and length-sorted batches of 64
(mean per review). PyTorch runs in ``inference_mode``, as a server would.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench import cli
from model.bundle import ONNX_FILE, onnx_session
from model.inputs import pad_batch
from training.export import model_from_onnx


def _onnx_runner(session):
    def run(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {"token_ids": ids, "lengths": lengths})[0]

    return run


def _torch_runner(model: torch.nn.Module):
    def run(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = model(torch.from_numpy(ids), torch.from_numpy(lengths))
            return torch.softmax(logits, dim=1).numpy()

    return run


def _time(run, sequences: Sequence[Sequence[int]], batch_size: int) -> float:
    """Milliseconds per review: median of single calls, or mean over length-sorted batches."""
    if batch_size == 1:
        times = []
        for sequence in sequences:
            ids, lengths = pad_batch([sequence])
            started = time.perf_counter()
            run(ids, lengths)
            times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times)
    ordered = sorted(sequences, key=len)
    batches = [pad_batch(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size)]
    started = time.perf_counter()
    for ids, lengths in batches:
        run(ids, lengths)
    return 1000 * (time.perf_counter() - started) / len(sequences)


def compare_engines(bundle: Path, texts: Sequence[str], single: int = 200, batched: int = 512) -> dict:
    """Per-review milliseconds of both engines, batch 1 and 64, 1 and 2 threads, and their ratios."""
    sequences = [s for s in cli.token_ids(bundle, texts) if s]
    model = model_from_onnx(bundle / ONNX_FILE).eval()
    check_ids, check_lengths = pad_batch(sequences[:64])
    reference = _onnx_runner(onnx_session(bundle / ONNX_FILE, 2))(check_ids, check_lengths)
    difference = float(np.abs(_torch_runner(model)(check_ids, check_lengths) - reference).max())
    if difference > 1e-5:
        raise SystemExit(f"PyTorch and onnxruntime disagree (max |dp| {difference:.2e}): not the same model")
    results: dict = {
        "parity_max_abs_dp": difference,
        "median_tokens": statistics.median(map(len, sequences[:single])),
        "rows": [],
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        engines = {
            "onnxruntime": _onnx_runner(onnx_session(bundle / ONNX_FILE, threads)),
            "pytorch": _torch_runner(model),
        }
        for batch_size, chosen in ((1, sequences[:single]), (64, sequences[:batched])):
            row = {"threads": threads, "batch": batch_size}
            for name, run in engines.items():
                _time(run, chosen[:16], batch_size)  # warm-up: allocations, thread pools
                row[f"{name}_ms"] = _time(run, chosen, batch_size)
            row["ratio"] = row["onnxruntime_ms"] / row["pytorch_ms"]
            results["rows"].append(row)
    return results


def print_engines(results: dict) -> None:
    """Human-readable lines."""
    print(
        f"engines (same weights, max |dp| {results['parity_max_abs_dp']:.1e}; "
        f"median {results['median_tokens']:.0f} tokens):"
    )
    for row in results["rows"]:
        print(
            f"  {row['threads']} thread(s), batch {row['batch']:>2}: onnxruntime "
            f"{row['onnxruntime_ms']:.2f} ms/review, "
            f"pytorch {row['pytorch_ms']:.2f} ms/review -> {row['ratio']:.2f}x"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    from training.data import load_imdb

    parser = cli.parser("onnxruntime vs PyTorch eager per review.")
    parser.add_argument("--reviews", type=int, default=200, help="reviews timed one per call")
    args = parser.parse_args(argv)
    reviews = random.Random(0).sample(load_imdb(args.data).test, max(args.reviews, 512))
    results = compare_engines(args.bundle, [r.text for r in reviews], args.reviews)
    cli.publish(results, print_engines, args.json)


if __name__ == "__main__":
    main()
