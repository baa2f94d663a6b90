"""An n-gram teacher for distillation: logistic regression on naive-Bayes-scaled 1-3-grams.

The features are NBSVM's (Wang & Manning, 2012): which 1-, 2- and 3-grams a review contains,
each scaled by its log-count ratio ``log(p / |p|) - log(q / |q|)`` between the positive and
the negative training reviews. A logistic loss stands in for NBSVM's hinge loss, so the model
gives P(positive) and can sit in an ensemble of teachers next to the LSTMs. Its mistakes
differ from theirs (it reads phrases, not order over hundreds of words), which is what a
teacher adds to an ensemble. It is never served: the student LSTM learns from it.

It reads the project's tokenisation (:func:`model.tokenizer.tokenize`), every token of a
review: words outside the vocabulary and past ``max_tokens`` too. ``python -m
training.self_training ... --ngram`` ranks it among the bundles; the word ``ngram`` in
``--pseudo-labels`` makes it a teacher, fitted on that run's labelled training split (a bundle
folder of that name is given as ``./ngram``). liblinear shuffles with numpy's global
generator, which ``training.train`` seeds (``--seed``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

NGRAM_TEACHER = "ngram"  # its name among the teacher bundles of --pseudo-labels
CHUNK = 5000  # reviews counted at a time when predicting: sklearn's counting lists every n-gram


def _token_lists(token_lists: Sequence[Sequence[str]]) -> Sequence[Sequence[str]]:
    # a text is a Sequence[str] too, and would be read as characters
    if any(isinstance(tokens, str) for tokens in token_lists):
        raise TypeError("the n-gram teacher reads tokenised reviews (lists of tokens), not texts")
    return token_lists


def _ngrams(tokens: Sequence[str], max_n: int) -> Iterator[str]:
    for n in range(1, max_n + 1):
        for start in range(len(tokens) - n + 1):
            yield " ".join(tokens[start : start + n])


class NgramTeacher:
    """NB-scaled binary n-gram features and a logistic regression on them: ``fit``, ``positive``."""

    def __init__(self, max_n: int = 3, c: float = 1.0, alpha: float = 1.0) -> None:
        """``max_n``: longest n-gram; ``c``: inverse L2 strength; ``alpha``: the ratio's smoothing."""
        self.alpha = alpha
        self.vectorizer = CountVectorizer(analyzer=partial(_ngrams, max_n=max_n), binary=True)
        self.ratio: np.ndarray | None = None
        self.classifier = LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=1000)

    def _scaled(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        return counts.multiply(self.ratio).tocsr()

    def fit(self, token_lists: Sequence[Sequence[str]], labels: Sequence[int]) -> NgramTeacher:
        """Learn the n-grams, their log-count ratios and the classifier from labelled reviews."""
        y = np.asarray(labels)
        if set(np.unique(y)) != {0, 1}:
            raise ValueError("the n-gram teacher needs labelled reviews of both classes (0 and 1)")
        counts = self.vectorizer.fit_transform(_token_lists(token_lists))
        # reviews holding each n-gram, per class (integers: exact in float64)
        p = self.alpha + counts.T @ (y == 1).astype(np.float64)
        q = self.alpha + counts.T @ (y == 0).astype(np.float64)
        self.ratio = np.log(p / p.sum()) - np.log(q / q.sum())
        self.classifier.fit(self._scaled(counts), y)
        return self

    def positive(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """P(positive) of each tokenised review."""
        if self.ratio is None:
            raise RuntimeError("fit the n-gram teacher before asking it")
        token_lists = _token_lists(token_lists)
        chunks = [
            self.classifier.predict_proba(
                self._scaled(self.vectorizer.transform(token_lists[i : i + CHUNK]))
            )[:, 1]
            for i in range(0, len(token_lists), CHUNK)
        ]
        return np.concatenate(chunks) if chunks else np.empty(0)
