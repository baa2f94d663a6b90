"""Checkpoints: dicts of state dicts, configs and progress, naming the vocabulary they were trained with.

A network's token ids mean nothing under another vocabulary, so every checkpoint records the
sha256 of its vocabulary (:func:`vocabulary_digest`) and :func:`load_checkpoint` refuses one made
with another. Loading uses ``torch.load(..., weights_only=True)``: a checkpoint holds tensors and
plain Python values only, and a file that holds anything else is refused instead of unpickled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from model.tokenizer import Vocabulary

VOCABULARY_KEY = "vocabulary_sha256"


def vocabulary_digest(vocabulary: Vocabulary) -> str:
    """sha256 of the vocabulary's tokens in id order (a newline cannot occur inside a token)."""
    return hashlib.sha256("\n".join(vocabulary.itos).encode()).hexdigest()


def save_checkpoint(path: Path, payload: dict[str, Any], vocabulary: Vocabulary) -> None:
    """Write ``payload`` (state dicts and plain values, never a pickled object) and the
    vocabulary's digest."""
    torch.save({**payload, VOCABULARY_KEY: vocabulary_digest(vocabulary)}, path)


def load_checkpoint(path: str | Path, vocabulary: Vocabulary | None = None) -> dict[str, Any]:
    """A checkpoint's dict, on the CPU; with ``vocabulary``, a ValueError unless it was trained with it."""
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises pickle's and its own errors for foreign content
        raise ValueError(f"{path}: not a checkpoint of plain tensors and values ({error})") from error
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: not a checkpoint (a dict expected, not {type(saved).__name__})")
    if vocabulary is not None:
        check_vocabulary(saved, path, vocabulary)
    return saved


def check_vocabulary(saved: dict[str, Any], path: str | Path, vocabulary: Vocabulary) -> None:
    """A ValueError naming ``path`` unless the checkpoint ``saved`` was trained with ``vocabulary``."""
    recorded = saved.get(VOCABULARY_KEY)
    if recorded is None:
        raise ValueError(f"{path}: names no vocabulary (made before checkpoints recorded one); retrain it")
    if recorded != vocabulary_digest(vocabulary):
        raise ValueError(
            f"{path}: trained with another vocabulary than this run's "
            "(the same data, seed, vocab_size and min_count give the same one)"
        )
