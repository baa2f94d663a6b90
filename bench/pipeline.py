"""Training throughput and ONNX inference time per review, on real IMDB reviews.

    python -m bench.pipeline --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

Prints (1) training tokens/s of a configuration (default: configs/default.toml) over a number
of length-bucketed batches, forward + backward + AdamW step, and (2) onnxruntime time per
review of a bundle, one review at a time and in length-bucketed batches of 64.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench import cli
from model.bundle import ONNX_FILE
from model.network import SentimentClassifier
from model.tokenizer import Tokenizer, Vocabulary, tokenize
from training.config import load_run_config
from training.data import bucketed_batches, load_imdb, stratified_split
from training.evaluate import onnx_session, predict_positive
from training.train import make_optimizer, to_tensors


def training_throughput(config_path: Path, reviews, batches: int) -> dict:
    """Tokens per second of training steps of the configured model."""
    config = load_run_config(config_path, {})
    token_lists = [tokenize(r.text) for r in reviews]
    vocabulary = Vocabulary.build(token_lists, config.train.vocab_size, config.train.min_count)
    tokenizer = Tokenizer(vocabulary)
    sequences = [tokenizer.encode_tokens(t, config.train.max_tokens).ids for t in token_lists]
    model = SentimentClassifier(config.model_config(len(vocabulary))).train()
    optimizer, scheduler = make_optimizer(model, config, total_steps=batches)
    stream = bucketed_batches(sequences, [r.label for r in reviews], config.train.batch_size, shuffle_seed=0)
    tokens, started = 0, None
    for step, batch in zip(range(batches + 1), stream, strict=False):
        if step == 1:  # the first step pays for allocations and thread start-up
            tokens, started = 0, time.perf_counter()
        token_ids, lengths, labels = to_tensors(batch)
        loss = torch.nn.functional.cross_entropy(model(token_ids, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        tokens += int(lengths.sum())
    seconds = time.perf_counter() - started
    return {"tokens_per_second": tokens / seconds, "batches": batches, "seconds": seconds}


def inference_times(bundle: Path, reviews, count: int, threads: int) -> dict:
    """onnxruntime milliseconds per review: one at a time (median) and batched by 64."""
    session = onnx_session(bundle / ONNX_FILE, threads)
    sequences = cli.token_ids(bundle, [r.text for r in reviews[:count]])
    return time_sequences(session, sequences)


def time_sequences(session, sequences: Sequence[Sequence[int]]) -> dict:
    """onnxruntime milliseconds per token-id sequence: one at a time (median) and batched by 64."""
    predict_positive(session, sequences[:8])  # warm-up
    single = []
    for sequence in sequences:
        started = time.perf_counter()
        predict_positive(session, [sequence], batch_size=1)
        single.append(time.perf_counter() - started)
    started = time.perf_counter()
    predict_positive(session, sequences, batch_size=64)
    batched = time.perf_counter() - started
    return {
        "reviews": len(sequences),
        "median_tokens": statistics.median(map(len, sequences)),
        "single_ms_median": 1000 * statistics.median(single),
        "single_ms_mean": 1000 * statistics.mean(single),
        "single_ms_p99": 1000 * float(np.percentile(single, 99)),
        "batched_ms_per_review": 1000 * batched / len(sequences),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: run both measurements and print them."""
    parser = cli.parser("Training tokens/s and ONNX inference time per review.")
    parser.add_argument("--config", type=Path, default=Path("configs/default.toml"), help="training config")
    parser.add_argument("--batches", type=int, default=30, help="training batches to time")
    parser.add_argument("--reviews", type=int, default=500, help="validation reviews to time inference on")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = load_imdb(args.data)
    train, validation = stratified_split(dataset.train, 0.1, seed=1234)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, {args.threads} threads")
    figures = training_throughput(args.config, train, args.batches)
    print(
        f"training: {figures['tokens_per_second']:,.0f} tokens/s over {figures['batches']} batches "
        f"({figures['seconds']:.1f} s)"
    )
    timing = inference_times(args.bundle, validation, args.reviews, args.threads)
    print(
        f"onnx inference over {timing['reviews']} reviews (median {timing['median_tokens']:.0f} tokens): "
        f"alone {timing['single_ms_median']:.2f} ms/review median, {timing['single_ms_mean']:.2f} mean "
        f"(p99 {timing['single_ms_p99']:.2f} ms); "
        f"{timing['batched_ms_per_review']:.3f} ms/review in batches of 64"
    )
    if args.json:
        args.json.write_text(json.dumps({"training": figures, "inference": timing}, indent=2))


if __name__ == "__main__":
    main()
