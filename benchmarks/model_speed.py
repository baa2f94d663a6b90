"""``python -m benchmarks model``: the served model in this process, without HTTP.

Three parts, on real IMDB test reviews and the bundle's own tokenizer:

* ``roofline`` (:mod:`benchmarks.roofline`): how close onnxruntime runs to what this machine's
  arithmetic allows, for a review of the median length;
* ``engines``: onnxruntime against PyTorch eager on the same weights (rebuilt from the ONNX
  graph by ``training.export.model_from_onnx`` and checked to give the same probabilities), with
  1 and 2 threads, at batch sizes 1, 8, 32 and 64 over the same length-sorted reviews: wall and
  CPU milliseconds per review, and for batch 1 the median call (a median review alone);
* ``precision`` (:mod:`benchmarks.precision`): int8 and fp16 variants of the graph, timed and
  scored next to float32.

Every time is a ratio's side measured in this one run, because absolute times drift on shared
machines.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from benchmarks import engine, precision, reviews
from benchmarks.roofline import roofline
from model.bundle import ONNX_FILE, load_card
from model.inputs import pad_batch
from training.export import model_from_onnx

BATCH_SIZES = (1, 8, 32, 64)
Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def onnx_runner(session) -> Runner:
    """``run(ids, lengths)`` of an onnxruntime session: its class probabilities."""

    def run(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {"token_ids": ids, "lengths": lengths})[0]

    return run


def _torch_runner(network: torch.nn.Module) -> Runner:
    def run(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.inference_mode():  # as a server would run it
            return torch.softmax(network(torch.from_numpy(ids), torch.from_numpy(lengths)), dim=1).numpy()

    return run


def per_review(run: Runner, sequences: Sequence[Sequence[int]], batch_size: int, repeats: int = 3) -> dict:
    """Wall and CPU milliseconds per review over ``sequences`` in order, ``batch_size`` per call
    (the repeat with the least wall time kept); for batch 1 also the median call's wall time."""
    batches = [pad_batch(sequences[i : i + batch_size]) for i in range(0, len(sequences), batch_size)]
    run(*batches[0])  # warm-up: allocations, thread pools
    best: tuple[float, float, list[float]] | None = None
    for _ in range(repeats):
        calls = []
        wall, cpu = time.perf_counter(), time.process_time()
        for ids, lengths in batches:
            started = time.perf_counter()
            run(ids, lengths)
            calls.append(time.perf_counter() - started)
        spent = (time.perf_counter() - wall, time.process_time() - cpu, calls)
        if best is None or spent[0] < best[0]:
            best = spent
    figures = {"wall_ms": 1000 * best[0] / len(sequences), "cpu_ms": 1000 * best[1] / len(sequences)}
    if batch_size == 1:
        figures["median_call_ms"] = 1000 * statistics.median(best[2])
    return figures


def engines(bundle: Path, sequences: Sequence[Sequence[int]], sizes: Sequence[int] = BATCH_SIZES) -> dict:
    """onnxruntime and PyTorch eager per review, by thread count and batch size, on the same
    length-sorted ``sequences``; ``ratio`` is onnxruntime's wall time over PyTorch's."""
    ordered = sorted(sequences, key=len)
    network = model_from_onnx(bundle / ONNX_FILE).eval()
    check = ordered[:: max(1, len(ordered) // 64)][:64]
    reference = engine.probabilities(engine.session(bundle / ONNX_FILE, 2), check)
    difference = float(np.abs(_torch_runner(network)(*pad_batch(check)) - reference).max())
    if difference > 1e-5:
        raise SystemExit(f"PyTorch and onnxruntime disagree (max |dp| {difference:.2e}): not the same model")
    results: dict = {
        "reviews": len(ordered),
        "median_tokens": statistics.median(map(len, ordered)),
        "parity_max_abs_dp": difference,
        "rows": [],
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runners = {
            "onnxruntime": onnx_runner(engine.session(bundle / ONNX_FILE, threads)),
            "pytorch": _torch_runner(network),
        }
        for size in sizes:
            row: dict = {"threads": threads, "batch": size}
            for name, run in runners.items():
                row |= {f"{name}_{key}": value for key, value in per_review(run, ordered, size).items()}
            row["ratio"] = row["onnxruntime_wall_ms"] / row["pytorch_wall_ms"]
            results["rows"].append(row)
    return results


def variants(bundle: Path, dataset, timed: Sequence[Sequence[int]], accuracy_reviews: int) -> dict:
    """:func:`benchmarks.precision.compare` on the bundle's validation split (as its card's
    training config drew it) and the test set, ``accuracy_reviews`` of each (0: all)."""
    from training.data import stratified_split

    split = load_card(bundle).get("train_config", {})
    _, validation = stratified_split(
        dataset.train, split.get("validation_fraction", 0.1), split.get("seed", 1234)
    )
    chosen = {"validation": validation, "test": dataset.test}
    splits = {}
    for name, part in chosen.items():
        if accuracy_reviews:
            part = random.Random(0).sample(part, min(accuracy_reviews, len(part)))
        splits[name] = (reviews.token_ids(bundle, [r.text for r in part]), np.array([r.label for r in part]))
    return precision.compare(bundle, splits, timed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--reviews", type=int, default=256, help="test reviews timed by both engines")
    parser.add_argument("--tokens", type=int, default=230, help="review length of the roofline (median IMDB)")
    parser.add_argument("--roofline-reviews", type=int, default=100, help="reviews timed for the roofline")
    parser.add_argument(
        "--accuracy-reviews", type=int, default=0, help="reviews per split scoring the variants (0: all)"
    )
    parser.add_argument("--skip-precision", action="store_true", help="leave out the int8 and fp16 variants")


def run(args: argparse.Namespace) -> dict:
    """All parts, as figures for ``results/model.json``."""
    from training.data import load_imdb

    dataset = load_imdb(args.data, expect_full=False)
    texts = reviews.sample(dataset.test, max(args.reviews, 4 * args.roofline_reviews))
    sequences = reviews.token_ids(args.bundle, texts[: args.reviews])
    figures = {
        "roofline": roofline(args.bundle, texts, args.tokens, args.roofline_reviews),
        "engines": engines(args.bundle, sequences),
    }
    if not args.skip_precision:
        figures["precision"] = variants(args.bundle, dataset, sequences, args.accuracy_reviews)
    return figures
