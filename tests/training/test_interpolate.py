"""WiSE-FT: a fine-tuned bundle averaged with the bundle it started from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card
from model.tokenizer import Tokenizer
from tests.bundles import make_bundle
from tests.training.synthetic import fine_tuning_start
from training import finetune, interpolate
from training.evaluate import onnx_session, predict_positive


def test_the_average_is_each_end_at_0_and_1_and_the_mean_between(tmp_path: Path) -> None:
    _, start, _ = make_bundle(tmp_path / "a")
    end = type(start)(start.config)  # the same shapes, other weights
    mixed = {a: interpolate.interpolate(start, end, a).state_dict() for a in (0.0, 0.5, 1.0)}
    for name, weight in start.state_dict().items():
        other = end.state_dict()[name]
        assert torch.equal(mixed[0.0][name], weight) and torch.equal(mixed[1.0][name], other)
        assert torch.allclose(mixed[0.5][name], (weight + other) / 2, atol=1e-6)


def test_networks_of_other_shapes_are_refused(tmp_path: Path) -> None:
    _, start, _ = make_bundle(tmp_path / "a")
    wider = type(start)(start.config.__class__(**{**start.config.to_dict(), "hidden_size": 7}))
    with pytest.raises(ValueError, match="differ"):
        interpolate.interpolate(start, wider, 0.5)


def test_the_command_averages_a_fine_tuned_bundle_with_its_upgraded_start(tmp_path: Path) -> None:
    start, data, cad = fine_tuning_start(
        tmp_path, [("Positive", "a wonderful film", "7"), ("Negative", "an awful film", "7")]
    )
    start_tokenizer = Tokenizer.load(start / TOKENIZER_FILE)
    finetune.main([
        "--bundle", str(start), "--data", str(data), "--output", str(tmp_path / "ft"),
        "--counterfactual", str(cad), "--tokenizer-version", "2", "--replay", "6", "--epochs", "1",
        "--batch-size", "4", "--limit-reviews", "8",
    ])  # fmt: skip
    end = tmp_path / "ft" / "bundle"
    interpolate.main([
        "--start", str(start), "--end", str(end), "--alpha", "0", "1", "--data", str(data),
        "--output", str(tmp_path / "wise"), "--limit-reviews", "8",
    ])  # fmt: skip
    texts = ["a wonderful film", "an awful plot, dull", "great acting"]

    def positive(bundle: Path, tokenizer: Tokenizer) -> np.ndarray:
        return predict_positive(onnx_session(bundle / ONNX_FILE), [tokenizer.encode(t) for t in texts])

    upgraded = Tokenizer.load(end / TOKENIZER_FILE)
    assert Tokenizer.load(tmp_path / "wise" / "alpha-0" / TOKENIZER_FILE).version == 2
    np.testing.assert_allclose(
        positive(tmp_path / "wise" / "alpha-0", upgraded), positive(start, start_tokenizer), atol=1e-6
    )
    np.testing.assert_allclose(
        positive(tmp_path / "wise" / "alpha-1", upgraded), positive(end, upgraded), atol=1e-6
    )
    assert "WiSE-FT: 0.5" not in load_card(tmp_path / "wise" / "alpha-1")["training"]["embeddings"]
    assert "WiSE-FT: 0 x the bundle" in load_card(tmp_path / "wise" / "alpha-1")["training"]["embeddings"]
