"""Data-parallel training under ``torchrun``: the process group, batch sharding, rank-0-only output.

``torchrun --nproc_per_node N -m training.train ...`` starts N processes; each reads the data
and builds the same vocabulary, takes the same sequence of *global* batches of
``N x batch_size`` reviews (same seed) and trains on its own slice of each.
DistributedDataParallel averages the gradients, and every slice's loss is scaled so that the
average is the mean over the whole global batch: N processes compute what one process computes
with ``batch_size`` N times as large. Only rank 0 writes metrics, checkpoints and the bundle.
Backends: gloo on CPU, NCCL on GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from training.data import Batch


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """The process that writes files and prints progress."""
        return self.rank == 0

    def shard(self, batch: Batch) -> Batch:
        """This rank's contiguous slice of a global batch (sorted by length: similar padding)."""
        per_rank = -(-len(batch.labels) // self.size)
        rows = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        ids = batch.token_ids[rows]
        width = max(batch.lengths[rows], default=0)
        return Batch(
            [row[:width] for row in ids], batch.lengths[rows], batch.labels[rows], batch.indices[rows]
        )

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model as trained: wrapped in DistributedDataParallel when there are several processes.

        DDP broadcasts rank 0's parameters at construction, so every rank starts from rank 0's
        initialisation (and only rank 0 needs to compute pretrained embeddings).
        """
        if self.size == 1:
            return model
        return nn.parallel.DistributedDataParallel(model)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (epoch statistics)."""
        if self.size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written a checkpoint)."""
        if self.size > 1:
            dist.barrier()


SINGLE = World()  # one process: no process group


def init_world() -> World:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1), else a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return World(dist.get_rank(), dist.get_world_size())


def close_world(world: World) -> None:
    """Leave the process group."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (for state dicts and export)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
