"""Tokens back to readable text: the inverse, as far as it goes, of :func:`model.tokenizer.tokenize`.

The tokenizer lowercases and splits off punctuation and contractions ("don't" -> "do" "n't"),
so text made of tokens needs its spaces put back where a writer would: none before closing
punctuation and clitics, none after an opening bracket, quotes paired, and capitals at the
start of sentences and for "I".
"""

from __future__ import annotations

from collections.abc import Sequence

_NO_SPACE_BEFORE = {
    ".",
    ",",
    "!",
    "?",
    ";",
    ":",
    ")",
    "]",
    "}",
    "%",
    "n't",
    "'s",
    "'re",
    "'ve",
    "'ll",
    "'d",
    "'m",
    "...",
}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#"}
_SENTENCE_END = {".", "!", "?"}


def join_tokens(tokens: Sequence[str], after: Sequence[str] = (), capitalize: bool = True) -> str:
    """Readable text of ``tokens``, written to follow the tokens ``after`` (a prompt's): the
    result starts with a space when it continues a word, and a sentence start is capitalised."""
    pieces: list[str] = []
    previous = after[-1] if after else None
    quotes_open = sum(t == '"' for t in after) % 2 == 1
    sentence_start = previous is None or previous in _SENTENCE_END
    for token in tokens:
        closing_quote = token == '"' and quotes_open
        glued = token in _NO_SPACE_BEFORE or closing_quote or previous in _NO_SPACE_AFTER
        glued = glued or (previous == '"' and quotes_open and token != '"')  # just after an opening quote
        if token == '"':
            quotes_open = not quotes_open
        word = token
        if capitalize and (sentence_start or token == "i") and token[:1].isalpha():
            word = token[0].upper() + token[1:]
        pieces.append(word if glued or previous is None else " " + word)
        if token[:1].isalnum():
            sentence_start = False
        elif token in _SENTENCE_END:
            sentence_start = True
        previous = token
    return "".join(pieces)
