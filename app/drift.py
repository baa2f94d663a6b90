"""``python -m app.drift LOG [LOG ...]``: has what the service served drifted from what the
bundle saw on its test set? Reports, for each signal of the prediction log (the score, the
tokens per text, their ``<unk>`` share), the population stability index and the two-sample
Kolmogorov-Smirnov statistic against the bundle's reference (:mod:`model.reference`), and which
signal moved. ``--since``/``--until`` take a window of the log. Exit status: 0 nothing moved,
1 a signal moved, 2 nothing to compare (or an error).

PSI (the credit-scoring industry's stability index: sum over bins of (observed - expected) *
ln(observed / expected)) is a few lines of numpy over ten bins cut at the reference's deciles;
0.1-0.2 is the conventional "some shift", above 0.2 "a shift to act on". KS comes from
``scipy.stats.ks_2samp``; scipy is in the training and development environments, not in the
serving image, where the command reports PSI alone and says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.reference import SIGNALS, load_reference, near_half_share

try:
    from scipy.stats import ks_2samp
except ImportError:  # the serving image: PSI only
    ks_2samp = None

PSI_BINS = 10
PSI_FLOOR = 1e-4  # a bin's share below this counts as this: an empty bin would make PSI infinite
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    """An ISO 8601 time (UTC when it names no zone), or a span back from ``now`` such as '6h'."""
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - dt.timedelta(**{_UNITS[relative[2]]: float(relative[1])})
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def read_log(
    paths: Sequence[Path], since: dt.datetime | None = None, until: dt.datetime | None = None
) -> tuple[dict[str, np.ndarray], set[str]]:
    """Each signal's values in the logs' entries within [since, until), and the model versions
    that served them."""
    values: dict[str, list[float]] = {name: [] for name in SIGNALS}
    versions: set[str] = set()
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                entry = json.loads(line)
                moment = dt.datetime.fromisoformat(entry["time"])
                if (since and moment < since) or (until and moment >= until):
                    continue
                versions.add(entry["model_version"])
                for name in SIGNALS:
                    values[name].append(entry[name])
    return {name: np.asarray(found, dtype=np.float64) for name, found in values.items()}, versions


def psi(reference: np.ndarray, observed: np.ndarray) -> float:
    """Population stability index of ``observed`` against the ``reference`` quantiles, over bins
    cut at the reference's deciles (fewer where ties merge them, as token counts at the cap do)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    actual = np.bincount(np.searchsorted(edges, observed, side="right"), minlength=len(edges) + 1)
    expected = np.maximum(expected / expected.sum(), PSI_FLOOR)
    actual = np.maximum(actual / actual.sum(), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def compare(
    reference: dict, observed: dict[str, np.ndarray], psi_limit: float, ks_limit: float
) -> list[dict]:
    """One row per signal: medians, PSI, KS (statistic and p-value; None without scipy), moved."""
    rows = []
    for name in SIGNALS:
        expected = np.asarray(reference["quantiles"][name], dtype=np.float64)
        found = observed[name]
        row = {
            "signal": name,
            "entries": len(found),
            "reference_median": float(np.median(expected)),
            "median": float(np.median(found)),
            "psi": round(psi(expected, found), 4),
            "ks": None,
            "ks_p": None,
        }
        if ks_2samp is not None:
            # the reference's quantiles stand for its distribution as an equally weighted sample
            result = ks_2samp(found, expected)
            row["ks"], row["ks_p"] = round(float(result.statistic), 4), float(result.pvalue)
        row["moved"] = row["psi"] >= psi_limit or (row["ks"] is not None and row["ks"] >= ks_limit)
        rows.append(row)
    return rows


def render(rows: list[dict], reference: dict, observed: dict[str, np.ndarray], versions: set[str]) -> str:
    """The report as text."""
    lines = [
        f"{len(observed['score'])} predictions (model versions: {', '.join(sorted(versions))}) "
        f"against {reference['source']}",
        f"share near 0.5: {near_half_share(observed['score']):.3f} (reference {reference['near_half']:.3f})",
        "",
        f"{'signal':<10} {'median':>9} {'ref. median':>11} {'PSI':>7} {'KS':>7} {'KS p':>9}  moved",
    ]
    for row in rows:
        ks = f"{row['ks']:>7.3f} {row['ks_p']:>9.2g}" if row["ks"] is not None else f"{'-':>7} {'-':>9}"
        lines.append(
            f"{row['signal']:<10} {row['median']:>9.4g} {row['reference_median']:>11.4g} "
            f"{row['psi']:>7.3f} {ks}  {'YES' if row['moved'] else 'no'}"
        )
    if ks_2samp is None:
        lines.append("(KS needs scipy, which the serving image does not install: PSI only)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = argparse.ArgumentParser(prog="python -m app.drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="prediction log files (rotated ones too)")
    parser.add_argument(
        "--bundle", type=Path, default=Path("models/default"), help="bundle with the reference"
    )
    parser.add_argument("--since", help="first time to read: ISO 8601, or back from now, e.g. 6h, 2d")
    parser.add_argument("--until", help="time to stop before: ISO 8601, or back from now")
    parser.add_argument("--psi", type=float, default=0.2, help="PSI at or above which a signal moved")
    parser.add_argument("--ks", type=float, default=0.1, help="KS statistic at or above which a signal moved")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    now = dt.datetime.now(dt.UTC)
    try:
        reference = load_reference(args.bundle)
        if reference is None:
            raise ValueError(f"{args.bundle} has no drift reference (see python -m training.evaluate)")
        since = parse_time(args.since, now) if args.since else None
        until = parse_time(args.until, now) if args.until else None
        observed, versions = read_log(args.logs, since, until)
    except (OSError, ValueError, KeyError) as error:
        parser.exit(2, f"error: {error}\n")
    if not len(observed["score"]):
        parser.exit(2, "error: no predictions in the log (or in its window)\n")
    rows = compare(reference, observed, args.psi, args.ks)
    print(json.dumps(rows, indent=2) if args.json else render(rows, reference, observed, versions))
    sys.exit(1 if any(row["moved"] for row in rows) else 0)


if __name__ == "__main__":
    main()
