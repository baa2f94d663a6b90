"""The service from two checkouts, alternated: did a change move its HTTP overhead or its gain?

    git worktree add /tmp/baseline <commit>
    python -m bench.ab --baseline /tmp/baseline --data ../shared/data/aclImdb_v1.tar.gz \\
        [--rounds 3] [--json docs/ab.json]

Each round starts the service (``python -m app``, defaults) from each checkout in turn, the
baseline first in odd rounds and last in even ones, and measures each as :mod:`bench.floor`
measures a server: one client beside the in-process ``ModelRuntime.predict`` in alternating
blocks, then 32 clients. Both serve the same bundle and the same real reviews, so the rounds
compare code, not machines: a change that helps should win in every round, by more than the
rounds differ among themselves.

Both servers run on this interpreter, so it must have the baseline's serving requirements too
(a baseline before 8ddff8b imports prometheus-fastapi-instrumentator, for one).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench import cli
from bench.floor import measure
from bench.service import InProcess


def compare(bundle: Path, texts: list[str], baseline: Path, rounds: int = 3, threads: int = 2) -> dict:
    """Per round, the baseline's and this checkout's figures (:func:`bench.floor.measure`) and the
    order they were measured in."""
    reference = InProcess(bundle, threads)
    this = Path(__file__).resolve().parents[1]
    sides = {"baseline": baseline.resolve(), "this": this}
    results: dict = {"requests": len(texts), "threads": threads, "baseline": _head(baseline), "rounds": []}
    for number in range(rounds):
        order = list(sides) if number % 2 == 0 else list(sides)[::-1]
        row = {side: measure(bundle, texts, "app", (), reference, threads, sides[side]) for side in order}
        results["rounds"].append({**row, "order": order})
    return results


def _head(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip()


def print_ab(results: dict) -> None:
    """One line per side per round."""
    print(
        f"A/B: baseline {results['baseline']} against this checkout; {results['requests']} real test reviews"
    )
    for number, row in enumerate(results["rounds"], 1):
        for side in ("baseline", "this"):
            r = row[side]
            print(
                f"  round {number}, {side}: HTTP p50 {r['p50_ms']:.2f} ms / in process "
                f"{r['in_process_p50_ms']:.2f} ms = {r['ratio']:.3f}; 32 clients {r['rps_32']:.0f} req/s, "
                f"gain {r['gain_32']:.2f}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("The service from two checkouts, alternated.")
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of this repository")
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each measures both checkouts")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads, both sides")
    args = parser.parse_args(argv)
    texts = cli.review_texts(args.data, args.requests)
    results = compare(args.bundle, texts, args.baseline, args.rounds, args.threads)
    cli.publish(results, print_ab, args.json)


if __name__ == "__main__":
    main()
