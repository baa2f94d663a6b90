"""Teachers' labels: hard ones confident and balanced, soft ones the ensemble's mean, one vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.tokenizer import Vocabulary
from tests.bundles import CORPUS, make_bundle
from training.evaluate import onnx_session, predict_positive
from training.loop import hard_labels, summed_loss
from training.self_training import pseudo_label, rank_sets

TEXTS = [f"{a} {b}" for a in CORPUS for b in CORPUS] * 3


def _positive(folder, tokenizer, texts) -> np.ndarray:
    return predict_positive(onnx_session(folder / "model.onnx"), [tokenizer.encode(t, 64) for t in texts])


def test_pseudo_labels_are_confident_and_balanced(tmp_path) -> None:
    folder, _, tokenizer = make_bundle(tmp_path / "teacher")
    positive = _positive(folder, tokenizer, TEXTS)
    threshold = float(np.quantile(np.maximum(positive, 1 - positive), 0.3))
    sequences, labels = pseudo_label([folder], TEXTS, tokenizer.vocabulary, threshold, max_tokens=64)
    assert labels.count(1) == labels.count(0) > 0
    kept = predict_positive(onnx_session(folder / "model.onnx"), sequences)
    for p, label in zip(kept, labels, strict=True):
        assert (p >= threshold) if label == 1 else (p <= 1 - threshold)


def test_soft_targets_are_the_teachers_mean(tmp_path) -> None:
    first, _, tokenizer = make_bundle(tmp_path / "first", seed=1)
    second, _, _ = make_bundle(tmp_path / "second", cell="gru", seed=2)
    mean = (_positive(first, tokenizer, TEXTS) + _positive(second, tokenizer, TEXTS)) / 2
    sequences, targets = pseudo_label([first, second], TEXTS, tokenizer.vocabulary, 0.5, 64, soft=True)
    assert sequences == [tokenizer.encode(t, 64) for t in TEXTS]  # threshold 0.5 keeps every review
    np.testing.assert_allclose(targets, mean, rtol=0, atol=1e-12)
    threshold = float(np.quantile(np.maximum(mean, 1 - mean), 0.5))
    _, confident = pseudo_label([first, second], TEXTS, tokenizer.vocabulary, threshold, 64, soft=True)
    assert 0 < len(confident) < len(TEXTS)
    assert all(max(p, 1 - p) >= threshold for p in confident)


def test_a_teacher_that_is_not_a_bundle_weighs_as_much_as_one(tmp_path) -> None:
    folder, _, tokenizer = make_bundle(tmp_path / "teacher")
    other = np.linspace(0.0, 1.0, len(TEXTS))
    _, targets = pseudo_label([folder], TEXTS, tokenizer.vocabulary, 0.5, 64, soft=True, others=[other])
    np.testing.assert_allclose(targets, (_positive(folder, tokenizer, TEXTS) + other) / 2, rtol=0, atol=1e-12)
    _, alone = pseudo_label([], TEXTS, tokenizer.vocabulary, 0.5, 64, soft=True, others=[other])
    np.testing.assert_allclose(alone, other, rtol=0, atol=0)
    with pytest.raises(ValueError, match="gave 3 probabilities for"):
        pseudo_label([folder], TEXTS, tokenizer.vocabulary, 0.5, 64, soft=True, others=[other[:3]])
    with pytest.raises(ValueError, match="no teacher given"):
        pseudo_label([], TEXTS, tokenizer.vocabulary, 0.5, 64)


def test_sets_of_teachers_are_ranked_by_their_mean_up_to_the_whole_set() -> None:
    labels = np.array([1, 1, 0, 0])
    positive = {  # only the three together are right on all four reviews
        "a": np.array([0.9, 0.2, 0.1, 0.3]),
        "b": np.array([0.2, 0.9, 0.4, 0.8]),
        "c": np.array([0.45, 0.6, 0.6, 0.1]),
    }
    ranked = rank_sets(positive, labels)
    assert len(ranked) == 7 and ranked[0] == (1.0, ("a", "b", "c"))
    assert all(accuracy < 1.0 for accuracy, _ in ranked[1:])
    # among equals, the smaller set first: "a" alone and "a" + "b" both score 0.75
    scores = [(accuracy, chosen) for accuracy, chosen in ranked if accuracy == 0.75]
    assert scores[0] == (0.75, ("a",)) and ("a", "b") in [chosen for _, chosen in scores]
    assert max(len(chosen) for _, chosen in rank_sets(positive, labels, max_size=2)) == 2


def test_pseudo_labels_refuse_another_vocabulary(tmp_path) -> None:
    folder, _, _ = make_bundle(tmp_path / "teacher")
    other = Vocabulary(("<pad>", "<unk>", "film"))
    with pytest.raises(ValueError, match="vocabulary differs"):
        pseudo_label([folder], ["a film"], other, 0.9, max_tokens=64)


def test_soft_loss_is_the_label_loss_for_labels_and_cross_entropy_otherwise() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 2)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    # a labelled review's 0/1 inside a float (soft) batch gives exactly its label's loss
    torch.testing.assert_close(summed_loss(logits, labels.float()), summed_loss(logits, labels))
    soft = torch.tensor([0.1, 0.9, 0.6, 0.3, 1.0, 0.0])
    log_q = torch.log_softmax(logits, 1)
    expected = -(soft * log_q[:, 1] + (1 - soft) * log_q[:, 0]).sum()
    torch.testing.assert_close(summed_loss(logits, soft), expected)
    assert hard_labels(soft).tolist() == [0, 1, 1, 0, 1, 0]
    assert hard_labels(labels) is labels


def test_teacher_sets_are_ranked_by_validation_accuracy_only(tmp_path, monkeypatch) -> None:
    import json

    from training import data, self_training

    folders = [make_bundle(tmp_path / f"t{seed}", seed=seed)[0] for seed in (1, 2, 3)]
    for folder in folders:
        card = json.loads((folder / "model_card.json").read_text())
        card["dataset"] = {"split_seed": 7, "validation_fraction": 0.5}
        (folder / "model_card.json").write_text(json.dumps(card))
    rng = np.random.default_rng(0)
    train = [data.Review(i, t, int(rng.integers(2)), 0) for i, t in enumerate(TEXTS)]
    # the test reviews are poisoned: reading them would fail
    monkeypatch.setattr(self_training, "load_imdb", lambda path: data.ImdbDataset(train, None, []))
    ranked = self_training.rank_teacher_sets(folders, None)
    assert len(ranked) == 7  # every non-empty set of three
    _, validation = data.stratified_split(train, 0.5, 7)
    tokenizer = make_bundle(tmp_path / "again", seed=1)[2]
    labels = np.array([r.label for r in validation])
    for accuracy, chosen in ranked:
        mean = np.mean([_positive(Path(name), tokenizer, [r.text for r in validation]) for name in chosen], 0)
        assert accuracy == ((mean >= 0.5) == labels).mean()
    assert (
        {chosen for _, chosen in ranked}
        == {  # every set, once
            tuple(str(f) for f in folders[i:j]) for i in range(3) for j in range(i + 1, 4)
        }
        | {(str(folders[0]), str(folders[2]))}
    )

    card = json.loads((folders[0] / "model_card.json").read_text())
    card["dataset"]["split_seed"] = 8
    (folders[0] / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="different splits"):
        self_training.rank_teacher_sets(folders, None)
