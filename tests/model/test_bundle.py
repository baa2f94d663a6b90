"""The model card as the service shows it: the card less the paths on the training machine."""

from __future__ import annotations

import pytest

from model.bundle import LOCAL_PATH_FIELDS, looks_like_path, public_card


@pytest.mark.parametrize(
    "text",
    ["runs/vat", "../shared/data/aclImdb_v1.tar.gz", "/home/me/x", "~/x", "./x", "C:\\runs", "a --data ../x"],
)
def test_paths_are_recognised(text) -> None:
    assert looks_like_path(text)


@pytest.mark.parametrize(
    "text",
    ["ngram", "word2vec", "model.onnx", "aclImdb_v1.tar.gz", "x86_64, 2 torch threads", "float32 [batch, 2]"],
)
def test_other_strings_are_not_paths(text) -> None:
    assert not looks_like_path(text)


def test_public_card_drops_the_listed_fields_and_any_path_it_finds() -> None:
    card = {
        "name": "imdb-lstm",
        "train_config": {"output": "default", "data": "imdb.tar.gz", "init_from": "", "epochs": 3},
        "training": {
            "embeddings": "from runs/a/best.pt",
            "machine": "x86_64",
            "pretraining": {"checkpoint": "lm"},
        },
        "notes": ["kept", "/srv/secret"],
    }
    public = public_card(card)
    assert public == {
        "name": "imdb-lstm",
        "train_config": {"epochs": 3},  # listed fields go even when their value names no folder
        "training": {"machine": "x86_64", "pretraining": {}},
        "notes": ["kept"],
    }
    assert card["train_config"]["output"] == "default" and card["notes"][1] == "/srv/secret"  # a copy
    assert public_card({"training": None}) == {"training": None}  # a field missing is no error
    assert {path[0] for path in LOCAL_PATH_FIELDS} == {"train_config", "training"}
