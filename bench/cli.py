"""What every benchmark's command line shares: the data, the bundle, and a JSON copy of the figures."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--data``, ``--bundle`` and ``--json``."""
    made = argparse.ArgumentParser(description=description)
    made.add_argument("--data", help="IMDB archive or folder (default: $IMDB_DATA)")
    made.add_argument("--bundle", type=Path, default=Path("models/default"), help="model bundle folder")
    made.add_argument("--json", type=Path, help="also write the figures here")
    return made


def review_texts(data: str | None, count: int) -> list[str]:
    """``count`` test reviews' texts, drawn with seed 0: every benchmark that sends reviews
    sends the same ones. ``data`` is the IMDB archive or folder (None: ``$IMDB_DATA``)."""
    import random

    from training.data import load_imdb  # here, so that importing this module stays light

    return [review.text for review in random.Random(0).sample(load_imdb(data).test, count)]


def token_ids(bundle: Path, texts: Sequence[str]) -> list[list[int]]:
    """Each text's token ids as the service reads them: the bundle's tokenizer, cut at its card's
    ``max_tokens``."""
    from model.bundle import TOKENIZER_FILE, load_card
    from model.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    cut = load_card(bundle)["max_tokens"]
    return [tokenizer.encode(text, cut) for text in texts]


def commit() -> str:
    """The checked-out commit (short hash), with "+changes" when tracked files differ from it
    (the figures then come from uncommitted code), or "" outside a git checkout."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    head = done.stdout.strip()
    if head and subprocess.run(["git", "diff", "--quiet", "HEAD"], capture_output=True).returncode == 1:
        head += "+changes"
    return head


def publish(figures: dict, printer: Callable[[dict], None], path: Path | None) -> None:
    """Print ``figures`` with ``printer``, and write them as JSON to ``path`` when given, with
    the commit that made them."""
    printer(figures)
    if path:
        path.write_text(json.dumps({"commit": commit(), **figures}, indent=2))
