"""The Transformer encoder through the training command: trains, learns, exports exactly."""

from __future__ import annotations

import json

from model.bundle import load_card
from tests.training.synthetic import write_tiny_imdb
from training import train


def test_a_tiny_transformer_trains_exports_and_learns(tmp_path) -> None:
    data = write_tiny_imdb(tmp_path / "imdb")  # the label shows in the words: learnable in a few steps
    output = tmp_path / "run"
    train.main(
        ["--data", str(data), "--output", str(output), "--cell", "transformer", "--bidirectional", "false",
         "--num-heads", "2", "--embed-dim", "8", "--hidden-size", "16", "--pooling", "mean",
         "--embeddings", "random", "--epochs", "6", "--patience", "6", "--batch-size", "8",
         "--learning-rate", "0.02", "--dropout", "0", "--embed-dropout", "0", "--limit-reviews", "60",
         "--threads", "1"]
    )  # fmt: skip
    history = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 6 and all(epoch["tokens_per_second"] > 0 for epoch in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    card = load_card(output / "bundle")
    assert card["model_config"]["cell"] == "transformer" and card["model_config"]["num_heads"] == 2
    assert card["architecture"].startswith("embedding") and "Transformer encoder 1x8" in card["architecture"]
    assert card["parity"]["torch_vs_onnx"] <= 1e-5 and card["parity"]["alone_vs_batched"] <= 1e-5
    assert "hidden_<layer>" not in card["onnx"]["outputs"]
    assert card["metrics"]["test"]["accuracy"] > 0.8  # 120 made-up reviews whose words give the label
