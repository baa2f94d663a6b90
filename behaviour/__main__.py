"""Run the behavioural suite against a bundle, or compare bundles (the ablation).

    python -m behaviour run --bundle models/default
    python -m behaviour ablation --arm shipped=models/default --arm cad=runs/ft-cad/bundle ...

Each command writes one JSON result file (under ``behaviour/results/`` by default) that the docs
render (docs/hooks.py, :mod:`behaviour.render`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from behaviour.scoring import NEUTRAL_BAND, goal_rate, score
from behaviour.suite import TOLERANCE, build_suite
from benchmarks.results import commit
from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card, onnx_session
from model.tokenizer import Tokenizer
from training.commands import recorded_command
from training.counterfactual import flatten, load_pairs, pair_accuracy
from training.evaluate import predict_positive

RESULTS = Path(__file__).with_name("results")
# issue 29's goals for a model to replace the shipped one
GOALS = {"suite_reduction": 0.5, "counterfactual_pairs": 0.85, "test_accuracy": 0.923}


def predictor(bundle: Path, threads: int = 2) -> Callable[[list[str]], np.ndarray]:
    """P(positive) of texts through ``bundle``'s ONNX graph and tokenizer, as the service reads them."""
    card = load_card(bundle)
    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    session = onnx_session(bundle / ONNX_FILE, threads)
    return lambda texts: predict_positive(session, [tokenizer.encode(t, card["max_tokens"]) for t in texts])


def _provenance(argv: Sequence[str]) -> dict:
    return {
        "command": recorded_command("behaviour", argv),
        "commit": commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _model(bundle: Path) -> dict:
    card = load_card(bundle)
    return {"bundle": str(bundle), "name": card.get("name"), "version": card.get("version")}


def suite_settings(seed: int, size: int) -> dict:
    """What a result's figures depend on besides the model."""
    return {"seed": seed, "size": size, "neutral_band": list(NEUTRAL_BAND), "tolerance": TOLERANCE}


def run_suite(bundle: Path, seed: int, size: int, threads: int) -> dict:
    """The suite's result for ``bundle``."""
    result = score(build_suite(seed, size), predictor(bundle, threads))
    result["goal_rate"] = goal_rate(result["tests"])
    return {"model": _model(bundle), "suite": suite_settings(seed, size), **result}


def ablation(arms: dict[str, Path], cad: Path, seed: int, size: int, threads: int) -> dict:
    """Each arm's suite figures, counterfactual dev pairs, and its card's validation and test
    accuracy; the first arm is the baseline the suite goal is measured against."""
    pairs = load_pairs(cad, "dev")
    texts, _ = flatten(pairs)
    tests = build_suite(seed, size)
    rows = []
    for name, bundle in arms.items():
        predict = predictor(bundle, threads)
        suite = score(tests, predict)
        card = load_card(bundle)
        rows.append(
            {
                "arm": name,
                "model": _model(bundle),
                "training": card.get("training", {}).get("embeddings"),
                "goal_rate": goal_rate(suite["tests"]),
                "capabilities": suite["capabilities"],
                "tests": {t["name"]: t["failure_rate"] for t in suite["tests"]},
                "counterfactual_pairs": pair_accuracy(pairs, predict(texts)),
                "validation_accuracy": card["metrics"]["validation"]["accuracy"],
                "test_accuracy": card["metrics"]["test"]["accuracy"],
            }
        )
    baseline = rows[0]["goal_rate"]
    for row in rows:
        row["meets"] = {
            "suite_reduction": row["goal_rate"] <= GOALS["suite_reduction"] * baseline,
            "counterfactual_pairs": row["counterfactual_pairs"] >= GOALS["counterfactual_pairs"],
            "test_accuracy": row["test_accuracy"] >= GOALS["test_accuracy"],
        }
    return {"suite": suite_settings(seed, size), "goals": GOALS, "dev_pairs": len(pairs), "arms": rows}


def _arm(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=BUNDLE, got {text!r}")
    return name, Path(path)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="the suite against one bundle")
    run.add_argument("--bundle", type=Path, default=Path("models/default"), help="model bundle folder")
    run.add_argument("--output", type=Path, default=RESULTS / "suite.json", help="result file to write")
    compare = commands.add_parser("ablation", help="bundles compared on the suite and the CAD dev pairs")
    compare.add_argument(
        "--arm", type=_arm, action="append", required=True, help="NAME=BUNDLE; the first is the baseline"
    )
    compare.add_argument("--cad", type=Path, default=Path("../shared/data/cad"), help="CAD pairs folder")
    compare.add_argument(
        "--output", type=Path, default=RESULTS / "ablation.json", help="result file to write"
    )
    for sub in (run, compare):
        sub.add_argument("--seed", type=int, default=0, help="seed of the suite's cases")
        sub.add_argument("--size", type=int, default=200, help="cases per test (at most)")
        sub.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            result = run_suite(args.bundle, args.seed, args.size, args.threads)
        else:
            result = ablation(dict(args.arm), args.cad, args.seed, args.size, args.threads)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({**_provenance(argv), **result}, indent=1) + "\n")
    print(f"wrote {args.output}")
    if args.command == "run":
        for test in result["tests"]:
            rate = 100 * test["failure_rate"]
            print(f"{test['capability']:>10}  {test['name']:<40} {rate:5.1f} % of {test['cases']}")
        print(f"negation + invariance mean failure rate: {100 * result['goal_rate']:.1f} %")


if __name__ == "__main__":
    main()
