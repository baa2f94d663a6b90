"""The language model's text: IMDB reviews as token ids over the classifier's vocabulary.

One corpus, shared by the LSTM language model (:mod:`training.lm`) and its Kneser-Ney anchor
(:mod:`experiments.lm_anchor`), so both are trained and tested on the very same tokens:

- ``train``: the 25k labelled training reviews and the 50k unlabelled ones, less ``validation``,
  each capped at its first ``train_tokens`` tokens (long reviews add little beyond their start);
- ``validation``: 1,000 training reviews drawn with the seed, held out to watch training;
- ``test``: the 25k IMDB test reviews, each capped at ``test_tokens`` (the classifier's cap).

A word outside the vocabulary is ``<unk>`` (id 1) and is predicted like any other word: both
models are scored on every token, ``<unk>`` included, and the anchor's comparison also reports
the perplexity over the known words alone. Each review is read from its start: the model is
asked for its first token after the start marker ``<pad>`` (id 0, never a word), so every token
of a review is predicted, and nothing after its last one.

The encoded corpus is cached as ``.npz`` beside the run (tokenising 100k reviews takes minutes),
keyed by the vocabulary's digest so a cache of another vocabulary is never read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.tokenizer import Tokenizer
from training.checkpoint import vocabulary_digest
from training.data import load_imdb

START_ID = 0  # "<pad>": never a word, so it can mark a review's start
VALIDATION_REVIEWS = 1000


@dataclass
class LMCorpus:
    """Token-id sequences of the three parts (each a list of reviews)."""

    train: list[np.ndarray]
    validation: list[np.ndarray]
    test: list[np.ndarray]

    def summary(self) -> dict:
        """Review and token counts, and the share of ``<unk>``, of each part."""
        out = {}
        for name in ("train", "validation", "test"):
            part = getattr(self, name)
            tokens = sum(len(s) for s in part)
            unknown = sum(int((s == 1).sum()) for s in part)
            out[name] = {"reviews": len(part), "tokens": tokens, "unk_share": round(unknown / tokens, 4)}
        return out


def _pack(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(s) for s in sequences]).astype(np.int64)
    return np.concatenate(sequences).astype(np.int32), offsets


def _unpack(ids: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [ids[offsets[i] : offsets[i + 1]].astype(np.int64) for i in range(len(offsets) - 1)]


def build_corpus(
    data: str | None,
    tokenizer: Tokenizer,
    train_tokens: int,
    test_tokens: int,
    seed: int,
    expect_full: bool = True,
) -> LMCorpus:
    """Read and encode the archive (see the module docstring for the parts); ``expect_full=False``
    accepts a partial archive (tests), holding out a fifth of its training reviews at most."""
    dataset = load_imdb(data, expect_full=expect_full)
    training = list(dataset.train) + list(dataset.unsup)
    held_out = min(VALIDATION_REVIEWS, len(dataset.train) // 5)
    held = set(random.Random(seed).sample(range(len(dataset.train)), held_out))

    def encode(text: str, cap: int) -> np.ndarray:
        return np.asarray(tokenizer.encode(text, cap), dtype=np.int64)

    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for index, review in enumerate(training):
        if index in held:
            parts["validation"].append(encode(review.text, test_tokens))
        else:
            parts["train"].append(encode(review.text, train_tokens))
    parts["test"] = [encode(r.text, test_tokens) for r in dataset.test]
    return LMCorpus(**parts)


def load_corpus(
    cache: Path,
    data: str | None,
    tokenizer: Tokenizer,
    train_tokens: int = 400,
    test_tokens: int = 1000,
    seed: int = 0,
    expect_full: bool = True,
) -> LMCorpus:
    """The corpus from ``cache`` when it was made with these settings, else built and cached."""
    key = f"{vocabulary_digest(tokenizer.vocabulary)}:{train_tokens}:{test_tokens}:{seed}"
    if cache.exists():
        saved = np.load(cache)
        if str(saved["key"]) == key:
            return LMCorpus(
                **{
                    p: _unpack(saved[f"{p}_ids"], saved[f"{p}_offsets"])
                    for p in ("train", "validation", "test")
                }
            )
    corpus = build_corpus(data, tokenizer, train_tokens, test_tokens, seed, expect_full)
    arrays = {}
    for part in ("train", "validation", "test"):
        arrays[f"{part}_ids"], arrays[f"{part}_offsets"] = _pack(getattr(corpus, part))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=np.array(key), **arrays)
    return corpus


def sample_test_reviews(test: list[np.ndarray], reviews: int) -> list[np.ndarray]:
    """Every k-th test review, ``reviews`` of them (the test part is in (label, id) order, so
    both labels are equally represented): the perplexity of both models is measured on it."""
    if reviews <= 0 or reviews >= len(test):
        return list(test)
    step = len(test) / reviews
    return [test[int(i * step)] for i in range(reviews)]
