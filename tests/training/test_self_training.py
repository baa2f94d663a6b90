"""Pseudo-labelling: confident, balanced, and only with the teacher's own vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from model.tokenizer import Vocabulary
from tests.bundles import CORPUS, make_bundle
from training.evaluate import onnx_session, predict_positive
from training.self_training import pseudo_label


def test_pseudo_labels_are_confident_and_balanced(tmp_path) -> None:
    folder, _, tokenizer = make_bundle(tmp_path / "teacher")
    texts = [f"{a} {b}" for a in CORPUS for b in CORPUS] * 3
    positive = predict_positive(onnx_session(folder / "model.onnx"), [tokenizer.encode(t, 64) for t in texts])
    threshold = float(np.quantile(np.maximum(positive, 1 - positive), 0.3))
    sequences, labels = pseudo_label(folder, texts, tokenizer.vocabulary, threshold, max_tokens=64)
    assert labels.count(1) == labels.count(0) > 0
    kept = predict_positive(onnx_session(folder / "model.onnx"), sequences)
    for p, label in zip(kept, labels, strict=True):
        assert (p >= threshold) if label == 1 else (p <= 1 - threshold)


def test_pseudo_labels_refuse_another_vocabulary(tmp_path) -> None:
    folder, _, _ = make_bundle(tmp_path / "teacher")
    other = Vocabulary(("<pad>", "<unk>", "film"))
    with pytest.raises(ValueError, match="vocabulary differs"):
        pseudo_label(folder, ["a film"], other, 0.9, max_tokens=64)
