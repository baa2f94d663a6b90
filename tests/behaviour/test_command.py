"""python -m behaviour on tiny bundles: the suite runs end to end and its result file adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from behaviour.__main__ import main
from behaviour.render import ablation_markdown, suite_markdown
from model.bundle import CARD_FILE
from tests.bundles import make_bundle
from tests.training.synthetic import write_pairs

CAD_ROWS = [
    ("Positive", "a wonderful film", "1"),
    ("Negative", "an awful film", "1"),
    ("Negative", "terrible plot , dull characters", "2"),
    ("Positive", "great plot , moving characters", "2"),
]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    folder, _, _ = make_bundle(tmp_path / "tiny")
    card = json.loads((folder / CARD_FILE).read_text())
    card["metrics"] = {"validation": {"accuracy": 0.5}, "test": {"accuracy": 0.5}}
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


def test_run_writes_every_test_with_consistent_figures(bundle: Path, tmp_path: Path) -> None:
    output = tmp_path / "suite.json"
    main(["run", "--bundle", str(bundle), "--size", "5", "--output", str(output)])
    record = json.loads(output.read_text())
    assert record["suite"]["neutral_band"] == [1 / 3, 2 / 3] and record["command"].startswith("python -m")
    assert len(record["tests"]) >= 20
    for test in record["tests"]:
        assert 0 < test["cases"] <= 5
        assert test["failure_rate"] == test["failures"] / test["cases"]
        assert len(test["examples"]) == min(3, test["failures"])
    negation = [t["failure_rate"] for t in record["tests"] if t["capability"] == "negation"]
    assert record["capabilities"]["negation"]["mean_failure_rate"] == pytest.approx(
        sum(negation) / len(negation)
    )
    page = suite_markdown(output)
    assert "neutral from 0.333 to 0.667" in page and "negated positive" in page


def test_ablation_compares_arms_against_the_first(bundle: Path, tmp_path: Path) -> None:
    cad = write_pairs(tmp_path / "cad", CAD_ROWS, "dev")
    other, _, _ = make_bundle(tmp_path / "other", seed=1)
    (other / CARD_FILE).write_text((bundle / CARD_FILE).read_text())
    output = tmp_path / "ablation.json"
    arms = ["--arm", f"base={bundle}", "--arm", f"other={other}"]
    main(["ablation", *arms, "--cad", str(cad), "--size", "4", "--output", str(output)])
    record = json.loads(output.read_text())
    assert [arm["arm"] for arm in record["arms"]] == ["base", "other"] and record["dev_pairs"] == 2
    base, second = record["arms"]
    assert base["meets"]["suite_reduction"] is (base["goal_rate"] <= 0.5 * base["goal_rate"])
    assert second["meets"]["suite_reduction"] is (second["goal_rate"] <= 0.5 * base["goal_rate"])
    assert base["counterfactual_pairs"] in (0.0, 0.5, 1.0)
    assert "| base |" in ablation_markdown(output)


def test_a_missing_result_says_how_to_make_it(tmp_path: Path) -> None:
    assert "python -m behaviour run" in suite_markdown(tmp_path / "none.json")
    assert "python -m behaviour ablation" in ablation_markdown(tmp_path / "none.json")
