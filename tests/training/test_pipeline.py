"""End to end on a slice of the real archive: train a tiny model, export, verify, evaluate, resume."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from model.bundle import load_card
from model.reference import load_reference
from model.tokenizer import Tokenizer, tokenize
from tests.bundles import make_bundle
from training import evaluate, train
from training.data import load_imdb, stratified_split, take_per_label
from training.evaluate import onnx_session
from training.ngram import NgramTeacher

TINY = [
    "--embed-dim",
    "16",
    "--hidden-size",
    "8",
    "--num-layers",
    "2",
    "--bidirectional",
    "true",
    "--limit-reviews",
    "60",
    "--max-tokens",
    "300",
    "--batch-size",
    "16",
    "--word2vec-epochs",
    "1",
    "--threads",
    "2",
]


@pytest.mark.slow
def test_train_export_evaluate_and_resume(tmp_path, imdb_archive, capsys, monkeypatch) -> None:
    output = tmp_path / "run"
    args = ["--data", str(imdb_archive), "--output", str(output), *TINY]
    train.main([*args, "--epochs", "1"])
    bundle = output / "bundle"
    for name in (
        "model.onnx",
        "tokenizer.json",
        "model_card.json",
        "MODEL_CARD.md",
        "training_curves.png",
        "test_evaluation.png",
        "drift_reference.json",
    ):
        assert (bundle / name).is_file(), name
    card = load_card(bundle)
    assert card["parity"]["torch_vs_onnx"] <= 1e-5
    assert card["parity"]["alone_vs_batched"] <= 1e-5
    assert card["parity"]["min_length"] < card["parity"]["max_length"]
    assert card["model_config"]["num_layers"] == 2 and card["model_config"]["bidirectional"] is True
    assert card["dataset"]["sizes"] == {"train": 108, "validation": 12, "test": 120}
    assert len(card["dataset"]["sha256"]) == 64
    assert card["training"]["epochs_run"] == 1
    assert set(card["metrics"]["test"]) >= {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "confusion_matrix",
        "ece",
    }
    assert sum(map(sum, card["metrics"]["test"]["confusion_matrix"])) == 120

    # the evaluation command scores the same ONNX model and agrees with the card
    result = evaluate.evaluate_bundle(bundle, str(imdb_archive), limit_reviews=60)
    assert result["accuracy"] == pytest.approx(card["metrics"]["test"]["accuracy"])

    # the drift reference: written at export from the test set, or again by the evaluation command
    assert load_reference(bundle)["examples"] == 120
    again = ["--bundle", str(bundle), "--data", str(imdb_archive), "--limit-reviews", "10", "--reference"]
    evaluate.main(again)
    assert load_reference(bundle)["examples"] == 20

    # the tokenizer in the bundle feeds the ONNX graph directly
    tokenizer = Tokenizer.load(bundle / "tokenizer.json")
    ids = np.array([tokenizer.encode("A wonderful, moving film.")])
    probabilities = onnx_session(bundle / "model.onnx").run(
        ["probabilities"], {"token_ids": ids, "lengths": np.array([ids.shape[1]])}
    )[0]
    assert probabilities.shape == (1, 2) and abs(probabilities.sum() - 1) < 1e-6

    # the compose train job: the same configuration and data again is a quick no-op
    card_text = (bundle / "model_card.json").read_text()
    assert len(load_card(bundle)["fingerprint"]) == 64
    train.main([*args, "--epochs", "1", "--skip-if-current"])
    assert "nothing to do" in capsys.readouterr().out
    assert (bundle / "model_card.json").read_text() == card_text

    # resuming continues from the saved epoch instead of starting over
    train.main([*args, "--epochs", "2", "--resume", "--skip-if-current"])  # a new config: trains
    history = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert load_card(bundle)["training"]["epochs_run"] == 2

    def from_stage_one(folder, teachers: str, *extra: str) -> dict:
        """One epoch from stage 1's best checkpoint with ``teachers`` labelling unlabelled reviews."""
        start = ["--embeddings", "random", "--init-from", str(output / "best.pt"), "--epochs", "1"]
        labels = ["--pseudo-labels", teachers, "--pseudo-threshold", "0.5", *extra]
        train.main([*args, "--output", str(folder), *start, *labels])
        return load_card(folder / "bundle")

    # stage 2: self-training, stage 1's bundle giving hard labels
    stage_two = tmp_path / "stage-two"
    card = from_stage_one(stage_two, str(bundle))
    assert card["training"]["embeddings"] == f"from {output / 'best.pt'}"
    added = int(card["training"]["self_training"].split(" unlabelled reviews pseudo-labelled")[0])
    assert added % 2 == 0 and added <= 60  # balanced, from the 60 unlabelled reviews of the slice
    assert card["dataset"]["sizes"]["train"] == 108 + added

    # stage 3: distillation, an ensemble of two networks and the n-gram model giving soft targets
    fitted, asked = [], []
    real_fit, real_positive = NgramTeacher.fit, NgramTeacher.positive
    monkeypatch.setattr(NgramTeacher, "fit", lambda self, t, y: fitted.append((t, y)) or real_fit(self, t, y))
    monkeypatch.setattr(NgramTeacher, "positive", lambda self, t: asked.append(t) or real_positive(self, t))
    teachers = f"{bundle},{stage_two / 'bundle'},ngram"
    card = from_stage_one(tmp_path / "distilled", teachers, "--pseudo-soft", "true")
    note = card["training"]["self_training"]
    assert note.startswith("60 unlabelled reviews with soft targets (distillation): the mean P(positive)")
    assert f"of {bundle}, {stage_two / 'bundle'}, ngram, kept" in note
    # the n-gram model learns the labelled training reviews only, and labels the unlabelled ones
    dataset = load_imdb(str(imdb_archive), expect_full=False)
    training_part, validation = stratified_split(take_per_label(dataset.train, 60), 0.1, 1234)
    [(tokens, labels)] = fitted
    assert tokens == [tokenize(r.text) for r in training_part] and labels == [r.label for r in training_part]
    assert not {tuple(tokenize(r.text)) for r in validation} & {tuple(t) for t in tokens}
    assert asked == [[tokenize(r.text) for r in dataset.unsup[:60]]]
    with pytest.raises(SystemExit, match="a teacher is named twice"):
        from_stage_one(tmp_path / "twice", "ngram,ngram", "--pseudo-soft", "true")
    assert card["dataset"]["sizes"]["train"] == 108 + 60


def test_bad_archive_gives_one_clear_error(tmp_path, capsys) -> None:
    broken = tmp_path / "aclImdb_v1.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08 this is not really gzip")
    with pytest.raises(SystemExit, match=r"aclImdb_v1\.tar\.gz: not a readable IMDB archive"):
        train.main(["--data", str(broken), "--output", str(tmp_path / "run")])
    bundle, _, _ = make_bundle(tmp_path / "bundle")
    with pytest.raises(SystemExit, match=r"missing\.tar\.gz: no such file"):
        evaluate.main(["--data", str(tmp_path / "missing.tar.gz"), "--bundle", str(bundle)])
    with pytest.raises(SystemExit, match="no model card"):
        evaluate.main(["--data", str(broken), "--bundle", str(tmp_path)])


@pytest.mark.parametrize(
    "module",
    [
        "training.train",
        "training.pretrain",
        "training.recipe",
        "training.evaluate",
        "experiments.variants",
        "experiments.long_range",
        "app",
    ],
)
def test_cli_help_runs(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
