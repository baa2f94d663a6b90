"""A bundle's reference distributions: what its served predictions should look like.

``drift_reference.json`` holds, for each signal the service reports (the score P(positive), the
tokens read per text and their ``<unk>`` share), 1001 quantiles of that signal over the test
set the bundle was evaluated on, and the share of test scores near 0.5. The quantiles describe
the whole distribution in a few kilobytes whatever the test set's size; ``python -m app.drift``
compares a prediction log with them, and the service publishes the share near 0.5 beside its
own in ``/metrics``. Written at export (``training.bundle``) or for an existing bundle by
``python -m training.evaluate --reference``; a bundle without the file serves as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REFERENCE_FILE = "drift_reference.json"
SIGNALS = ("score", "tokens", "unk_rate")
LEVELS = np.linspace(0.0, 1.0, 1001)  # the quantiles kept: every 0.1 %
NEAR_HALF = 0.1  # a score within this of 0.5 is one the model is unsure of


def near_half_share(scores: Sequence[float] | np.ndarray) -> float:
    """Share of ``scores`` within :data:`NEAR_HALF` of 0.5."""
    values = np.asarray(scores, dtype=np.float64)
    return float(np.mean(np.abs(values - 0.5) < NEAR_HALF)) if len(values) else 0.0


def make_reference(
    scores: Sequence[float], tokens: Sequence[int], unk_rates: Sequence[float], source: str
) -> dict:
    """The reference of these per-text signals, measured on ``source`` (e.g. 'IMDB test, 25000')."""
    values = {"score": scores, "tokens": tokens, "unk_rate": unk_rates}
    return {
        "source": source,
        "examples": len(scores),
        "near_half": round(near_half_share(scores), 6),
        "levels": len(LEVELS),
        "quantiles": {
            name: np.round(np.quantile(np.asarray(values[name], dtype=np.float64), LEVELS), 6).tolist()
            for name in SIGNALS
        },
    }


def write_reference(folder: Path, reference: dict) -> Path:
    """Write ``reference`` into the bundle ``folder``."""
    path = folder / REFERENCE_FILE
    path.write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    return path


def load_reference(folder: Path) -> dict | None:
    """The bundle's reference; None when it has none. A malformed file is a ValueError naming it."""
    path = folder / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
        quantiles = reference["quantiles"]
        if any(len(quantiles[name]) < 2 for name in SIGNALS) or not 0 <= reference["near_half"] <= 1:
            raise ValueError("too few quantiles, or a share outside [0, 1]")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a drift reference ({error})") from None
    return reference
