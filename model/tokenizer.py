"""Text normalisation, tokenisation and the vocabulary: pure Python, used by training and serving.

There is exactly one implementation; the bundle stores the vocabulary and the tokenizer's
settings so the service reproduces what the network saw during training.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PAD = "<pad>"
UNK = "<unk>"
TOKENIZER_VERSION = 1

# IMDB reviews carry HTML line breaks (`<br />`); they separate sentences, so they become spaces.
# (One optional "/" between two optional runs of spaces: `\s*/?\s*` would backtrack
# quadratically on a long run of spaces after "<br".)
_HTML_BREAK = re.compile(r"<br\s*(?:/\s*)?>", re.IGNORECASE)
# Apostrophe look-alikes NFKC leaves alone; unified so "don’t" and "don't" tokenise the same.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
# A word is letters/digits, optionally joined by apostrophes or hyphens ("o'clock", "well-made");
# anything else that is not a space is one punctuation token.
_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*|[^\w\s]|_")
# Contractions split the way the Penn Treebank does: "don't" -> "do" "n't", "it's" -> "it" "'s".
_NEGATION = re.compile(r"^(.+)(n't)$")
_CLITIC = re.compile(r"^(.+)('s|'re|'ve|'ll|'d|'m)$")


def normalize(text: str) -> str:
    """Remove HTML line breaks, apply Unicode NFKC, unify apostrophes and lowercase."""
    text = _HTML_BREAK.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    return text.translate(_APOSTROPHES).lower()


def _split_contraction(word: str) -> list[str]:
    for pattern in (_NEGATION, _CLITIC):
        match = pattern.match(word)
        if match:
            return [match.group(1), match.group(2)]
    return [word]


def tokenize(text: str) -> list[str]:
    """Split a review into word, contraction and punctuation tokens (after :func:`normalize`)."""
    tokens: list[str] = []
    for word in _TOKEN.findall(normalize(text)):
        tokens.extend(_split_contraction(word) if "'" in word else (word,))
    return tokens


@dataclass(frozen=True)
class Vocabulary:
    """Token <-> id mapping with ``<pad>`` at id 0 and ``<unk>`` at id 1."""

    itos: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.itos[:2] != (PAD, UNK):
            raise ValueError(f"vocabulary must start with {PAD!r}, {UNK!r}")
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("vocabulary has duplicate tokens")
        object.__setattr__(self, "_stoi", {token: i for i, token in enumerate(self.itos)})

    @property
    def pad_id(self) -> int:
        """Id of the padding token."""
        return 0

    @property
    def unk_id(self) -> int:
        """Id every out-of-vocabulary token maps to."""
        return 1

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int, min_count: int = 1) -> Vocabulary:
        """Most frequent tokens first (ties broken alphabetically), at most ``max_size`` ids."""
        if max_size < 3:
            raise ValueError("max_size must leave room for <pad>, <unk> and one word")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_count and item[0] not in (PAD, UNK)),
            key=lambda item: (-item[1], item[0]),
        )
        return cls((PAD, UNK, *(token for token, _ in ranked[: max_size - 2])))

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Map tokens to ids; unknown tokens become ``<unk>``."""
        stoi: dict[str, int] = self._stoi  # type: ignore[attr-defined]
        return [stoi.get(token, 1) for token in tokens]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Map ids back to tokens."""
        return [self.itos[i] for i in ids]


@dataclass(frozen=True)
class Encoded:
    """A text as the network reads it: the kept tokens, their ids, and the untruncated count."""

    tokens: list[str]
    ids: list[int]
    total: int

    @property
    def truncated(self) -> bool:
        """Whether tokens were dropped to respect the token cap."""
        return self.total > len(self.tokens)


class Tokenizer:
    """Text -> token ids, with truncation; the object the bundle's ``tokenizer.json`` describes."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def tokenize(self, text: str) -> list[str]:
        """Tokens of ``text`` (see :func:`tokenize`)."""
        return tokenize(text)

    def encode_text(self, text: str, max_tokens: int | None = None) -> Encoded:
        """Tokens and ids of ``text``, keeping the first ``max_tokens`` when given."""
        return self.encode_tokens(tokenize(text), max_tokens)

    def encode_tokens(self, tokens: Sequence[str], max_tokens: int | None = None) -> Encoded:
        """Ids of already tokenised text, keeping the first ``max_tokens`` when given.

        A text without tokens is read as one ``<unk>``: the network needs at least one step.
        """
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        kept = list(tokens[:max_tokens]) or [UNK]
        return Encoded(tokens=kept, ids=self.vocabulary.encode(kept), total=len(tokens))

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        """Token ids of ``text`` (see :meth:`encode_text`)."""
        return self.encode_text(text, max_tokens).ids

    def save(self, path: str | Path) -> None:
        """Write the tokenizer and vocabulary as JSON."""
        payload = {
            "tokenizer": "imdb-lstm-word",
            "version": TOKENIZER_VERSION,
            "pad": PAD,
            "unk": UNK,
            "itos": list(self.vocabulary.itos),
        }
        Path(path).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`; a wrong version or shape is a ValueError."""
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(payload, dict) or payload.get("version") != TOKENIZER_VERSION:
            raise ValueError(f"{path}: not a version-{TOKENIZER_VERSION} tokenizer file")
        itos = payload.get("itos")
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise ValueError(f"{path}: 'itos' must be a list of strings")
        return cls(Vocabulary(tuple(itos)))
