"""Template augmentation: short labelled sentences that teach negation, contrast and change over
time, and label-preserving insertions of tokens that carry no sentiment (URLs, handles, names,
places, numbers, typos).

The frames and word lists here are the training set's own and share no frame and no sentiment
word with the behavioural suite's (``behaviour/vocabulary.toml``), so the suite measures whether
the lesson generalises rather than whether the sentences were learnt (tests/behaviour checks it).
In the manner of CheckList's templates (Ribeiro et al., 2020), used here to make training data.

A target is P(positive): 1 or 0 for a clear label, 0.5 for a sentence with no sentiment, and 0.8
for a negated negative ("not dull"), which reads as mildly positive; the loop trains on soft
targets as it does for distillation (:func:`training.loop.summed_loss`).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

WORDS: dict[str, tuple[str, ...]] = {
    "pos": (
        "enjoyable", "terrific", "superb", "delightful", "charming", "gripping", "moving",
        "clever", "memorable", "stunning", "entertaining", "touching", "outstanding", "marvelous",
        "magnificent", "hilarious", "witty", "engaging", "powerful", "remarkable", "compelling",
        "riveting", "perfect", "lovely",
    ),
    # the strongest negative words of reviews too (atrocious, awful, lousy), as well as mild ones:
    # "not dull" is easy; "not <the worst word you know>" is what the lesson is about
    "neg": (
        "dull", "tedious", "awful", "pointless", "clumsy", "lame", "forgettable", "painful",
        "bland", "messy", "silly", "unwatchable", "atrocious", "abysmal", "lousy", "pathetic",
        "laughable", "mediocre", "dire", "dismal", "appalling", "dumb", "inept", "unbearable",
    ),
    "posverb": ("adore", "cherish", "treasure", "appreciate"),
    "negverb": ("loathe", "detest", "abhor"),
    "neutral": ("german", "silent", "spanish", "animated", "three-hour", "period"),
    "noun": ("flick", "feature", "story", "show", "sequel", "remake"),
    "aspect": ("dialogue", "pacing", "cinematography", "ending", "score", "screenplay", "performances"),
    "filler": (
        "after two viewings", "despite the glowing reviews", "as a fan of the cast",
        "having waited years for it", "even with my low expectations",
    ),
    "name": (
        "Maria Lopez", "Kenji Watanabe", "Olga Petrova", "Samuel Okafor", "Ingrid Berg",
        "Rahul Mehta", "Chloe Martin", "Diego Alvarez", "Fatima Haddad", "Liam O'Brien",
    ),
    "place": ("Lisbon", "Nairobi", "Osaka", "Krakow", "Montreal", "Lima", "Hanoi", "Reykjavik"),
    "domain": ("example.org", "movieclips.net", "reviews.example.com", "bit.ly", "youtu.be"),
}  # fmt: skip

# (frame, target): {pos}/{neg} a sentiment word, the rest from WORDS
FRAMES: tuple[tuple[str, float], ...] = (
    # negated positive: negative
    ("the {aspect} is not {pos} at all.", 0.0),
    ("i would not call this {noun} {pos}.", 0.0),
    ("nothing about the {aspect} felt {pos}.", 0.0),
    ("it never manages to be {pos}.", 0.0),
    ("hardly a {pos} {noun}.", 0.0),
    ("no one could call the {aspect} {pos}.", 0.0),
    ("i can not honestly say, {filler}, that the {aspect} was {pos}.", 0.0),
    # negated negative: mildly positive
    ("the {aspect} is not {neg} at all.", 0.8),
    ("i would not call this {noun} {neg}.", 0.8),
    ("nothing about the {aspect} felt {neg}.", 0.8),
    ("it never once felt {neg}.", 0.8),
    ("no one could call the {aspect} {neg}.", 0.8),
    ("i can not honestly say, {filler}, that the {aspect} was {neg}.", 0.8),
    ("the {noun} was not {neg}, {filler}.", 0.8),
    ("i do not believe, {filler}, that anyone would find it {neg}.", 0.8),
    # negated verbs
    ("i did not {posverb} a minute of this {noun}.", 0.0),
    ("i do not {negverb} this {noun} at all.", 0.8),
    ("nobody could {negverb} a {noun} like this.", 0.8),
    ("honestly, i {posverb} the whole {noun}.", 1.0),
    ("honestly, i {negverb} the whole {noun}.", 0.0),
    # plain statements keep the words' own sense
    ("the {aspect} feels {pos}.", 1.0),
    ("the {aspect} feels {neg}.", 0.0),
    ("a {pos} {noun}.", 1.0),
    ("a {neg} {noun}.", 0.0),
    # no sentiment, negated or not
    ("the {noun} was shot in {place}.", 0.5),
    ("it is a {neutral} {noun}.", 0.5),
    ("it is not a {neutral} {noun}.", 0.5),
    ("{name} plays the lead in this {noun}.", 0.5),
    # change over time and contrast: the later clause decides
    ("at first the {aspect} seemed {neg}, yet by the end it was {pos}.", 1.0),
    ("at first the {aspect} seemed {pos}, yet by the end it was {neg}.", 0.0),
    ("i once thought this {noun} was {pos}; today i find it {neg}.", 0.0),
    ("i once thought this {noun} was {neg}; today i find it {pos}.", 1.0),
    ("although the {aspect} is {pos}, the {noun} itself is {neg}.", 0.0),
    ("although the {aspect} is {neg}, the {noun} itself is {pos}.", 1.0),
)


def _fill(frame: str, rng: random.Random) -> str:
    slots = {key: rng.choice(values) for key, values in WORDS.items()}
    return frame.format(**slots)


def _url(rng: random.Random) -> str:
    path = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(4, 10)))
    return f"{rng.choice(('http://', 'https://', 'www.'))}{rng.choice(WORDS['domain'])}/{path}"


def typo(text: str, rng: random.Random) -> str | None:
    """Two neighbouring letters of one word of four or more swapped (CheckList's typo
    perturbation); None when no word is long enough. The behaviour suite's typo test uses it too."""
    words = text.split(" ")
    long_words = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    if not long_words:
        return None
    i = rng.choice(long_words)
    j = rng.randrange(len(words[i]) - 1)
    word = words[i]
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


# Insertions that change no label: each takes a text and returns it with the insertion
INSERTIONS: tuple[Callable[[str, random.Random], str], ...] = (
    lambda text, rng: f"{text} {_url(rng)}",
    lambda text, rng: f"@{rng.choice(WORDS['name']).split()[0].lower()}{rng.randint(1, 99)} {text}",
    lambda text, rng: f"{text} i saw it with {rng.choice(WORDS['name'])}.",
    lambda text, rng: f"i watched it in {rng.choice(WORDS['place'])}. {text}",
    lambda text, rng: (
        f"{text} it runs {rng.randint(80, 190)} minutes and came out in {rng.randint(1950, 2024)}."
    ),
    lambda text, rng: typo(text, rng) or text,
)


def insert_irrelevant(text: str, rng: random.Random) -> str:
    """``text`` with one random insertion of :data:`INSERTIONS`."""
    return rng.choice(INSERTIONS)(text, rng)


def template_examples(count: int, seed: int, insertion_rate: float = 0.5) -> tuple[list[str], list[float]]:
    """``count`` sentences drawn from :data:`FRAMES` and their targets; ``insertion_rate`` of them
    get an irrelevant insertion too (:func:`insert_irrelevant`)."""
    rng = random.Random(seed)
    texts, targets = [], []
    for _ in range(count):
        frame, target = rng.choice(FRAMES)
        text = _fill(frame, rng)
        texts.append(insert_irrelevant(text, rng) if rng.random() < insertion_rate else text)
        targets.append(target)
    return texts, targets
