"""Fine-tuning a bundle: the counterfactual pairs, the templates, the tokenizer upgrade, the command."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest
import torch

from model.bundle import TOKENIZER_FILE, load_card
from model.tokenizer import NUMBER, PLACEHOLDERS, URL, Tokenizer
from tests.bundles import make_bundle
from tests.training.synthetic import fine_tuning_start, write_pairs, write_tiny_imdb
from training import templates
from training.counterfactual import flatten, load_pairs, pair_accuracy
from training.data import load_imdb
from training.finetune import main, training_mixture, upgrade_tokenizer

PAIRS = [
    ("Positive", "a wonderful film", "7"),
    ("Negative", "an awful film", "7"),
    ("Negative", '"a ""dull"" plot"', "9"),
    ("Positive", '"a ""moving"" plot"', "9"),
]


def test_pairs_are_read_by_batch_and_scored_both_right(tmp_path: Path) -> None:
    pairs = load_pairs(write_pairs(tmp_path / "cad", PAIRS), "train")
    assert [(p.batch_id, p.labels) for p in pairs] == [("7", (1, 0)), ("9", (0, 1))]
    assert pairs[1].texts == ('a "dull" plot', 'a "moving" plot')  # TSV quoting undone
    texts, labels = flatten(pairs)
    assert labels == [1, 0, 0, 1] and len(texts) == 4
    assert pair_accuracy(pairs, [0.9, 0.1, 0.2, 0.8]) == 1.0
    assert pair_accuracy(pairs, [0.9, 0.1, 0.2, 0.4]) == 0.5  # the second pair's edit is missed
    assert pair_accuracy(pairs, [0.9, 0.9, 0.1, 0.1]) == 0.0  # each pair half right counts nothing


def test_a_pair_that_is_not_one_positive_and_one_negative_is_refused(tmp_path: Path) -> None:
    folder = write_pairs(tmp_path / "cad", [("Positive", "a", "1"), ("Positive", "b", "1")])
    with pytest.raises(ValueError, match="batch 1"):
        load_pairs(folder, "train")


def test_templates_are_reproducible_and_labelled() -> None:
    texts, targets = templates.template_examples(300, seed=3)
    assert (texts, targets) == templates.template_examples(300, seed=3)
    assert set(targets) <= {0.0, 0.5, 0.8, 1.0} and len(set(targets)) == 4
    assert any("http" in text or "www." in text for text in texts)


def test_the_upgraded_tokenizer_adds_placeholders_and_keeps_every_other_answer(tmp_path: Path) -> None:
    _, model, tokenizer = make_bundle(tmp_path / "tiny")
    upgraded_tokenizer, upgraded = upgrade_tokenizer(tokenizer, model)
    assert upgraded_tokenizer.version == 2
    assert upgraded_tokenizer.vocabulary.itos[-3:] == PLACEHOLDERS
    assert upgraded.config.vocab_size == len(tokenizer.vocabulary) + 3
    ids = torch.tensor([tokenizer.encode("a wonderful film with great acting")])
    with torch.no_grad():
        assert torch.equal(
            model.eval()(ids, torch.tensor([ids.shape[1]])), upgraded.eval()(ids, torch.tensor([6]))
        )
    assert upgraded_tokenizer.encode("great http://x.io")[-1] == upgraded_tokenizer.vocabulary.itos.index(URL)
    assert NUMBER in upgraded_tokenizer.tokenize("in 1999")


def test_the_command_writes_a_bundle_with_the_new_tokenizer(tmp_path: Path) -> None:
    bundle, data, cad = fine_tuning_start(tmp_path, PAIRS)
    card = load_card(bundle)
    output = tmp_path / "run"
    main([
        "--bundle", str(bundle), "--data", str(data), "--output", str(output), "--counterfactual", str(cad),
        "--counterfactual-repeats", "2", "--templates", "12", "--insertion-rate", "0.5",
        "--tokenizer-version", "2", "--replay", "6",
        "--replay-targets", "teacher", "--epochs", "1", "--batch-size", "4", "--threads", "1",
        "--limit-reviews", "8",
    ])  # fmt: skip
    written = output / "bundle"
    assert Tokenizer.load(written / TOKENIZER_FILE).version == 2
    made = load_card(written)
    assert made["model_config"]["vocab_size"] == card["model_config"]["vocab_size"] + 3
    assert (
        made["metrics"]["test"]["examples"] == 16
        and "2 counterfactual pairs (Kaushik et al., 2020) x 2" in made["training"]["embeddings"]
        and "6 IMDB training reviews with the starting bundle's P(positive)" in made["training"]["embeddings"]
    )


def test_teacher_targets_are_the_starting_bundles_own_probabilities(tmp_path: Path) -> None:
    _, model, tokenizer = make_bundle(tmp_path / "tiny")
    data = write_tiny_imdb(tmp_path / "imdb", per_label=8, unlabelled=2)
    reviews = load_imdb(str(data), expect_full=False).train
    args = argparse.Namespace(
        replay=4, counterfactual="", counterfactual_repeats=1, insertion_rate=0.0, templates=0
    )
    seen: list[str] = []

    def teacher(texts: list[str]) -> list[float]:
        seen.extend(texts)
        ids = [torch.tensor([tokenizer.encode(text)]) for text in texts]
        with torch.no_grad():
            return [float(model.eval()(i, torch.tensor([i.shape[1]])).softmax(-1)[0, 1]) for i in ids]

    texts, targets, described = training_mixture(args, reviews, random.Random(0), teacher)
    assert seen == texts and len(texts) == 4 and "P(positive) as targets" in described
    assert all(0.0 < t < 1.0 for t in targets)  # probabilities, not the labels 0 and 1
    labelled, hard, _ = training_mixture(args, reviews, random.Random(0))
    assert labelled == texts and set(hard) <= {0.0, 1.0}
