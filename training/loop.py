"""The training loop: optimiser and schedule, one epoch, validation, early stopping and checkpoints.

:func:`fit` trains with early stopping on validation accuracy and writes into the run's folder
``metrics.jsonl`` (one line per epoch), ``checkpoint.pt`` (the last epoch, to resume from) and
``best.pt`` (the best validation accuracy); it leaves the best epoch's weights in the model.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training import adversarial
from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import RunConfig
from training.data import Batch, Splits, bucketed_batches
from training.distributed import SINGLE, World

CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.jsonl"


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(
    model: nn.Module, config: RunConfig, total_steps: int, progress: Callable[[], float] | None = None
):
    """AdamW without decay on biases and embeddings, linear warm-up then cosine decay.

    The embedding, most of the parameters, learns at ``embedding_lr_scale`` times the rate:
    pretrained vectors then move slowly (discriminative learning rates, Howard & Ruder 2018).
    With ``progress`` (the share of a time budget spent, see :class:`Budget`) the warm-up and
    the cosine follow it instead of the step count.
    """
    named = list(model.named_parameters())
    embedding = [p for n, p in named if n.startswith("embedding")]
    decay = [p for n, p in named if p.ndim >= 2 and not n.startswith("embedding")]
    no_decay = [p for n, p in named if p.ndim < 2 and not n.startswith("embedding")]
    rate = config.train.learning_rate
    groups = [
        {"params": decay, "weight_decay": config.train.weight_decay, "lr": rate},
        {"params": no_decay, "weight_decay": 0.0, "lr": rate},
    ]
    if config.train.embedding_lr_scale > 0:
        groups.append(
            {"params": embedding, "weight_decay": 0.0, "lr": rate * config.train.embedding_lr_scale}
        )
    else:
        for parameter in embedding:
            parameter.requires_grad_(False)  # frozen
    optimizer = torch.optim.AdamW(groups, lr=rate)
    warmup = max(1, round(total_steps * config.train.warmup_fraction))

    def by_time(_step: int) -> float:
        share, warm = min(1.0, progress()), config.train.warmup_fraction
        if share < warm:
            return max(share / warm, 1e-3)  # never exactly 0: the first step still moves
        return 0.5 * (1.0 + math.cos(math.pi * (share - warm) / max(1e-9, 1.0 - warm)))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        share = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * share))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, by_time if progress else schedule)


class Budget:
    """A training-time budget (``[train] minutes``): how much is spent, and whether all.

    Only the epochs' training passes count; validation and checkpoints do not. A run resumed
    from its checkpoint starts from the training seconds it records (``spent_before``), so it
    counts as the uninterrupted run would have.
    """

    def __init__(
        self, minutes: float, spent_before: float = 0.0, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.seconds = minutes * 60
        self.clock = clock
        self.closed = spent_before  # training seconds of the finished epochs
        self.epoch_started: float | None = None  # when the running epoch's pass began

    def start_epoch(self) -> None:
        """A training pass begins."""
        self.epoch_started = self.clock()

    def stop_epoch(self) -> None:
        """The pass ended: its time joins the finished epochs'."""
        if self.epoch_started is not None:
            self.closed += self.clock() - self.epoch_started
        self.epoch_started = None

    def progress(self) -> float:
        """The share of the budget spent (may pass 1)."""
        running = 0.0 if self.epoch_started is None else self.clock() - self.epoch_started
        return (self.closed + running) / self.seconds

    def spent(self) -> bool:
        """Whether the budget is used up."""
        return self.progress() >= 1.0


def freeze_pretrained(model: nn.Module, config: RunConfig, frozen: bool) -> None:
    """Freeze or thaw the embedding and encoder (gradual unfreezing: the new head learns first,
    so its random gradients do not wreck pretrained weights). A zero embedding rate stays frozen."""
    for name, parameter in model.named_parameters():
        if name.startswith("encoder."):
            parameter.requires_grad_(not frozen)
        elif name.startswith("embedding."):
            parameter.requires_grad_(not frozen and config.train.embedding_lr_scale > 0)


def to_tensors(batch: Batch, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A :class:`Batch` as (token ids, lengths, labels) tensors on ``device``."""
    return (
        torch.tensor(batch.token_ids, device=device),
        torch.tensor(batch.lengths, device=device),
        torch.tensor(batch.labels, device=device),
    )


def summed_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy. Integer targets are labels; a batch holding soft targets (a
    teacher's P(positive), see :mod:`training.self_training`) is a float tensor, in which a
    labelled review's 0/1 gives exactly its label's loss."""
    if targets.is_floating_point():
        return nn.functional.cross_entropy(logits, torch.stack([1.0 - targets, targets], 1), reduction="sum")
    return nn.functional.cross_entropy(logits, targets, reduction="sum")


def hard_labels(targets: torch.Tensor) -> torch.Tensor:
    """Labels of hard or soft targets (P(positive) >= 0.5 is positive)."""
    return (targets >= 0.5).long() if targets.is_floating_point() else targets


def train_epoch(
    model,
    optimizer,
    scheduler,
    data,
    config: RunConfig,
    epoch: int,
    world: World = SINGLE,
    budget: Budget | None = None,
) -> dict:
    """One pass over the training split; returns mean loss, accuracy and tokens per second.

    With a ``budget``, the pass ends early once it is spent (``batches`` of ``batches_per_epoch``
    then says how far it got).

    Batches are global batches of ``world.size x batch_size`` reviews; each process trains on its
    own slice (see :mod:`training.distributed`). A global batch too small to give every process a
    review is skipped (at most one per epoch, and only with several processes).
    """
    model.train()
    sequences, labels = data
    global_size = config.train.batch_size * world.size
    batches = [
        batch
        for batch in bucketed_batches(sequences, labels, global_size, shuffle_seed=config.train.seed + epoch)
        if len(batch.labels) >= world.size
    ]
    loss_sum, correct, seen, tokens, started = 0.0, 0, 0, 0, time.perf_counter()
    progress = tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not world.is_main)
    epsilon, adversarial_sum = config.train.adversarial_epsilon, 0.0
    vat_epsilon, virtual_sum = config.train.vat_epsilon, 0.0
    batches_run = 0
    for batch in progress:
        if batches_run and budget is not None and budget.spent():  # one batch at least: figures
            break
        batches_run += 1
        token_ids, lengths, targets = to_tensors(world.shard(batch), config.train.device)
        # DDP averages gradients over processes: scaled so the average is the global batch's mean
        scale = world.size / len(batch.labels)
        optimizer.zero_grad(set_to_none=True)
        if config.train.moves_word_vectors:
            logits, summed, adversarial_loss, virtual_loss = adversarial.backward(
                model,
                token_ids,
                lengths,
                partial(summed_loss, targets=targets),
                epsilon,
                scale,
                vat_epsilon,
                config.train.vat_xi,
            )
            adversarial_sum += adversarial_loss.item()
            virtual_sum += virtual_loss.item()
        else:
            logits = model(token_ids, lengths)
            summed = summed_loss(logits, targets)
            (summed * scale).backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.train.clip_norm)
        optimizer.step()
        scheduler.step()
        loss_sum += summed.item()
        correct += (logits.argmax(1) == hard_labels(targets)).sum().item()
        seen += len(targets)
        tokens += int(lengths.sum())
        progress.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
    loss_sum, correct, seen, tokens, adversarial_sum, virtual_sum = world.sum(
        [loss_sum, correct, seen, tokens, adversarial_sum, virtual_sum]
    )
    seconds = time.perf_counter() - started
    adversarial_record = {"adversarial_loss": adversarial_sum / seen} if epsilon > 0 else {}
    if vat_epsilon > 0:
        adversarial_record["virtual_adversarial_kl"] = virtual_sum / seen
    return {
        "train_loss": loss_sum / seen,
        **adversarial_record,
        "train_accuracy": correct / seen,
        "seconds": round(seconds, 1),
        "tokens_per_second": round(tokens / seconds),
        "batches": batches_run,
        "batches_per_epoch": len(batches),
    }


@torch.no_grad()
def validate(model, data, batch_size: int, device: str = "cpu") -> dict:
    """Loss and accuracy of the PyTorch model on ``data`` (used to choose the best epoch)."""
    model.eval()
    sequences, labels = data
    loss_sum, correct = 0.0, 0
    for batch in bucketed_batches(sequences, labels, batch_size * 2):
        token_ids, lengths, targets = to_tensors(batch, device)
        logits = model(token_ids, lengths)
        loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        correct += (logits.argmax(1) == hard_labels(targets)).sum().item()
    return {
        "validation_loss": loss_sum / len(labels),
        "validation_accuracy": correct / len(labels),
    }


def _save(path: Path, model, optimizer, scheduler, state: dict, config: RunConfig, splits: Splits) -> None:
    """A dict of state_dicts, configs and progress (never a pickled model object)."""
    payload = {
        "model_state": model.state_dict(),
        "model_config": model.config.to_dict(),
        "train_config": asdict(config.train),
        "model_overrides": config.model,
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        **state,
    }
    save_checkpoint(path, payload, splits.vocabulary)


def _check_world(config: RunConfig, world: World) -> None:
    if world.size > 1 and config.train.freeze_epochs:
        raise ValueError(
            "--freeze-epochs is not supported under torchrun (DDP needs fixed trainable parameters)"
        )
    if world.size > 1 and config.train.minutes:
        # each process would read its own clock and stop at its own batch: the next gradient
        # all-reduce would then wait forever for the processes that stopped
        raise ValueError("--minutes is not supported under torchrun: give --epochs instead")
    if world.size > 1 and config.train.moves_word_vectors:
        raise ValueError(
            "--adversarial-epsilon and --vat-epsilon are not supported under torchrun: their passes "
            "call the network after its lookup, which the DDP wrapper does not synchronise"
        )


def fit(
    model, splits: Splits, config: RunConfig, output: Path, resume: bool, world: World = SINGLE
) -> tuple[list[dict], float]:
    """Train with early stopping on validation accuracy; returns the history and time taken.

    The model trains on ``config.train.device`` and comes back on the CPU with its best epoch's
    weights. Every process validates on the whole validation split (the same weights give the
    same figures, so all take the same early-stopping decisions); only rank 0 writes files.
    """
    _check_world(config, world)
    device = config.train.device
    model.to(device)
    steps_per_epoch = math.ceil(len(splits.train[1]) / (config.train.batch_size * world.size))
    state = {"epoch": 0, "best_accuracy": -1.0, "best_epoch": 0, "history": [], "seconds": 0.0}
    saved = None
    if resume and (output / CHECKPOINT_FILE).exists():
        saved = load_checkpoint(output / CHECKPOINT_FILE, splits.vocabulary)
    budget = None
    if config.train.minutes:
        budget = Budget(config.train.minutes, spent_before=saved["seconds"] if saved else 0.0)
    optimizer, scheduler = make_optimizer(
        model, config, steps_per_epoch * config.train.epochs, budget.progress if budget else None
    )
    if saved is not None:
        model.load_state_dict(saved["model_state"])
        optimizer.load_state_dict(saved["optimizer_state"])
        scheduler.load_state_dict(saved["scheduler_state"])
        torch.set_rng_state(saved["torch_rng"])
        state = {key: saved[key] for key in state}
        if world.is_main:
            print(f"resumed after epoch {state['epoch']}")

    def another_epoch() -> bool:
        if state["epoch"] >= config.train.epochs:
            return False
        if budget:  # the budget ends the run: stopping on patience would leave the rate un-annealed
            return not budget.spent()
        return state["epoch"] - state["best_epoch"] < config.train.patience

    trained = world.wrap(model)
    while another_epoch():
        state["epoch"] += 1
        freeze_pretrained(model, config, frozen=state["epoch"] <= config.train.freeze_epochs)
        if budget:
            budget.start_epoch()
        record = {
            "epoch": state["epoch"],
            **train_epoch(trained, optimizer, scheduler, splits.train, config, state["epoch"], world, budget),
        }
        if budget:
            budget.stop_epoch()
        # under a budget, its own count: a resumed run then goes on from it exactly
        state["seconds"] = budget.closed if budget else state["seconds"] + record["seconds"]
        record.update(validate(model, splits.validation, config.train.batch_size, device))
        state["history"].append(record)
        better = record["validation_accuracy"] > state["best_accuracy"]
        if better:
            state["best_accuracy"], state["best_epoch"] = record["validation_accuracy"], state["epoch"]
        if world.is_main:
            with (output / METRICS_FILE).open("a") as log:
                log.write(json.dumps(record) + "\n")
            print(json.dumps(record))
            if better:
                _save(output / BEST_FILE, model, optimizer, scheduler, state, config, splits)
            _save(output / CHECKPOINT_FILE, model, optimizer, scheduler, state, config, splits)
    world.barrier()  # best.pt is written
    model.cpu()  # export and the bundle read the weights as numpy arrays
    model.load_state_dict(load_checkpoint(output / BEST_FILE, splits.vocabulary)["model_state"])
    return state["history"], state["seconds"]
