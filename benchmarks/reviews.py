"""What the benchmarks feed the model: real IMDB test reviews, the same ones in every benchmark."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from model.bundle import TOKENIZER_FILE, load_card
from model.tokenizer import Tokenizer

# short reviews for runs without the IMDB archive (a dry run, or a machine without the data)
BUILT_IN = [
    "A wonderful, moving film with great acting and a superb story.",
    "An awful, boring mess. The worst acting I have seen in years.",
    "I loved it! Brilliant and funny, a great great movie.",
    "Terrible plot, dull characters; I hated every minute of it.",
    "Not bad, not great. The second half drags, but the ending works.",
]


def sample(test: Sequence, count: int) -> list[str]:
    """The texts of ``count`` of the ``test`` reviews (all when fewer), drawn with seed 0, so
    that every benchmark sends the same ones."""
    return [review.text for review in random.Random(0).sample(test, min(count, len(test)))]


def review_texts(data: str | None, count: int) -> list[str]:
    """:func:`sample` of the test reviews in ``data``, the IMDB archive or folder (None:
    ``$IMDB_DATA``); a partial copy will do."""
    from training.data import load_imdb  # here: parsing the archive takes seconds

    return sample(load_imdb(data, expect_full=False).test, count)


def token_ids(bundle: Path, texts: Sequence[str]) -> list[list[int]]:
    """Each text's token ids as the service reads them: the bundle's tokenizer, cut at its card's
    ``max_tokens``."""
    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    cut = load_card(bundle)["max_tokens"]
    return [tokenizer.encode(text, cut) for text in texts]
