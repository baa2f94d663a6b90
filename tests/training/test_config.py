"""Tests for training.config: TOML + CLI run configuration."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from training.config import RunConfig, TrainConfig, add_arguments, load_run_config

REPO = Path(__file__).resolve().parents[2]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train")
    add_arguments(parser)
    return parser


def _overrides(argv: list[str]) -> tuple[Path | None, dict]:
    args = vars(_parser().parse_args(argv))
    config = args.pop("config")
    return config, {key: value for key, value in args.items() if value is not None}


def test_defaults_without_file_or_overrides() -> None:
    config = load_run_config(None, {})
    assert isinstance(config, RunConfig)
    assert config.model == {}
    assert config.train == TrainConfig()
    assert config.train.epochs == 6
    assert config.train.seed == 1234
    model = config.model_config(vocab_size=321)
    assert model.vocab_size == 321
    assert model.cell == "lstm"
    assert model.pooling == "concat"


def test_toml_file_values(tmp_path) -> None:
    path = _toml(
        tmp_path,
        '[model]\nhidden_size = 64\ncell = "gru"\nbidirectional = false\n\n'
        '[train]\nepochs = 2\nlearning_rate = 0.01\ndata = "/data/imdb.tar.gz"\n',
    )
    config = load_run_config(path, {})
    assert config.model == {"hidden_size": 64, "cell": "gru", "bidirectional": False}
    assert config.train.epochs == 2
    assert config.train.learning_rate == 0.01
    assert config.train.data == "/data/imdb.tar.gz"
    assert config.train.batch_size == 64  # untouched default
    model = config.model_config(vocab_size=100)
    assert (model.hidden_size, model.cell, model.num_directions) == (64, "gru", 1)


def test_cli_overrides_win_over_file(tmp_path) -> None:
    path = _toml(tmp_path, '[model]\ncell = "gru"\ndropout = 0.2\n[train]\nepochs = 2\nseed = 5\n')
    config = load_run_config(
        path, {"train.epochs": 9, "model.cell": "rnn", "train.seed": None, "model.dropout": None}
    )
    assert config.train.epochs == 9
    assert config.model["cell"] == "rnn"
    # None means "flag not given": the file's value stays
    assert config.train.seed == 5
    assert config.model["dropout"] == 0.2


def test_unknown_table(tmp_path) -> None:
    path = _toml(tmp_path, "[optimizer]\nlr = 1.0\n")
    with pytest.raises(ValueError, match="optimizer"):
        load_run_config(path, {})


@pytest.mark.parametrize(
    "text",
    ["[model]\nhiden_size = 3\n", "[train]\nepoch = 3\n", "[model]\nvocab_size = 100\n"],
)
def test_unknown_key(tmp_path, text: str) -> None:
    with pytest.raises(ValueError, match="unknown configuration keys"):
        load_run_config(_toml(tmp_path, text), {})


def test_unknown_override_key() -> None:
    with pytest.raises(ValueError, match="epoch"):
        load_run_config(None, {"train.epoch": 3})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[model]\ncell = "lstmx"\n', "cell"),
        ('[model]\npooling = "foo"\n', "pooling"),
        ("[model]\ndropout = 1.5\n", "dropout"),
        ("[model]\nhidden_size = 0\n", "hidden_size"),
    ],
)
def test_invalid_model_value_fails_immediately(tmp_path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_run_config(_toml(tmp_path, text), {})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be >= 1, got 0"),
        ("epochs", 0, "epochs must be >= 1"),
        ("learning_rate", 0.0, "learning_rate must be > 0"),
        ("validation_fraction", 1.0, "validation_fraction must be < 1"),
        ("warmup_fraction", 1.5, "warmup_fraction must be <= 1"),
        ("pseudo_threshold", 0.3, "pseudo_threshold must be >= 0.5"),
        ("clip_norm", 0.0, "clip_norm must be > 0"),
        ("weight_decay", -0.1, "weight_decay must be >= 0"),
        ("vocab_size", 2, "vocab_size must be >= 3"),
        ("threads", -1, "threads must be >= 0"),
    ],
)
def test_out_of_range_train_value_fails_immediately(tmp_path, field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"[train] {message}")):
        load_run_config(None, {f"train.{field}": value})
    with pytest.raises(ValueError, match=re.escape(message)):
        load_run_config(_toml(tmp_path, f"[train]\n{field} = {value}\n"), {})


def test_every_bound_refuses_the_value_just_outside_it() -> None:
    outside = {"ge": -1e-9, "gt": 0.0, "le": 1e-9, "lt": 0.0}
    checked = 0
    for spec in fields(TrainConfig):
        for key, bound in spec.metadata["bounds"].items():
            value = bound + outside[key]
            value = type(spec.default)(value) if key in ("gt", "lt") else value
            if isinstance(spec.default, int) and key in ("ge", "le"):
                value = bound - 1 if key == "ge" else bound + 1
            with pytest.raises(ValueError, match=re.escape(f"[train] {spec.name} must be")):
                load_run_config(None, {f"train.{spec.name}": value})
            checked += 1
    assert checked >= 20


def test_train_bounds_are_inclusive_where_they_say_so() -> None:
    edges = {"warmup_fraction": 0.0, "embedding_lr_scale": 0.0, "pseudo_threshold": 0.5, "freeze_epochs": 0}
    config = load_run_config(None, {f"train.{k}": v for k, v in edges.items()})
    assert all(getattr(config.train, k) == v for k, v in edges.items())
    upper = load_run_config(None, {"train.warmup_fraction": 1.0, "train.pseudo_threshold": 1.0}).train
    assert (upper.warmup_fraction, upper.pseudo_threshold) == (1.0, 1.0)


def test_invalid_model_override_fails_immediately() -> None:
    with pytest.raises(ValueError, match="cell"):
        load_run_config(None, {"model.cell": "lstmx"})


def test_default_toml_loads() -> None:
    config = load_run_config(REPO / "configs" / "default.toml", {})
    assert config.model["cell"] == "lstm"
    assert config.model["dropout"] == 0.4
    assert config.train.vocab_size == 20000
    assert config.train.embeddings == "word2vec"
    model = config.model_config(config.train.vocab_size)
    assert model.bidirectional is True
    assert model.pooled_dim == 3 * 2 * 128


def test_every_flag_has_help() -> None:
    parser = _parser()
    options = [a for a in parser._actions if a.option_strings]
    assert len(options) > 20
    for action in options:
        assert action.help and action.help.strip(), action.option_strings


def test_flags_cover_every_train_field() -> None:
    parser = _parser()
    dests = {action.dest for action in parser._actions}
    assert {f"train.{f.name}" for f in fields(TrainConfig)} <= dests
    assert {"model.cell", "model.pooling", "model.bidirectional", "model.hidden_size", "config"} <= dests
    assert "model.vocab_size" not in dests


def test_parsing_gives_the_override_dict() -> None:
    config_path, overrides = _overrides(["--epochs", "3", "--bidirectional", "false", "--cell", "gru"])
    assert config_path is None
    assert overrides == {"train.epochs": 3, "model.bidirectional": False, "model.cell": "gru"}
    assert isinstance(overrides["train.epochs"], int)
    run = load_run_config(config_path, overrides)
    assert run.train.epochs == 3
    assert run.model_config(50).bidirectional is False
    assert run.model_config(50).cell == "gru"


def test_parsing_types() -> None:
    config_path, overrides = _overrides(
        [
            "--config",
            "x.toml",
            "--learning-rate",
            "1e-3",
            "--data",
            "d.tar.gz",
            "--hidden-size",
            "32",
            "--bidirectional",
            "YES",
            "--embed-dropout",
            "0.25",
        ]
    )
    assert config_path == Path("x.toml")
    assert overrides == {
        "train.learning_rate": 0.001,
        "train.data": "d.tar.gz",
        "model.hidden_size": 32,
        "model.bidirectional": True,
        "model.embed_dropout": 0.25,
    }


def test_parsing_nothing_gives_no_overrides() -> None:
    assert _overrides([]) == (None, {})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bidirectional", "maybe"], "--bidirectional: expected true/false, got 'maybe'"),
        (["--epochs", "three"], "--epochs: invalid int value"),
        (["--dropout", "lots"], "--dropout: invalid float value"),
    ],
)
def test_bad_flag_values_are_rejected(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(argv)
    assert message in capsys.readouterr().err


def test_word_vector_perturbation_is_on_when_either_epsilon_is() -> None:
    assert not load_run_config(None, {}).train.moves_word_vectors
    assert load_run_config(None, {"train.adversarial_epsilon": 1.5}).train.moves_word_vectors
    assert load_run_config(None, {"train.vat_epsilon": 1.5}).train.moves_word_vectors
