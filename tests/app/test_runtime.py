"""Bundle loading: every way a bundle can be wrong is one BundleError naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import BundleError
from app.runtime import ModelRuntime
from app.settings import Settings
from tests.bundles import make_bundle


def _edit_config(folder: Path, **changes: object) -> None:
    card = json.loads((folder / "model_card.json").read_text())
    card["model_config"].update(changes)
    (folder / "model_card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: (f / "model.onnx").unlink(), "model.onnx: missing"),
        (lambda f: (f / "model_card.json").write_text("{"), "not valid JSON"),
        (lambda f: (f / "model_card.json").write_text(json.dumps({"max_tokens": 0})), "positive integer"),
        (lambda f: (f / "model_card.json").write_text(json.dumps({"max_tokens": True})), "positive integer"),
        (
            lambda f: (f / "tokenizer.json").write_text('{"version": 1, "itos": ["<pad>", "<unk>", "x"]}'),
            "tokenizer has 3",
        ),
        (lambda f: (f / "model.onnx").write_bytes(b"\x08\x01garbage"), "model.onnx"),
        (lambda f: _edit_config(f, hidden_size=7), "model_config differs from the one inside model.onnx"),
        (lambda f: _edit_config(f, colour="red"), "model_config is not a model config"),
        (lambda f: _edit_config(f, embed_dropout=2.0), "model_config is not a model config"),
    ],
)
def test_bad_bundles_are_refused(tmp_path, change, message) -> None:
    folder, _, _ = make_bundle(tmp_path / "bundle")
    change(folder)
    runtime = ModelRuntime(Settings(model_dir=folder))
    with pytest.raises(BundleError, match=message):
        runtime.load()
    assert not runtime.ready


def test_empty_api_key_is_a_settings_error(tmp_path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(model_dir=tmp_path, api_key="")


@pytest.mark.parametrize(("spin_wait", "entry"), [("true", "1"), ("false", "0")])
def test_onnxruntime_settings_reach_the_session(tmp_path, monkeypatch, spin_wait, entry) -> None:
    folder, _, _ = make_bundle(tmp_path / "bundle")
    monkeypatch.setenv("SENTIMENT_SPIN_WAIT", spin_wait)
    monkeypatch.setenv("SENTIMENT_THREADS", "2")
    runtime = ModelRuntime(Settings(model_dir=folder))
    runtime.load()
    options = runtime.model.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == entry
    assert options.intra_op_num_threads == 2


def test_a_card_from_before_a_model_field_existed_still_loads(tmp_path) -> None:
    folder, _, _ = make_bundle(tmp_path / "bundle")
    card = json.loads((folder / "model_card.json").read_text())
    for later in ("word_dropout", "locked_dropout"):  # added after the first bundles were shipped
        del card["model_config"][later]
    (folder / "model_card.json").write_text(json.dumps(card))
    runtime = ModelRuntime(Settings(model_dir=folder))
    runtime.load()
    assert runtime.ready


def test_prediction_as_dict_is_dataclasses_asdict_without_shared_values() -> None:
    import dataclasses

    from app.runtime import PredictionResult

    result = PredictionResult("positive", 0.75, {"negative": 0.25, "positive": 0.75}, 12, False)
    body = result.as_dict()
    assert body == dataclasses.asdict(result)
    assert list(body) == [field.name for field in dataclasses.fields(result)]
    body["probabilities"]["positive"] = 0.0  # a response's dict is its own: the result is not touched
    assert result.probabilities["positive"] == 0.75
