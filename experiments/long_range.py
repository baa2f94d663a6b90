"""The vanishing gradient made visible: a synthetic long-range dependency task.

    python -m experiments.long_range --lengths 50 100 200 500 1000 2000 --output experiments/results

Each sequence starts with a marker token (``A`` or ``B``) that decides its label; the
``length - 1`` tokens after it are random noise. A unidirectional network with ``last``
pooling must carry the first token's information across the whole sequence. The script trains
the plain RNN, GRU, LSTM and peephole LSTM of :mod:`model.network`, and the Transformer encoder
of :mod:`model.transformer`, on it under one budget at each of ``--lengths``, and records each
one's accuracy on fresh sequences and its training time per step. A run stops early once it
has converged (every sequence of the last ``CONVERGED_STEPS`` batches right). A cell that fails
at one length (accuracy below ``--solved``) is not trained again at the longer ones, where it
would fail too (``--all-lengths`` trains it anyway). The time per step is measured apart from
training, for every cell at every length, over ``--timed-steps`` steps of a fresh cell after an
untimed one, so the cost curves cover every length alike. At the first length it also
measures, at initialisation and after training, the norm of the loss gradient with respect to
each time step's input, ``||dL/dx_t||``: for the plain RNN it shrinks exponentially with the
distance from the end, for the gated cells it does not.

Prints a table, writes ``long_range.json`` and ``long_range.png`` (the gradients) into
``--output``, and with several lengths ``long_range_lengths.png`` (accuracy and time per step
against the length).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import torch
from torch import Tensor, nn

from experiments.timing import machine
from model.config import CELLS, ModelConfig
from model.network import SentimentClassifier, pool
from training.commands import recorded_command

# batches in a row without a mistake that end a run: at 32 sequences a batch, hundreds of fresh
# sequences all right, which chance (0.5 each) does not give
CONVERGED_STEPS = 20
MARKERS = (2, 3)  # label 0 starts with token 2, label 1 with token 3
NOISE = range(4, 12)
VOCAB_SIZE = 12


def make_batch(batch_size: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Token ids ``[batch, length]`` and labels: the label is the first token, the rest is noise."""
    labels = torch.randint(0, 2, (batch_size,), generator=generator)
    ids = torch.randint(NOISE.start, NOISE.stop, (batch_size, length), generator=generator)
    ids[:, 0] = torch.tensor(MARKERS)[labels]
    return ids, labels


def set_memory_bias(model: SentimentClassifier, bias: float) -> None:
    """Start the gated cells remembering: the LSTM's forget-gate and the GRU's update-gate biases
    (summed over the input and recurrent bias vectors) set to ``bias``. A plain RNN has no gate
    to set, which is the point of the comparison. sigma(3) = 0.95 keeps about 0.95^T of the
    first token's trace after T steps, against sigma(1)^T = 0.73^T with the default bias of 1.
    """
    if model.config.cell in ("rnn", "transformer"):
        return
    hidden = model.config.hidden_size
    # PyTorch gate blocks: LSTM (i, f, g, o) -> forget is block 1; GRU (r, z, n) -> update is block 1
    with torch.no_grad():
        for directions in model.encoder.layers:
            for direction in directions:
                direction.bias_ih_l0[hidden : 2 * hidden].fill_(bias / 2)
                direction.bias_hh_l0[hidden : 2 * hidden].fill_(bias / 2)


def build(cell: str, hidden_size: int, seed: int, memory_bias: float | None = None) -> SentimentClassifier:
    """A one-layer, one-direction classifier reading the sequence and deciding at its end.

    The Transformer's one layer has one attention head (the task needs one look-up: where is
    the marker) and a feed-forward block ``4 * hidden_size`` wide, the paper's ratio, which
    puts its parameters near the LSTM's.
    """
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=VOCAB_SIZE,
        embed_dim=16,
        hidden_size=hidden_size if cell != "transformer" else 4 * hidden_size,
        bidirectional=False,
        cell=cell,
        pooling="last",
        embed_dropout=0.0,
        dropout=0.0,
        num_heads=1,
    )
    model = SentimentClassifier(config)
    if memory_bias is not None:
        set_memory_bias(model, memory_bias)
    return model


def input_gradient_norms(model: SentimentClassifier, ids: Tensor, labels: Tensor) -> list[float]:
    """``||dL/dx_t||`` per time step ``t``, averaged over the batch (x_t: the embedded input).

    Computed in float64 on a copy: a plain RNN's gradient falls below float32's range.
    """
    model = copy.deepcopy(model).double()
    lengths = torch.full((ids.shape[0],), ids.shape[1])
    inputs = model.embedding(ids).detach().requires_grad_(True)  # [B, T, E]
    outputs = model.encoder(inputs, lengths)
    pooled = pool(outputs, lengths, model.config.pooling, model.config.direction_dim)
    loss = nn.functional.cross_entropy(model.head(pooled), labels)
    (gradient,) = torch.autograd.grad(loss, inputs)
    return gradient.norm(dim=2).mean(dim=0).tolist()


@dataclass
class Result:
    """One cell's run at one length: accuracy on fresh sequences, training time, and (when
    measured) gradient profiles."""

    cell: str
    length: int
    accuracy: float | None  # None: not trained at this length (it failed at a shorter one)
    final_loss: float | None
    steps: int  # training steps run: fewer than the budget when it converged early, 0 untrained
    seconds: float  # training time
    parameters: int
    seconds_per_step: float = 0.0  # one training step, timed on its own (see step_seconds)
    gradients_at_init: list[float] | None = None
    gradients_trained: list[float] | None = None

    @property
    def first_to_last(self) -> float | None:
        """Gradient norm reaching the first token over that at the last, at initialisation."""
        if not self.gradients_at_init:
            return None
        return self.gradients_at_init[0] / self.gradients_at_init[-1]


def evaluate(model: SentimentClassifier, length: int, seed: int, examples: int = 1000) -> float:
    """Accuracy on ``examples`` fresh sequences, in chunks of 50: a Transformer's attention over
    2,000 tokens holds ``chunk x length^2`` scores at once."""
    model.eval()
    ids, labels = make_batch(examples, length, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        predicted = torch.cat(
            [model(chunk, torch.full((len(chunk),), length)).argmax(1) for chunk in ids.split(50)]
        )
    return (predicted == labels).float().mean().item()


def train(
    model: SentimentClassifier,
    length: int,
    steps: int,
    batch_size: int,
    seed: int,
    lr: float,
    stop_early: bool = True,
) -> tuple[int, float, float]:
    """Adam on fresh batches for up to ``steps`` steps; returns (steps run, last loss, seconds).

    With ``stop_early``, training ends once the last :data:`CONVERGED_STEPS` batches were all
    classified right: more steps would only spend time.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.full((batch_size,), length)
    perfect = steps_run = 0  # batches in a row without a mistake; steps run
    started = time.perf_counter()
    model.train()
    while steps_run < steps:
        steps_run += 1
        ids, labels = make_batch(batch_size, length, generator)
        logits = model(ids, lengths)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if stop_early:  # not while timing: the check is no part of a training step
            perfect = perfect + 1 if bool((logits.argmax(1) == labels).all()) else 0
            if perfect >= CONVERGED_STEPS:
                break
    return steps_run, loss.item(), time.perf_counter() - started


def step_seconds(cell: str, length: int, batch_size: int, hidden_size: int, seed: int, steps: int) -> float:
    """Seconds per training step (forward, backward, update) of a fresh cell at ``length``.

    Timed on its own, after one untimed step (the first call builds oneDNN's kernels for the
    shape), so that every cell has a cost at every length, trained there or not.
    """
    model = build(cell, hidden_size, seed)
    train(model, length, 1, batch_size, seed, lr=1e-3, stop_early=False)
    steps_run, _, seconds = train(model, length, steps, batch_size, seed, lr=1e-3, stop_early=False)
    return seconds / steps_run


def untrained(trained: Result, length: int) -> Result:
    """The row at ``length`` of the cell of ``trained``, not trained there because it failed at a
    shorter length."""
    return Result(trained.cell, length, None, None, steps=0, seconds=0.0, parameters=trained.parameters)


def run_cell(
    cell: str,
    length: int,
    steps: int,
    batch_size: int,
    hidden_size: int,
    seed: int,
    lr: float = 1e-2,
    memory_bias: float | None = None,
    gradients: bool = True,
) -> Result:
    """Train one cell on the task and measure it (its gradient profiles when ``gradients``)."""
    model = build(cell, hidden_size, seed, memory_bias)
    probe = make_batch(256, length, torch.Generator().manual_seed(seed + 1)) if gradients else None
    at_init = input_gradient_norms(model, *probe) if probe is not None else None
    steps_run, loss, seconds = train(model, length, steps, batch_size, seed, lr)
    return Result(
        cell=cell,
        length=length,
        accuracy=evaluate(model, length, seed + 2),
        final_loss=loss,
        steps=steps_run,
        seconds=round(seconds, 2),
        parameters=sum(parameter.numel() for parameter in model.parameters()),
        gradients_at_init=at_init,
        gradients_trained=input_gradient_norms(model, *probe) if probe is not None else None,
    )


def plot_gradients(results: Sequence[Result], length: int, path: Path) -> None:
    """Gradient norm per time step, at initialisation and after training, log scale."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for result in results:
        label = f"{result.cell} (accuracy {result.accuracy:.2f})"
        axes[0].plot(result.gradients_at_init, label=label)
        axes[1].plot(result.gradients_trained, label=label)
    for axis, title in zip(axes, ("at initialisation", "after training"), strict=True):
        axis.set(xlabel="time step t (the label is decided at t = 0)", yscale="log", title=title)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("||dL/dx_t||")
    axes[1].legend()
    figure.suptitle(f"Gradient reaching each input of a {length}-token sequence")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_lengths(results: Sequence[Result], steps: int, path: Path) -> None:
    """Accuracy and training seconds per step against the sequence length, one line per cell."""
    figure, (accuracy_axis, time_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for cell in dict.fromkeys(result.cell for result in results):
        mine = [result for result in results if result.cell == cell]
        trained = [result for result in mine if result.accuracy is not None]
        (line,) = accuracy_axis.plot(
            [result.length for result in trained],
            [result.accuracy for result in trained],
            marker="o",
            label=cell,
        )
        time_axis.plot(
            [result.length for result in mine],
            [result.seconds_per_step for result in mine],
            marker="o",
            color=line.get_color(),
            label=cell,
        )
    accuracy_axis.set(
        title=f"accuracy on 1,000 fresh sequences (up to {steps} steps)", ylim=(0.4, 1.02), ylabel="accuracy"
    )
    time_axis.set(title="training time per step", yscale="log", ylabel="seconds")
    for axis in (accuracy_axis, time_axis):
        axis.set(xscale="log", xlabel="sequence length (tokens)")
        axis.grid(alpha=0.3)
    accuracy_axis.axhline(0.5, color="grey", linestyle=":")
    time_axis.legend()
    figure.suptitle("The label is the first token: where each cell stops carrying it")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Long-range dependency task: RNN, GRU, LSTMs, Transformer.")
    parser.add_argument(
        "--lengths",
        "--length",
        type=int,
        nargs="+",
        default=[100],
        help="sequence lengths, each trained from scratch; gradient profiles at the first",
    )
    parser.add_argument("--steps", type=int, default=400, help="training steps per cell and length")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per training step")
    parser.add_argument("--hidden-size", type=int, default=32, help="hidden units of each cell")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS), help="cells to train")
    parser.add_argument(
        "--memory-bias",
        type=float,
        help="start the LSTM forget-gate / GRU update-gate bias here (default: the model's own init)",
    )
    parser.add_argument(
        "--solved",
        type=float,
        default=0.9,
        help="accuracy that counts as carrying the first token to the end; below it the cell is "
        "not trained at longer lengths",
    )
    parser.add_argument(
        "--all-lengths", action="store_true", help="train every cell at every length, even after it failed"
    )
    parser.add_argument(
        "--timed-steps",
        type=int,
        default=10,
        help="training steps timed per cell and length (after one untimed)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and of the sequences")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("experiments/results"),
        help="folder for the JSON and plots (the docs build renders and publishes them from there)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results = []
    failed: dict[str, Result] = {}  # cells that failed at a shorter length: their failed run
    print(f"{'cell':12} {'length':>6} {'accuracy':>8} {'steps':>5} {'s/step':>7} {'|g_0|/|g_T| at init':>20}")
    for length in args.lengths:
        for cell in args.cells:
            if cell in failed and not args.all_lengths:
                result = untrained(failed[cell], length)
            else:
                result = run_cell(
                    cell,
                    length,
                    args.steps,
                    args.batch_size,
                    args.hidden_size,
                    args.seed,
                    args.lr,
                    args.memory_bias,
                    gradients=length == args.lengths[0],
                )
                if result.accuracy < args.solved:
                    failed[cell] = result
            result.seconds_per_step = step_seconds(
                cell, length, args.batch_size, args.hidden_size, args.seed, args.timed_steps
            )
            accuracy = "not run" if result.accuracy is None else f"{result.accuracy:8.3f}"
            ratio = "" if result.first_to_last is None else f"{result.first_to_last:20.3g}"
            print(
                f"{cell:12} {length:6} {accuracy:>8} {result.steps:5} {result.seconds_per_step:7.3f} {ratio}",
                flush=True,
            )
            results.append(result)
    args.output.mkdir(parents=True, exist_ok=True)
    record = {
        "command": recorded_command("experiments.long_range", argv),
        "settings": {k: v if not isinstance(v, Path) else str(v) for k, v in vars(args).items()},
        "machine": machine(),  # after torch.set_num_threads(args.threads)
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "results": [{**r.__dict__, "first_to_last": r.first_to_last} for r in results],
    }
    (args.output / "long_range.json").write_text(json.dumps(record, indent=1) + "\n")
    first = [result for result in results if result.length == args.lengths[0]]
    plot_gradients(first, args.lengths[0], args.output / "long_range.png")
    written = ["long_range.json", "long_range.png"]
    if len(args.lengths) > 1:
        plot_lengths(results, args.steps, args.output / "long_range_lengths.png")
        written.append("long_range_lengths.png")
    print(f"wrote {', '.join(written)} into {args.output}")


if __name__ == "__main__":
    main()
