"""The docs site: its sources hold no measurement records, and its generated tables are right."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path

import pytest

from benchmarks import results

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_sources_hold_no_measurement_records() -> None:
    records = [p.relative_to(REPO) for p in DOCS.rglob("*") if p.suffix in {".json", ".txt", ".csv"}]
    assert records == [], "measurements belong in their results folder, rendered into pages at build"


def test_every_image_in_the_docs_is_used_by_a_page() -> None:
    pages = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    unused = [p.name for p in DOCS.rglob("*.png") if p.name not in pages]
    assert unused == []


def test_no_page_gives_a_command_of_the_removed_bench_package() -> None:
    """bench/ went in e0ca423: a figure it made names the script (``git show e0ca423^:bench/…``)."""
    pages = [*DOCS.rglob("*.md"), REPO / "README.md"]
    citing = [p.relative_to(REPO) for p in pages if "python -m bench." in p.read_text()]
    assert citing == []


def test_the_served_run_takes_its_figures_from_its_model_card(hooks) -> None:
    served = [run for run in hooks.load_runs() if run.get("shipped") == "now"]
    assert len(served) == 1 and served[0]["bundle"] == "models/default"
    card = json.loads((REPO / "models" / "default" / "model_card.json").read_text())
    assert served[0]["test_accuracy"] == card["metrics"]["test"]["accuracy"]
    assert served[0]["validation_accuracy"] == card["metrics"]["validation"]["accuracy"]
    assert f"{100 * card['metrics']['test']['accuracy']:.2f} %" in hooks.runs_table(hooks.load_runs())


def test_the_ablation_differences_are_computed_from_the_runs(tmp_path: Path, hooks) -> None:
    history = tmp_path / "history.toml"
    history.write_text(
        '[[run]]\nid = "a"\nrecipe = "r"\ncommand = "c"\nvalidation_accuracy = 0.9\ntest_accuracy = 0.8\n'
        '[[run]]\nid = "b"\nrecipe = "r"\ncommand = "c"\nvalidation_accuracy = 0.91\n'
        '[[ablation]]\ntechnique = "t"\nruns = [["b", "a"]]\nverdict = "v"\n'
    )
    table = hooks.ablation_table(hooks.load_runs(history), history)
    assert "| t | b vs a | 91.00 vs 90.00 % (+1.00) | not measured | v |" in table


def test_every_run_and_ablation_names_what_it_needs() -> None:
    history = tomllib.loads((REPO / "models" / "history.toml").read_text())
    ids = {run["id"] for run in history["run"]}
    for run in history["run"]:
        assert {"id", "recipe", "command", "output"} <= run.keys()
        assert "bundle" in run or "validation_accuracy" in run
    for row in history["ablation"]:
        assert all(name in ids for pair in row["runs"] for name in pair), row["technique"]


def test_the_benchmarks_page_says_how_to_make_results_when_there_are_none(tmp_path: Path, hooks) -> None:
    page = hooks.benchmarks_page(tmp_path)
    assert "python -m benchmarks all" in page
    assert "have not been generated" in page


def test_the_reliability_page_quotes_the_hostile_record_under_its_own_heading(tmp_path: Path, hooks) -> None:
    assert "<!-- generated: hostile -->" in (DOCS / "operations" / "reliability.md").read_text()
    assert "Not measured" in hooks.hostile_record(tmp_path)
    checks = [{"figure": "headers.predict_p99_ratio", "value": 1.9, "bound": "<= 10", "held": True}]
    figures = {"results": {}, "checks": checks, "seconds": {"headers": 5.0, "total": 5.0}}
    results.write("hostile", figures, ["hostile"], tmp_path)
    part = hooks.hostile_record(tmp_path)
    assert part.startswith("Measured by `python -m benchmarks hostile`")  # no second heading
    assert "| `headers.predict_p99_ratio` | 1.9 | <= 10 | held |" in part
    assert "The run took 5 s" in part


def test_an_unknown_generated_part_fails_the_build(hooks) -> None:
    with pytest.raises(ValueError, match="no generated part"):
        hooks.on_page_markdown("<!-- generated: nonsense -->")


def test_the_inspector_guide_quotes_what_the_shipped_model_does_on_its_review() -> None:
    """The guide's figures are the served model's: a new model (or an edit) that changes them fails here."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    page = (DOCS / "inspector.md").read_text()
    quote = [line.removeprefix("> ") for line in page.splitlines() if line.startswith("> ")]
    review = " ".join(quote)
    with TestClient(create_app(Settings(model_dir=REPO / "models" / "default"))) as client:
        trace = client.post("/v1/trace", json={"text": review}).json()
    tokens = trace["tokens"]
    forward = trace["layers"][0]["forward"]["gates"]
    buts = [t for t, token in enumerate(tokens) if token == "but"]
    assert len(tokens) == 48 and len(buts) == 2
    assert f"P(positive) = {trace['prediction']['score']:.4f}" in page
    mean_forget = sum(forward["forget"][buts[0]]) / len(forward["forget"][buts[0]])
    assert f"{mean_forget:.3f}" == "0.513" and "0.513" in page
    unit_69 = [forward["forget"][t][69] for t in buts]
    assert f'is {unit_69[0]:.2f} at the first "but" and {unit_69[1]:.2f} at the' in page.replace("\n", " ")
    assert f"{forward['output'][-1][86]:.3f}" == "0.068" and "0.068" in page
