"""Property-based tests of the tokenizer (hypothesis): any Unicode text, never an error."""

from __future__ import annotations

import sys
import unicodedata
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import model.tokenizer as tokenizer_module
from model.tokenizer import Tokenizer, Vocabulary, normalize, normalized_length_bound, tokenize

VOCABULARY = Vocabulary.build([tokenize("a great film , i loved it ! not bad . don't miss it")], max_size=50)
TOKENIZER = Tokenizer(VOCABULARY)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@SETTINGS
@given(TEXT)
def test_any_text_tokenizes_into_clean_tokens(text: str) -> None:
    tokens = tokenize(text)
    assert all(token and not any(ch.isspace() for ch in token) for token in tokens)
    assert tokens == tokenize(normalize(text))  # normalising is idempotent under tokenize
    assert tokenize(text + " \n") == tokens  # trailing whitespace changes nothing


@SETTINGS
@given(TEXT, st.integers(min_value=1, max_value=50))
def test_encoding_respects_the_cap_and_the_vocabulary(text: str, cap: int) -> None:
    encoded = TOKENIZER.encode_text(text, cap)
    assert 1 <= len(encoded.ids) <= cap  # never empty: the network needs one step
    assert len(encoded.ids) == len(encoded.tokens)
    assert all(0 < i < len(VOCABULARY) for i in encoded.ids)  # never the padding id
    everything = tokenize(text)
    assert encoded.truncated == (len(everything) > cap)
    assert encoded.tokens == (everything[:cap] or ["<unk>"])
    assert encoded.ids == TOKENIZER.encode_text(text, cap + 10).ids[:cap]


# Characters where cutting a text in pieces could go wrong: combining marks, Hangul jamo that
# compose with the syllable before, U+FDFA (18 characters under NFKC), capital sigma (final form
# by context), ligatures, apostrophes, HTML breaks, and whitespace to cut before.
TRICKY = st.lists(
    st.sampled_from(
        [
            "a",
            "b",
            "Σ",
            "σ",
            " ",
            "\t",
            "\u0301",
            "\u0316",
            "\ufdfa",
            "\u1100",
            "\u1161",
            "\u11a8",
            "\uac00",
            "'",
            "-",
            "n't",
            "<br />",
            "<br",
            "/",
            ">",
            ".",
            "ﬁ",
            "ǅ",
            "İ",
            "\u2019",
            "`",
            "\u00a8",
            "\u0344",
            "\u0f73",
            "\u3000",
            "\xa0",
            "!",
            "http://",
            "www.",
            "@",
            "1",
            "42",
            ",",
        ]
    ),
    max_size=80,
).map("".join)


@SETTINGS
@given(
    st.one_of(TRICKY, TEXT), st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=24)
)
def test_a_capped_tokenisation_reads_pieces_but_equals_the_whole(text: str, cap: int, piece: int) -> None:
    """Normalising only the prefix that the cap needs, in pieces, gives the whole text's tokens,
    under either version of the tokenisation."""
    for version in (1, 2):
        everything = tokenize(text, version=version)
        with patch.object(tokenizer_module, "PIECE_CHARS", piece):
            capped = tokenize(text, cap, version)
        assert capped[: cap + 1] == everything[: cap + 1]
        assert (len(capped) > cap) == (len(everything) > cap)


@pytest.mark.parametrize("cap", [10, 1000])
def test_a_capped_tokenisation_normalises_only_the_prefix_its_tokens_need(cap: int) -> None:
    """Only about the ``cap + 1`` tokens' characters, plus at most two pieces, go through NFKC,
    and none of a tail that would grow 18-fold (U+FDFA) under it."""
    prefix = "word " * 200_000
    normalized: list[str] = []
    normalize_for_real = unicodedata.normalize

    def counting(form: str, text: str) -> str:
        if form == "NFKC":
            normalized.append(text)
        return normalize_for_real(form, text)

    with patch.object(tokenizer_module.unicodedata, "normalize", counting):
        tokens = tokenize(prefix + "\ufdfa" * 200_000, cap)
    assert tokens == ["word"] * (cap + 1)
    needed = len("word ") * (cap + 1)
    assert needed <= sum(map(len, normalized)) <= needed + 2 * tokenizer_module.PIECE_CHARS
    assert not any("\ufdfa" in piece for piece in normalized)


def test_every_character_expands_at_most_max_expansion() -> None:
    """The inline-or-thread choice rests on this bound; Python's Unicode tables decide it."""
    most = max(
        len(normalize(chr(code))) for code in range(sys.maxunicode + 1) if not 0xD800 <= code <= 0xDFFF
    )
    assert most == tokenizer_module.MAX_EXPANSION
    assert normalized_length_bound("plain ascii") == len("plain ascii")


def test_a_cut_before_a_segment_start_is_exact() -> None:
    """Every character taken for a cut point splits NFKC exactly after any character."""
    samples = ["a", "\u0301", "\u1100", "\uac00", "\u0b47", "\u0d46", "Σ", "\ufdfa", "\u00a8", "\u0f71"]
    starts = [chr(c) for c in range(0x20, 0x3000) if tokenizer_module._starts_segment(chr(c))]
    starts += ["\ufdfa", "\u1100", "\uac00"]
    for before in samples:
        for char in starts:
            whole = unicodedata.normalize("NFKC", before + char)
            assert whole == unicodedata.normalize("NFKC", before) + unicodedata.normalize("NFKC", char)


@SETTINGS
@given(st.lists(st.sampled_from(["great", "film", "loved", "it", "!", ",", "zebra", "é"]), max_size=30))
def test_known_words_map_back(words: list[str]) -> None:
    text = " ".join(words)
    encoded = TOKENIZER.encode_text(text)
    known = [t if VOCABULARY.encode([t]) != [1] else "<unk>" for t in tokenize(text)] or ["<unk>"]
    assert VOCABULARY.decode(encoded.ids) == known
