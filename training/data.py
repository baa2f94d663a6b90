"""The IMDB Large Movie Review Dataset, read in its official archive layout, made ready to train on.

Reads ``aclImdb/{train,test}/{pos,neg,unsup}/ID_RATING.txt`` straight from the ``.tar.gz``
(or from an extracted folder), splits the labelled training reviews into train/validation,
builds the vocabulary on the training split (:func:`prepare_data`) and turns token ids into
length-bucketed batches.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import tarfile
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from model.tokenizer import Tokenizer, Vocabulary, tokenize
from training.config import RunConfig

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
DATA_ENV = "IMDB_DATA"
_MEMBER = re.compile(r"^(?:.*/)?aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_SPLIT_SIZES = {
    ("train", "pos"): 12500,
    ("train", "neg"): 12500,
    ("train", "unsup"): 50000,
    ("test", "pos"): 12500,
    ("test", "neg"): 12500,
}


class DatasetError(Exception):
    """The dataset is missing, truncated or not in the IMDB layout; the message says which."""


@dataclass(frozen=True)
class Review:
    """One review: its text, label (1 positive, 0 negative, -1 unlabelled) and star rating."""

    id: int
    text: str
    label: int
    rating: int


@dataclass
class ImdbDataset:
    """The three parts of the archive."""

    train: list[Review]
    test: list[Review]
    unsup: list[Review]


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """The dataset path from the argument, else the ``IMDB_DATA`` environment variable."""
    chosen = path or os.environ.get(DATA_ENV)
    if not chosen:
        raise DatasetError(f"no dataset given: pass --data PATH or set {DATA_ENV}")
    return Path(chosen)


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download(destination: Path, url: str = OFFICIAL_URL, sha256: str = OFFICIAL_SHA256) -> Path:
    """Download the official archive with a progress bar and verify its checksum."""
    partial = destination.with_suffix(destination.suffix + ".part")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url) as response, partial.open("wb") as out:
        total = int(response.headers.get("Content-Length", 0)) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc="download") as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    actual = sha256_of(partial)
    if actual != sha256:
        partial.unlink()
        raise DatasetError(f"{url}: sha256 {actual} does not match the expected {sha256}")
    partial.replace(destination)
    return destination


def _parse_member(name: str) -> tuple[str, str, int, int] | None:
    match = _MEMBER.match(name)
    if not match:
        return None
    part, polarity, review_id, rating = match.groups()
    return part, polarity, int(review_id), int(rating)


def _add(dataset: ImdbDataset, key: tuple[str, str, int, int], raw: bytes) -> None:
    part, polarity, review_id, rating = key
    label = {"pos": 1, "neg": 0, "unsup": -1}[polarity]
    review = Review(review_id, raw.decode("utf-8", errors="replace"), label, rating)
    target = dataset.unsup if polarity == "unsup" else getattr(dataset, part)
    target.append(review)


def _read_archive(path: Path, dataset: ImdbDataset) -> None:
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                key = _parse_member(member.name) if member.isfile() else None
                if key:
                    handle = archive.extractfile(member)
                    assert handle is not None  # regular files always have contents
                    _add(dataset, key, handle.read())
            # tarfile stops at the end-of-archive marker; reading on to the end of the stream
            # makes gzip check its CRC and length, so a corrupted download is caught here.
            while archive.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DatasetError(f"{path}: not a readable IMDB archive ({error})") from error


def _read_folder(path: Path, dataset: ImdbDataset) -> None:
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    for file in sorted(root.glob("*/*/*.txt")):
        key = _parse_member(f"aclImdb/{file.relative_to(root).as_posix()}")
        if key:
            _add(dataset, key, file.read_bytes())


def load_imdb(path: str | os.PathLike[str] | None = None, expect_full: bool = True) -> ImdbDataset:
    """Read the dataset from a ``.tar.gz`` or an extracted folder, sorted by (label, id).

    With ``expect_full`` the part sizes must match the official archive's (25k/25k/50k), so a
    truncated download is caught here rather than as a quietly worse model.
    """
    source = resolve_path(path)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    dataset = ImdbDataset([], [], [])
    (_read_folder if source.is_dir() else _read_archive)(source, dataset)
    counts = _counts(dataset)
    if not dataset.train or not dataset.test:
        raise DatasetError(f"{source}: no aclImdb/train or aclImdb/test reviews found ({counts})")
    if expect_full and counts != _SPLIT_SIZES:
        raise DatasetError(f"{source}: incomplete dataset, expected {_SPLIT_SIZES}, got {counts}")
    for part in (dataset.train, dataset.test, dataset.unsup):
        part.sort(key=lambda review: (review.label, review.id))
    return dataset


def _counts(dataset: ImdbDataset) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for part, reviews in (("train", dataset.train), ("test", dataset.test)):
        for polarity, label in (("pos", 1), ("neg", 0)):
            counts[(part, polarity)] = sum(review.label == label for review in reviews)
    counts[("train", "unsup")] = len(dataset.unsup)
    return counts


def stratified_split(
    reviews: Sequence[Review], validation_fraction: float, seed: int
) -> tuple[list[Review], list[Review]]:
    """Deterministic seeded split keeping the label balance in both parts."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in (0, 1)")
    rng = random.Random(seed)
    train: list[Review] = []
    validation: list[Review] = []
    for label in sorted({review.label for review in reviews}):
        group = sorted((r for r in reviews if r.label == label), key=lambda r: r.id)
        rng.shuffle(group)
        cut = round(len(group) * validation_fraction)
        validation.extend(group[:cut])
        train.extend(group[cut:])
    return train, validation


@dataclass(frozen=True)
class Batch:
    """Padded token ids ``[batch, time]``, true lengths ``[batch]``, labels and source indices."""

    token_ids: list[list[int]]
    lengths: list[int]
    labels: list[int]
    indices: list[int]


def bucketed_batches(
    sequences: Sequence[Sequence[int]],
    labels: Sequence[int],
    batch_size: int,
    pad_id: int = 0,
    shuffle_seed: int | None = None,
    bucket_factor: int = 50,
) -> Iterator[Batch]:
    """Batches of similar-length sequences, so little compute is spent on padding.

    With a seed, examples are shuffled, sorted by length inside pools of
    ``batch_size * bucket_factor`` and the batches shuffled again (the BucketIterator recipe);
    without one, everything is sorted by length for deterministic evaluation.
    """
    order = list(range(len(sequences)))
    if shuffle_seed is None:
        order.sort(key=lambda i: len(sequences[i]))
        pools = [order]
    else:
        rng = random.Random(shuffle_seed)
        rng.shuffle(order)
        pool_size = batch_size * bucket_factor
        pools = [
            sorted(order[s : s + pool_size], key=lambda i: len(sequences[i]))
            for s in range(0, len(order), pool_size)
        ]
    chunks = [pool[s : s + batch_size] for pool in pools for s in range(0, len(pool), batch_size)]
    if shuffle_seed is not None:
        rng.shuffle(chunks)
    for chunk in chunks:
        width = max(len(sequences[i]) for i in chunk)
        yield Batch(
            token_ids=[list(sequences[i]) + [pad_id] * (width - len(sequences[i])) for i in chunk],
            lengths=[len(sequences[i]) for i in chunk],
            labels=[labels[i] for i in chunk],
            indices=chunk,
        )


def take_per_label(reviews: Sequence[Review], limit: int) -> list[Review]:
    """The first ``limit`` reviews of each label (all of them when ``limit`` is 0)."""
    if not limit:
        return list(reviews)
    taken: dict[int, int] = {}
    kept = []
    for review in reviews:
        if taken.get(review.label, 0) < limit:
            taken[review.label] = taken.get(review.label, 0) + 1
            kept.append(review)
    return kept


def fetch_if_missing(path: str | os.PathLike[str] | None, url: str = OFFICIAL_URL) -> Path:
    """The dataset path; when nothing is there yet, the official archive is downloaded to it."""
    target = resolve_path(path)
    if not target.exists():
        print(f"downloading {url} to {target}")
        download(target, url)
    return target


@dataclass
class Splits:
    """Token ids and labels of the train, validation and test reviews, and the vocabulary that
    gives the ids their meaning."""

    train: tuple[list[list[int]], list[float]]  # labels, and soft targets after distillation
    validation: tuple[list[list[int]], list[int]]
    test: tuple[list[list[int]], list[int]]
    unlabelled_tokens: list[list[str]]
    train_tokens: list[list[str]]
    unlabelled_texts: list[str]
    vocabulary: Vocabulary


def split_reviews(
    dataset: ImdbDataset, limit: int, validation_fraction: float, seed: int
) -> tuple[list[Review], list[Review], list[Review]]:
    """A run's training, validation and test reviews: ``limit`` per part and label (0: all), the
    validation reviews drawn from the training part by ``seed``. Every run that reads the same
    settings (a fine-tuning run reading the shipped model's) gets the same split."""
    train, validation = stratified_split(take_per_label(dataset.train, limit), validation_fraction, seed)
    return train, validation, take_per_label(dataset.test, limit)


def encode_reviews(
    tokenizer: Tokenizer, reviews: Sequence[Review], cap: int
) -> tuple[list[list[int]], list[int]]:
    """Token ids (the first ``cap`` tokens) and labels of ``reviews``."""
    return [tokenizer.encode(r.text, cap) for r in reviews], [r.label for r in reviews]


def bundle_splits(
    tokenizer: Tokenizer,
    train: tuple[list[list[int]], list[float]],
    validation: Sequence[Review],
    test: Sequence[Review],
    cap: int,
) -> Splits:
    """Splits for work that starts from a bundle (fine-tuning, weight averaging): ``train`` as
    token ids and targets, the held-out reviews encoded at ``cap``, no word-level corpora."""
    return Splits(
        train=train,
        validation=encode_reviews(tokenizer, validation, cap),
        test=encode_reviews(tokenizer, test, cap),  # for the card; chooses nothing
        unlabelled_tokens=[],
        train_tokens=[],
        unlabelled_texts=[],
        vocabulary=tokenizer.vocabulary,
    )


def prepare_data(
    config: RunConfig, unlabelled: bool = False, test: bool = True
) -> tuple[Tokenizer, Splits, str]:
    """Read, split and tokenise the dataset; build the vocabulary on the training split only.

    The unlabelled reviews are tokenised when word2vec needs them or ``unlabelled`` asks;
    ``test=False`` leaves the test split empty (language-model pretraining never reads it).
    Returns the tokenizer, the splits and the dataset's path.
    """
    train_config = config.train
    dataset = load_imdb(train_config.data, expect_full=not train_config.limit_reviews)
    train, validation, test_reviews = split_reviews(
        dataset, train_config.limit_reviews, train_config.validation_fraction, train_config.seed
    )
    train_tokens = [tokenize(r.text) for r in tqdm(train, desc="tokenise train", leave=False)]
    vocabulary = Vocabulary.build(train_tokens, train_config.vocab_size, train_config.min_count)
    tokenizer = Tokenizer(vocabulary)
    cap = train_config.max_tokens
    unsup = dataset.unsup[: train_config.limit_reviews or None]
    needs_word2vec = train_config.embeddings == "word2vec" and not train_config.init_from
    unlabelled_tokens = (
        [tokenize(r.text) for r in tqdm(unsup, desc="tokenise unlabelled", leave=False)]
        if needs_word2vec or unlabelled
        else []
    )
    splits = Splits(
        train=(
            [tokenizer.encode_tokens(t, cap).ids for t in train_tokens],
            [r.label for r in train],
        ),
        validation=encode_reviews(tokenizer, validation, cap),
        test=encode_reviews(tokenizer, test_reviews if test else [], cap),
        unlabelled_tokens=unlabelled_tokens,
        train_tokens=train_tokens,
        unlabelled_texts=[r.text for r in unsup],
        vocabulary=vocabulary,
    )
    return tokenizer, splits, str(resolve_path(train_config.data))
