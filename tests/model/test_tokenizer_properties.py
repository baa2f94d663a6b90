"""Property-based tests of the tokenizer (hypothesis): any Unicode text, never an error."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.tokenizer import Tokenizer, Vocabulary, normalize, tokenize

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
    assert encoded.truncated == (encoded.total > cap)
    assert encoded.ids == TOKENIZER.encode_text(text, cap + 10).ids[:cap] or encoded.total == 0


@SETTINGS
@given(st.lists(st.sampled_from(["great", "film", "loved", "it", "!", ",", "zebra", "é"]), max_size=30))
def test_known_words_map_back(words: list[str]) -> None:
    text = " ".join(words)
    encoded = TOKENIZER.encode_text(text)
    known = [t if VOCABULARY.encode([t]) != [1] else "<unk>" for t in tokenize(text)] or ["<unk>"]
    assert VOCABULARY.decode(encoded.ids) == known
