"""The model bundle's layout and card, readable without torch (by evaluation and the service)."""

from __future__ import annotations

import json
from pathlib import Path

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"
LABELS = ("negative", "positive")


def load_card(bundle: str | Path) -> dict:
    """Read ``model_card.json``; a missing or malformed card is a ValueError naming the file."""
    path = Path(bundle) / CARD_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no model card (is {bundle} a model bundle?)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    max_tokens = card.get("max_tokens") if isinstance(card, dict) else None
    if type(max_tokens) is not int or max_tokens < 1:  # bool is an int subclass: refuse it too
        raise ValueError(f"{path}: not a model card ('max_tokens' must be a positive integer)")
    return card
