"""Training tokens/s with one process and with two under torchrun (DDP, gloo), on the same global batch.

    python -m bench.ddp --data ../shared/data/aclImdb_v1.tar.gz

Trains the default configuration for one epoch on a slice of the data (``--limit-reviews`` per
label, random embeddings so word2vec does not count) twice: one process with 2 torch threads and
batch 64, then ``torchrun --nproc_per_node 2`` with 1 thread each and batch 32 per process (the
same 64 per step). Prints the ``tokens_per_second`` each run logged (all processes together).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import cli
from bench.service import free_port


def _train(prefix: list[str], data: str, output: Path, batch_size: int, threads: int, limit: int) -> dict:
    command = [*prefix, "-m", "training.train", "--config", "configs/default.toml", "--data", data]
    command += ["--embeddings", "random", "--limit-reviews", str(limit), "--epochs", "1"]
    command += ["--batch-size", str(batch_size), "--threads", str(threads), "--output", str(output)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])


def measure(data: str, limit: int = 1500) -> dict:
    """tokens/s of one process (2 threads) and two DDP processes (1 thread each)."""
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


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("Training tokens/s, 1 process vs 2 under torchrun.")
    parser.add_argument("--limit-reviews", type=int, default=1500, help="training reviews per label")
    args = parser.parse_args(argv)
    figures = measure(args.data or os.environ.get("IMDB_DATA", ""), args.limit_reviews)
    cli.publish(figures, print_ddp, args.json)


def print_ddp(figures: dict) -> None:
    """Human-readable line."""
    print(
        f"training tokens/s: 1 process x 2 threads {figures['one_process_tokens_per_s']:,}; "
        f"torchrun 2 processes x 1 thread {figures['two_processes_tokens_per_s']:,} ({figures['ratio']:.2f}x)"
    )


if __name__ == "__main__":
    main()
