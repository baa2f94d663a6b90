"""MkDocs hooks: the pages' generated parts, rendered from the records at build time.

A page asks for a part with a marker line ``<!-- generated: NAME -->``:

* ``runs`` and ``ablation``: the model history's tables, from ``models/history.toml`` and, for
  the run served now, its bundle's ``model_card.json``;
* ``recipe``: the same runs table from the run records a recipe wrote
  (``python -m training.recipe``, ``runs/*/run-record.json``, the same fields); without them,
  how to make them;
* ``lmanchor``: the language model against its Kneser-Ney anchor, from
  ``experiments/results/lm_anchor.json`` (``python -m experiments.lm_anchor``);
* ``benchmarks``: the benchmark results, rendered by ``benchmarks.render.markdown`` from
  ``benchmarks/results/*.json``; without results (a fresh checkout), how to make them;
* ``hostile``: the hostile-client record (``benchmarks/results/hostile.json``) alone, for the
  reliability page, rendered by ``benchmarks.render.body``; without it, how to make it;
* ``variants``: the table of "Cells compared", and ``speed``, ``lengths`` and ``claims``: the
  limits page's tables, rendered by ``experiments.render.section`` from
  ``experiments/results/*.json`` (the variant study and the long-range task); their plots are
  published from the same folder under ``experiments/``.
* ``behaviour`` and ``remedies``: the behavioural suite's result and the fine-tuning ablation,
  rendered by ``behaviour.render`` from ``behaviour/results/{suite,ablation}.json``.

Nothing here is measured or written by hand: a figure on those pages comes from a record.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from functools import partial
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]


def _importable() -> None:
    """The repository's packages importable: mkdocs imports this file on its own, and puts back
    its own ``sys.path`` after loading it, so this is done when a page needs them."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


HISTORY = REPO / "models" / "history.toml"
RECIPE_RUNS = REPO / "runs"  # where `make model` writes the steps of recipes/shipped.toml
RECORD_FILE = "run-record.json"  # training.recipe.RECORD_FILE (mkdocs runs this file without torch)
RESULTS = REPO / "benchmarks" / "results"
LM_ANCHOR = REPO / "experiments" / "results" / "lm_anchor.json"
EXPERIMENT_RESULTS = REPO / "experiments" / "results"
EXPERIMENT_SECTIONS = ("variants", "speed", "lengths", "claims")
MARKER = re.compile(r"^<!-- generated: ([a-z]+) -->$", flags=re.MULTILINE)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f} %"


def load_runs(history: Path = HISTORY) -> list[dict]:
    """The runs of ``history``, each with its figures; a run with a ``bundle`` takes them from its card."""
    runs = tomllib.loads(history.read_text())["run"]
    for run in runs:
        if "bundle" in run:
            card = json.loads((history.parent.parent / run["bundle"] / "model_card.json").read_text())
            kept = card["training"]["history"][card["training"]["best_epoch"] - 1]
            run["validation_accuracy"] = card["metrics"]["validation"]["accuracy"]
            run["validation_loss"] = kept["validation_loss"]
            run["test_accuracy"] = card["metrics"]["test"]["accuracy"]
            run["minutes"] = round(card["training"]["seconds"] / 60, 1)
    return runs


def load_records(folder: Path = RECIPE_RUNS) -> list[dict]:
    """The finished run records a recipe wrote under ``folder``, in the order they started; each
    has the fields of a ``models/history.toml`` run (id, recipe, command, output, minutes, ...)."""
    records = []
    for path in sorted(folder.glob(f"*/{RECORD_FILE}")):
        record = json.loads(path.read_text())
        if record.get("status") == "done":
            records.append(record)
    return sorted(records, key=lambda record: record["started"])


NO_RECORDS = """!!! note "No recipe has been run in this checkout"
    This table is rendered from the run records that `make model` (`python -m training.recipe
    recipes/shipped.toml`) writes under `runs/`, and there are none here yet. Run it, then
    build the docs again (`make docs`)."""


def recipe_runs(folder: Path = RECIPE_RUNS) -> str:
    """The runs table of the recipe's records, or how to make them when there are none."""
    records = load_records(folder)
    return runs_table(records) if records else NO_RECORDS


def runs_table(runs: list[dict]) -> str:
    """Every run: its recipe and command, figures, time and whether it was shipped."""
    lines = [
        "| run | recipe | validation acc. | validation loss | test acc. | minutes | shipped |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        bold = "**" if run.get("shipped") == "now" else ""
        loss = run.get("validation_loss")
        cells = [
            f"{bold}{run['id']}{bold}",
            f"{run['recipe']}<br>`{run['command']}`",
            _percent(run.get("validation_accuracy")),
            "" if loss is None else f"{loss:.3f}",
            _percent(run.get("test_accuracy")) or "not measured",
            "" if run.get("minutes") is None else f"{run['minutes']:.1f}",
            {"now": "**served now**", "before": "before"}.get(run.get("shipped", ""), ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _difference(runs: dict[str, dict], pair: list[str], metric: str) -> str:
    new, old = (runs[name].get(metric) for name in pair)
    if new is None or old is None:
        return "not measured" if new is None else ""
    return f"{100 * new:.2f} vs {100 * old:.2f} % ({100 * (new - old):+.2f})"


def ablation_table(runs: list[dict], history: Path = HISTORY) -> str:
    """What each technique added: the differences between the pairs of runs that isolate it."""
    by_id = {run["id"]: run for run in runs}
    lines = ["| technique | runs compared | validation | test | verdict |", "|---|---|---|---|---|"]
    for row in tomllib.loads(history.read_text())["ablation"]:
        pairs = row["runs"]
        cells = [
            row["technique"],
            "; ".join(f"{new} vs {old}" for new, old in pairs),
            "; ".join(_difference(by_id, pair, "validation_accuracy") for pair in pairs),
            "; ".join(_difference(by_id, pair, "test_accuracy") for pair in pairs),
            row["verdict"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


NO_RESULTS = """!!! note "The results have not been generated in this checkout"
    This page is rendered from the result files under `benchmarks/results/`, and there are
    none here yet. Run the benchmarks on the machine you want figures for, then build the docs
    again (`make docs`):

    ```bash
    .venv/bin/python -m benchmarks all    # --help lists the benchmarks and their options
    ```

    Each benchmark overwrites its own result file; git keeps the history."""


def benchmarks_page(results: Path = RESULTS) -> str:
    """The benchmark sections rendered from ``results``, or how to produce them when there are none."""
    _importable()
    try:
        from benchmarks.render import markdown
    except ImportError:
        return NO_RESULTS
    if not any(results.glob("*.json")):
        return NO_RESULTS
    return "\n\n".join(markdown(results).values())  # each section carries its own heading


def hostile_record(results: Path = RESULTS) -> str:
    """Each figure of the latest hostile-client run against its bound, where the run came from and
    how long it took; or how to make the record when there is none."""
    _importable()
    from benchmarks.render import body
    from benchmarks.results import read

    record = read(results).get("hostile")
    if record is None:
        return "Not measured in this checkout: `python -m benchmarks hostile` writes `hostile.json`."
    return body("hostile", record)


def experiments_section(name: str, results: Path = EXPERIMENT_RESULTS) -> str:
    """A table of the variants or the limits page, rendered by ``experiments.render`` from ``results``."""
    _importable()
    from experiments.render import section

    return section(name, results)


def behaviour_part(name: str) -> str:
    """The suite's (``behaviour``) or the ablation's (``remedies``) tables."""
    _importable()
    from behaviour.render import ablation_markdown, suite_markdown

    return suite_markdown() if name == "behaviour" else ablation_markdown()


def on_files(files: Files, config: MkDocsConfig, **_: object) -> Files:
    """MkDocs hook: the plots the benchmarks wrote beside their results, published beside the
    benchmarks page that shows them; the experiments' plots, under ``experiments/``."""
    for plot in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, plot.name, abs_src_path=str(plot)))
    for plot in sorted(EXPERIMENT_RESULTS.glob("*.png")):
        files.append(File.generated(config, f"experiments/{plot.name}", abs_src_path=str(plot)))
    return files


def lm_anchor_table(path: Path = LM_ANCHOR) -> str:
    """The LSTM and the n-gram side by side on the same test tokens, and the earlier LSTM's figure."""
    if not path.exists():
        return f"Not measured in this checkout: `python -m experiments.lm_anchor` writes `{path.name}`."
    result = json.loads(path.read_text())
    lstm, ngram, test = result["lstm"], result["kneser_ney"], result["test"]
    config = lstm["config"]
    rows = [
        "| model | test perplexity | known words only | trained on |",
        "|---|---|---|---|",
        f"| LSTM {config['embed_dim']}/{config['hidden_size']}, adaptive softmax (`models/lm`) | "
        f"{lstm['perplexity']:.1f} | {lstm['perplexity_known_words']:.1f} | "
        f"{lstm['tokens_seen']:,} tokens seen in {lstm['minutes']} min |",
        f"| Kneser-Ney {ngram['order']}-gram ({ngram['library']}) | {ngram['perplexity']:.1f} | "
        f"{ngram['perplexity_known_words']:.1f} | all {result['train']['tokens']:,} tokens |",
    ]
    verdict = "beats" if result["lstm_beats_kneser_ney"] else "does **not** beat"
    previous = result["previous_lm"]
    card = REPO / "models" / "lm" / "model_card.json"
    validation = json.loads(card.read_text())["metrics"]["validation_perplexity"] if card.exists() else None
    moved = (
        f"On held-out training reviews the shipped LSTM's perplexity is {validation:.1f}, against "
        f"{previous['validation_perplexity_forward']} for {previous['what']}."
        if validation is not None
        else ""
    )
    return "\n".join(
        [
            *rows,
            "",
            moved,
            "",
            f"On {test['reviews']:,} test reviews ({test['tokens']:,} tokens, "
            f"{test['unk_share']:.1%} `<unk>`), the LSTM {verdict} the n-gram. "
            f"Measured by `{result['command']}`.",
        ]
    )


def generated(name: str) -> str:
    """The markdown of the generated part ``name``."""
    parts = {
        "benchmarks": benchmarks_page,
        "hostile": hostile_record,
        "lmanchor": lm_anchor_table,
        "recipe": recipe_runs,
        "runs": lambda: runs_table(load_runs()),
        "ablation": lambda: ablation_table(load_runs()),
        **{part: partial(behaviour_part, part) for part in ("behaviour", "remedies")},
        **{part: partial(experiments_section, part) for part in EXPERIMENT_SECTIONS},
    }
    if name not in parts:
        raise ValueError(f"no generated part named {name!r} (known: {', '.join(parts)})")
    return parts[name]()


def on_page_markdown(markdown: str, **_: object) -> str:
    """MkDocs hook: replace each marker line with the part it names."""
    return MARKER.sub(lambda match: generated(match.group(1)), markdown)
