"""``python -m app.score INPUT OUTPUT``: score a file of reviews with a model bundle.

Reads JSONL, CSV, Parquet (a file or a folder) or plain text (one review per line) and writes the
same format with the input's columns and ``label``, ``score`` (P(positive)), ``tokens``,
``truncated``, ``model_version`` and ``error`` (null, or why a row has no score) added, row for
row in the input's order. The scores are the service's: the same runtime, tokenizer, token cap
and batching. ``--engine ray`` runs it on a Ray cluster, Parquet to Parquet.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from app.score.formats import FORMATS, ScoreError
from app.settings import Settings


def shard(text: str) -> tuple[int, int]:
    """``"i/N"`` as ``(i, N)``, with ``0 <= i < N``."""
    index, _, count = text.partition("/")
    try:
        parsed = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a shard is i/N, e.g. 0/4") from None
    if not 0 <= parsed[0] < parsed[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: i must be 0 to N-1")
    return parsed


def positive(text: str) -> int:
    """A whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line."""
    made = argparse.ArgumentParser(prog="python -m app.score", description=__doc__.split("\n\n")[0])
    made.add_argument(
        "input", help="file of reviews, or a folder of Parquet files (a Ray path with --engine ray)"
    )
    made.add_argument("output", help="file to write (a Parquet folder or Ray path with --engine ray)")
    made.add_argument("--format", choices=FORMATS, help="the input's format (default: by its extension)")
    made.add_argument(
        "--text-field", default="text", help="field or column holding the review (default: text)"
    )
    made.add_argument(
        "--prefix", default="", help="prefix of the added columns, when the input has a 'label'"
    )
    made.add_argument(
        "--bundle",
        type=Path,
        help="model bundle folder (default: $SENTIMENT_MODEL_DIR, else models/default)",
    )
    made.add_argument(
        "--workers",
        type=positive,
        help="worker processes, one onnxruntime session each (default: every core)",
    )
    made.add_argument("--part-rows", type=positive, default=10_000, help="rows per output part (resume unit)")
    made.add_argument("--task-rows", type=positive, default=256, help="rows a worker scores per task")
    made.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its finished parts"
    )
    made.add_argument(
        "--shard", type=shard, default=(0, 1), help="score only shard i of N (consecutive rows)"
    )
    made.add_argument("--engine", choices=("local", "ray"), default="local", help="this machine, or Ray Data")
    made.add_argument("--no-progress", action="store_true", help="no progress bar")
    return made


def refuse_for_ray(args: argparse.Namespace) -> None:
    """:class:`ScoreError` for the options that ``--engine ray`` does not take."""
    if args.resume:
        raise ScoreError(
            "--resume is the local engine's: a Ray run retries a lost actor's batches itself, "
            "and a run whose driver died starts again, into an empty output path"
        )
    if args.shard != (0, 1):
        raise ScoreError("--shard is the local engine's: Ray spreads one run over the cluster itself")
    if args.format not in (None, "parquet"):
        raise ScoreError("--engine ray reads and writes Parquet")


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: score, then print the summary line; a bad option, input or output exits 2 with one line."""
    args = parser().parse_args(argv)
    bundle = args.bundle or Settings().model_dir
    workers = args.workers or len(os.sched_getaffinity(0))
    try:
        if args.engine == "ray":
            refuse_for_ray(args)
            from app.score.ray_job import RayJob, run_ray  # Ray is an optional extra

            summary = run_ray(
                RayJob(
                    args.input,
                    args.output,
                    bundle,
                    args.text_field,
                    args.prefix,
                    args.workers,
                    args.task_rows,
                )
            )
        else:
            from app.score.local import Job, run

            job = Job(
                args.input,
                Path(args.output),
                bundle,
                args.format,
                args.text_field,
                args.prefix,
                workers,
                args.part_rows,
                args.task_rows,
                args.resume,
                args.shard,
                progress=not args.no_progress,
            )
            summary = run(job)
    except (ScoreError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except BrokenProcessPool:  # a worker died or could not load the bundle: its traceback is above
        print("error: a worker process failed; finished parts are kept, --resume continues", file=sys.stderr)
        sys.exit(1)
    print(summary.line())


if __name__ == "__main__":
    main()
