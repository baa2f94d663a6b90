"""Self-training on the unlabelled reviews (Yarowsky, 1995; "pseudo-labelling", Lee, 2013).

A trained bundle labels the 50k unlabelled reviews; those it is confident about join the
training split, with as many positive as negative ones so the class balance stays. The test
reviews are never used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card
from model.tokenizer import Tokenizer, Vocabulary
from training.evaluate import onnx_session, predict_positive


def pseudo_label(
    bundle: Path, texts: Sequence[str], vocabulary: Vocabulary, threshold: float, max_tokens: int
) -> tuple[list[list[int]], list[int]]:
    """Token ids and labels of the texts ``bundle`` classifies with P >= ``threshold``, balanced."""
    teacher = Tokenizer.load(bundle / TOKENIZER_FILE)
    if teacher.vocabulary != vocabulary:
        raise ValueError(f"{bundle}: its vocabulary differs from this run's; pseudo-labels need the same one")
    load_card(bundle)
    sequences = [teacher.encode(text, max_tokens) for text in texts]
    positive = predict_positive(onnx_session(bundle / ONNX_FILE, threads=2), sequences)
    confident_pos = np.flatnonzero(positive >= threshold)
    confident_neg = np.flatnonzero(positive <= 1.0 - threshold)
    keep = min(len(confident_pos), len(confident_neg))
    # the most confident of each class first
    chosen_pos = confident_pos[np.argsort(-positive[confident_pos])][:keep]
    chosen_neg = confident_neg[np.argsort(positive[confident_neg])][:keep]
    chosen = [(int(i), 1) for i in chosen_pos] + [(int(i), 0) for i in chosen_neg]
    return [sequences[i] for i, _ in chosen], [label for _, label in chosen]
