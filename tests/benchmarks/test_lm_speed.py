"""``python -m benchmarks lm`` end to end on a tiny LM bundle and a tiny IMDB copy."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.lm_speed import step_products
from model.tokenizer import Tokenizer
from tests.benchmarks.test_commands import ROOT, tiny_imdb  # noqa: F401 (a fixture)
from tests.bundles import make_bundle, make_lm_bundle


def test_the_step_products_cover_the_whole_vocabulary() -> None:
    card = {
        "lm_config": {
            "embed_dim": 8,
            "hidden_size": 16,
            "vocab_size": 60,
            "cutoffs": [10, 30],
            "div_value": 4.0,
        }
    }
    products = {name: (rows, cols) for name, rows, cols in step_products(card)}
    assert products["input projection"] == (64, 8) and products["recurrent"] == (64, 16)
    assert products["softmax head"][0] == 10 + 2  # the shortlist and one entry per cluster
    assert products["cluster 1 out"][0] + products["cluster 2 out"][0] == 60 - 10
    assert products["cluster 2 down"] == (1, 16)


def test_lm_benchmark_writes_its_result_and_section(tmp_path, tiny_imdb) -> None:  # noqa: F811
    folder, _, _ = make_bundle(tmp_path / "classifier")
    lm = make_lm_bundle(tmp_path / "lm", Tokenizer.load(folder / "tokenizer.json"))
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "lm",
        "--data",
        str(tiny_imdb),
        "--lm-bundle",
        str(lm),
        "--results",
        str(tmp_path),
        "--prompts",
        "3",
        "--new-tokens",
        "4",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads((tmp_path / "lm.json").read_text())["figures"]
    assert figures["ms_per_token"]["runs"] == 12 and figures["bound_ms"] > 0
    assert figures["ms_per_token"]["median"] >= figures["graph_step_ms"]["p10"] * 0.5
    # the first token's bound: the prompt's LSTM products, one token after another, and one softmax
    by_name = {p["name"]: p["flops"] / (p["gflops"] * 1e9) * 1000 for p in figures["products"]}
    lstm = by_name["input projection"] + by_name["recurrent"]
    expected = figures["prompt_tokens_median"] * lstm + figures["bound_ms"] - lstm
    assert abs(figures["first_token_bound_ms"] - expected) <= 1e-9 * expected
    assert figures["ratio_first_token"] > 0
    assert "## The language model" in done.stdout and "time to first token" in done.stdout
