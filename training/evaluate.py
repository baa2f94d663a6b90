"""Metrics of a classifier, and the command that evaluates a model bundle's ONNX graph.

``python -m training.evaluate --bundle models/default`` scores the bundle on the full 25k IMDB
test set through onnxruntime, the engine the service uses; ``--reference`` also writes the
bundle's drift reference (:mod:`model.reference`) from the same predictions.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from sklearn import metrics as skm

from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card, onnx_session
from model.inputs import pad_batch
from model.reference import make_reference, write_reference
from model.tokenizer import Tokenizer, unk_rate
from training.data import DatasetError, load_imdb, take_per_label


def expected_calibration_error(labels: np.ndarray, positive: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width confidence bins (Guo et al., 2017): weighted |accuracy - confidence|."""
    predicted = (positive >= 0.5).astype(int)
    confidence = np.where(predicted == 1, positive, 1.0 - positive)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap = (predicted[members] == labels[members]).mean() - confidence[members].mean()
            error += members.mean() * abs(gap)
    return float(error)


def classification_metrics(labels: Sequence[int], positive: Sequence[float]) -> dict:
    """Accuracy, precision, recall, F1, ROC-AUC, confusion matrix and ECE for P(positive)."""
    labels_np = np.asarray(labels, dtype=int)
    positive_np = np.asarray(positive, dtype=np.float64)
    predicted = (positive_np >= 0.5).astype(int)
    return {
        "examples": len(labels_np),
        "accuracy": float(skm.accuracy_score(labels_np, predicted)),
        "precision": float(skm.precision_score(labels_np, predicted, zero_division=0)),
        "recall": float(skm.recall_score(labels_np, predicted, zero_division=0)),
        "f1": float(skm.f1_score(labels_np, predicted, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(labels_np, positive_np)) if len(set(labels_np)) > 1 else None,
        # rows: true negative/positive; columns: predicted negative/positive
        "confusion_matrix": skm.confusion_matrix(labels_np, predicted, labels=[0, 1]).tolist(),
        "ece": expected_calibration_error(labels_np, positive_np),
    }


def predict_positive(
    session: onnxruntime.InferenceSession,
    sequences: Sequence[Sequence[int]],
    batch_size: int = 64,
) -> np.ndarray:
    """P(positive) for each token-id sequence, batched by length for speed, in input order."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    positive = np.empty(len(sequences), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids, lengths = pad_batch([sequences[i] for i in chunk])
        probabilities = session.run(["probabilities"], {"token_ids": ids, "lengths": lengths})[0]
        positive[chunk] = probabilities[:, 1]
    return positive


def evaluate_bundle(
    bundle: Path, data: str | None, limit_reviews: int = 0, threads: int = 2, reference: bool = False
) -> dict:
    """Score ``bundle``'s ONNX model on the IMDB test set; returns the metrics. ``reference``:
    write the bundle's drift reference from these predictions too."""
    card = load_card(bundle)
    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    dataset = load_imdb(data, expect_full=not limit_reviews)
    test = take_per_label(dataset.test, limit_reviews)
    started = time.perf_counter()
    sequences = [tokenizer.encode(r.text, card["max_tokens"]) for r in test]
    positive = predict_positive(onnx_session(bundle / ONNX_FILE, threads), sequences)
    result = classification_metrics([r.label for r in test], positive)
    result["seconds"] = round(time.perf_counter() - started, 1)
    if reference:
        lengths, unknown = [len(ids) for ids in sequences], [unk_rate(ids) for ids in sequences]
        write_reference(bundle, make_reference(positive, lengths, unknown, f"IMDB test, {len(test)} reviews"))
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: print the test metrics of a bundle's ONNX model as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle",
        type=Path,
        default=Path("models/default"),
        help="model bundle folder",
    )
    parser.add_argument("--data", help="IMDB archive or folder (default: $IMDB_DATA)")
    parser.add_argument("--limit-reviews", type=int, default=0, help="reviews per label (0: all 25k)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also write the bundle's drift reference (drift_reference.json) from the test predictions",
    )
    args = parser.parse_args(argv)
    try:
        result = evaluate_bundle(args.bundle, args.data, args.limit_reviews, args.threads, args.reference)
    except (DatasetError, FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
