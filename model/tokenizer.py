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
# Version 1 reads every character as typed. Version 2 also reads a URL as ``<url>``, a handle
# (@name) as ``<user>`` and a number above 10 as ``<number>``: they name no sentiment, and a
# model should not move when one is added or changed. Numbers up to 10 stay as typed, as
# ratings ("7/10", "4 out of 10") carry it. A tokenizer file states its version, so a bundle made
# under version 1 is read as it was trained.
TOKENIZER_VERSION = 2  # the newest version this code reads and writes
URL, USER, NUMBER = "<url>", "<user>", "<number>"
PLACEHOLDERS = (URL, USER, NUMBER)

# IMDB reviews carry HTML line breaks (`<br />`); they separate sentences, so they become spaces.
# (One optional "/" between two optional runs of spaces: `\s*/?\s*` would backtrack
# quadratically on a long run of spaces after "<br".)
_HTML_BREAK = re.compile(r"<br\s*(?:/\s*)?>", re.IGNORECASE)
# Apostrophe look-alikes NFKC leaves alone; unified so "don’t" and "don't" tokenise the same.
_QUOTES = ("\u2019", "\u2018", "\u02bc", "`")
# A word is letters/digits, optionally joined by apostrophes or hyphens ("o'clock", "well-made");
# anything else that is not a space is one punctuation token.
_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*|[^\w\s]|_")
# Version 2 looks for a URL (ending before trailing punctuation), a handle and a number standing
# alone ("1,999.5", not "7th" nor "10-star") before a word; group 1, 2, 3 says which it found.
_TOKEN_V2 = re.compile(
    r"((?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)'\]])"
    r"|(?<!\w)(@\w+)"
    r"|(?<![^\W_])([0-9]+(?:[.,][0-9]+)*)(?![^\W_]|['\-][^\W_])"
    r"|" + _TOKEN.pattern
)
# Contractions split the way the Penn Treebank does: "don't" -> "do" "n't", "it's" -> "it" "'s".
_NEGATION = re.compile(r"^(.+)(n't)$")
_CLITIC = re.compile(r"^(.+)('s|'re|'ve|'ll|'d|'m)$")


# The most characters NFKC and lowercasing make of one character (U+FDFA becomes 18): a text of
# n characters normalises to at most n times this, and an ASCII text to at most n.
MAX_EXPANSION = 18
# A capped tokenisation reads the text in pieces of about this many characters (see tokenize).
PIECE_CHARS = 1024
# How far past a piece's nominal end a cut is looked for: the Stream-Safe Text Format (UAX #15,
# section 13) lets a run of combining marks be this long at most; a longer run (no real text
# has one) is cut where it stands, and NFKC, quadratic in such a run, never sees it whole.
_CUT_LOOKAHEAD = 64
_SPACE = re.compile(r"\s")
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")
# Hangul vowel and final jamo compose with the syllable before them (Unicode 3.12)
_JAMO_VT = ((0x1161, 0x1175), (0x11A8, 0x11C2))


def normalize(text: str) -> str:
    """Remove HTML line breaks, apply Unicode NFKC, unify apostrophes and lowercase."""
    return _finish(unicodedata.normalize("NFKC", _HTML_BREAK.sub(" ", text)))


def _finish(text: str) -> str:
    """Unify apostrophes and lowercase (``str.replace`` runs in C; a translate table does not)."""
    for quote in _QUOTES:
        text = text.replace(quote, "'")
    return text.lower()


def normalized_length_bound(text: str) -> int:
    """An upper bound on ``len(normalize(text))``, in time independent of the text's content."""
    return len(text) if text.isascii() else len(text) * MAX_EXPANSION


def _starts_segment(char: str) -> bool:
    """Whether NFKC gives the same result on a text cut just before ``char`` as on the whole.

    True when the character's decomposition begins with a starter that composes with nothing
    before it (UAX #15, section 9): not a mark, not a Hangul vowel or final jamo.
    """
    first = unicodedata.normalize("NFKD", char)[:1]
    if not first or unicodedata.combining(first) or unicodedata.category(first).startswith("M"):
        return False
    return not any(low <= ord(first) <= high for low, high in _JAMO_VT)


def _is_readable(token: str) -> bool:
    """False for a token made of control or format characters only (nothing a reader sees)."""
    return any(unicodedata.category(ch) not in ("Cc", "Cf") for ch in token)


def _split_contraction(word: str) -> list[str]:
    for pattern in (_NEGATION, _CLITIC):
        match = pattern.match(word)
        if match:
            return [match.group(1), match.group(2)]
    return [word]


def tokenize(text: str, limit: int | None = None, version: int = 1) -> list[str]:
    """Split a review into word, contraction and punctuation tokens (after :func:`normalize`);
    ``version`` 2 also reads URLs, handles and numbers above 10 as placeholders (see
    :data:`TOKENIZER_VERSION`).

    With ``limit``, stop once more than ``limit`` tokens are found. Then only the prefix of the
    text that holds them is normalised, in pieces of about ``PIECE_CHARS`` characters, so the
    work, and each call that holds the GIL, is bounded by the limit and the piece, not by the
    text's length, which normalisation can multiply 18-fold. The pieces are cut where NFKC
    splits exactly, and normalised text is tokenised only up to its last whitespace (tokens and
    the final-sigma rule of lowercasing never cross it), so the result is the whole text's.
    """
    text = _HTML_BREAK.sub(" ", text)
    if limit is None:
        return _tokens(_finish(unicodedata.normalize("NFKC", text)), version=version)
    tokens: list[str] = []
    pending = ""  # normalised text after the last whitespace: its last token may go on
    for piece, last in _pieces(text):
        normalized = unicodedata.normalize("NFKC", piece)
        space = None if last else _LAST_SPACE.search(normalized)
        if not last and space is None:
            pending += normalized
            continue
        cut = len(normalized) if last else space.end()
        ready, pending = pending + normalized[:cut], normalized[cut:]
        tokens += _tokens(_finish(ready), limit + 1 - len(tokens), version)
        if len(tokens) > limit:
            break
    return tokens


def _tokens(normalized: str, most: int | None = None, version: int = 1) -> list[str]:
    """The tokens of normalised text, contractions split; stop once there are ``most``."""
    tokens: list[str] = []
    for match in (_TOKEN_V2 if version >= 2 else _TOKEN).finditer(normalized):
        word = match.group()
        if match.lastindex:  # a version-2 URL, handle or number
            tokens.extend(_placeholder(word, match.lastindex))
        else:
            tokens.extend(_split_contraction(word) if "'" in word else (word,))
        if most is not None and len(tokens) >= most:
            break
    return tokens


def _placeholder(word: str, kind: int) -> list[str]:
    """The tokens of a URL (``kind`` 1), handle (2) or number (3) under version 2."""
    if kind == 1:
        return [URL]
    if kind == 2:
        return [USER]
    try:
        value = float(word.replace(",", ""))
    except ValueError:  # several points: a date or a version, "26.10.2004"
        return [NUMBER]
    return [NUMBER] if value > 10 else _TOKEN.findall(word)  # ratings read as under version 1


def _pieces(text: str):
    """``(piece, is_last)``: ``text`` cut before whitespace or a segment start near every
    ``PIECE_CHARS`` characters (see ``_CUT_LOOKAHEAD``)."""
    start = 0
    while len(text) - start > PIECE_CHARS + _CUT_LOOKAHEAD:
        nominal = start + PIECE_CHARS
        space = _SPACE.search(text, nominal, nominal + _CUT_LOOKAHEAD)
        end = space.start() if space else nominal
        if space is None:
            end = next(
                (i for i in range(nominal, nominal + _CUT_LOOKAHEAD) if _starts_segment(text[i])), nominal
            )
        yield text[start:end], False
        start = end
    yield text[start:], True


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


def unk_rate(ids: Sequence[int]) -> float:
    """Share of ``ids`` that are ``<unk>`` (id 1, every out-of-vocabulary token): how much of a
    text the model could not read; a rising share is a sign the inputs drift from training's."""
    return ids.count(1) / len(ids) if ids else 0.0


@dataclass(frozen=True)
class Encoded:
    """A text as the network reads it: the kept tokens and their ids.

    ``truncated``: tokens were dropped to respect the token cap. ``empty``: the text has no
    token a reader would see (it is empty, blank, or control and format characters only).
    """

    tokens: list[str]
    ids: list[int]
    truncated: bool
    empty: bool


class Tokenizer:
    """Text -> token ids, with truncation; the object the bundle's ``tokenizer.json`` describes.

    ``version`` is the tokenisation's (see :data:`TOKENIZER_VERSION`); 1, the first, by default.
    """

    def __init__(self, vocabulary: Vocabulary, version: int = 1) -> None:
        if version not in range(1, TOKENIZER_VERSION + 1):
            raise ValueError(f"tokenizer version must be 1 to {TOKENIZER_VERSION}, got {version}")
        self.vocabulary = vocabulary
        self.version = version

    def tokenize(self, text: str) -> list[str]:
        """Tokens of ``text`` (see :func:`tokenize`)."""
        return tokenize(text, version=self.version)

    def encode_text(self, text: str, max_tokens: int | None = None) -> Encoded:
        """Tokens and ids of ``text``, keeping the first ``max_tokens`` when given (and reading
        no further into the text than they need)."""
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        return self.encode_tokens(tokenize(text, max_tokens, self.version), max_tokens)

    def encode_tokens(self, tokens: Sequence[str], max_tokens: int | None = None) -> Encoded:
        """Ids of already tokenised text, keeping the first ``max_tokens`` when given.

        A text without tokens is read as one ``<unk>``: the network needs at least one step.
        """
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        kept = list(tokens[:max_tokens])
        empty = not any(map(_is_readable, kept))  # the first token is nearly always readable
        kept = kept or [UNK]
        return Encoded(kept, self.vocabulary.encode(kept), truncated=len(tokens) > len(kept), empty=empty)

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        """Token ids of ``text`` (see :meth:`encode_text`)."""
        return self.encode_text(text, max_tokens).ids

    def save(self, path: str | Path) -> None:
        """Write the tokenizer and vocabulary as JSON."""
        payload = {
            "tokenizer": "imdb-lstm-word",
            "version": self.version,
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
        version = payload.get("version") if isinstance(payload, dict) else None
        if type(version) is not int or not 1 <= version <= TOKENIZER_VERSION:
            raise ValueError(f"{path}: not a tokenizer file of version 1 to {TOKENIZER_VERSION}")
        itos = payload.get("itos")
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise ValueError(f"{path}: 'itos' must be a list of strings")
        return cls(Vocabulary(tuple(itos)), version)
