"""Markdown for the pages "Cells compared" and "The LSTM's limits, measured", from the records
the experiments wrote.

``experiments.variants`` writes ``variants.json`` (and ``variants.png``) and
``experiments.long_range`` writes ``long_range.json`` into ``experiments/results/``; the docs
build (``docs/hooks.py``) puts what :func:`section` returns on those pages. Each lecture claim
is checked against the figures by a rule written here, so a rerun on another machine rewrites
the verdicts with the numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from benchmarks.render import table

RESULTS = Path(__file__).resolve().parent / "results"
VERDICT = {True: "holds here", False: "**does not hold here**"}


def load(name: str, results: Path = RESULTS) -> dict | None:
    """The record ``<name>.json`` under ``results``; None when it has not been written."""
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _table(header: list[str], rows: list[list[object]]) -> str:
    return "\n".join(table(header, rows))


def speed_table(variants: dict) -> str:
    """Per variant: parameters, training speed and inference time per review, accuracy."""
    rows = [
        [
            row["variant"],
            f"{row['parameters']:,}",
            f"{row['train_tokens_per_second']:,}",
            row["seconds_per_epoch"],
            row["ms_per_review"],
            row["batched_ms_per_review"],
            f"{100 * row['test_accuracy']:.1f} %",
        ]
        for row in variants["rows"]
    ]
    header = ["variant", "parameters", "train tokens/s", "s / epoch", "ms / review", "ms / review, batched",
              "test acc."]  # fmt: skip
    return f"Measured by `{variants['command']}`. {variants['budget']}; {variants['machine']}.\n\n" + _table(
        header, rows
    )


def variants_table(variants: dict) -> str:
    """The page "Cells compared": the command, the budget, every variant's figures and the plot
    (published by the docs build as ``experiments/variants.png``)."""
    rows = variants["rows"]
    cells = [
        [
            row["variant"],
            f"{row['parameters']:,}",
            row["seconds_per_epoch"],
            f"{row['train_tokens_per_second']:,}",
            f"{row['validation_accuracy']:.4f}",
            f"{row['test_accuracy']:.4f} ({row['test_examples']:,})",
            row["ms_per_review"],
            row["batched_ms_per_review"],
        ]
        for row in rows
    ]
    header = ["variant", "parameters", "s / epoch", "train tokens/s", "validation acc.", "test acc.",
              "ms / review", "ms / review, batched"]  # fmt: skip
    return "\n\n".join(
        [
            f"Command: `{variants['command']}`",
            f"{variants['budget']}; {variants['machine']}. Accuracy through onnxruntime; training "
            "tokens/s: the training loop's, over its epochs; time per review: onnxruntime, 1 thread, "
            "one review at a time (median) and in batches of 64 (mean per review), over "
            f"{rows[0]['timed_reviews']} validation reviews (median {rows[0]['median_tokens']} tokens).",
            _table(header, cells),
            "![Test accuracy, training tokens per second and time per review, per variant]"
            "(experiments/variants.png)",
        ]
    )


def _by_cell(long_range: dict) -> dict[str, list[dict]]:
    cells: dict[str, list[dict]] = {}
    for result in long_range["results"]:
        cells.setdefault(result["cell"], []).append(result)
    return cells


def lengths_table(long_range: dict) -> str:
    """Accuracy, and training milliseconds per step, per cell (rows) and length (columns)."""
    settings = long_range["settings"]
    lengths = settings["lengths"]
    rows = []
    for cell, results in _by_cell(long_range).items():
        at = {result["length"]: result for result in results}
        rows.append([cell] + [_cell_at(at[n]) if n in at else "" for n in lengths])
    return (
        f"Measured by `{long_range['command']}` ({long_range['minutes']} minutes; {long_range['machine']}): "
        f"each cell trained from scratch at each length for up to {settings['steps']} steps of "
        f"{settings['batch_size']} sequences, stopping once converged. Each cell: accuracy on 1,000 "
        "fresh sequences (0.50 is chance) after the steps it trained · time per training step, "
        "timed apart from training over "
        f"{settings['timed_steps']} steps of a fresh cell. A cell that failed at a length (accuracy "
        f"below {settings['solved']}) is not trained at the longer ones (—), only timed.\n\n"
        + _table(["cell", *(f"{n} tokens" for n in lengths)], rows)
    )


def _cell_at(result: dict) -> str:
    trained = "—" if result["accuracy"] is None else f"{result['accuracy']:.2f} in {result['steps']} steps"
    return f"{trained} · {1000 * result['seconds_per_step']:.0f} ms"


def longest_solved(results: list[dict], threshold: float) -> int:
    """The longest length at which a cell reached ``threshold`` accuracy (0: none): the run's own
    ``--solved``, the accuracy that counted as carrying the first token to the end."""
    solved = [result["length"] for result in results if (result["accuracy"] or 0) >= threshold]
    return max(solved, default=0)


def _row(variants: dict, name: str) -> dict:
    return next(row for row in variants["rows"] if row["variant"] == name)


def _step_growth(results: list[dict]) -> float:
    """Time per step at the longest length over that at the one before it."""
    ordered = sorted(results, key=lambda result: result["length"])
    return ordered[-1]["seconds_per_step"] / ordered[-2]["seconds_per_step"]


# (claim, the ratios that test it as (numerator, denominator, field), holds when every ratio is > 1)
SPEED_CLAIMS = (
    (
        "A gated cell costs more per step than a plain RNN (4 gate blocks for an LSTM, 3 for a GRU)",
        (("RNN", "LSTM", "train_tokens_per_second"), ("RNN", "GRU", "train_tokens_per_second")),
    ),
    (
        "A Transformer trains faster than an LSTM of the same size: it works on all positions at once",
        (("Transformer", "LSTM", "train_tokens_per_second"),),
    ),
    (
        "A Transformer answers a review faster than an LSTM (one at a time, and in batches)",
        (("LSTM", "Transformer", "ms_per_review"), ("LSTM", "Transformer", "batched_ms_per_review")),
    ),
)
FIELDS = {
    "train_tokens_per_second": "training tokens/s",
    "ms_per_review": "ms / review",
    "batched_ms_per_review": "ms / review, batched",
}


def _speed_claim(variants: dict, ratios: tuple[tuple[str, str, str], ...]) -> tuple[str, bool]:
    values = [_row(variants, a)[field] / _row(variants, b)[field] for a, b, field in ratios]
    figures = "; ".join(
        f"{FIELDS[field]}: {a} / {b} = {value:.2f}"
        for (a, b, field), value in zip(ratios, values, strict=True)
    )
    return figures, all(value > 1 for value in values)


def claims(variants: dict | None, long_range: dict | None) -> str:
    """The lecture's claims, each with the figures that test it and the verdict they give."""
    measured: list[tuple[str, dict | None, Callable[[], tuple[str, bool]]]] = [
        (text, variants, lambda ratios=ratios: _speed_claim(variants, ratios))
        for text, ratios in SPEED_CLAIMS
    ]
    measured += [
        (
            "A recurrent step costs the same at any length (time grows linearly), attention quadratically",
            long_range,
            lambda: _growth_figures(long_range),
        ),
        (
            "Gates carry the signal further than a plain RNN",
            long_range,
            lambda: _reach_figures(
                long_range, ("rnn", "gru", "lstm"), lambda r: max(r["gru"], r["lstm"]) > r["rnn"]
            ),
        ),
        (
            "Attention reaches any distance in one step: the Transformer solves lengths the LSTM cannot",
            long_range,
            lambda: _reach_figures(
                long_range, ("lstm", "transformer"), lambda r: r["transformer"] > r["lstm"]
            ),
        ),
    ]
    rows = []
    for text, record, measure in measured:
        if record is None:
            rows.append([text, "not measured in this checkout", ""])
        else:
            figures, holds = measure()
            rows.append([text, figures, VERDICT[holds]])
    return _table(["claim", "measured", "verdict"], rows)


def _growth_figures(long_range: dict) -> tuple[str, bool]:
    cells = _by_cell(long_range)
    lengths = sorted(long_range["settings"]["lengths"])
    growth = {cell: _step_growth(results) for cell, results in cells.items() if len(results) > 1}
    factor = lengths[-1] / lengths[-2]
    figures = ", ".join(f"{cell} x{value:.1f}" for cell, value in growth.items())
    recurrent = [value for cell, value in growth.items() if cell != "transformer"]
    # linear: about the length ratio (within half of it); quadratic: clearly above it
    holds = (
        all(abs(value - factor) <= factor / 2 for value in recurrent)
        and growth.get("transformer", 0) > factor
    )
    return f"time per step from {lengths[-2]} to {lengths[-1]} tokens (x{factor:g} longer): {figures}", holds


def _reach_figures(
    long_range: dict, cells: tuple[str, ...], rule: Callable[[dict], bool]
) -> tuple[str, bool]:
    by_cell = _by_cell(long_range)
    threshold = long_range["settings"]["solved"]
    reach = {cell: longest_solved(by_cell.get(cell, []), threshold) for cell in cells}
    figures = ", ".join(f"{cell} {value or 'none'}" for cell, value in reach.items())
    return f"longest length solved (accuracy ≥ {threshold}): {figures}", rule(reach)


NOT_RUN = """!!! note "Not measured in this checkout"
    This table is rendered from `experiments/results/{name}.json`, which `{command}` writes;
    there is none here yet. Run it, then build the docs again (`make docs`)."""

COMMANDS = {"variants": "python -m experiments.variants", "long_range": "python -m experiments.long_range"}


def section(name: str, results: Path = RESULTS) -> str:
    """The generated part ``name``: ``variants`` (the page "Cells compared"), or the limits
    page's ``speed``, ``lengths`` or ``claims``."""
    variants, long_range = load("variants", results), load("long_range", results)
    if name == "claims":
        return claims(variants, long_range)
    record, render, source = {
        "variants": (variants, variants_table, "variants"),
        "speed": (variants, speed_table, "variants"),
        "lengths": (long_range, lengths_table, "long_range"),
    }[name]
    return render(record) if record else NOT_RUN.format(name=source, command=COMMANDS[source])
