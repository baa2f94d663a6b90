"""The n-gram teacher: NB log-count ratios, phrases it needs n-grams for, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from model.tokenizer import tokenize
from training import ngram
from training.ngram import NgramTeacher

# "good" and "bad" appear in both classes; only the bigrams "not good" / "not bad" decide
POSITIVE = ["a good film", "good acting", "not bad at all", "the plot was not bad", "good and not bad"]
NEGATIVE = ["not good", "the acting was not good", "a bad film", "bad plot", "bad and not good"]


def _fit(max_n: int) -> NgramTeacher:
    texts = POSITIVE * 4 + NEGATIVE * 4
    labels = [1] * len(POSITIVE) * 4 + [0] * len(NEGATIVE) * 4
    return NgramTeacher(max_n=max_n, c=10.0).fit([tokenize(t) for t in texts], labels)


def test_log_count_ratio_has_the_sign_of_the_class_a_word_belongs_to() -> None:
    teacher = _fit(max_n=2)
    ratio = dict(zip(teacher.vectorizer.get_feature_names_out(), teacher.ratio, strict=True))
    assert ratio["not bad"] > 0 > ratio["not good"]
    # its counts by hand: "not bad" is in 3 of the 5 positive reviews (x4) and in none of the
    # negative ones; the two classes' totals come from the vectorizer
    counts = teacher.vectorizer.transform([tokenize(t) for t in POSITIVE * 4 + NEGATIVE * 4])
    p, q = 1 + counts[:20].sum(axis=0).A1, 1 + counts[20:].sum(axis=0).A1
    index = teacher.vectorizer.vocabulary_["not bad"]
    assert ratio["not bad"] == pytest.approx(np.log(13 / p.sum()) - np.log(1 / q.sum()))
    assert (p[index], q[index]) == (13, 1)


def test_bigrams_decide_what_single_words_cannot() -> None:
    held_out = ["really not bad", "not good really"]
    bigrams = _fit(max_n=2).positive([tokenize(t) for t in held_out])
    assert bigrams[0] > 0.5 > bigrams[1]
    words = _fit(max_n=1).positive([tokenize(t) for t in held_out])
    # with words alone both reviews read as "not" plus a word seen in both classes
    assert abs(words[0] - words[1]) < abs(bigrams[0] - bigrams[1])


def test_refusals() -> None:
    with pytest.raises(ValueError, match="both classes"):
        NgramTeacher().fit([["good"], ["fine"]], [1, 1])
    with pytest.raises(RuntimeError, match="fit the n-gram teacher"):
        NgramTeacher().positive([["good"]])


def test_texts_are_refused_and_no_reviews_give_no_probabilities(monkeypatch) -> None:
    teacher = _fit(max_n=2)
    with pytest.raises(TypeError, match="not texts"):
        teacher.positive(["a good film"])  # a text would be read as characters
    with pytest.raises(TypeError, match="not texts"):
        NgramTeacher().fit(["a good film", "a bad film"], [1, 0])
    assert teacher.positive([]).shape == (0,)
    # predicting in chunks gives what one call gives
    many = [tokenize(t) for t in (POSITIVE + NEGATIVE) * 3]
    whole = teacher.positive(many)
    monkeypatch.setattr(ngram, "CHUNK", 7)
    np.testing.assert_array_equal(teacher.positive(many), whole)
