"""The model bundle: ``model.onnx``, ``tokenizer.json``, ``model_card.json``, ``MODEL_CARD.md``
and the plots it shows. The service loads this folder and nothing else."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from model.bundle import CARD_FILE, CARD_MARKDOWN, LABELS, ONNX_FILE, TOKENIZER_FILE
from model.config import ModelConfig
from model.network import SentimentClassifier
from model.reference import make_reference, write_reference
from model.tokenizer import Tokenizer, unk_rate
from training.config import RunConfig
from training.data import Splits, sha256_of
from training.evaluate import classification_metrics, onnx_session, predict_positive
from training.export import OPSET, export_model
from training.plots import plot_curves, plot_lm_curves, plot_test

CARD_VERSION = 1


@dataclass(frozen=True)
class TrainingRecord:
    """How a bundle's network was made, as its model card tells it (beside the configs and history)."""

    seconds: float  # training time, data preparation and export left out
    machine: str
    embeddings: str  # how the weights started: word vectors, a checkpoint, a language model
    data_path: str
    train_size: int  # training reviews, pseudo-labelled ones included
    command: str = ""
    self_training: str = "none"
    pretraining: dict | None = None  # training.pretrain.pretraining_summary of the start
    fingerprint: str | None = None  # training.train.fingerprint of the run's config and data


def _versions() -> dict[str, str]:
    names = ["torch", "onnx", "onnxruntime", "numpy", "gensim", "scikit-learn"]
    found = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def parity_sample(sequences: Sequence[Sequence[int]], count: int = 48) -> list[Sequence[int]]:
    """Reviews spread over the whole length range (shortest to longest) for the parity check."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    picks = np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))
    chosen = [sequences[order[i]] for i in picks]
    random.Random(0).shuffle(chosen)  # mix long and short neighbours inside the padded batch
    return chosen


def write_bundle(
    folder: Path,
    model: SentimentClassifier,
    tokenizer: Tokenizer,
    splits: Splits,
    config: RunConfig,
    history: list[dict],
    record: TrainingRecord,
) -> Path:
    """Export, verify on validation reviews of every length, evaluate on validation and test
    through onnxruntime, and write the bundle."""
    folder.mkdir(parents=True, exist_ok=True)
    parity = export_model(model, folder / ONNX_FILE, parity_sample(splits.validation[0]))
    tokenizer.save(folder / TOKENIZER_FILE)
    session = onnx_session(folder / ONNX_FILE, threads=2)
    evaluations, positives = {}, {}
    for name, (sequences, labels) in (("validation", splits.validation), ("test", splits.test)):
        positives[name] = predict_positive(session, sequences)
        evaluations[name] = classification_metrics(labels, positives[name])
    test_sequences = splits.test[0]
    # what the served predictions should look like: python -m app.drift compares logs with it
    reference = make_reference(
        positives["test"],
        [len(ids) for ids in test_sequences],
        [unk_rate(ids) for ids in test_sequences],
        f"IMDB test, {len(test_sequences)} reviews",
    )
    write_reference(folder, reference)
    plot_curves(history, folder / "training_curves.png")
    if record.pretraining:
        plot_lm_curves(record.pretraining["history"], folder / "pretraining_curves.png")
    plot_test(
        np.asarray(splits.test[1]),
        positives["test"],
        evaluations["test"]["confusion_matrix"],
        folder / "test_evaluation.png",
    )
    card = _card(folder, model, config, history, evaluations, parity.to_dict(), record)
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (folder / CARD_MARKDOWN).write_text(render_markdown(card))
    return folder


def _card(folder, model, config, history, evaluations, parity, record: TrainingRecord) -> dict:
    data_path = Path(record.data_path)
    return {
        "card_version": CARD_VERSION,
        "fingerprint": record.fingerprint,
        "name": config.train.name,
        "version": dt.datetime.now(dt.UTC).strftime("%Y.%m.%d-%H%M"),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "labels": list(LABELS),
        "max_tokens": config.train.max_tokens,
        "architecture": describe(model.config),
        "model_config": model.config.to_dict(),
        "train_config": asdict(config.train),
        "parameters": sum(p.numel() for p in model.parameters()),
        "dataset": {
            "name": "IMDB Large Movie Review Dataset v1.0 (Maas et al., 2011)",
            "file": data_path.name,
            "sha256": sha256_of(data_path) if data_path.is_file() else None,  # a folder has no one digest
            "split_seed": config.train.seed,
            "validation_fraction": config.train.validation_fraction,
            "sizes": {
                "train": record.train_size,
                "validation": evaluations["validation"]["examples"],
                "test": evaluations["test"]["examples"],
            },
        },
        "metrics": evaluations,
        "parity": parity,
        "training": {
            "seconds": record.seconds,
            "command": record.command,
            "epochs_run": len(history),
            "best_epoch": max(history, key=lambda h: h["validation_accuracy"])["epoch"],
            "machine": record.machine,
            "embeddings": record.embeddings,
            "self_training": record.self_training,
            "pretraining": record.pretraining,
            "history": history,
        },
        "onnx": {
            "file": "model.onnx",
            "sha256": sha256_of(folder / ONNX_FILE),
            "opset": OPSET,
            "bytes": (folder / ONNX_FILE).stat().st_size,
            "inputs": {"token_ids": "int64 [batch, time]", "lengths": "int64 [batch]"},
            "outputs": {
                "probabilities": "float32 [batch, 2]",
                "logits": "float32 [batch, 2]",
                **(
                    {"hidden_<layer>": "float32 [time, directions, batch, hidden]"}
                    if model.config.recurrent
                    else {}  # a Transformer's graph has no recurrent states to trace
                ),
            },
        },
        "packages": _versions(),
    }


def describe(config: ModelConfig) -> str:
    """One line naming the architecture, e.g. 'embedding 128 -> BiLSTM 1x128 -> concat pooling'."""
    if not config.recurrent:
        return (
            f"embedding {config.vocab_size}x{config.embed_dim} -> Transformer encoder "
            f"{config.num_layers}x{config.embed_dim} ({config.num_heads} heads, feed-forward "
            f"{config.hidden_size}) -> {config.pooling} pooling -> linear {config.num_classes}"
        )
    cell = {"lstm": "LSTM", "peephole": "peephole LSTM", "gru": "GRU", "rnn": "RNN"}[config.cell]
    prefix = "bidirectional " if config.bidirectional else ""
    return (
        f"embedding {config.vocab_size}x{config.embed_dim} -> {prefix}{cell} "
        f"{config.num_layers}x{config.hidden_size} -> {config.pooling} pooling -> linear {config.num_classes}"
    )


def render_markdown(card: dict) -> str:
    """The human-readable model card."""
    test, validation = card["metrics"]["test"], card["metrics"]["validation"]
    rows = "\n".join(
        f"| {key} | {validation[key]:.4f} | {test[key]:.4f} |"
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "ece")
    )
    (tn, fp), (fn, tp) = test["confusion_matrix"]
    self_training = card["training"].get("self_training", "none")
    notes = "" if self_training == "none" else f"Unlabelled reviews used: {self_training}.\n"
    epsilon = card["train_config"].get("adversarial_epsilon", 0.0)  # cards made before lack it
    if epsilon > 0:
        notes += (
            f"Adversarial training (Miyato et al., 2017): each review also learnt with its word "
            f"vectors moved by the step of L2 norm {epsilon} that raises its loss most.\n"
        )
    vat_epsilon = card["train_config"].get("vat_epsilon", 0.0)
    if vat_epsilon > 0:
        notes += (
            f"Virtual adversarial training (Miyato et al., 2017): the change of the network's own "
            f"prediction under the word-vector step of L2 norm {vat_epsilon} that changes it most "
            f"is penalised.\n"
        )
    return f"""# Model card: {card["name"]} {card["version"]}

{card["architecture"]} ({card["parameters"]:,} parameters). Classifies an English movie review
as negative or positive. Trained on the IMDB Large Movie Review Dataset (its training split,
never the test reviews; dataset sha256 `{card["dataset"]["sha256"]}`,
split seed {card["dataset"]["split_seed"]}).

## Metrics (through onnxruntime, on the exported `model.onnx`)

| metric | validation ({validation["examples"]}) | test ({test["examples"]}) |
|---|---|---|
{rows}

Test confusion matrix: true negatives {tn}, false positives {fp}, false negatives {fn},
true positives {tp}.

![training curves](training_curves.png)

![test evaluation](test_evaluation.png)

## Export parity

ONNX (opset {card["onnx"]["opset"]}) vs PyTorch on {card["parity"]["reviews"]} validation reviews of
{card["parity"]["min_length"]}–{card["parity"]["max_length"]} tokens: max |Δp| =
{card["parity"]["torch_vs_onnx"]:.2e}; each review alone vs inside a padded batch: max |Δp| =
{card["parity"]["alone_vs_batched"]:.2e}.

## Training

{card["training"]["epochs_run"]} epochs (best: {card["training"]["best_epoch"]}),
{card["training"]["seconds"] / 60:.1f} min on {card["training"]["machine"]}; embeddings:
{card["training"]["embeddings"]}. Reviews are cut to their first {card["max_tokens"]} tokens.
{notes}{_pretraining_section(card["training"].get("pretraining"))}
## Limitations

English movie reviews only; sarcasm, mixed reviews and text far from IMDB's style are read
less reliably. The score is a probability from a model calibrated only on IMDB
(test ECE {test["ece"]:.4f}).
"""


def _pretraining_section(pretraining: dict | None) -> str:
    if not pretraining:
        return ""
    final, corpus = pretraining["final"], pretraining["corpus"]
    directions = ", ".join(
        f"{name} {final[f'{name}_perplexity']:.1f}"
        for name in ("forward", "backward")
        if f"{name}_perplexity" in final
    )
    return f"""
### Language-model pretraining

The embedding and encoder were first trained to predict the next token (each direction in its
own reading direction) for {pretraining["epochs"]} epochs over {corpus["reviews"]:,} training and
unlabelled reviews ({corpus["tokens"]:,} tokens), in {pretraining["seconds"] / 60:.1f} min.
Perplexity on the {corpus["held_out"]:,} held-out validation reviews at the end: {directions}.

![pretraining curves](pretraining_curves.png)
"""
