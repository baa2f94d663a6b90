"""The limits page's tables and verdicts, computed from the experiments' records."""

from __future__ import annotations

import json

from experiments import render


def variants_record(transformer_speed: int) -> dict:
    speeds = {"RNN": 9000, "GRU": 4000, "LSTM": 5000, "Transformer": transformer_speed}
    rows = [
        {"variant": name, "parameters": 1000, "train_tokens_per_second": speed, "seconds_per_epoch": 10.0,
         "ms_per_review": 2.0 if name != "Transformer" else 1.0, "batched_ms_per_review": 1.0,
         "test_accuracy": 0.61}
        for name, speed in speeds.items()
    ]  # fmt: skip
    return {"command": "python -m experiments.variants x", "budget": "B", "machine": "M", "rows": rows}


def long_range_record() -> dict:
    accuracy = {"rnn": (0.5, 0.5), "lstm": (1.0, 0.5), "transformer": (1.0, 1.0)}
    seconds = {"rnn": (10, 20), "lstm": (10, 21), "transformer": (10, 45)}
    results = [
        {
            "cell": cell,
            "length": length,
            "accuracy": accuracy[cell][i],
            "seconds_per_step": seconds[cell][i] / 10,
            "steps": 10,
        }
        for cell in accuracy
        for i, length in enumerate((100, 200))
    ]
    results[1]["accuracy"] = None  # the RNN failed at 100 tokens: only timed at 200
    settings = {"steps": 10, "lengths": [100, 200], "batch_size": 16, "solved": 0.9, "timed_steps": 5}
    return {"command": "python -m experiments.long_range y", "settings": settings, "minutes": 1.0,
            "machine": "M", "results": results}  # fmt: skip


def test_verdicts_follow_the_figures(tmp_path) -> None:
    (tmp_path / "long_range.json").write_text(json.dumps(long_range_record()))
    (tmp_path / "variants.json").write_text(json.dumps(variants_record(transformer_speed=2500)))
    table = render.section("claims", tmp_path)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()[2:]}
    assert len(rows) == 6
    slower = next(line for text, line in rows.items() if text.startswith("A Transformer trains faster"))
    assert "Transformer / LSTM = 0.50" in slower and "does not hold here" in slower
    (tmp_path / "variants.json").write_text(json.dumps(variants_record(transformer_speed=10000)))
    faster = next(line for line in render.section("claims", tmp_path).splitlines() if "trains faster" in line)
    assert "Transformer / LSTM = 2.00" in faster and faster.endswith("| holds here |")
    # 100 -> 200 tokens: the recurrent cells x2.0 and x2.1, attention x4.5: linear and quadratic
    growth = next(line for line in table.splitlines() if "grows linearly" in line)
    assert "rnn x2.0, lstm x2.1, transformer x4.5" in growth and growth.endswith("| holds here |")
    reach = next(line for line in table.splitlines() if "Attention reaches" in line)
    assert "lstm 100, transformer 200" in reach and reach.endswith("| holds here |")


def test_the_lengths_table_has_a_column_per_length(tmp_path) -> None:
    (tmp_path / "long_range.json").write_text(json.dumps(long_range_record()))
    table = render.section("lengths", tmp_path)
    assert "| cell | 100 tokens | 200 tokens |" in table
    assert "| transformer | 1.00 in 10 steps · 1000 ms | 1.00 in 10 steps · 4500 ms |" in table
    assert "| rnn | 0.50 in 10 steps · 1000 ms | — · 2000 ms |" in table


def test_the_variants_page_has_a_row_per_variant_and_the_plot(tmp_path) -> None:
    record = variants_record(transformer_speed=2500)
    for row in record["rows"]:
        row |= {
            "validation_accuracy": 0.625,
            "test_examples": 25000,
            "timed_reviews": 300,
            "median_tokens": 199.5,
        }
    (tmp_path / "variants.json").write_text(json.dumps(record))
    page = render.section("variants", tmp_path)
    assert page.startswith("Command: `python -m experiments.variants x`") and "over 300 validation" in page
    assert "| GRU | 1,000 | 10.0 | 4,000 | 0.6250 | 0.6100 (25,000) | 2.0 | 1.0 |" in page
    assert page.endswith("(experiments/variants.png)")


def test_without_records_the_page_says_how_to_make_them(tmp_path) -> None:
    assert "python -m experiments.variants" in render.section("variants", tmp_path)
    assert "python -m experiments.variants" in render.section("speed", tmp_path)
    assert "not measured in this checkout" in render.section("claims", tmp_path)
