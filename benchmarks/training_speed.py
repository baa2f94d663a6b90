"""``python -m benchmarks training``: how fast the training pipeline learns, in tokens per second.

* ``steps``: training steps of a configuration (default ``configs/default.toml``) in this
  process over ``--batches`` length-bucketed batches of the IMDB training reviews (its
  vocabulary built from all of them, as training does): forward,
  backward and the AdamW step, with ``--threads`` torch threads;
* ``distributed``: one epoch of ``python -m training.train`` on ``--limit-reviews`` reviews per
  label (random embeddings, so word2vec does not count), run twice: one process with 2 torch
  threads and batch 64, then ``torchrun --nproc_per_node 2`` with 1 thread each and batch 32
  per process (the same 64 per step); the ``tokens_per_second`` each run logged, all processes
  together.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from model.network import SentimentClassifier
from model.tokenizer import Tokenizer, Vocabulary, tokenize
from tests.serving import free_port
from training.config import load_run_config
from training.data import Review, bucketed_batches, load_imdb, resolve_path
from training.loop import make_optimizer, to_tensors


def training_throughput(config_path: Path, reviews: list[Review], batches: int) -> dict:
    """Tokens per second of ``batches`` training steps of the configured model (the first step,
    which pays for allocations and thread start-up, untimed)."""
    config = load_run_config(config_path, {})
    token_lists = [tokenize(r.text) for r in reviews]
    vocabulary = Vocabulary.build(token_lists, config.train.vocab_size, config.train.min_count)
    tokenizer = Tokenizer(vocabulary)
    sequences = [tokenizer.encode_tokens(t, config.train.max_tokens).ids for t in token_lists]
    network = SentimentClassifier(config.model_config(len(vocabulary))).train()
    optimizer, scheduler = make_optimizer(network, config, total_steps=batches + 1)
    labels = [r.label for r in reviews]
    # epoch after epoch, so that a small set of reviews still gives ``batches`` steps
    stream = itertools.chain.from_iterable(
        bucketed_batches(sequences, labels, config.train.batch_size, shuffle_seed=epoch)
        for epoch in itertools.count()
    )
    tokens, steps, started = 0, 0, time.perf_counter()
    for step, batch in enumerate(itertools.islice(stream, batches + 1)):
        if step == 1:
            tokens, steps, started = 0, 0, time.perf_counter()
        token_ids, lengths, labels = to_tensors(batch)
        loss = torch.nn.functional.cross_entropy(network(token_ids, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        tokens += int(lengths.sum())
        steps += 1
    seconds = time.perf_counter() - started
    return {"tokens_per_second": tokens / seconds, "batches": steps, "seconds": seconds}


def _train(prefix: list[str], data: str, output: Path, batch_size: int, threads: int, limit: int) -> dict:
    command = [*prefix, "-m", "training.train", "--config", "configs/default.toml", "--data", data]
    command += ["--embeddings", "random", "--limit-reviews", str(limit), "--epochs", "1"]
    command += ["--batch-size", str(batch_size), "--threads", str(threads), "--output", str(output)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])


def distributed(data: str, limit: int) -> dict:
    """tokens/s of one process (2 threads) and of two DDP processes (1 thread each)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    torchrun += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    with tempfile.TemporaryDirectory() as folder:
        one = _train([sys.executable], data, Path(folder) / "one", 64, 2, limit)
        two = _train(torchrun, data, Path(folder) / "two", 32, 1, limit)
    return {
        "limit_reviews": limit,
        "one_process_tokens_per_s": one["tokens_per_second"],
        "two_processes_tokens_per_s": two["tokens_per_second"],
        "ratio": two["tokens_per_second"] / one["tokens_per_second"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--config", type=Path, default=Path("configs/default.toml"), help="training config")
    parser.add_argument("--batches", type=int, default=30, help="training steps timed in this process")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the timed steps")
    parser.add_argument(
        "--limit-reviews", type=int, default=1500, help="reviews per label of the distributed runs' epoch"
    )
    parser.add_argument("--skip-distributed", action="store_true", help="leave out the torchrun comparison")


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/training.json``."""
    torch.set_num_threads(args.threads)
    data = str(resolve_path(args.data))
    train = load_imdb(data, expect_full=False).train
    figures = {"steps": {**training_throughput(args.config, train, args.batches), "threads": args.threads}}
    if not args.skip_distributed:
        figures["distributed"] = distributed(data, args.limit_reviews)
    return figures
