"""The inspector's corpus index: where each hidden unit is on, over thousands of test reviews.

LSTMVis (Strobelt et al., 2017) binarises hidden states at a threshold and, for the units a
user selected on a span, searches a corpus for other places where the same set of units turns
on (its *Match View*). :class:`MatchIndex` holds what those searches need, computed once with
the served model's onnxruntime graph (:meth:`app.runtime.LoadedModel.hidden_states`, the
states the classifier used):

- one bit per token and hidden unit (``h >= threshold``), packed 64 units to a word: 32 bytes a
  token for the shipped model's 2 x 128 units;
- the tokens themselves, to show each match in its context;
- per unit, the reviews where it is highest and lowest (the token of each review where it
  peaks), for the *top activating contexts* of a unit.

``python -m app.match_index`` builds it from the IMDB archive; the service loads it at start-up
when present (``SENTIMENT_MATCH_INDEX``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.errors import BundleError, InvalidRequest
from app.gates import DIRECTIONS
from app.settings import Settings

if TYPE_CHECKING:  # the runtime's onnxruntime import: not needed to load and query an index
    from app.runtime import LoadedModel

logger = logging.getLogger("app.match_index")
FORMAT = "imdb-lstm-match-index"
FORMAT_VERSION = 1
SUFFIX = ".match_index.npz"


def default_path(model_dir: Path) -> Path:
    """Where a bundle's index goes unless told: beside the bundle folder, named after it
    (``models/default.match_index.npz``), outside the bundle, which stays as training wrote it."""
    return model_dir.parent / f"{model_dir.name}{SUFFIX}"


CONTEXT_TOKENS = 8  # tokens shown either side of a match or a unit's peak


@dataclass(frozen=True)
class Unit:
    """One hidden unit: its layer, direction (0 forward, 1 backward) and index within both."""

    layer: int
    direction: int
    unit: int


@dataclass(frozen=True)
class MatchIndex:
    """The binarised hidden states of a corpus, its tokens, and each unit's extreme contexts.

    Arrays: ``bits`` uint64 ``[words, tokens]`` (bit ``c % 64`` of word ``c // 64`` is column
    ``c``; a word's row is contiguous, as a query reads it); ``on_count`` uint16 ``[tokens]``,
    the units on at each token; ``tokens`` uint32 ``[tokens]`` into ``words``; ``offsets`` int64
    ``[reviews + 1]`` (review ``r`` is tokens ``offsets[r]:offsets[r + 1]``); ``labels`` int8
    and ``review_ids`` int32 ``[reviews]``; ``highest``/``lowest`` int64 ``[columns, k]`` token positions and
    ``highest_values``/``lowest_values`` float32 ``[columns, k]``, best first.
    """

    meta: dict
    words: list[str]
    bits: np.ndarray
    on_count: np.ndarray
    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    review_ids: np.ndarray
    highest: np.ndarray
    highest_values: np.ndarray
    lowest: np.ndarray
    lowest_values: np.ndarray
    review_start: np.ndarray = field(init=False, repr=False)  # derived once, read by every query

    def __post_init__(self) -> None:
        review_start = np.zeros(len(self.tokens), dtype=bool)
        review_start[self.offsets[:-1]] = True
        object.__setattr__(self, "review_start", review_start)

    @property
    def columns(self) -> int:
        """Hidden units indexed: layers x directions x units per direction."""
        return self.meta["layers"] * self.meta["directions"] * self.meta["hidden_size"]

    def column(self, unit: Unit) -> int:
        """The column of ``unit``; :class:`InvalidRequest` when the model has no such unit."""
        meta = self.meta
        for name, value, limit in (
            ("layer", unit.layer, meta["layers"]),
            ("direction", unit.direction, meta["directions"]),
            ("unit", unit.unit, meta["hidden_size"]),
        ):
            if not 0 <= value < limit:
                raise InvalidRequest(f"{name} {value}: the indexed model has {limit} (0 to {limit - 1})")
        return (unit.layer * meta["directions"] + unit.direction) * meta["hidden_size"] + unit.unit

    def describe(self) -> dict:
        """What the index covers, as ``GET /v1/inspect/index`` shows it."""
        return {
            **{key: self.meta[key] for key in ("model", "threshold", "max_tokens", "source", "top_k")},
            "layers": self.meta["layers"],
            "directions": list(DIRECTIONS[: self.meta["directions"]]),
            "hidden_size": self.meta["hidden_size"],
            "reviews": len(self.labels),
            "tokens": len(self.tokens),
        }

    def context(self, start: int, end: int) -> dict:
        """The match ``start:end`` (token positions) with up to :data:`CONTEXT_TOKENS` tokens of
        its review either side, and which review it is."""
        review = int(np.searchsorted(self.offsets, start, side="right") - 1)
        first, last = self.offsets[review], self.offsets[review + 1]

        def take(a: int, b: int) -> list[str]:
            return [self.words[i] for i in self.tokens[a:b]]

        return {
            "review": int(self.review_ids[review]),
            "label": ("negative", "positive")[int(self.labels[review])],
            "position": int(start - first),
            "before": take(max(first, start - CONTEXT_TOKENS), start),
            "tokens": take(start, end),
            "after": take(end, min(last, end + CONTEXT_TOKENS)),
        }

    def match(self, units: Sequence[Unit], length: int, k: int) -> dict:
        """The ``k`` best runs of tokens where every one of ``units`` is on, within one review.

        A run is maximal (all the units on at each token, not at the tokens either side). Its
        score is LSTMVis' preference for specific patterns and similar lengths: the mean, over
        its tokens, of the fraction of the tokens' on units that are the selected ones
        (``|S| / |on_t|``, 1 when nothing else is on), times ``min(n, length) / max(n, length)``
        for a run of ``n`` tokens against the query span's ``length``.
        """
        columns = sorted({self.column(unit) for unit in units})
        if not columns:
            raise InvalidRequest("units: select at least one unit")
        hit = np.ones(self.bits.shape[1], dtype=bool)
        for word in sorted({column // 64 for column in columns}):  # only words holding a selected unit
            mask = np.uint64(sum(1 << (column % 64) for column in columns if column // 64 == word))
            hit &= (self.bits[word] & mask) == mask
        positions = np.flatnonzero(hit)
        if not len(positions):
            return {"matches": [], "total": 0}
        # a run starts at a hit whose token before is no hit, or which starts its review
        starts_run = np.ones(len(positions), dtype=bool)
        starts_run[1:] = (np.diff(positions) != 1) | self.review_start[positions[1:]]
        firsts = np.flatnonzero(starts_run)  # into positions
        sizes = np.diff(np.append(firsts, len(positions)))
        specificity = np.add.reduceat(len(columns) / self.on_count[positions], firsts) / sizes
        # rounded, so that equal scores summed in another order still tie, broken by corpus order
        scores = np.round(specificity * np.minimum(sizes, length) / np.maximum(sizes, length), 9)
        best = np.argpartition(-scores, k - 1)[:k] if len(scores) > k else np.arange(len(scores))
        best = best[np.lexsort((positions[firsts[best]], -scores[best]))]  # score, then corpus order
        matches = [
            {
                **self.context(int(positions[firsts[i]]), int(positions[firsts[i]] + sizes[i])),
                "score": round(float(scores[i]), 4),
            }
            for i in best
        ]
        return {"matches": matches, "total": len(firsts)}

    def top_contexts(self, unit: Unit, k: int) -> dict:
        """The ``k`` reviews where ``unit`` is highest and lowest, each at its peak token."""
        column = self.column(unit)
        if k > self.meta["top_k"]:
            raise InvalidRequest(f"k: the index keeps {self.meta['top_k']} contexts per unit")
        return {
            side: [
                {**self.context(int(position), int(position) + 1), "value": round(float(value), 4)}
                for position, value in zip(positions[column, :k], values[column, :k], strict=True)
            ]
            for side, positions, values in (
                ("highest", self.highest, self.highest_values),
                ("lowest", self.lowest, self.lowest_values),
            )
        }

    def save(self, path: Path) -> None:
        """Write the index as one compressed ``.npz`` (plain arrays; loading needs no pickle)."""
        header = json.dumps({**self.meta, "words": self.words}).encode()
        arrays = {name: getattr(self, name) for name in ARRAYS}
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:  # np.savez_* would add ".npz" to a name without it
            np.savez_compressed(handle, header=np.frombuffer(header, dtype=np.uint8), **arrays)


ARRAYS = (
    "bits",
    "on_count",
    "tokens",
    "offsets",
    "labels",
    "review_ids",
    "highest",
    "highest_values",
    "lowest",
    "lowest_values",
)


def load_index(path: Path) -> MatchIndex:
    """Read an index written by :meth:`MatchIndex.save`; ``ValueError`` naming what is wrong."""
    with np.load(path, allow_pickle=False) as stored:
        header = json.loads(stored["header"].tobytes())
        if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: not a match index of version {FORMAT_VERSION} (python -m app.match_index)"
            )
        words = header.pop("words")
        return MatchIndex(header, words, **{name: stored[name] for name in ARRAYS})


def open_configured(settings: Settings) -> MatchIndex | None:
    """The index ``settings`` name (``match_index``, else :func:`default_path` of the model
    folder when there is one); :class:`BundleError` when a named file is missing or unreadable."""
    path = settings.match_index or default_path(settings.model_dir)
    if settings.match_index is None and not path.is_file():
        return None
    try:
        index = load_index(path)
    except (OSError, ValueError, KeyError) as error:
        raise BundleError(f"{path}: cannot read the match index ({error})") from error
    logger.info("match index %s: %d reviews, %d tokens", path, len(index.labels), len(index.tokens))
    return index


def model_identity(model: LoadedModel) -> dict:
    """The model an index is built for, as the index records it and the service checks it."""
    return {"name": model.card.get("name", model.name), "version": model.version}


def _extremes(
    kept: tuple[np.ndarray, np.ndarray], values: np.ndarray, positions: np.ndarray, k: int, sign: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of ``kept`` (positions, values ``[columns, k]``) and the candidates
    ``values``/``positions`` ``[reviews, columns]``, best first: highest for ``sign`` 1."""
    all_values = np.concatenate([kept[1], values.T], axis=1)  # [columns, k + reviews]
    all_positions = np.concatenate([kept[0], positions.T], axis=1)
    order = np.argsort(-sign * all_values, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(all_positions, order, 1), np.take_along_axis(all_values, order, 1)


def build_index(
    model: LoadedModel,
    reviews: Sequence[tuple[int, int, str]],
    max_tokens: int,
    threshold: float,
    top_k: int,
    source: str,
    batch_size: int = 32,
) -> MatchIndex:
    """Index ``reviews`` (id, label 0/1, text), each read up to ``max_tokens`` tokens, through
    ``model``'s onnxruntime graph."""
    config = model.config
    columns = config.num_layers * config.num_directions * config.hidden_size
    vocabulary: dict[str, int] = {}
    bits, tokens, lengths = [], [], []
    high = (np.zeros((columns, 0), dtype=np.int64), np.zeros((columns, 0), dtype=np.float32))
    low = high
    position = 0
    for first in range(0, len(reviews), batch_size):
        encoded = [
            model.encode_capped(text, max_tokens) for _, _, text in reviews[first : first + batch_size]
        ]
        for item, states in zip(encoded, model.hidden_states([item.ids for item in encoded]), strict=True):
            packed = np.packbits(states >= threshold, axis=1, bitorder="little")  # [T, columns / 8]
            packed = np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8)))
            bits.append(packed.view(np.uint64))
            tokens.append([vocabulary.setdefault(token, len(vocabulary)) for token in item.tokens])
            lengths.append(len(item.ids))
            peaks = position + np.argmax(states, axis=0), states.max(axis=0)
            troughs = position + np.argmin(states, axis=0), states.min(axis=0)
            high = _extremes(high, peaks[1][None], peaks[0][None], top_k, 1)
            low = _extremes(low, troughs[1][None], troughs[0][None], top_k, -1)
            position += len(item.ids)
    packed = np.concatenate(bits)  # [tokens, words]
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_identity(model),
        "layers": config.num_layers,
        "directions": config.num_directions,
        "hidden_size": config.hidden_size,
        "threshold": threshold,
        "max_tokens": max_tokens,
        "top_k": top_k,
        "source": source,
    }
    return MatchIndex(
        meta,
        list(vocabulary),
        np.ascontiguousarray(packed.T),
        np.bitwise_count(packed).sum(axis=1, dtype=np.uint16),
        np.concatenate([np.asarray(t, dtype=np.uint32) for t in tokens]),
        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        np.array([label for _, label, _ in reviews], dtype=np.int8),
        np.array([review_id for review_id, _, _ in reviews], dtype=np.int32),
        high[0],
        high[1].astype(np.float32),
        low[0],
        low[1].astype(np.float32),
    )


def sample_reviews(data: Path, count: int, seed: int) -> list[tuple[int, int, str]]:
    """``count`` IMDB test reviews, half of each label, drawn with ``seed``, as (id, label, text)."""
    from training.data import load_imdb  # the one reader of the archive; torch-free

    test = load_imdb(data, expect_full=False).test
    by_label = [[review for review in test if review.label == label] for label in (0, 1)]
    rng = random.Random(seed)
    chosen = [review for group in by_label for review in rng.sample(group, min(len(group), count // 2))]
    return [(review.id, review.label, review.text) for review in chosen]


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: build the index of a bundle over IMDB test reviews."""
    parser = argparse.ArgumentParser(prog="python -m app.match_index", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="IMDB archive (.tar.gz) or extracted folder")
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"), help="bundle to index")
    parser.add_argument(
        "--output", type=Path, help=f"where to write it (default: the bundle folder's name + {SUFFIX})"
    )
    parser.add_argument("--reviews", type=int, default=5000, help="test reviews to index, half of each label")
    parser.add_argument("--max-tokens", type=int, default=400, help="tokens read per review (the first ones)")
    parser.add_argument("--threshold", type=float, default=0.5, help="a unit is on where h >= this")
    parser.add_argument("--top-k", type=int, default=50, help="extreme contexts kept per unit and side")
    parser.add_argument("--seed", type=int, default=0, help="seed of the review sample")
    args = parser.parse_args(argv)
    from app.store import ModelStore  # onnxruntime sessions: only the command needs them

    store = ModelStore(Settings(model_dir=args.model_dir))
    store.load()
    started = time.perf_counter()
    reviews = sample_reviews(args.data, args.reviews, args.seed)
    index = build_index(
        store.model, reviews, args.max_tokens, args.threshold, args.top_k, f"IMDB test, seed {args.seed}"
    )
    output = args.output or default_path(args.model_dir)
    index.save(output)
    on = float(np.bitwise_count(index.bits).sum()) / (len(index.tokens) * index.columns)
    print(
        f"{output}: {len(reviews)} reviews, {len(index.tokens)} tokens, {index.columns} units, "
        f"{100 * on:.1f} % of states on at h >= {args.threshold}, {output.stat().st_size / 1e6:.1f} MB, "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
