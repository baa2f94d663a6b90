"""How a model's answers to the suite become failures and failure rates.

The network gives P(positive) only. As CheckList does for binary models (Ribeiro et al., 2020,
section 3), a probability inside :data:`NEUTRAL_BAND` reads as neutral: below it negative, above
it positive (:func:`three_way`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from behaviour.suite import NEGATIVE, NEUTRAL, POSITIVE, TOLERANCE, Case, Test

NEUTRAL_BAND = (1 / 3, 2 / 3)  # P(positive) in [low, high] is neutral
EXAMPLES = 3  # failing cases kept per test in the result file


def three_way(positive: float) -> str:
    """negative, neutral or positive for a P(positive) (see :data:`NEUTRAL_BAND`)."""
    low, high = NEUTRAL_BAND
    if positive < low:
        return NEGATIVE
    return POSITIVE if positive > high else NEUTRAL


def fails(kind: str, case: Case, positive: Sequence[float]) -> bool:
    """Whether ``case`` fails, given P(positive) of each of its texts."""
    if kind == "MFT":
        return three_way(positive[0]) not in case.expect
    if kind == "INV":
        return three_way(positive[0]) != three_way(positive[1])
    moved = positive[1] - positive[0]
    return moved < -TOLERANCE if case.expect == "not_down" else moved > TOLERANCE


def score(tests: Sequence[Test], predict: Callable[[list[str]], np.ndarray]) -> dict:
    """Every test's failure rate, a few failing cases, and each capability's mean failure rate;
    ``predict`` gives P(positive) of a list of texts (called once, on every distinct text)."""
    texts = sorted({text for test in tests for case in test.cases for text in case.texts})
    positive = dict(zip(texts, map(float, predict(texts)), strict=True))
    results = []
    for test in tests:
        failing = []
        for case in test.cases:
            probabilities = [positive[text] for text in case.texts]
            if fails(test.kind, case, probabilities):
                failing.append({"texts": list(case.texts), "positive": [round(p, 4) for p in probabilities]})
        results.append(
            {
                "name": test.name,
                "capability": test.capability,
                "kind": test.kind,
                "description": test.description,
                "cases": len(test.cases),
                "failures": len(failing),
                "failure_rate": len(failing) / len(test.cases) if test.cases else None,
                "examples": failing[:EXAMPLES],
            }
        )
    return {"tests": results, "capabilities": capabilities(results), "texts": len(texts)}


def capabilities(results: Sequence[dict]) -> dict[str, dict]:
    """Per capability: its tests and the mean of their failure rates."""
    grouped: dict[str, list[dict]] = {}
    for result in results:
        grouped.setdefault(result["capability"], []).append(result)
    return {
        name: {
            "tests": len(members),
            "mean_failure_rate": float(np.mean([m["failure_rate"] for m in members])),
        }
        for name, members in grouped.items()
    }


GOAL_CAPABILITIES = ("negation", "invariance")  # issue 29's goal: their tests' mean halves


def goal_rate(results: Sequence[dict]) -> float:
    """Mean failure rate of the tests of :data:`GOAL_CAPABILITIES` (each test counts once)."""
    rates = [r["failure_rate"] for r in results if r["capability"] in GOAL_CAPABILITIES]
    return float(np.mean(rates))
