"""The variant study: every cell trains, exports and is measured under one budget."""

from __future__ import annotations

import json

import pytest

from experiments import render, variants


@pytest.mark.slow
def test_every_variant_gets_a_row(tmp_path, imdb_archive) -> None:
    variants.main(
        [
            "--data",
            str(imdb_archive),
            "--limit-reviews",
            "30",
            "--epochs",
            "1",
            "--embed-dim",
            "8",
            "--hidden-size",
            "4",
            "--embeddings",
            "random",
            "--max-tokens",
            "60",
            "--threads",
            "1",
            "--output",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "results"),
        ]
    )
    record = json.loads((tmp_path / "results" / "variants.json").read_text())
    assert "30 reviews per part and label" in record["budget"] and "torch thread" in record["machine"]
    rows = record["rows"]
    assert [r["variant"] for r in rows] == list(variants.VARIANTS)
    by_name = {r["variant"]: r for r in rows}
    # the architectures really differ: a second direction or layer adds recurrent weights
    assert by_name["BiLSTM"]["parameters"] > by_name["LSTM"]["parameters"]
    assert by_name["2-layer LSTM"]["parameters"] > by_name["LSTM"]["parameters"]
    assert by_name["LSTM"]["parameters"] > by_name["GRU"]["parameters"] > by_name["RNN"]["parameters"]
    assert by_name["peephole LSTM"]["parameters"] == by_name["LSTM"]["parameters"] + 3 * 4  # (i, f, o)
    # the Transformer's feed-forward block is 2 x hidden_size wide, its outputs embed_dim wide
    assert "Transformer encoder 1x8 (4 heads, feed-forward 8)" in by_name["Transformer"]["architecture"]
    for row in rows:
        assert row["test_examples"] == 60 and 0 <= row["test_accuracy"] <= 1 and row["ms_per_review"] > 0
        assert row["train_tokens_per_second"] > 0 and row["batched_ms_per_review"] > 0
    # the record and its plot only: the docs build renders the page's table from the record
    assert sorted(path.name for path in (tmp_path / "results").iterdir()) == ["variants.json", "variants.png"]
    assert (tmp_path / "results" / "variants.png").stat().st_size > 0
    table = render.section("variants", tmp_path / "results")
    assert all(f"| {name} |" in table for name in variants.VARIANTS)
