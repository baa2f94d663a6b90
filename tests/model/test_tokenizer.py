"""Tests for model.tokenizer: normalisation, tokenisation, the vocabulary and the tokenizer file."""

from __future__ import annotations

import json

import pytest

from model.tokenizer import PAD, TOKENIZER_VERSION, UNK, Tokenizer, Vocabulary, normalize, tokenize

# --- normalize ---------------------------------------------------------------------------------


@pytest.mark.parametrize("br", ["<br />", "<br/>", "<br>", "<BR />", "<Br  / >"])
def test_normalize_replaces_html_breaks_with_a_space(br: str) -> None:
    assert normalize(f"Good.{br}Bad.") == "good. bad."


def test_normalize_applies_nfkc() -> None:
    # U+FB01 is the "fi" ligature; U+FF21 a fullwidth A; U+2460 a circled one.
    assert normalize("\ufb01lm \uff21 \u2460") == "film a 1"


@pytest.mark.parametrize("apostrophe", ["\u2019", "\u2018", "\u02bc", "`"])
def test_normalize_unifies_apostrophes(apostrophe: str) -> None:
    assert normalize(f"Don{apostrophe}t") == "don't"


def test_normalize_lowercases() -> None:
    assert normalize("GREAT Movie ÉLAN") == "great movie élan"


# --- tokenize ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("don't", ["do", "n't"]),
        ("Can't", ["ca", "n't"]),
        ("isn’t", ["is", "n't"]),
        ("it's", ["it", "'s"]),
        ("they're", ["they", "'re"]),
        ("we've", ["we", "'ve"]),
        ("you'll", ["you", "'ll"]),
        ("I'd", ["i", "'d"]),
        ("I'm", ["i", "'m"]),
        ("o'clock", ["o'clock"]),
    ],
)
def test_tokenize_splits_contractions_penn_treebank_style(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_tokenize_punctuation_is_one_token_per_character() -> None:
    assert tokenize("Wow!!! Great, (really).") == [
        "wow",
        "!",
        "!",
        "!",
        "great",
        ",",
        "(",
        "really",
        ")",
        ".",
    ]


def test_tokenize_keeps_hyphenated_words_and_numbers() -> None:
    assert tokenize("A well-made, 10-star film from 1999") == [
        "a",
        "well-made",
        ",",
        "10-star",
        "film",
        "from",
        "1999",
    ]


def test_tokenize_underscore_is_its_own_token() -> None:
    assert tokenize("a_b") == ["a", "_", "b"]


def test_tokenize_unicode_letters() -> None:
    assert tokenize("Amélie était naïve; Москва 東京") == [
        "amélie",
        "était",
        "naïve",
        ";",
        "москва",
        "東京",
    ]


def test_tokenize_normalizes_first() -> None:
    assert tokenize("Don’t<br /><br />\ufb01ne") == ["do", "n't", "fine"]


def test_tokenize_empty_and_whitespace() -> None:
    assert tokenize("") == []
    assert tokenize("  \n\t <br /> ") == []


# --- Vocabulary --------------------------------------------------------------------------------


def test_vocabulary_build_orders_by_frequency_then_alphabetically() -> None:
    vocab = Vocabulary.build([["b", "a", "c", "b"], ["c", "d", "b"]], max_size=100)
    # b: 3, c: 2, a: 1, d: 1 (a before d on the tie)
    assert vocab.itos == (PAD, UNK, "b", "c", "a", "d")
    assert vocab.pad_id == 0
    assert vocab.unk_id == 1
    assert vocab.itos[vocab.pad_id] == PAD
    assert vocab.itos[vocab.unk_id] == UNK


def test_vocabulary_build_breaks_ties_alphabetically_not_by_first_sight() -> None:
    vocab = Vocabulary.build([["delta", "charlie"], ["bravo", "alpha", "echo", "echo"]], max_size=100)
    assert vocab.itos == (PAD, UNK, "echo", "alpha", "bravo", "charlie", "delta")


def test_vocabulary_build_min_count() -> None:
    vocab = Vocabulary.build([["x", "y", "y", "z", "z", "z"]], max_size=100, min_count=2)
    assert vocab.itos == (PAD, UNK, "z", "y")


def test_vocabulary_build_max_size_includes_special_tokens() -> None:
    vocab = Vocabulary.build([["a", "a", "a", "b", "b", "c"]], max_size=4)
    assert len(vocab) == 4
    assert vocab.itos == (PAD, UNK, "a", "b")


def test_vocabulary_build_skips_literal_special_tokens() -> None:
    vocab = Vocabulary.build([[PAD, UNK, PAD, "w"]], max_size=10)
    assert vocab.itos == (PAD, UNK, "w")


def test_vocabulary_build_rejects_tiny_max_size() -> None:
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build([["a"]], max_size=2)


def test_vocabulary_requires_special_tokens_first_and_no_duplicates() -> None:
    with pytest.raises(ValueError, match="must start"):
        Vocabulary(("a", PAD, UNK))
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary((PAD, UNK, "a", "a"))


def test_vocabulary_encode_decode_and_unknown_words() -> None:
    vocab = Vocabulary((PAD, UNK, "good", "film"))
    assert vocab.encode(["good", "film", "bad", "good"]) == [2, 3, 1, 2]
    assert vocab.decode([2, 3, 1, 0]) == ["good", "film", UNK, PAD]
    assert vocab.decode(vocab.encode(["film", "good"])) == ["film", "good"]


# --- Tokenizer ---------------------------------------------------------------------------------


@pytest.fixture
def tokenizer() -> Tokenizer:
    texts = ["I don't like it. It's bad!", "A well-made film; I like it a lot."]
    return Tokenizer(Vocabulary.build((tokenize(t) for t in texts), max_size=50))


def test_tokenizer_encode_maps_known_and_unknown(tokenizer: Tokenizer) -> None:
    vocab = tokenizer.vocabulary
    ids = tokenizer.encode("I LIKE zebras")
    assert ids == [vocab.itos.index("i"), vocab.itos.index("like"), vocab.unk_id]
    assert tokenizer.tokenize("I LIKE zebras") == ["i", "like", "zebras"]


def test_tokenizer_encode_truncates_to_max_tokens(tokenizer: Tokenizer) -> None:
    text = "a well-made film ; i like it a lot"
    full = tokenizer.encode(text)
    assert len(full) == 9
    assert tokenizer.encode(text, max_tokens=3) == full[:3]
    assert tokenizer.encode(text, max_tokens=100) == full
    assert tokenizer.encode(text, max_tokens=None) == full


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "<br /><br />"])
def test_tokenizer_encode_empty_text_is_one_unk(tokenizer: Tokenizer, text: str) -> None:
    assert tokenizer.encode(text) == [tokenizer.vocabulary.unk_id]
    assert tokenizer.encode(text, max_tokens=5) == [1]


def test_tokenizer_save_load_round_trip(tokenizer: Tokenizer, tmp_path) -> None:
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["version"] == tokenizer.version == 1  # the first version unless asked
    assert payload["itos"][:2] == [PAD, UNK]
    loaded = Tokenizer.load(path)
    assert loaded.vocabulary == tokenizer.vocabulary
    assert loaded.encode("I don't like zebras") == tokenizer.encode("I don't like zebras")


def test_tokenizer_save_keeps_unicode(tmp_path) -> None:
    path = tmp_path / "tokenizer.json"
    Tokenizer(Vocabulary((PAD, UNK, "café", "東京"))).save(path)
    assert "café" in path.read_text(encoding="utf-8")
    assert Tokenizer.load(path).vocabulary.itos == (PAD, UNK, "café", "東京")


def _write(tmp_path, content: str):
    path = tmp_path / "tokenizer.json"
    path.write_text(content, encoding="utf-8")
    return path


def test_tokenizer_load_invalid_json(tmp_path) -> None:
    path = _write(tmp_path, "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Tokenizer.load(path)


@pytest.mark.parametrize(
    "payload",
    [
        {"version": TOKENIZER_VERSION + 1, "itos": [PAD, UNK, "a"]},
        {"itos": [PAD, UNK, "a"]},
        [PAD, UNK, "a"],
    ],
)
def test_tokenizer_load_wrong_version(tmp_path, payload) -> None:
    path = _write(tmp_path, json.dumps(payload))
    with pytest.raises(ValueError, match="version"):
        Tokenizer.load(path)


@pytest.mark.parametrize(
    ("itos", "match"),
    [
        ("abc", "list of strings"),
        (None, "list of strings"),
        ([PAD, UNK, 3], "list of strings"),
        (["a", PAD, UNK], "must start"),
        ([PAD, UNK, "x", "x"], "duplicate"),
    ],
)
def test_tokenizer_load_wrong_itos(tmp_path, itos, match: str) -> None:
    payload = {"version": TOKENIZER_VERSION}
    if itos is not None:
        payload["itos"] = itos
    path = _write(tmp_path, json.dumps(payload))
    with pytest.raises(ValueError, match=match):
        Tokenizer.load(path)


def test_html_break_pattern_stays_linear_on_long_space_runs() -> None:
    # `<br\s*/?\s*>` backtracked quadratically here (minutes for 100k spaces)
    assert tokenize("<br" + " " * 100_000) == ["<", "br"]
    assert tokenize("a<br / >b<BR>c<br/>d") == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@united thank you http://t.co/abc.", ["<user>", "thank", "you", "<url>", "."]),
        ("see www.imdb.com/title/tt01, now", ["see", "<url>", ",", "now"]),
        ("in 1999 with 1,000 extras", ["in", "<number>", "with", "<number>", "extras"]),
        ("seen 26.10.2004, 3.5 stars", ["seen", "<number>", ",", "3", ".", "5", "stars"]),
        # ratings stay as typed; numbers joined to letters or hyphens are words as before
        ("7.5/10 and 4 out of 10", ["7", ".", "5", "/", "10", "and", "4", "out", "of", "10"]),
        ("the 7th 10-star 1950s film", ["the", "7th", "10-star", "1950s", "film"]),
        ("me@x.com a_b @ x", ["me", "@", "x", ".", "com", "a", "_", "b", "@", "x"]),
    ],
)
def test_version_2_reads_urls_handles_and_numbers_as_placeholders(text: str, expected: list[str]) -> None:
    assert tokenize(text, version=2) == expected


def test_version_1_reads_urls_handles_and_numbers_as_typed() -> None:
    assert tokenize("@united in 1999 http://t.co/abc") == [
        "@", "united", "in", "1999", "http", ":", "/", "/", "t", ".", "co", "/", "abc"
    ]  # fmt: skip


def test_a_tokenizer_keeps_its_version_through_save_and_load(tmp_path) -> None:
    tokenizer = Tokenizer(Vocabulary((PAD, UNK, "<url>", "great")), version=2)
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.load(tmp_path / "tokenizer.json")
    assert loaded.version == 2
    assert loaded.encode("great http://x.io") == [3, 2]
    assert Tokenizer(tokenizer.vocabulary).encode("great http://x.io") == [3, 1, 1, 1, 1, 1, 1, 1]


def test_a_tokenizer_refuses_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        Tokenizer(Vocabulary((PAD, UNK)), version=TOKENIZER_VERSION + 1)
