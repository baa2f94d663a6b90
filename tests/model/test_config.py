"""Tests for model.config.ModelConfig."""

from __future__ import annotations

import json

import pytest

from model.config import CELLS, POOLINGS, ModelConfig


def test_defaults() -> None:
    config = ModelConfig(vocab_size=100)
    assert config.embed_dim == 128
    assert config.hidden_size == 128
    assert config.bidirectional is True
    assert config.cell == "lstm"
    assert config.pooling == "concat"
    assert config.num_classes == 2
    assert config.pad_id == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cell": "lstmx"}, "cell"),
        ({"pooling": "foo"}, "pooling"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"hidden_size": -1}, "hidden_size"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_classes": 0}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": 1.5}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"embed_dropout": 1.0}, "embed_dropout"),
        ({"word_dropout": 1.0}, "word_dropout"),
        ({"word_dropout": -0.5}, "word_dropout"),
    ],
)
def test_invalid_values_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelConfig(**{"vocab_size": 10, **kwargs})


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_cell_and_pooling_is_accepted(cell: str, pooling: str) -> None:
    config = ModelConfig(
        vocab_size=10, cell=cell, pooling=pooling, dropout=0.0, bidirectional=cell != "transformer"
    )
    assert (config.cell, config.pooling) == (cell, pooling)


def test_a_transformer_config_is_checked() -> None:
    with pytest.raises(ValueError, match="bidirectional = false"):
        ModelConfig(vocab_size=10, cell="transformer")  # attention reads both ways already
    with pytest.raises(ValueError, match="divisible by 2 \\* num_heads"):
        ModelConfig(vocab_size=10, cell="transformer", bidirectional=False, embed_dim=12, num_heads=4)
    config = ModelConfig(vocab_size=10, cell="transformer", bidirectional=False, embed_dim=16, hidden_size=64)
    # its outputs are embed_dim wide; hidden_size is the feed-forward block's width
    assert (config.recurrent, config.encoder_dim, config.pooled_dim) == (False, 16, 48)
    assert ModelConfig(vocab_size=10, hidden_size=64).encoder_dim == 128  # a BiLSTM's two directions


def test_to_dict_from_dict_round_trip() -> None:
    config = ModelConfig(
        vocab_size=500,
        embed_dim=16,
        hidden_size=8,
        num_layers=2,
        bidirectional=False,
        cell="gru",
        pooling="max",
        embed_dropout=0.1,
        dropout=0.2,
    )
    data = config.to_dict()
    assert data["vocab_size"] == 500
    assert data["cell"] == "gru"
    assert data["bidirectional"] is False
    # survives JSON, as stored in checkpoints and model cards
    assert ModelConfig.from_dict(json.loads(json.dumps(data))) == config


def test_from_dict_rejects_unknown_keys() -> None:
    data = {**ModelConfig(vocab_size=10).to_dict(), "hiden_size": 3}
    with pytest.raises(ValueError, match="hiden_size"):
        ModelConfig.from_dict(data)


def test_from_dict_validates_values() -> None:
    data = {**ModelConfig(vocab_size=10).to_dict(), "pooling": "sum"}
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig.from_dict(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": "128"}, "hidden_size must be int"),
        ({"bidirectional": 1}, "bidirectional must be bool"),
        ({"vocab_size": True}, "vocab_size must be int"),
        ({"cell": 3}, "cell must be str"),
    ],
)
def test_from_dict_refuses_values_of_the_wrong_json_type(change, message) -> None:
    with pytest.raises(TypeError, match=message):
        ModelConfig.from_dict({**ModelConfig(vocab_size=10).to_dict(), **change})
    with pytest.raises(TypeError, match="JSON object"):
        ModelConfig.from_dict([1])  # type: ignore[arg-type]
    assert ModelConfig.from_dict({"vocab_size": 10, "dropout": 0}).dropout == 0  # a JSON 0 is a float


def test_is_frozen() -> None:
    config = ModelConfig(vocab_size=10)
    with pytest.raises(AttributeError):
        config.hidden_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("bidirectional", "pooling", "directions", "encoder_dim", "pooled_dim"),
    [
        (True, "concat", 2, 64, 192),
        (False, "concat", 1, 32, 96),
        (True, "max", 2, 64, 64),
        (False, "last", 1, 32, 32),
        (True, "mean", 2, 64, 64),
    ],
)
def test_derived_dimensions(
    bidirectional: bool, pooling: str, directions: int, encoder_dim: int, pooled_dim: int
) -> None:
    config = ModelConfig(vocab_size=10, hidden_size=32, bidirectional=bidirectional, pooling=pooling)
    assert config.num_directions == directions
    assert config.encoder_dim == encoder_dim
    assert config.pooled_dim == pooled_dim
