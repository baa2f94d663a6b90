"""Failure rates from P(positive): the neutral band, each kind's failure, the means."""

from __future__ import annotations

import numpy as np
import pytest

from behaviour.scoring import fails, goal_rate, score, three_way
from behaviour.suite import NEGATIVE, NEUTRAL, POSITIVE, Case, Test


@pytest.mark.parametrize(
    ("positive", "label"),
    [(0.0, NEGATIVE), (0.33, NEGATIVE), (1 / 3, NEUTRAL), (0.5, NEUTRAL), (2 / 3, NEUTRAL), (0.67, POSITIVE)],
)
def test_three_way_reads_the_neutral_band(positive: float, label: str) -> None:
    assert three_way(positive) == label


def test_each_kind_fails_as_its_expectation_says() -> None:
    not_positive = Case(("x",), frozenset({NEGATIVE, NEUTRAL}))
    assert fails("MFT", not_positive, [0.9]) and not fails("MFT", not_positive, [0.5])
    pair = Case(("a", "b"))
    assert fails("INV", pair, [0.6, 0.7]) and not fails("INV", pair, [0.7, 0.95])
    up, down = Case(("a", "b"), "not_down"), Case(("a", "b"), "not_up")
    assert not fails("DIR", up, [0.5, 0.41]) and fails("DIR", up, [0.5, 0.39])
    assert not fails("DIR", down, [0.5, 0.59]) and fails("DIR", down, [0.5, 0.61])


def test_score_counts_failures_per_test_and_averages_per_capability() -> None:
    probabilities = {"good": 0.9, "not good": 0.8, "not bad": 0.1, "bad": 0.05, "bad http": 0.5}
    tests = [
        Test("negated", "negation", "MFT", "", (
            Case(("not good",), frozenset({NEGATIVE, NEUTRAL})),  # fails: 0.8 is positive
            Case(("not bad",), frozenset({POSITIVE, NEUTRAL})),  # fails: 0.1 is negative
            Case(("good",), frozenset({POSITIVE})),
            Case(("bad",), frozenset({NEGATIVE})),
        )),
        Test("url", "invariance", "INV", "", (Case(("bad", "bad http")), Case(("good", "good")))),
        Test("more", "direction", "DIR", "", (Case(("bad", "good"), "not_down"),)),
    ]  # fmt: skip
    calls = []

    def predict(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([probabilities[t] for t in texts])

    result = score(tests, predict)
    assert len(calls) == 1 and sorted(calls[0]) == sorted(probabilities)  # each text once
    rates = {t["name"]: (t["failures"], t["failure_rate"]) for t in result["tests"]}
    assert rates == {"negated": (2, 0.5), "url": (1, 0.5), "more": (0, 0.0)}
    assert result["tests"][0]["examples"][0] == {"texts": ["not good"], "positive": [0.8]}
    assert result["capabilities"]["negation"] == {"tests": 1, "mean_failure_rate": 0.5}
    assert goal_rate(result["tests"]) == 0.5  # negation and invariance only
    assert goal_rate([*result["tests"], {"capability": "negation", "failure_rate": 1.0}]) == pytest.approx(
        2 / 3
    )
