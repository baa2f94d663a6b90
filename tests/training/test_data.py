"""Tests for training.data: reading the IMDB layout, splitting, batching and downloading."""

from __future__ import annotations

import hashlib
import itertools
import random
import tarfile
import zlib
from collections import Counter
from pathlib import Path

import pytest

from training.data import (
    DATA_ENV,
    DatasetError,
    Review,
    bucketed_batches,
    download,
    load_imdb,
    resolve_path,
    sha256_of,
    stratified_split,
    take_per_label,
)

# (part, polarity, id, rating, text)
_REVIEWS = [
    ("train", "pos", 10, 9, "A wonderful film.<br /><br />Loved it."),
    ("train", "pos", 3, 7, "Pretty good, caf\u00e9 scene was great."),
    ("train", "neg", 5, 1, "Awful. Just awful."),
    ("train", "neg", 2, 4, "Not my cup of tea."),
    ("train", "neg", 11, 3, "Boring and long."),
    ("train", "unsup", 7, 0, "I watched this once."),
    ("train", "unsup", 1, 0, "No opinion."),
    ("test", "pos", 1, 8, "Great acting."),
    ("test", "neg", 4, 2, "Terrible plot."),
    ("test", "neg", 0, 1, "Worst ever."),
]


def _filler(seed: str) -> str:
    # varied text so the compressed archive is large enough to cut in the middle of a member
    rng = random.Random(seed)
    words = ["plot", "actor", "scene", "camera", "music", "script", "ending", "twist", "cast"]
    return " ".join(rng.choice(words) + str(rng.randrange(10_000)) for _ in range(300))


def _text(review_id: int, part: str, polarity: str, text: str) -> str:
    return f"{text} {_filler(f'{part}/{polarity}/{review_id}')}"


def _expected_texts() -> dict[tuple[str, str, int], str]:
    return {(p, pol, i): _text(i, p, pol, t) for p, pol, i, _, t in _REVIEWS}


def _build_folder(root: Path) -> Path:
    """``root/aclImdb`` in the official layout, with the official archive's non-review files."""
    base = root / "aclImdb"
    texts = _expected_texts()
    for part, polarity, review_id, rating, _ in _REVIEWS:
        folder = base / part / polarity
        folder.mkdir(parents=True, exist_ok=True)
        text = texts[(part, polarity, review_id)]
        (folder / f"{review_id}_{rating}.txt").write_text(text, encoding="utf-8")
    (base / "README").write_text("Large Movie Review Dataset v1.0 (tiny test copy)\n")
    (base / "imdb.vocab").write_text("the\nand\n")
    (base / "train" / "urls_pos.txt").write_text("http://www.imdb.com/title/tt0000001/usercomments\n")
    (base / "train" / "labeledBow.feat").write_text("9 0:1\n")
    return base


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """(extracted folder containing aclImdb/, the same as a .tar.gz)."""
    root = tmp_path_factory.mktemp("imdb")
    extracted = root / "extracted"
    base = _build_folder(extracted)
    archive = root / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(base, arcname="aclImdb")
    return extracted, archive


def _as_tuples(reviews: list[Review]) -> list[tuple[int, str, int, int]]:
    return [(r.id, r.text, r.label, r.rating) for r in reviews]


# --- load_imdb ---------------------------------------------------------------------------------


def test_load_from_archive_and_folder_agree(tiny) -> None:
    extracted, archive = tiny
    from_tar = load_imdb(archive, expect_full=False)
    from_folder = load_imdb(extracted, expect_full=False)
    from_inner_folder = load_imdb(extracted / "aclImdb", expect_full=False)
    for part in ("train", "test", "unsup"):
        expected = _as_tuples(getattr(from_tar, part))
        assert expected
        assert _as_tuples(getattr(from_folder, part)) == expected
        assert _as_tuples(getattr(from_inner_folder, part)) == expected


def test_load_accepts_a_string_path(tiny) -> None:
    _, archive = tiny
    assert len(load_imdb(str(archive), expect_full=False).train) == 5


def test_labels_ratings_and_texts_come_from_the_layout(tiny) -> None:
    _, archive = tiny
    dataset = load_imdb(archive, expect_full=False)
    texts = _expected_texts()
    # sorted by (label, id): negatives first
    assert [(r.id, r.label, r.rating) for r in dataset.train] == [
        (2, 0, 4),
        (5, 0, 1),
        (11, 0, 3),
        (3, 1, 7),
        (10, 1, 9),
    ]
    assert [(r.id, r.label, r.rating) for r in dataset.test] == [(0, 0, 1), (4, 0, 2), (1, 1, 8)]
    assert [(r.id, r.label, r.rating) for r in dataset.unsup] == [(1, -1, 0), (7, -1, 0)]
    by_id = {r.id: r for r in dataset.train}
    assert by_id[3].text == texts[("train", "pos", 3)]
    assert "caf\u00e9" in by_id[3].text
    assert by_id[10].text.startswith("A wonderful film.<br /><br />")


def test_expect_full_rejects_the_tiny_archive(tiny) -> None:
    extracted, archive = tiny
    for source in (archive, extracted):
        with pytest.raises(DatasetError, match="incomplete") as info:
            load_imdb(source, expect_full=True)
        assert str(source) in str(info.value)


def _assert_clean_dataset_error(info: pytest.ExceptionInfo, path: Path) -> None:
    assert type(info.value) is DatasetError
    assert str(path) in str(info.value)
    assert not isinstance(info.value, tarfile.TarError | zlib.error | EOFError)


def test_missing_path(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "aclImdb_v1.tar.gz"
    with pytest.raises(DatasetError) as info:
        load_imdb(missing, expect_full=False)
    _assert_clean_dataset_error(info, missing)


def test_truncated_archive(tiny, tmp_path) -> None:
    _, archive = tiny
    data = archive.read_bytes()
    assert len(data) > 2000  # big enough that half cuts through review data
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as info:
        load_imdb(truncated, expect_full=False)
    _assert_clean_dataset_error(info, truncated)


def test_non_archive_file(tmp_path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x00not-an-archive" + random.Random(0).randbytes(4096))
    with pytest.raises(DatasetError) as info:
        load_imdb(junk, expect_full=False)
    _assert_clean_dataset_error(info, junk)


def test_archive_without_reviews(tmp_path) -> None:
    empty = tmp_path / "empty.tar.gz"
    readme = tmp_path / "README"
    readme.write_text("nothing here")
    with tarfile.open(empty, "w:gz") as tar:
        tar.add(readme, arcname="aclImdb/README")
    with pytest.raises(DatasetError, match="no aclImdb/train") as info:
        load_imdb(empty, expect_full=False)
    assert str(empty) in str(info.value)


def test_folder_without_reviews(tmp_path) -> None:
    with pytest.raises(DatasetError, match="no aclImdb/train"):
        load_imdb(tmp_path, expect_full=False)


# --- resolve_path ------------------------------------------------------------------------------


def test_resolve_path_prefers_the_argument(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "from-env"))
    assert resolve_path(tmp_path / "given") == tmp_path / "given"


def test_resolve_path_falls_back_to_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "from-env"))
    assert resolve_path(None) == tmp_path / "from-env"


def test_resolve_path_without_anything(monkeypatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DatasetError, match=DATA_ENV):
        resolve_path(None)


def test_load_imdb_uses_env(monkeypatch, tiny) -> None:
    _, archive = tiny
    monkeypatch.setenv(DATA_ENV, str(archive))
    assert len(load_imdb(expect_full=False).test) == 3


# --- stratified_split --------------------------------------------------------------------------


def _reviews(positives: int, negatives: int) -> list[Review]:
    return [Review(i, f"text {i}", 1 if i < positives else 0, 8) for i in range(positives + negatives)]


def test_stratified_split_is_deterministic_disjoint_and_complete() -> None:
    reviews = _reviews(60, 40)
    train, validation = stratified_split(reviews, 0.2, seed=7)
    again_train, again_validation = stratified_split(list(reversed(reviews)), 0.2, seed=7)
    assert [r.id for r in train] == [r.id for r in again_train]
    assert [r.id for r in validation] == [r.id for r in again_validation]
    train_ids = {r.id for r in train}
    validation_ids = {r.id for r in validation}
    assert not train_ids & validation_ids
    assert train_ids | validation_ids == set(range(100))
    assert len(train) + len(validation) == 100


def test_stratified_split_keeps_the_label_ratio() -> None:
    train, validation = stratified_split(_reviews(60, 40), 0.2, seed=7)
    assert Counter(r.label for r in validation) == {1: 12, 0: 8}
    assert Counter(r.label for r in train) == {1: 48, 0: 32}


def test_stratified_split_depends_on_the_seed() -> None:
    reviews = _reviews(60, 40)
    _, first = stratified_split(reviews, 0.2, seed=1)
    _, second = stratified_split(reviews, 0.2, seed=2)
    assert {r.id for r in first} != {r.id for r in second}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_split_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        stratified_split(_reviews(5, 5), fraction, seed=0)


# --- bucketed_batches --------------------------------------------------------------------------


def _sequences(count: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(2, 50) for _ in range(rng.randrange(1, 30))] for _ in range(count)]


@pytest.mark.parametrize("shuffle_seed", [None, 0, 99])
def test_bucketed_batches_cover_every_index_once(shuffle_seed) -> None:
    sequences = _sequences(103)
    labels = [i % 2 for i in range(103)]
    batches = list(
        bucketed_batches(sequences, labels, batch_size=8, shuffle_seed=shuffle_seed, bucket_factor=3)
    )
    indices = [i for batch in batches for i in batch.indices]
    assert sorted(indices) == list(range(103))
    assert len(batches) == 13  # ceil(103 / 8): pools of 24 hold whole batches, the last has 7
    assert sorted(len(batch.indices) for batch in batches) == [7] + [8] * 12
    for batch in batches:
        assert batch.labels == [labels[i] for i in batch.indices]


@pytest.mark.parametrize("shuffle_seed", [None, 5])
def test_bucketed_batches_pad_to_the_batch_max(shuffle_seed) -> None:
    sequences = _sequences(40, seed=3)
    batches = bucketed_batches(sequences, [0] * 40, batch_size=6, pad_id=-1, shuffle_seed=shuffle_seed)
    for batch in batches:
        width = max(len(sequences[i]) for i in batch.indices)
        assert batch.lengths == [len(sequences[i]) for i in batch.indices]
        for row, i in zip(batch.token_ids, batch.indices, strict=True):
            assert len(row) == width
            assert row[: len(sequences[i])] == sequences[i]
            assert row[len(sequences[i]) :] == [-1] * (width - len(sequences[i]))


def test_bucketed_batches_without_seed_are_sorted_by_length() -> None:
    sequences = _sequences(50, seed=4)
    batches = list(bucketed_batches(sequences, [1] * 50, batch_size=7))
    lengths = [length for batch in batches for length in batch.lengths]
    assert lengths == sorted(len(s) for s in sequences)
    # deterministic
    again = list(bucketed_batches(sequences, [1] * 50, batch_size=7))
    assert [b.indices for b in batches] == [b.indices for b in again]


def test_bucketed_batches_seed_is_deterministic_and_shuffles() -> None:
    sequences = _sequences(200, seed=5)
    labels = [0] * 200

    def orders(seed):
        return [b.indices for b in bucketed_batches(sequences, labels, batch_size=10, shuffle_seed=seed)]

    assert orders(1) == orders(1)
    assert orders(1) != orders(2)
    sorted_order = [b.indices for b in bucketed_batches(sequences, labels, batch_size=10)]
    assert orders(1) != sorted_order


def test_bucketed_batches_sort_inside_pools() -> None:
    # one pool holds everything, so each batch is a slice of the length-sorted order
    sequences = _sequences(60, seed=6)
    for batch in bucketed_batches(sequences, [0] * 60, batch_size=5, shuffle_seed=3, bucket_factor=100):
        assert batch.lengths == sorted(batch.lengths)
    spans = sorted(
        (min(b.lengths), max(b.lengths))
        for b in bucketed_batches(sequences, [0] * 60, batch_size=5, shuffle_seed=3, bucket_factor=100)
    )
    for (_, high), (low, _) in itertools.pairwise(spans):
        assert high <= low


# --- take_per_label ----------------------------------------------------------------------------


def test_take_per_label_keeps_the_first_of_each_label() -> None:
    reviews = [Review(i, "", label, 0) for i, label in enumerate([1, 0, 1, 1, 0, -1, 0, 1])]
    kept = take_per_label(reviews, 2)
    assert [r.id for r in kept] == [0, 1, 2, 4, 5]


def test_take_per_label_zero_means_all() -> None:
    reviews = [Review(i, "", i % 2, 0) for i in range(5)]
    kept = take_per_label(reviews, 0)
    assert kept == reviews
    assert kept is not reviews


# --- download ----------------------------------------------------------------------------------


def test_download_from_file_url_with_checksum(tmp_path) -> None:
    source = tmp_path / "source.bin"
    payload = random.Random(1).randbytes(3 * (1 << 20) + 17)  # more than one read chunk
    source.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    destination = tmp_path / "out" / "aclImdb_v1.tar.gz"
    result = download(destination, url=source.as_uri(), sha256=digest)
    assert result == destination
    assert destination.read_bytes() == payload
    assert sha256_of(destination) == digest
    assert not (tmp_path / "out" / "aclImdb_v1.tar.gz.part").exists()


def test_download_with_a_wrong_checksum_leaves_nothing(tmp_path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"definitely not the IMDB archive")
    out = tmp_path / "out"
    destination = out / "aclImdb_v1.tar.gz"
    with pytest.raises(DatasetError, match="sha256") as info:
        download(destination, url=source.as_uri(), sha256="0" * 64)
    assert source.as_uri() in str(info.value)
    assert not destination.exists()
    assert list(out.iterdir()) == []


def test_sha256_of_matches_hashlib(tmp_path) -> None:
    path = tmp_path / "f"
    data = b"abc" * 1000
    path.write_bytes(data)
    assert sha256_of(path, chunk_size=7) == hashlib.sha256(data).hexdigest()


def test_fetch_if_missing_downloads_only_when_absent(tmp_path, monkeypatch) -> None:
    from training import data

    calls = []
    monkeypatch.setattr(data, "download", lambda target, url: calls.append((target, url)) or target)
    existing = tmp_path / "here.tar.gz"
    existing.write_bytes(b"x")
    assert data.fetch_if_missing(existing) == existing and calls == []
    missing = tmp_path / "sub" / "aclImdb_v1.tar.gz"
    assert data.fetch_if_missing(missing, url="file:///nowhere") == missing
    assert calls == [(missing, "file:///nowhere")]
