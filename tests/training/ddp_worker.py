"""Run ``training.loop.fit`` on synthetic data, alone or under torchrun; rank 0 saves the weights.

    python tests/training/ddp_worker.py OUTPUT BATCH_SIZE [--resume]
    python -m torch.distributed.run --nproc_per_node 2 tests/training/ddp_worker.py OUTPUT BATCH_SIZE

Used by test_distributed.py: two processes with batch size B must train the same weights as one
process with 2B (dropout off, so the only randomness is the seeded batch order).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model.network import SentimentClassifier
from tests.training.synthetic import VOCABULARY
from training.config import load_run_config
from training.data import Splits
from training.distributed import close_world, init_world
from training.loop import fit


def synthetic(count: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Reviews of 3-40 tokens whose label is whether token 5 outnumbers token 6."""
    rng = random.Random(seed)
    sequences = [[rng.randrange(2, 30) for _ in range(rng.randrange(3, 41))] for _ in range(count)]
    return sequences, [int(s.count(5) > s.count(6)) for s in sequences]


def main() -> None:
    output, batch_size = Path(sys.argv[1]), int(sys.argv[2])
    output.mkdir(parents=True, exist_ok=True)
    overrides = {
        "model.embed_dim": 8, "model.hidden_size": 6, "model.embed_dropout": 0.0, "model.dropout": 0.0,
        "train.batch_size": batch_size, "train.epochs": 2, "train.patience": 5, "train.threads": 1,
        "train.learning_rate": 0.01, "train.seed": 7,
    }  # fmt: skip
    config = load_run_config(None, overrides)
    world = init_world()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SentimentClassifier(config.model_config(30))
    splits = Splits(synthetic(101, 1), synthetic(40, 2), synthetic(4, 3), [], [], [], VOCABULARY)
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    history, _ = fit(model, splits, config, output, "--resume" in sys.argv, world)
    if world.is_main:
        torch.save(
            {"state": model.state_dict(), "initial": initial, "history": history}, output / "result.pt"
        )
    close_world(world)


if __name__ == "__main__":
    main()
