"""Checkpoints name their vocabulary and hold nothing that would need unpickling."""

from __future__ import annotations

import pytest
import torch

from model.tokenizer import Vocabulary
from training.checkpoint import load_checkpoint, save_checkpoint, vocabulary_digest

WORDS = Vocabulary.build([["good", "bad", "film"]], max_size=10)
OTHER = Vocabulary.build([["good", "bad", "plot"]], max_size=10)


def test_a_checkpoint_loads_with_its_own_vocabulary(tmp_path) -> None:
    save_checkpoint(tmp_path / "a.pt", {"model_state": {"w": torch.ones(2)}, "epoch": 3}, WORDS)
    saved = load_checkpoint(tmp_path / "a.pt", WORDS)
    assert saved["epoch"] == 3 and torch.equal(saved["model_state"]["w"], torch.ones(2))
    assert saved["vocabulary_sha256"] == vocabulary_digest(WORDS) != vocabulary_digest(OTHER)


def test_another_vocabulary_is_refused_with_the_reason(tmp_path) -> None:
    save_checkpoint(tmp_path / "a.pt", {"epoch": 1}, WORDS)
    with pytest.raises(ValueError, match=r"a\.pt: trained with another vocabulary than this run's"):
        load_checkpoint(tmp_path / "a.pt", OTHER)


def test_a_checkpoint_naming_no_vocabulary_is_refused(tmp_path) -> None:
    torch.save({"epoch": 1}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["epoch"] == 1  # readable where no vocabulary is asked
    with pytest.raises(ValueError, match="names no vocabulary"):
        load_checkpoint(tmp_path / "old.pt", WORDS)


class Payload:
    """Any pickled object: loading it would run code of the file's choosing."""


def test_a_pickled_object_is_refused_not_unpickled(tmp_path) -> None:
    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a checkpoint of plain tensors and values"):
        load_checkpoint(tmp_path / "evil.pt")
