"""Tokens back to readable text: spaces, clitics, quotes and capitals."""

from __future__ import annotations

import pytest

from model.detokenizer import join_tokens
from model.tokenizer import tokenize


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (["i", "do", "n't", "like", "it", "."], "I don't like it."),
        (["it", "'s", "great", "!", "the", "end", "."], "It's great! The end."),
        (["he", "said", '"', "wow", '"', "and", "left"], 'He said "wow" and left'),
        (["a", "film", "(", "2004", ")", ",", "sadly", "."], "A film (2004), sadly."),
        (["so", "i", "think", "i", "'m", "right", "?", "yes"], "So I think I'm right? Yes"),
    ],
)
def test_tokens_are_joined_as_a_writer_would(tokens, text) -> None:
    assert join_tokens(tokens) == text


def test_a_continuation_follows_its_prompt() -> None:
    assert join_tokens(["was", "fine", "."], after=["the", "movie"]) == " was fine."
    assert join_tokens(["n't", "good"], after=["it", "was"]) == "n't good"  # a clitic joins the word
    assert join_tokens(["it", "ends"], after=["great", "."]) == " It ends"  # a new sentence
    assert join_tokens(["bad", '"'], after=['"', "so"]) == ' bad"'  # the prompt's open quote closes
    assert join_tokens(["the", "end"], capitalize=False) == "the end"


def test_joined_text_tokenises_back_to_the_same_tokens() -> None:
    tokens = tokenize("I didn't think it's \"the best\" film (of 2004), but it's fine... really!")
    assert tokenize(join_tokens(tokens)) == tokens
