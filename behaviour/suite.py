"""The behavioural tests, generated from templates and perturbations (CheckList, Ribeiro et al.,
2020): what a reader expects of a sentiment model sentence by sentence.

Three kinds of test, as in CheckList:

* **MFT** (minimum functionality): each case is one text and the labels allowed for it;
* **INV** (invariance): each case is a text and a perturbation of it that must not change the
  three-way label (:func:`behaviour.scoring.three_way`);
* **DIR** (direction): each case is a text and an edit of it; P(positive) must not move against
  the edit's direction by more than :data:`TOLERANCE`.

Every test draws its cases from its frames and the word lists in ``vocabulary.toml`` with its
own seeded generator, so a suite is the same for the same seed and size, and adding a test does
not change another's cases.
"""

from __future__ import annotations

import random
import re
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from training.templates import typo

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.toml")
TOLERANCE = 0.1  # DIR: how far P(positive) may move the wrong way (CheckList's tolerance)
NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"


@dataclass(frozen=True)
class Case:
    """One check: ``texts`` (one for MFT, the original and its edit for INV and DIR) and what is
    expected: the allowed labels (MFT), nothing (INV: the same label), ``"not_down"`` or
    ``"not_up"`` for P(positive) (DIR)."""

    texts: tuple[str, ...]
    expect: frozenset[str] | str | None = None


@dataclass(frozen=True)
class Test:
    """A named test of one capability, its kind and its cases."""

    __test__ = False  # not a pytest class

    name: str
    capability: str
    kind: str  # "MFT", "INV" or "DIR"
    description: str
    cases: tuple[Case, ...]


def load_vocabulary(path: Path = VOCABULARY_FILE) -> dict:
    """The word lists (``words``) and contraction pairs (``contractions``) of ``path``."""
    return tomllib.loads(path.read_text(encoding="utf-8"))


_SLOT = re.compile(r"\{(\w+)\}")


class Filler:
    """Fills a frame's ``{slots}`` from the word lists with a seeded generator; ``{name}``,
    ``{count}``, ``{year}``, ``{minutes}`` and ``{url}`` are made from them."""

    def __init__(self, words: dict[str, list[str]], rng: random.Random) -> None:
        self.words, self.rng = words, rng

    def value(self, slot: str) -> str:
        """A random value for ``slot``."""
        rng, words = self.rng, self.words
        made: dict[str, Callable[[], str]] = {
            "name": lambda: f"{rng.choice(words['first_name'])} {rng.choice(words['last_name'])}",
            "count": lambda: str(rng.randint(2, 9)),
            "year": lambda: str(rng.randint(1950, 2023)),
            "minutes": lambda: str(rng.randint(85, 180)),
            "url": lambda: rng.choice(words["url_host"]) + "".join(rng.choices(_URL_CHARACTERS, k=7)),
        }
        return made[slot]() if slot in made else rng.choice(words[slot])

    def values(self, frame: str) -> list[tuple[str, str]]:
        """A value for each slot of ``frame``, in order (a repeated slot gets one each time)."""
        return [(slot, self.value(slot)) for slot in _SLOT.findall(frame)]

    def fill(self, frame: str, values: list[tuple[str, str]] | None = None) -> str:
        """``frame`` with its slots filled by ``values`` (random ones by default), capitalised."""
        remaining = iter(values if values is not None else self.values(frame))
        text = _SLOT.sub(lambda _: next(remaining)[1], frame)
        return text[0].upper() + text[1:]

    def swap(self, values: list[tuple[str, str]], slots: tuple[str, ...]) -> list[tuple[str, str]]:
        """``values`` with each value of ``slots`` replaced by another one."""
        swapped = []
        for slot, value in values:
            new = value
            while slot in slots and new == value:
                new = self.value(slot)
            swapped.append((slot, new))
        return swapped


_URL_CHARACTERS = "abcdefghkmnpqrstuvwxyz0123456789"


def _draw(size: int, make: Callable[[], Case | None], rng: random.Random) -> tuple[Case, ...]:
    """Up to ``size`` distinct cases from ``make`` (which may decline with None)."""
    cases: dict[tuple[str, ...], Case] = {}
    for _ in range(size * 20):
        if len(cases) >= size:
            break
        case = make()
        if case is not None:
            cases.setdefault(case.texts, case)
    return tuple(cases.values())


NOT_POSITIVE = frozenset({NEGATIVE, NEUTRAL})
NOT_NEGATIVE = frozenset({POSITIVE, NEUTRAL})

# MFT: (name, capability, description, [(frame, allowed labels)])
MFT_FRAMES: tuple[tuple[str, str, str, tuple[tuple[str, frozenset[str]], ...]], ...] = (
    ("sentiment words", "vocabulary", "a plain positive or negative statement", (
        ("the {aspect} is {pos_adj}.", frozenset({POSITIVE})),
        ("the {aspect} is {neg_adj}.", frozenset({NEGATIVE})),
        ("I {pos_verb} this {noun}.", frozenset({POSITIVE})),
        ("I {neg_verb} this {noun}.", frozenset({NEGATIVE})),
    )),
    ("negated positive", "negation", "a positive phrase negated is not positive", (
        ("this {noun} is not {pos_adj}.", NOT_POSITIVE),
        ("the {aspect} was not {pos_adj}.", NOT_POSITIVE),
        ("it isn't a {pos_adj} {noun}.", NOT_POSITIVE),
        ("I didn't {pos_verb} this {noun}.", NOT_POSITIVE),
        ("not a {pos_adj} {noun}.", NOT_POSITIVE),
    )),
    ("negated negative", "negation", "a negative phrase negated is not negative", (
        ("this {noun} is not {neg_adj}.", NOT_NEGATIVE),
        ("the {aspect} was never {neg_adj}.", NOT_NEGATIVE),
        ("it isn't a {neg_adj} {noun}.", NOT_NEGATIVE),
        ("I didn't {neg_verb} this {noun}.", NOT_NEGATIVE),
        ("not a {neg_adj} {noun}.", NOT_NEGATIVE),
    )),
    ("negated neutral", "negation", "a neutral phrase negated stays neutral", (
        ("this is not an {neutral_adj} {noun}.", frozenset({NEUTRAL})),
        ("the {noun} was not filmed in {location}.", frozenset({NEUTRAL})),
        ("this {noun} is not {neutral_adj}.", frozenset({NEUTRAL})),
    )),
    ("negated positive, material in between", "negation", "the negation and the phrase apart", (
        ("I don't think, {filler}, that this {noun} is {pos_adj}.", NOT_POSITIVE),
        ("I can't say, {filler}, that the {aspect} was {pos_adj}.", NOT_POSITIVE),
    )),
    ("negated negative, material in between", "negation", "the negation and the phrase apart", (
        ("I don't think, {filler}, that this {noun} is {neg_adj}.", NOT_NEGATIVE),
        ("I can't say, {filler}, that the {aspect} was {neg_adj}.", NOT_NEGATIVE),
    )),
    ("used to ... but now", "temporal", "the present opinion decides", (
        ("I used to think this {noun} was {neg_adj}, but now it is {pos_adj}.", frozenset({POSITIVE})),
        ("I used to think this {noun} was {pos_adj}, but now it is {neg_adj}.", frozenset({NEGATIVE})),
        ("I used to {neg_verb} this {noun}, but now I {pos_verb} it.", frozenset({POSITIVE})),
        ("I used to {pos_verb} this {noun}, but now I {neg_verb} it.", frozenset({NEGATIVE})),
    )),
    ("contrast with but", "contrast", "the clause after 'but' decides", (
        ("the {aspect} is {pos_adj}, but the {noun} is {neg_adj}.", frozenset({NEGATIVE})),
        ("the {aspect} is {neg_adj}, but the {noun} is {pos_adj}.", frozenset({POSITIVE})),
    )),
)  # fmt: skip

# Reviews the INV and DIR tests edit: each has a sentiment, and some the slot an edit changes
BASE_FRAMES: tuple[str, ...] = (
    "{name} is {pos_adj} in this {noun}.",
    "{name} is {neg_adj} in this {noun}.",
    "I watched this {noun} in {location} and it was {pos_adj}.",
    "I watched this {noun} in {location} and it was {neg_adj}.",
    "It is a {pos_adj} {noun}. I saw it with {count} friends.",
    "It is a {neg_adj} {noun}. I saw it with {count} friends.",
    "The {noun} came out in {year} and the {aspect} is still {pos_adj}.",
    "The {noun} came out in {year} and the {aspect} was {neg_adj} even then.",
    "The {aspect} is {pos_adj}. I do not think {name} has ever been better.",
    "The {aspect} was {neg_adj}. I did not enjoy a single minute of it.",
    "It is {pos_adj}, and the {aspect} is {pos_adj} too.",
    "I am sure it is the most {neg_adj} {noun} I have seen in {location}.",
    "This {noun} runs {minutes} minutes and the {aspect} is {pos_adj} throughout.",
    "This {noun} runs {minutes} minutes and every one of them is {neg_adj}.",
    "{name} could not save this {neg_adj} {noun}.",
    "The {aspect} was not great, but {name} is {pos_adj} in it.",
    # mild or no sentiment: the model sits nearer the neutral band, where a nudge shows
    "{name} plays a detective in this {noun}.",
    "I watched this {noun} in {location} last week.",
    "The {noun} came out in {year}. It was okay, nothing special.",
    "Thank you {name} for recommending this {noun}, I saw it with {count} friends.",
    "It runs {minutes} minutes. Not sure what to think of it yet.",
    "The {aspect} is fine. I have seen better and I have seen worse.",
)

# Slots whose values INV tests swap: (test name, slot)
SWAPS = (("change names", "name"), ("change locations", "location"))
NUMBER_SLOTS = ("count", "year", "minutes")


def _punctuation(text: str, *, rng: random.Random) -> str:
    """The final full stop dropped, or made an exclamation mark."""
    stem = text.rstrip(".")
    return stem if rng.random() < 0.5 else stem + "!"


def _contract(text: str, pairs: dict[str, str]) -> str | None:
    """Every long form of ``pairs`` contracted (or, if there is none, every short form
    expanded); None if the text has neither."""
    for forward in (pairs, {short: long for long, short in pairs.items()}):
        edited = text
        for old, new in forward.items():
            pattern = re.compile(rf"\b{re.escape(old)}\b", flags=re.IGNORECASE)
            edited = pattern.sub(lambda m, new=new: m.group()[0] + new[1:], edited)
        if edited != text:
            return edited
    return None


def _mft(frames, filler: Filler) -> Callable[[], Case]:
    def make() -> Case:
        frame, allowed = filler.rng.choice(frames)
        return Case((filler.fill(frame),), allowed)

    return make


def _pair(filler: Filler, edit: Callable[[str], str | None], expect: str | None = None, frames=BASE_FRAMES):
    """Cases of a base review and ``edit`` of it."""

    def make() -> Case | None:
        text = filler.fill(filler.rng.choice(frames))
        edited = edit(text)
        return None if edited is None or edited == text else Case((text, edited), expect)

    return make


def _swap(filler: Filler, slots: tuple[str, ...]):
    """Cases of a base review and the same review with the values of ``slots`` changed."""
    frames = [frame for frame in BASE_FRAMES if any(f"{{{slot}}}" in frame for slot in slots)]

    def make() -> Case:
        frame = filler.rng.choice(frames)
        values = filler.values(frame)
        return Case((filler.fill(frame, values), filler.fill(frame, filler.swap(values, slots))))

    return make


def _intensity(filler: Filler, words: str, polarity: str) -> Callable[[], Case]:
    """A statement and the same with an intensifier or reducer before its adjective; the
    expected direction keeps (intensifier) or lowers (reducer) the statement's confidence."""
    raises = words == "intensifier"
    expect = "not_down" if (polarity == "pos_adj") == raises else "not_up"
    frames = ("the {aspect} is {modifier}{adjective}.", "this is a {modifier}{adjective} {noun}.")

    def make() -> Case:
        frame = filler.rng.choice(frames)
        adjective, modifier = filler.value(polarity), filler.value(words)
        base = frame.replace("{adjective}", adjective)
        values = filler.values(base.replace("{modifier}", ""))
        plain = filler.fill(base.replace("{modifier}", ""), values)
        return Case((plain, filler.fill(base.replace("{modifier}", modifier + " "), values)), expect)

    return make


def build_suite(seed: int = 0, size: int = 200) -> list[Test]:
    """Every test with up to ``size`` cases, drawn with ``seed``."""
    vocabulary = load_vocabulary()
    words, contractions = vocabulary["words"], vocabulary["contractions"]

    def test(name: str, capability: str, kind: str, description: str, maker) -> Test:
        rng = random.Random(zlib.crc32(name.encode()) ^ seed)  # each test its own stream
        return Test(name, capability, kind, description, _draw(size, maker(Filler(words, rng)), rng))

    tests = [
        test(name, capability, "MFT", description, lambda f, frames=frames: _mft(frames, f))
        for name, capability, description, frames in MFT_FRAMES
    ]
    for words_name, label in (("intensifier", "intensifiers"), ("reducer", "reducers")):
        for polarity in ("pos_adj", "neg_adj"):
            kind = "positive" if polarity == "pos_adj" else "negative"
            tests.append(test(
                f"{label}, {kind}", "intensity", "DIR",
                f"{label} {'keep' if words_name == 'intensifier' else 'do not raise'} the confidence "
                f"in a {kind} statement",
                lambda f, w=words_name, p=polarity: _intensity(f, w, p),
            ))  # fmt: skip
    invariance = (
        ("add a URL", "a URL at the end", lambda f: _pair(f, lambda t: f"{t} {f.value('url')}")),
        ("add a handle", "a handle at the start", lambda f: _pair(f, lambda t: f"{f.value('handle')} {t}")),
        ("change names", "another person's name", lambda f: _swap(f, ("name",))),
        ("change locations", "another city", lambda f: _swap(f, ("location",))),
        ("change numbers", "other counts, years and running times", lambda f: _swap(f, NUMBER_SLOTS)),
        ("typos", "two neighbouring letters swapped", lambda f: _pair(f, lambda t: typo(t, f.rng))),
        ("punctuation", "the last '.' dropped or '!'", lambda f: _pair(f, partial(_punctuation, rng=f.rng))),
        ("contractions", "contracted or expanded", lambda f: _pair(f, lambda t: _contract(t, contractions))),
    )  # fmt: skip
    tests += [
        test(name, "invariance", "INV", f"{what}: the label stays", maker) for name, what, maker in invariance
    ]
    directions = (
        ("add a positive phrase", "pos_phrase", "not_down"),
        ("add a negative phrase", "neg_phrase", "not_up"),
    )
    tests += [
        test(
            name, "direction", "DIR", f"a clearly {name.split()[2]} sentence at the end",
            lambda f, slot=slot, expect=expect: _pair(f, lambda t: f"{t} {f.value(slot)}", expect),
        )
        for name, slot, expect in directions
    ]  # fmt: skip
    return tests
