"""The course's comparison, measured: plain RNN, GRU, LSTM, peephole LSTM, bidirectional LSTM,
a 2-layer LSTM and the Transformer encoder that replaced them, trained under one fixed budget on
the same data.

    python -m experiments.variants --config configs/default.toml --data ../shared/data/aclImdb_v1.tar.gz \\
        --max-tokens 200 --minutes 5 --epochs 20 --patience 20 --output runs/variants

The dataset is read and tokenised once; every variant then gets the same training settings
(the config file and flags: the same wall-clock minutes with ``--minutes``, so a cell that is
slow per step sees fewer reviews; batch size, learning rate, data slice...), is exported
and evaluated through onnxruntime like any bundle; its training speed (tokens per second over
its epochs) comes from the training loop, and its time per review is measured on validation
reviews, one at a time and in batches of 64. Writes the measurements, ``variants.json``, and
their plot, ``variants.png``, into ``--results`` (committed: the docs build renders the table of
"Cells compared" and the limits page from the JSON, and publishes the plot).
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import torch

from experiments.timing import machine, time_sequences
from model.bundle import ONNX_FILE, load_card
from model.config import ModelConfig
from model.network import SentimentClassifier
from training.bundle import TrainingRecord, write_bundle
from training.commands import recorded_command
from training.config import RunConfig, add_arguments, load_run_config
from training.data import DatasetError, prepare_data
from training.embeddings import initial_embeddings
from training.evaluate import onnx_session
from training.loop import fit, set_seed

VARIANTS: dict[str, dict] = {
    "RNN": {"cell": "rnn", "bidirectional": False, "num_layers": 1},
    "GRU": {"cell": "gru", "bidirectional": False, "num_layers": 1},
    "LSTM": {"cell": "lstm", "bidirectional": False, "num_layers": 1},
    "peephole LSTM": {"cell": "peephole", "bidirectional": False, "num_layers": 1},
    "BiLSTM": {"cell": "lstm", "bidirectional": True, "num_layers": 1},
    "2-layer LSTM": {"cell": "lstm", "bidirectional": False, "num_layers": 2},
    "Transformer": {"cell": "transformer", "bidirectional": False, "num_layers": 1},
}


def variant_model(name: str, model: dict) -> dict:
    """The ``[model]`` table of variant ``name``: the run's, with the variant's keys.

    The Transformer's feed-forward block is ``2 * hidden_size`` wide: with ``embed_dim`` equal
    to ``hidden_size`` (128 in configs/default.toml) its encoder then has the LSTM's parameter
    count (132,736 against 132,096), the same budget.
    """
    settings = {**model, **VARIANTS[name]}
    if settings["cell"] == "transformer":
        settings["hidden_size"] = 2 * model.get("hidden_size", ModelConfig.hidden_size)
    return settings


def run_variant(name: str, config: RunConfig, tokenizer, splits, start: tuple, output: Path) -> dict:
    """Train, export and evaluate one variant from the shared ``start`` (vectors, note)."""
    folder = output / name.lower().replace(" ", "-")
    folder.mkdir(parents=True, exist_ok=True)
    variant = RunConfig(
        model=variant_model(name, config.model), train=replace(config.train, output=str(folder))
    )
    set_seed(variant.train.seed)
    model = SentimentClassifier(variant.model_config(len(tokenizer.vocabulary)))
    vectors, note = start
    if vectors is not None:
        model.embedding.weight.data.copy_(torch.from_numpy(vectors))
    (folder / "metrics.jsonl").unlink(missing_ok=True)
    history, seconds = fit(model, splits, variant, folder, resume=False)
    bundle = write_bundle(
        folder / "bundle",
        model,
        tokenizer,
        splits,
        variant,
        history,
        TrainingRecord(
            seconds=round(seconds, 1),
            machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads",
            embeddings=note,
            data_path=str(variant.train.data),
            train_size=len(splits.train[1]),
        ),
    )
    card = load_card(bundle)
    epochs = epochs_trained(history)
    timing = time_sequences(onnx_session(bundle / ONNX_FILE, threads=1), splits.validation[0][:300])
    return {
        "variant": name,
        "architecture": card["architecture"],
        "parameters": card["parameters"],
        "epochs": round(epochs, 2),
        "train_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / epochs, 1),
        "validation_accuracy": card["metrics"]["validation"]["accuracy"],
        "test_accuracy": card["metrics"]["test"]["accuracy"],
        "test_examples": card["metrics"]["test"]["examples"],
        "train_tokens_per_second": round(sum(h["tokens_per_second"] for h in history) / len(history)),
        "ms_per_review": round(timing["single_ms_median"], 3),
        "batched_ms_per_review": round(timing["batched_ms_per_review"], 3),
        "timed_reviews": timing["reviews"],
        "median_tokens": timing["median_tokens"],
    }


def epochs_trained(history: list[dict]) -> float:
    """Epochs trained, the last one counted in part when the time budget ended it mid-way."""
    return sum(record["batches"] / record["batches_per_epoch"] for record in history)


def budget(config: RunConfig) -> str:
    """The budget every variant trained under, in words."""
    train = config.train
    reviews = f"{train.limit_reviews:,} reviews per part and label" if train.limit_reviews else "all reviews"
    time = f"{train.minutes:g} minutes of training each, " if train.minutes else ""
    return (
        f"Same data ({reviews}, first {train.max_tokens} tokens), vocabulary and embeddings "
        f"({train.embeddings}); {time}{train.epochs} epoch(s) at most, batch {train.batch_size}, "
        f"learning rate {train.learning_rate}, pooling `{config.model.get('pooling', 'concat')}`, "
        f"{config.model.get('hidden_size', ModelConfig.hidden_size)} units per direction"
    )


def write_report(rows: list[dict], config: RunConfig, command: str, results: Path) -> None:
    """The measurements (``variants.json``) and their plot (``variants.png``) into ``results``."""
    results.mkdir(parents=True, exist_ok=True)
    record = {"command": command, "budget": budget(config), "machine": machine(), "rows": rows}
    (results / "variants.json").write_text(json.dumps(record, indent=1) + "\n")
    plot(rows, results / "variants.png")


def plot(rows: list[dict], path: Path) -> None:
    """Test accuracy, training speed and time per review, one bar per variant."""
    figure, (accuracy_axis, speed_axis, time_axis) = plt.subplots(1, 3, figsize=(15, 4))
    names = [r["variant"] for r in rows]
    accuracy_axis.bar(names, [r["test_accuracy"] for r in rows])
    accuracy_axis.set(title="test accuracy (ONNX)", ylim=(0.5, 1.0))
    speed_axis.bar(names, [r["train_tokens_per_second"] for r in rows])
    speed_axis.set(title="training tokens per second")
    time_axis.bar(names, [r["ms_per_review"] for r in rows])
    time_axis.set(title="ms per review (onnxruntime, 1 thread)")
    for axis in (accuracy_axis, speed_axis, time_axis):
        axis.tick_params(axis="x", rotation=30)
        axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Train every recurrent variant under one budget.")
    add_arguments(parser)
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("experiments/results"),
        help="folder for variants.json (the measurements the docs render) and variants.png",
    )
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), help="variants to train"
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if "." in k}
    try:
        config = load_run_config(args.config, overrides)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        tokenizer, splits, _ = prepare_data(config)
        output = Path(config.train.output)
        # the same starting vectors for every variant (word2vec once, not six times)
        start = initial_embeddings(
            config, config.model_config(len(tokenizer.vocabulary)), tokenizer.vocabulary, splits
        )
        rows = []
        for name in args.variants:
            rows.append(run_variant(name, config, tokenizer, splits, start, output))
            print(json.dumps(rows[-1]))
    except (DatasetError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    command = recorded_command("experiments.variants", argv)
    write_report(rows, config, command, args.results)
    print(f"wrote {args.results / 'variants.json'} and {args.results / 'variants.png'}")


if __name__ == "__main__":
    main()
