"""The model store: every way a bundle can be wrong is one BundleError naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from app.errors import BundleError
from app.settings import Settings
from app.store import ModelStore
from tests.bundles import make_bundle


def _edit_config(folder: Path, **changes: object) -> None:
    card = json.loads((folder / "model_card.json").read_text())
    card["model_config"].update(changes)
    (folder / "model_card.json").write_text(json.dumps(card))


def _edit_card(folder: Path, **changes: object) -> None:
    card = json.loads((folder / "model_card.json").read_text())
    (folder / "model_card.json").write_text(json.dumps({**card, **changes}))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _set_onnx_config(folder: Path, value: str | None) -> None:
    """Rewrite model.onnx with its model config metadata replaced (None: removed)."""
    proto = onnx.load(str(folder / "model.onnx"))
    kept = [p for p in proto.metadata_props if p.key != "model_config"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    if value is not None:
        proto.metadata_props.add(key="model_config", value=value)
    onnx.save(proto, str(folder / "model.onnx"))


@pytest.mark.parametrize(
    ("change", "file", "message"),
    [
        (lambda f: (f / "model.onnx").unlink(), "model.onnx", "missing"),
        (lambda f: (f / "model.onnx").write_bytes(b""), "model.onnx", "empty file (0 bytes"),
        (lambda f: _truncate(f / "model.onnx"), "model.onnx", "not an ONNX model, or cut short"),
        (lambda f: (f / "model.onnx").write_bytes(b"\x08\x01garbage"), "model.onnx", "not an ONNX model"),
        (lambda f: (f / "model.onnx").write_bytes(b"\x08\x07"), "model.onnx", "holds no ONNX graph"),
        (lambda f: _set_onnx_config(f, None), "model.onnx", "the ONNX graph has no 'model_config' metadata"),
        (lambda f: _set_onnx_config(f, "{"), "model.onnx", "'model_config' metadata is not a model config"),
        (
            lambda f: _set_onnx_config(f, '{"vocab_size": "many"}'),
            "model.onnx",
            "'model_config' metadata is not a model config",
        ),
        (lambda f: (f / "tokenizer.json").unlink(), "tokenizer.json", "missing"),
        (lambda f: (f / "tokenizer.json").write_text(""), "tokenizer.json", "empty file"),
        (lambda f: (f / "tokenizer.json").write_text("{"), "tokenizer.json", "not valid JSON"),
        (lambda f: (f / "tokenizer.json").write_bytes(b"\xff\xfe{}"), "tokenizer.json", "not UTF-8 text"),
        (lambda f: (f / "tokenizer.json").write_text("[]"), "tokenizer.json", "not a tokenizer file"),
        (
            lambda f: (f / "tokenizer.json").write_text('{"version": 1, "itos": "abc"}'),
            "tokenizer.json",
            "'itos' must be a list of strings",
        ),
        (
            lambda f: (f / "tokenizer.json").write_text('{"version": 1, "itos": ["a", "b"]}'),
            "tokenizer.json",
            "vocabulary must start with",
        ),
        (
            lambda f: (f / "tokenizer.json").write_text('{"version": 1, "itos": ["<pad>", "<unk>", "x"]}'),
            "tokenizer.json",
            "the tokenizer has 3 words",
        ),
        (lambda f: (f / "model_card.json").unlink(), "model_card.json", "missing"),
        (lambda f: (f / "model_card.json").write_text("{"), "model_card.json", "not valid JSON"),
        (lambda f: (f / "model_card.json").write_text("[1]"), "model_card.json", "a JSON object expected"),
        (lambda f: _edit_card(f, max_tokens=0), "model_card.json", "positive integer"),
        (lambda f: _edit_card(f, max_tokens=True), "model_card.json", "positive integer"),
        (lambda f: _edit_card(f, name=7), "model_card.json", "'name' must be a string"),
        (lambda f: _edit_card(f, model_config=[1]), "model_card.json", "'model_config' must be an object"),
        (lambda f: _edit_config(f, hidden_size=7), "model_card.json", "differs from the one inside"),
        (lambda f: _edit_config(f, colour="red"), "model_card.json", "is not a model config"),
        (lambda f: _edit_config(f, embed_dropout=2.0), "model_card.json", "is not a model config"),
    ],
)
def test_bad_bundles_are_refused_naming_the_file(tmp_path, change, file, message) -> None:
    folder, _, _ = make_bundle(tmp_path / "bundle")
    change(folder)
    store = ModelStore(Settings(model_dir=folder))
    with pytest.raises(BundleError) as caught:
        store.load()
    assert str(caught.value).startswith(f"{folder / file}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not store.ready


def test_empty_api_key_is_a_settings_error(tmp_path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(model_dir=tmp_path, api_key="")


@pytest.mark.parametrize(("spin_wait", "entry"), [("true", "1"), ("false", "0")])
def test_onnxruntime_settings_reach_the_session(tmp_path, monkeypatch, spin_wait, entry) -> None:
    folder, _, _ = make_bundle(tmp_path / "bundle")
    monkeypatch.setenv("SENTIMENT_SPIN_WAIT", spin_wait)
    monkeypatch.setenv("SENTIMENT_THREADS", "2")
    store = ModelStore(Settings(model_dir=folder))
    store.load()
    options = store.model.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == entry
    assert options.intra_op_num_threads == 2


def test_a_card_from_before_a_model_field_existed_still_loads(tmp_path) -> None:
    folder, _, _ = make_bundle(tmp_path / "bundle")
    card = json.loads((folder / "model_card.json").read_text())
    for later in ("word_dropout", "locked_dropout"):  # added after the first bundles were shipped
        del card["model_config"][later]
    (folder / "model_card.json").write_text(json.dumps(card))
    store = ModelStore(Settings(model_dir=folder))
    store.load()
    assert store.ready
