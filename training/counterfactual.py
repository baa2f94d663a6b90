"""Counterfactually-augmented IMDb reviews (Kaushik, Hovy & Lipton, ICLR 2020): pairs of a review
and a minimal human edit of it that flips its sentiment.

The folder holds ``{train,dev}_paired.tsv`` with the columns ``Sentiment``, ``Text`` and
``batch_id``; the two rows of a pair share a ``batch_id``. Training reads ``train`` only; the
``dev`` pairs choose between runs (:func:`pair_accuracy`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "dev")
_LABELS = {"Negative": 0, "Positive": 1}


@dataclass(frozen=True)
class Pair:
    """A review and its edit: two texts with opposite labels (1 positive, 0 negative)."""

    batch_id: str
    texts: tuple[str, str]
    labels: tuple[int, int]


def load_pairs(folder: str | Path, split: str) -> list[Pair]:
    """The pairs of ``folder/{split}_paired.tsv``, in file order; a malformed file is a ValueError."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(folder) / f"{split}_paired.tsv"
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the counterfactual pairs' folder?)")
    rows: dict[str, list[tuple[str, int]]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row.get("Sentiment") not in _LABELS or not row.get("Text"):
                raise ValueError(f"{path}: a row without a Sentiment of {sorted(_LABELS)} and a Text")
            rows.setdefault(row["batch_id"], []).append((row["Text"], _LABELS[row["Sentiment"]]))
    pairs = []
    for batch_id, members in rows.items():
        labels = {label for _, label in members}
        if len(members) != 2 or labels != {0, 1}:
            raise ValueError(f"{path}: batch {batch_id} is not one positive and one negative review")
        (first, first_label), (second, second_label) = members
        pairs.append(Pair(batch_id, (first, second), (first_label, second_label)))
    return pairs


def flatten(pairs: Sequence[Pair]) -> tuple[list[str], list[int]]:
    """The pairs' texts and labels, each pair's two texts side by side."""
    texts = [text for pair in pairs for text in pair.texts]
    labels = [label for pair in pairs for label in pair.labels]
    return texts, labels


def pair_accuracy(pairs: Sequence[Pair], positive: Sequence[float]) -> float:
    """Share of pairs whose two texts are both classified right, from P(positive) of
    :func:`flatten`'s texts (so a model that ignores the edit gets at most half of them)."""
    predicted = np.asarray(positive).reshape(len(pairs), 2) >= 0.5
    truth = np.array([pair.labels for pair in pairs], dtype=bool)
    return float((predicted == truth).all(axis=1).mean()) if pairs else 0.0
