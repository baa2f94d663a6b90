"""The suite's cases: reproducible, of the right shape, and edited the way each test says."""

from __future__ import annotations

import re

import pytest

from behaviour.suite import BASE_FRAMES, MFT_FRAMES, NEGATIVE, NEUTRAL, POSITIVE, build_suite, load_vocabulary
from training import templates

SUITE = build_suite(seed=0, size=30)
BY_NAME = {test.name: test for test in SUITE}


def test_the_same_seed_gives_the_same_cases_and_another_seed_others() -> None:
    assert build_suite(seed=0, size=30) == SUITE
    other = build_suite(seed=1, size=30)
    assert [t.name for t in other] == [t.name for t in SUITE]
    assert other != SUITE


def test_every_capability_the_issue_names_has_tests() -> None:
    names = set(BY_NAME)
    assert {"negated positive", "negated negative", "negated neutral", "used to ... but now"} <= names
    assert {"add a URL", "add a handle", "change names", "change locations", "change numbers"} <= names
    assert {"typos", "punctuation", "contractions", "add a positive phrase", "add a negative phrase"} <= names
    assert {"intensifiers, positive", "reducers, negative", "contrast with but"} <= names
    assert {t.capability for t in SUITE} >= {"negation", "invariance", "temporal", "contrast", "intensity"}


def test_cases_have_the_shape_of_their_kind() -> None:
    for test in SUITE:
        assert 0 < len(test.cases) <= 30, test.name
        assert len({case.texts for case in test.cases}) == len(test.cases)  # distinct
        for case in test.cases:
            if test.kind == "MFT":
                assert len(case.texts) == 1 and case.expect <= {NEGATIVE, NEUTRAL, POSITIVE}
            else:
                assert len(case.texts) == 2 and case.texts[0] != case.texts[1]
                assert case.expect == (None if test.kind == "INV" else case.expect)
                assert test.kind == "INV" or case.expect in ("not_down", "not_up")
            assert all("{" not in text for text in case.texts), "a slot left unfilled"


def test_negation_cases_carry_a_negation_and_the_right_expectation() -> None:
    for case in BY_NAME["negated negative"].cases:
        assert re.search(r"\b(not|never)\b|n't", case.texts[0], re.IGNORECASE)
        assert case.expect == {POSITIVE, NEUTRAL}
    for case in BY_NAME["negated positive"].cases:
        assert case.expect == {NEGATIVE, NEUTRAL}


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("add a URL", lambda a, b: b.startswith(a + " http")),
        ("add a handle", lambda a, b: b.endswith(" " + a) and b.startswith("@")),
        ("punctuation", lambda a, b: a.rstrip(".") == b.rstrip("!")),
        ("add a positive phrase", lambda a, b: b.startswith(a + " ")),
    ],
)
def test_edits_add_or_change_only_what_the_test_says(name: str, edit) -> None:
    assert all(edit(*case.texts) for case in BY_NAME[name].cases)


def test_swaps_change_only_the_swapped_words() -> None:
    words = load_vocabulary()["words"]
    names = "|".join(words["first_name"] + words["last_name"])
    for case in BY_NAME["change names"].cases:
        stripped = [re.sub(rf"\b({names})\b", "NAME", text) for text in case.texts]
        assert stripped[0] == stripped[1]
    for case in BY_NAME["change numbers"].cases:
        stripped = [re.sub(r"\d+", "N", text) for text in case.texts]
        assert stripped[0] == stripped[1]


def test_a_typo_swaps_two_neighbouring_letters_of_one_word() -> None:
    for case in BY_NAME["typos"].cases:
        before, after = (text.split(" ") for text in case.texts)
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert len(changed) == 1 and sorted(changed[0][0]) == sorted(changed[0][1])


# the training templates' slot names and the suite's for the same kind of word
SLOTS = (
    ("pos", "pos_adj"),
    ("neg", "neg_adj"),
    ("neutral", "neutral_adj"),
    ("place", "location"),
    ("posverb", "pos_verb"),
    ("negverb", "neg_verb"),
)


def _frame_shape(frame: str) -> str:
    """A frame as a sentence pattern: lower case, contractions spelt out, slots named alike."""
    shape = frame.lower().replace("n't", " not").replace("can not", "cannot")
    for theirs, ours in SLOTS:
        shape = shape.replace("{" + theirs + "}", "{" + ours + "}")
    return " ".join(shape.split())


def test_frames_are_compared_by_shape() -> None:
    suite, training = "I didn't {pos_verb} this {noun}.", "i did not {posverb} this {noun}."
    assert _frame_shape(suite) == _frame_shape(training)


def test_the_training_templates_share_no_frame_or_word_with_the_suite() -> None:
    """The suite measures generalisation only if training never saw its sentences: no frame of the
    same shape (other slot names, case or contractions), no sentiment word, name or place."""
    words = load_vocabulary()["words"]
    suite_frames = {frame for *_, frames in MFT_FRAMES for frame, _ in frames} | set(BASE_FRAMES)
    shared = {_frame_shape(f) for f, _ in templates.FRAMES} & {_frame_shape(f) for f in suite_frames}
    assert not shared
    for theirs, ours in SLOTS:
        assert not set(templates.WORDS[theirs]) & set(words[ours]), theirs
    suite_names = set(words["first_name"]) | set(words["last_name"])
    assert not {part for name in templates.WORDS["name"] for part in name.split()} & suite_names
    texts, _ = templates.template_examples(2000, seed=0)
    suite_texts = {text.lower() for test in SUITE for case in test.cases for text in case.texts}
    assert not {text.lower() for text in texts} & suite_texts
