"""Small synthetic training data for tests that run :func:`training.loop.fit` in seconds, and a
tiny IMDB folder for tests that run whole commands."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from model.bundle import CARD_FILE
from model.tokenizer import PAD, UNK, Vocabulary
from training.data import Splits

SMALL = {"train.epochs": 1, "train.batch_size": 4, "model.embed_dim": 6, "model.hidden_size": 4}
VOCAB = 30  # token ids 2..29; 0 and 1 are <pad> and <unk>
VOCABULARY = Vocabulary((PAD, UNK, *(f"word{i}" for i in range(2, VOCAB))))


def random_splits(reviews: int = 16) -> Splits:
    """``reviews`` random reviews of 1-11 tokens with alternating labels; the first 4 also validate."""
    torch.manual_seed(0)
    sequences = [torch.randint(2, VOCAB, (int(n),)).tolist() for n in torch.randint(1, 12, (reviews,))]
    labels = [i % 2 for i in range(reviews)]
    return Splits(
        train=(sequences, labels),
        validation=(sequences[:4], labels[:4]),
        test=([], []),
        unlabelled_tokens=[],
        train_tokens=[],
        unlabelled_texts=[],
        vocabulary=VOCABULARY,
    )


POSITIVE = ["wonderful", "great", "moving", "superb", "brilliant", "loved", "charming", "best"]
NEGATIVE = ["awful", "boring", "dull", "worst", "terrible", "hated", "weak", "mess"]
NEUTRAL = ["the", "film", "a", "plot", "actor", "scene", "and", "was", "it", "movie", "story", "of"]


def write_tiny_imdb(folder: Path, per_label: int = 60, unlabelled: int = 60, seed: int = 0) -> Path:
    """An extracted IMDB folder (``aclImdb/{train,test}/{pos,neg}``, ``train/unsup``) of made-up
    reviews whose label shows in their words: ``per_label`` reviews per label and part."""
    rng = random.Random(seed)

    def review(words: list[str]) -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randrange(8, 40))) + "."

    parts = {
        ("train", "pos"): POSITIVE,
        ("train", "neg"): NEGATIVE,
        ("test", "pos"): POSITIVE,
        ("test", "neg"): NEGATIVE,
        ("train", "unsup"): POSITIVE + NEGATIVE,
    }
    for (part, polarity), words in parts.items():
        target = folder / "aclImdb" / part / polarity
        target.mkdir(parents=True)
        for number in range(unlabelled if polarity == "unsup" else per_label):
            rating = 0 if polarity == "unsup" else (8 if polarity == "pos" else 2)
            (target / f"{number}_{rating}.txt").write_text(review(words + NEUTRAL * 2))
    return folder


def write_pairs(folder: Path, rows: list[tuple[str, str, str]], split: str = "train") -> Path:
    """A counterfactual-pairs folder (``<split>_paired.tsv``, Kaushik et al.'s columns) of ``rows``."""
    folder.mkdir(exist_ok=True)
    lines = ["Sentiment\tText\tbatch_id", *("\t".join(row) for row in rows)]
    (folder / f"{split}_paired.tsv").write_text("\n".join(lines) + "\n")
    return folder


def fine_tuning_start(folder: Path, pairs: list[tuple[str, str, str]]) -> tuple[Path, Path, Path]:
    """A tiny bundle whose card names its run's split (as a trained bundle's does), a tiny IMDB
    folder and counterfactual ``pairs``: what ``training.finetune`` starts from."""
    from tests.bundles import make_bundle  # builds ONNX graphs: only for the tests that need one

    bundle, _, _ = make_bundle(folder / "tiny")
    card = json.loads((bundle / CARD_FILE).read_text())
    card["train_config"] = {"seed": 1, "validation_fraction": 0.25}
    (bundle / CARD_FILE).write_text(json.dumps(card))
    data = write_tiny_imdb(folder / "imdb", per_label=8, unlabelled=2)
    return bundle, data, write_pairs(folder / "cad", pairs)


def tiny_lm_run(folder: Path) -> str:
    """``training.lm`` for 3 steps on a tiny IMDB copy with a tiny classifier's vocabulary, as a
    user runs it: ``folder/run`` holds ``lm.pt`` and its corpus cache; returns the tokenizer's path."""
    from tests.bundles import CORPUS, make_bundle
    from training import lm

    data = folder / "aclImdb"
    for part, kinds in (("train", ("pos", "neg", "unsup")), ("test", ("pos", "neg"))):
        for kind in kinds:
            (data / part / kind).mkdir(parents=True)
            for index in range(10):
                text = f"{CORPUS[index % 4]} {CORPUS[(index + 1) % 4]}"
                (data / part / kind / f"{index}_{8 if kind == 'pos' else 2}.txt").write_text(text)
    classifier, _, _ = make_bundle(folder / "classifier")
    tokenizer = str(classifier / "tokenizer.json")
    lm.main(
        ["--data", str(data), "--tokenizer", tokenizer, "--output", str(folder / "run"), "--minutes", "5",
         "--max-steps", "3", "--embed-dim", "8", "--hidden-size", "16", "--batch-size", "4",
         "--bptt", "4", "--limit-reviews", "1000", "--watch-reviews", "2"]
    )  # fmt: skip
    return tokenizer
