"""The corpus index: its bits are the traced hidden states, and its answers match a brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.match_index import MatchIndex, Unit, build_index, load_index, main
from app.settings import Settings
from app.store import ModelStore
from tests.bundles import CORPUS, make_bundle

REVIEWS = [
    (review_id, review_id % 2, text)
    for review_id, text in enumerate(
        [
            *CORPUS,
            "a great film but a dull plot",
            "boring boring boring . i loved the acting though",
            "superb",
        ]
    )
]
THRESHOLD = 0.1  # the tiny bundle's random weights keep h small


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder, _, _ = make_bundle(tmp_path_factory.mktemp("bundle") / "tiny", max_tokens=64)
    store = ModelStore(Settings(model_dir=folder))
    store.load()
    return store.model


@pytest.fixture(scope="module")
def index(model) -> MatchIndex:
    return build_index(
        model, REVIEWS, max_tokens=10, threshold=THRESHOLD, top_k=4, source="tiny", batch_size=3
    )


def traced_states(model, text: str) -> np.ndarray:
    """``[tokens, layers * directions * units]`` hidden states, read from the service's trace."""
    trace = model.trace(text, max_tokens=10)
    return np.concatenate(
        [
            layer[direction]["gates"]["hidden"]
            for layer in trace["layers"]
            for direction in ("forward", "backward")
        ],
        axis=1,
    )


@pytest.mark.parametrize(("num_layers", "bidirectional"), [(2, True), (2, False)])
def test_hidden_states_are_the_traced_ones_in_the_index_s_column_order(
    tmp_path, num_layers, bidirectional
) -> None:
    folder, _, _ = make_bundle(tmp_path / "b", num_layers=num_layers, bidirectional=bidirectional)
    store = ModelStore(Settings(model_dir=folder))
    store.load()
    texts = [CORPUS[0], "superb", CORPUS[1]]  # of different lengths: padding must not leak in
    encoded = [store.model.encode(text).ids for text in texts]
    for text, states in zip(texts, store.model.hidden_states(encoded), strict=True):
        trace = store.model.trace(text, max_tokens=64)
        want = np.concatenate(
            [direction["gates"]["hidden"] for layer in trace["layers"] for direction in layer.values()],
            axis=1,
        )
        assert states.shape == want.shape == (len(trace["tokens"]), num_layers * (1 + bidirectional) * 6)
        np.testing.assert_allclose(states, want, atol=1e-6)


def unpacked(index: MatchIndex) -> np.ndarray:
    """The on/off state of every token and unit, ``[tokens, columns]``."""
    bits = np.unpackbits(index.bits.T.copy().view(np.uint8), axis=1, bitorder="little")
    return bits[:, : index.columns].astype(bool)


def test_the_bits_are_the_traced_hidden_states_at_the_threshold(model, index) -> None:
    states = np.concatenate([traced_states(model, text) for _, _, text in REVIEWS])
    on = unpacked(index)
    assert on.shape == states.shape == (len(index.tokens), 12)
    assert np.array_equal(on, states >= THRESHOLD)
    assert np.array_equal(index.on_count, on.sum(axis=1))
    assert 0.05 < on.mean() < 0.95  # the threshold leaves something to find
    words = [index.words[i] for i in index.tokens[index.offsets[1] : index.offsets[2]]]
    assert words == model.encode_capped(REVIEWS[1][2], 10).tokens


def brute_force_matches(index: MatchIndex, columns: list[int], length: int) -> list[tuple[float, int, int]]:
    """(score, start, end) of every maximal run within a review where all ``columns`` are on."""
    on = unpacked(index)
    found = []
    for first, last in itertools.pairwise(index.offsets):
        t = first
        while t < last:
            if not on[t, columns].all():
                t += 1
                continue
            start = t
            while t < last and on[t, columns].all():
                t += 1
            specificity = np.mean([len(columns) / on[r].sum() for r in range(start, t)])
            found.append((round(specificity * min(t - start, length) / max(t - start, length), 9), start, t))
    return sorted(found, key=lambda item: (-item[0], item[1]))


@pytest.mark.parametrize("units", [[Unit(0, 0, 1)], [Unit(0, 1, 3)], [Unit(0, 0, 2), Unit(0, 1, 0)]])
def test_matches_are_every_run_of_the_units_ranked(index, units: list[Unit]) -> None:
    columns = [index.column(unit) for unit in units]
    want = brute_force_matches(index, columns, length=2)
    assert want, "pick units that turn on somewhere"
    got = index.match(units, length=2, k=5)
    assert got["total"] == len(want)
    for match, (score, start, end) in zip(got["matches"], want[:5], strict=True):
        assert match["score"] == pytest.approx(score, abs=1e-4)
        review = int(np.searchsorted(index.offsets, start, side="right") - 1)
        assert match["review"] == REVIEWS[review][0]
        assert match["position"] == start - index.offsets[review]
        assert match["tokens"] == [index.words[i] for i in index.tokens[start:end]]
        assert len(match["tokens"]) == end - start


def test_top_contexts_are_each_reviews_extreme_token(model, index) -> None:
    unit = Unit(0, 1, 4)
    column = index.column(unit)
    peaks = []
    for review_id, _, text in REVIEWS:
        values = traced_states(model, text)[:, column]
        peaks.append((values.max(), review_id, int(values.argmax()), values.min(), int(values.argmin())))
    found = index.top_contexts(unit, k=3)
    highest = sorted(peaks, key=lambda p: -p[0])[:3]
    lowest = sorted(peaks, key=lambda p: p[3])[:3]
    assert [(c["review"], c["position"]) for c in found["highest"]] == [(p[1], p[2]) for p in highest]
    assert [(c["review"], c["position"]) for c in found["lowest"]] == [(p[1], p[4]) for p in lowest]
    assert [c["value"] for c in found["highest"]] == pytest.approx([p[0] for p in highest], abs=1e-4)


def test_bad_units_and_k_are_refused_in_words(index) -> None:
    from app.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="unit 6: the indexed model has 6"):
        index.match([Unit(0, 0, 6)], 1, 5)
    with pytest.raises(InvalidRequest, match="layer 1"):
        index.top_contexts(Unit(1, 0, 0), 3)
    with pytest.raises(InvalidRequest, match="keeps 4 contexts"):
        index.top_contexts(Unit(0, 0, 0), 5)


def test_saved_and_loaded_it_answers_the_same(index, tmp_path) -> None:
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = load_index(path)
    assert loaded.describe() == index.describe()
    units = [Unit(0, 0, 1)]
    assert loaded.match(units, 1, 10) == index.match(units, 1, 10)


def test_the_command_indexes_an_imdb_folder(model, tmp_path) -> None:
    root = tmp_path / "aclImdb"
    for part, label, review_id, text in [
        ("train", "pos", 0, "a fine film"),
        ("test", "pos", 3, "a wonderful , moving film"),
        ("test", "pos", 4, "i loved it"),
        ("test", "neg", 7, "an awful , boring mess"),
    ]:
        (root / part / label).mkdir(parents=True, exist_ok=True)
        (root / part / label / f"{review_id}_8.txt").write_text(text)
    bundle = tmp_path / "bundle"
    make_bundle(bundle, max_tokens=64)
    main(["--data", str(tmp_path), "--model-dir", str(bundle), "--reviews", "2", "--top-k", "2"])
    built = load_index(tmp_path / "bundle.match_index.npz")  # beside the bundle, not in it
    assert built.describe()["reviews"] == 2 and sorted(built.labels.tolist()) == [0, 1]
    assert built.describe()["model"] == {"name": "tiny", "version": "test"}
