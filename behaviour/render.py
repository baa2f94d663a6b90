"""Markdown tables from the suite's result files, for the generated behaviour page (docs/hooks.py).

:func:`suite_markdown` renders ``behaviour/results/suite.json`` (``python -m behaviour run``) and
:func:`ablation_markdown` renders ``behaviour/results/ablation.json`` (``python -m behaviour
ablation``); each says how to make its file when there is none.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).with_name("results")
SUITE_FILE, ABLATION_FILE = RESULTS / "suite.json", RESULTS / "ablation.json"


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _missing(command: str) -> str:
    return (
        '!!! note "No result file in this checkout"\n'
        f"    Run `{command}`, then build the docs again (`make docs`)."
    )


def _provenance(record: dict) -> str:
    return f"Measured by `{record['command']}` at commit `{record['commit'] or 'unknown'}`, {record['date']}."


def suite_markdown(path: Path = SUITE_FILE) -> str:
    """The suite's settings, its failure rate per capability and per test, and failing examples."""
    if not path.is_file():
        return _missing("python -m behaviour run --bundle models/default")
    record = json.loads(path.read_text())
    suite, model = record["suite"], record["model"]
    low, high = suite["neutral_band"]
    lines = [
        f"Model `{model['name']}` version `{model['version']}`; up to {suite['size']} cases per test, "
        f"seed {suite['seed']}, {record['texts']} distinct texts. {_provenance(record)}",
        "",
        f"**Three labels from P(positive):** negative below {low:.3f}, neutral from {low:.3f} to "
        f"{high:.3f}, positive above {high:.3f}. A DIR case fails when P(positive) moves the wrong "
        f"way by more than {suite['tolerance']}.",
        "",
        "| capability | tests | mean failure rate |",
        "|---|---|---|",
    ]
    for name, capability in record["capabilities"].items():
        lines.append(f"| {name} | {capability['tests']} | {_percent(capability['mean_failure_rate'])} |")
    lines.append(f"| **negation + invariance** (the goal's figure) | | **{_percent(record['goal_rate'])}** |")
    lines += [
        "",
        "| test | capability | kind | cases | failure rate | a failing case |",
        "|---|---|---|---|---|---|",
    ]
    for test in record["tests"]:
        example = test["examples"][0] if test["examples"] else None
        shown = (
            " → ".join(
                f"{text} ({p:.3f})" for text, p in zip(example["texts"], example["positive"], strict=True)
            )
            if example
            else ""
        )
        name = f"{test['name']}<br><small>{test['description']}</small>"
        lines.append(
            f"| {name} | {test['capability']} | {test['kind']} | {test['cases']} "
            f"| {_percent(test['failure_rate'])} | {shown.replace('|', '&#124;')} |"
        )
    return "\n".join(lines)


def ablation_markdown(path: Path = ABLATION_FILE) -> str:
    """Each arm's suite figure, counterfactual pairs, validation and test accuracy, and the goals."""
    if not path.is_file():
        return _missing("python -m behaviour ablation --arm shipped=models/default --arm NAME=BUNDLE ...")
    record = json.loads(path.read_text())
    goals = record["goals"]
    marks = {True: "yes", False: "**no**"}
    lines = [
        f"{_provenance(record)} Counterfactual dev pairs: {record['dev_pairs']}; the suite: up to "
        f"{record['suite']['size']} cases per test, seed {record['suite']['seed']}.",
        "",
        f"Goals: the negation + invariance failure rate at most {goals['suite_reduction']:g} x the first "
        f"arm's; both texts of a dev pair right in at least {_percent(goals['counterfactual_pairs'])} of "
        f"pairs; IMDB test accuracy at least {_percent(goals['test_accuracy'])} (measured when the bundle "
        "was written, never used to choose).",
        "",
        "| arm | trained on | negation + invariance failures | negation | invariance | dev pairs "
        "| validation acc. | test acc. | goals met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in record["arms"]:
        capabilities = arm["capabilities"]
        met = ", ".join(f"{goal}: {marks[ok]}" for goal, ok in arm["meets"].items())
        lines.append(
            f"| {arm['arm']} | {arm['training'] or ''} | {_percent(arm['goal_rate'])} "
            f"| {_percent(capabilities['negation']['mean_failure_rate'])} "
            f"| {_percent(capabilities['invariance']['mean_failure_rate'])} "
            f"| {_percent(arm['counterfactual_pairs'])} | {_percent(arm['validation_accuracy'])} "
            f"| {_percent(arm['test_accuracy'])} | {met} |"
        )
    names = list(record["arms"][0]["tests"])
    lines += ["", "| test | " + " | ".join(arm["arm"] for arm in record["arms"]) + " |"]
    lines.append("|---" * (len(record["arms"]) + 1) + "|")
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(_percent(arm["tests"][name]) for arm in record["arms"]) + " |"
        )
    return "\n".join(lines)
