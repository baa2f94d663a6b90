"""The model bundle: ``model.onnx``, ``tokenizer.json``, ``model_card.json``, ``MODEL_CARD.md``
and the plots it shows. The service loads this folder and nothing else."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from model.bundle import CARD_FILE, CARD_MARKDOWN, LABELS, ONNX_FILE, TOKENIZER_FILE
from model.reference import make_reference, write_reference
from model.tokenizer import unk_rate
from training.data import sha256_of
from training.evaluate import classification_metrics, onnx_session, predict_positive
from training.export import OPSET, export_model

CARD_VERSION = 1


def _versions() -> dict[str, str]:
    names = ["torch", "onnx", "onnxruntime", "numpy", "gensim", "scikit-learn"]
    found = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training vs validation."""
    epochs = [h["epoch"] for h in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss_axis.plot(epochs, [h["validation_loss"] for h in history], "o-", label="validation")
    accuracy_axis.plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    accuracy_axis.plot(epochs, [h["validation_accuracy"] for h in history], "o-", label="validation")
    for axis, title in ((loss_axis, "cross-entropy loss"), (accuracy_axis, "accuracy")):
        axis.set(xlabel="epoch", title=title)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_lm_curves(history: list[dict], path: Path) -> None:
    """Language-model perplexity during pretraining: training batch vs held-out reviews."""
    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    axis.plot(epochs, [h["train_perplexity"] for h in history], "o-", label="train (last batch)")
    for name in ("forward", "backward"):
        if f"{name}_perplexity" in history[0]:
            values = [h[f"{name}_perplexity"] for h in history]
            axis.plot(epochs, values, "o-", label=f"held out, {name} direction")
    axis.set(xlabel="epoch", ylabel="perplexity", title="language-model pretraining", yscale="log")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_test(labels: np.ndarray, positive: np.ndarray, confusion: list[list[int]], path: Path) -> None:
    """Confusion matrix and reliability diagram on the test set."""
    figure, (matrix_axis, reliability_axis) = plt.subplots(1, 2, figsize=(10, 4))
    matrix_axis.imshow(confusion, cmap="Blues")
    for row in range(2):
        for column in range(2):
            dark = confusion[row][column] > max(map(max, confusion)) / 2  # white on dark cells
            matrix_axis.text(
                column,
                row,
                f"{confusion[row][column]}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    matrix_axis.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=list(LABELS),
        yticklabels=list(LABELS),
        xlabel="predicted",
        ylabel="true",
        title="test confusion matrix",
    )
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(positive, edges[1:-1]), 0, 9)
    centres = [positive[which == b].mean() for b in range(10) if (which == b).any()]
    observed = [labels[which == b].mean() for b in range(10) if (which == b).any()]
    reliability_axis.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    reliability_axis.plot(centres, observed, "o-", label="model")
    reliability_axis.set(
        xlabel="predicted P(positive)", ylabel="fraction positive", title="test reliability diagram"
    )
    reliability_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def write_bundle(folder: Path, model, tokenizer, splits, config, history: list[dict], extra: dict) -> Path:
    """Export, verify, evaluate on validation and test through onnxruntime, and write the bundle."""
    folder.mkdir(parents=True, exist_ok=True)
    parity = export_model(model, folder / ONNX_FILE, extra.pop("parity_sample"))
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
    if extra.get("pretraining"):
        plot_lm_curves(extra["pretraining"]["history"], folder / "pretraining_curves.png")
    plot_test(
        np.asarray(splits.test[1]),
        positives["test"],
        evaluations["test"]["confusion_matrix"],
        folder / "test_evaluation.png",
    )
    card = _card(folder, model, config, history, evaluations, parity.to_dict(), extra)
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (folder / CARD_MARKDOWN).write_text(render_markdown(card))
    return folder


def _card(folder, model, config, history, evaluations, parity, extra) -> dict:
    data_path = Path(extra["data_path"])
    return {
        "card_version": CARD_VERSION,
        "fingerprint": extra.get("fingerprint"),
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
                "train": extra["train_size"],
                "validation": evaluations["validation"]["examples"],
                "test": evaluations["test"]["examples"],
            },
        },
        "metrics": evaluations,
        "parity": parity,
        "training": {
            "seconds": extra["train_seconds"],
            "command": extra.get("command", ""),
            "epochs_run": len(history),
            "best_epoch": max(history, key=lambda h: h["validation_accuracy"])["epoch"],
            "machine": extra["machine"],
            "embeddings": extra["embeddings"],
            "self_training": extra.get("self_training", "none"),
            "pretraining": extra.get("pretraining"),
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
                "hidden_<layer>": "float32 [time, directions, batch, hidden]",
            },
        },
        "packages": _versions(),
    }


def describe(config) -> str:
    """One line naming the architecture, e.g. 'embedding 128 -> BiLSTM 1x128 -> concat pooling'."""
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
