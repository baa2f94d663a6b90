"""``python -m benchmarks match``: how long the inspector's Match View and unit contexts take.

The queries are what a user of the inspector sends: for each of ``--queries`` real IMDB test
reviews, a span of 1 to 3 tokens, drawn with seed 0 among the spans that some hidden unit
marks (LSTMVis' rule at the index's threshold: on over the span, off on the three tokens either
side; the review's hidden states come from the served graph); the units it finds are the query.
Each query is timed in process (:meth:`app.match_index.MatchIndex.match`, the index loaded
from its file) and through ``POST /v1/inspect/match`` of a real server, one request at a time;
a unit's top contexts are timed the same two ways (``GET /v1/inspect/units/...``).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import httpx
import numpy as np

from app.gates import DIRECTIONS
from app.match_index import SUFFIX, MatchIndex, Unit, default_path, load_index
from app.settings import Settings
from app.store import ModelStore
from benchmarks import reviews
from benchmarks.server import running


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument(
        "--index", type=Path, help=f"the index (default: the bundle folder's name + {SUFFIX})"
    )
    parser.add_argument("--queries", type=int, default=200, help="spans searched (one per review)")
    parser.add_argument("--k", type=int, default=20, help="matches and contexts asked for")


def marking_units(states: np.ndarray, start: int, end: int, threshold: float) -> list[int]:
    """Columns on over ``start:end`` and off on the three tokens either side (LSTMVis)."""
    on = states >= threshold
    around = [*range(max(0, start - 3), start), *range(end, min(len(states), end + 3))]
    inside = on[start:end].all(axis=0)
    outside = ~on[around].any(axis=0) if around else np.ones(states.shape[1], dtype=bool)
    return np.flatnonzero(inside & outside).tolist()


def queries(model, index: MatchIndex, texts: list[str]) -> list[tuple[list[Unit], int]]:
    """One (units, span length) per text that has a marked span of 1 to 3 tokens."""
    rng = random.Random(0)
    found = []
    size, directions = index.meta["hidden_size"], index.meta["directions"]
    for text in texts:
        ids = model.encode_capped(text, index.meta["max_tokens"]).ids
        states = model.hidden_states([ids])[0]
        spans = [(s, s + n) for n in (1, 2, 3) for s in range(len(ids) - n + 1)]
        rng.shuffle(spans)
        for start, end in spans:
            columns = marking_units(states, start, end, index.meta["threshold"])
            if columns:
                units = [Unit(c // (directions * size), c // size % directions, c % size) for c in columns]
                found.append((units, end - start))
                break
    return found


def percentiles(seconds: list[float]) -> dict:
    """p50, p95 and the maximum in milliseconds."""
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max())}


def timed(call, items) -> dict:
    """:func:`percentiles` of ``call(item)`` over ``items``."""
    seconds = []
    for item in items:
        started = time.perf_counter()
        call(item)
        seconds.append(time.perf_counter() - started)
    return percentiles(seconds)


def over_http(bundle: Path, path: Path, asked: list, units: list[Unit], k: int) -> dict:
    """The same queries and unit contexts through a real server's routes."""
    index = {"SENTIMENT_MATCH_INDEX": str(path.absolute())}
    with running(bundle, index) as (_, base, _), httpx.Client(base_url=base, timeout=30) as client:

        def match(query: tuple[list[Unit], int]) -> None:
            body = {
                "units": [
                    {"layer": u.layer, "direction": DIRECTIONS[u.direction], "unit": u.unit} for u in query[0]
                ],
                "length": query[1],
                "k": k,
            }
            client.post("/v1/inspect/match", json=body).raise_for_status()

        def contexts(unit: Unit) -> None:
            path = f"/v1/inspect/units/{unit.layer}/{DIRECTIONS[unit.direction]}/{unit.unit}"
            client.get(path, params={"k": min(k, 50)}).raise_for_status()

        match(asked[0])  # the first request pays for connecting
        return {"match": timed(match, asked), "contexts": timed(contexts, units)}


def run(args: argparse.Namespace) -> dict:
    """Load the index, draw the queries, time them in process and over HTTP."""
    path = args.index or default_path(args.bundle)
    started = time.perf_counter()
    index = load_index(path)
    load_s = time.perf_counter() - started
    store = ModelStore(Settings(model_dir=args.bundle))
    store.load()
    asked = queries(store.model, index, reviews.review_texts(args.data, args.queries))
    units = [query[0][0] for query in asked]
    k_contexts = min(args.k, index.meta["top_k"])
    totals = [index.match(query_units, length, args.k)["total"] for query_units, length in asked]
    return {
        "index": {
            **index.describe(),
            "file_mb": path.stat().st_size / 1e6,
            "load_s": load_s,
        },
        "queries": len(asked),
        "k": args.k,
        "units_per_query": float(np.mean([len(query[0]) for query in asked])),
        "matches_per_query": float(np.median(totals)),
        "in_process": {
            "match": timed(lambda query: index.match(query[0], query[1], args.k), asked),
            "contexts": timed(lambda unit: index.top_contexts(unit, k_contexts), units),
        },
        "http": over_http(args.bundle, path, asked, units, args.k),
    }
