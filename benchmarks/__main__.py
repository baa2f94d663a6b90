"""``python -m benchmarks model|service|training|hostile|load|ops|score|lm|match|peers|all``: run a benchmark,
write its result file (``benchmarks/results/<name>.json``), and print its Markdown section.

``all`` runs each benchmark in a fresh process, one after the other, so that no thread pool of
one is left spinning beside the next. A benchmark with bounds (``hostile``, ``load``) exits 1
when one breaks.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from benchmarks import (
    hostile,
    lm_speed,
    load,
    match,
    model_speed,
    ops,
    render,
    results,
    score,
    service,
    training_speed,
)
from benchmarks.peers import harness as peers

BENCHMARKS: dict[str, tuple[ModuleType, str]] = {
    "model": (model_speed, "the model in process: roofline, onnxruntime vs PyTorch by batch size, int8/fp16"),
    "service": (service, "the HTTP service beside its in-process ceiling; stages from Server-Timing"),
    "training": (training_speed, "training tokens/s, one process and torchrun"),
    "hostile": (hostile, "issue 22's attacks on a real server, each figure against its bound"),
    "load": (load, "locust: many clients for a while, nothing may fail"),
    "ops": (ops, "what structured logs, the prediction log and tracing cost a request"),
    "score": (score, "batch scoring (python -m app.score, Ray, HTTP) beside its in-process ceiling"),
    "lm": (lm_speed, "the language model at batch 1: ms per token, time to first token, vs its roofline"),
    "match": (match, "the inspector's Match View and unit contexts over the corpus index"),
    "peers": (peers, "the service beside BentoML, LitServe, Ray Serve, TorchServe and a tutorial app"),
}


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per benchmark, and ``all``."""
    made = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    commands = made.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (module, summary) in {**BENCHMARKS, "all": (None, "every benchmark above, in turn")}.items():
        command = commands.add_parser(name, help=summary, description=(module.__doc__ if module else summary))
        command.add_argument("--data", help="IMDB archive or extracted folder (default: $IMDB_DATA)")
        command.add_argument(
            "--bundle", type=Path, default=Path("models/default"), help="model bundle folder"
        )
        command.add_argument(
            "--results", type=Path, default=results.RESULTS, help="folder of the result files"
        )
        if module is not None:
            module.add_arguments(command)
    return made


def run_one(name: str, args: argparse.Namespace, argv: Sequence[str]) -> bool:
    """Run one benchmark in this process, write its result file and plot, print its section;
    whether its bounds held (True for a benchmark without bounds)."""
    module = BENCHMARKS[name][0]
    figures = module.run(args)
    results.write(name, figures, argv, args.results)
    render.plot(name, figures, args.results)
    print(render.section(name, results.read(args.results)[name]))
    return getattr(module, "held", lambda _: True)(figures)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.benchmark != "all":
        if not run_one(args.benchmark, args, argv):
            sys.exit(1)
        return
    common = argv[argv.index("all") + 1 :]  # as given, so each result file records the command typed
    broken = [
        name
        for name in BENCHMARKS
        if subprocess.run([sys.executable, "-m", "benchmarks", name, *common]).returncode != 0
    ]
    if broken:
        sys.exit(f"failed: {', '.join(broken)}")


if __name__ == "__main__":
    main()
