"""torchrun with DistributedDataParallel (gloo, 2 processes) equals one process with the same global batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.serving import free_port
from training.data import Batch
from training.distributed import World

WORKER = Path(__file__).with_name("ddp_worker.py")


def _single(output: Path, batch_size: int, *extra: str) -> dict:
    subprocess.run(
        [sys.executable, str(WORKER), str(output), str(batch_size), *extra], check=True, timeout=300
    )
    return torch.load(output / "result.pt", weights_only=True)


def _torchrun(output: Path, batch_size: int, *extra: str) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    subprocess.run([*command, str(WORKER), str(output), str(batch_size), *extra], check=True, timeout=300)
    return torch.load(output / "result.pt", weights_only=True)


def test_two_processes_train_what_one_does_with_the_same_global_batch(tmp_path) -> None:
    alone = _single(tmp_path / "alone", 8)
    pair = _torchrun(tmp_path / "pair", 4)
    for name, weight in alone["state"].items():
        torch.testing.assert_close(pair["state"][name], weight, rtol=1e-4, atol=1e-5, msg=name)
    for one, two in zip(alone["history"], pair["history"], strict=True):
        assert one["train_loss"] == pytest.approx(two["train_loss"], rel=1e-4)
        assert one["validation_accuracy"] == two["validation_accuracy"]
    # only rank 0 wrote files: one metrics line per epoch, not two
    assert len((tmp_path / "pair" / "metrics.jsonl").read_text().splitlines()) == 2
    # and training did something: the weights moved away from the shared initialisation
    assert any((alone["initial"][n] != w).any() for n, w in alone["state"].items())


def test_resume_under_torchrun_continues_from_the_checkpoint(tmp_path) -> None:
    first = _torchrun(tmp_path / "run", 4)
    again = _torchrun(tmp_path / "run", 4, "--resume")  # both epochs done: nothing left to train
    for name, weight in first["state"].items():
        torch.testing.assert_close(again["state"][name], weight)
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


def test_shards_split_a_global_batch_and_trim_padding() -> None:
    batch = Batch([[1, 2, 3], [4, 5, 0], [6, 0, 0]], [3, 2, 1], [1, 0, 1], [10, 11, 12])
    first, second = World(0, 2).shard(batch), World(1, 2).shard(batch)
    assert first == Batch([[1, 2, 3], [4, 5, 0]], [3, 2], [1, 0], [10, 11])
    assert second == Batch([[6]], [1], [1], [12])
    assert World().shard(batch) == batch
