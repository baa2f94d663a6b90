"""The local engine: one machine's cores, one worker process (and onnxruntime session) each.

The input is read in parts of ``part_rows`` rows; each part is cut into tasks of ``task_rows``
that the workers score (:func:`app.score.scorer.worker_score`); a part is written once all its
tasks are back, in the input's order. At most a few parts are held at once, so memory stays flat
whatever the input's size.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from app.score.formats import READERS, SUFFIXES, WRITERS, Reader, ScoreError, Writer, detect
from app.score.parts import Parts
from app.score.scorer import error_kind, start_worker, worker_score, worker_version


@dataclass(frozen=True)
class Job:
    """What to score, where to write it, and how."""

    input: str
    output: Path
    bundle: Path
    format: str | None = None
    text_field: str = "text"
    prefix: str = ""
    workers: int = 1
    part_rows: int = 10_000
    task_rows: int = 256
    resume: bool = False
    shard: tuple[int, int] = (0, 1)
    progress: bool = True


@dataclass
class Summary:
    """The run's counts, for its last line."""

    output: str
    rows: int = 0  # rows in the output
    errors: Counter = field(default_factory=Counter)  # by kind
    scored_now: int = 0  # rows this run scored (less when it resumed)
    seconds: float = 0.0

    def add(self, counts: dict) -> None:
        """Count one part (its ``rows`` and ``errors`` by kind)."""
        self.rows += counts["rows"]
        self.errors.update(counts["errors"])

    def line(self) -> str:
        """``12,500 rows -> out.jsonl: 12,497 scored, 3 errors (2 empty, 1 missing); ...``."""
        errors = sum(self.errors.values())
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.errors.items()))
        rate = self.scored_now / self.seconds if self.seconds else 0.0
        return (
            f"{self.rows:,} rows -> {self.output}: {self.rows - errors:,} scored, {errors:,} errors"
            f"{f' ({kinds})' if kinds else ''}; this run scored {self.scored_now:,} rows in "
            f"{self.seconds:.1f} s ({rate:,.0f} rows/s)"
        )


def output_format(input_format: str, output: Path) -> str:
    """The output's format: the input's; plain text input writes the output's extension's."""
    named = SUFFIXES.get(output.suffix.lower())
    if input_format != "text":
        if named not in (None, input_format):
            raise ScoreError(f"the output is written as {input_format}, like the input; name it so")
        return input_format
    if named == "text":
        raise ScoreError("plain text has no room for the results: name the output .jsonl, .csv or .parquet")
    return named or "jsonl"


def shard_range(rows: int, shard: tuple[int, int]) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``i`` of ``n``: consecutive, so the shards' outputs
    concatenated in order are the input's rows in order."""
    index, count = shard
    return index * rows // count, (index + 1) * rows // count


def counts(results: list[dict]) -> dict:
    """A part's row count and error counts by kind."""
    errors = Counter(error_kind(r["error"]) for r in results if r["error"] is not None)
    return {"rows": len(results), "errors": dict(errors)}


def run(job: Job) -> Summary:
    """Score ``job``'s input (its shard) into its output; resumes when ``job.resume``."""
    started = time.perf_counter()
    input_format = detect(job.input, job.format)
    reader = READERS[input_format](job.input, job.text_field)
    writer = WRITERS[output_format(input_format, job.output)](reader, job.prefix)
    start, stop = shard_range(reader.count(), job.shard)
    settings = {"model_dir": job.bundle, "threads": 1, "trace_threads": 1}
    # forkserver: a worker forked from this process could inherit a lock another thread held
    # (onnxruntime's, a web client's in tests) and hang; spawn works too but starts slower
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(job.workers, context, start_worker, (settings,)) as pool:
        manifest = {
            "input": str(Path(job.input).absolute()),
            "input_bytes": _size(job.input),
            "format": input_format,
            "text_field": job.text_field,
            "prefix": job.prefix,
            "part_rows": job.part_rows,
            "rows": [start, stop],
            "model_version": pool.submit(worker_version).result(),
        }
        parts = Parts(job.output, writer.suffix)
        done = parts.open(manifest, job.resume)
        summary = Summary(str(job.output))
        for part in done.values():
            summary.add(part)
        with tqdm(total=stop - start, initial=summary.rows, unit=" rows", disable=not job.progress) as bar:
            _score(job, pool, reader, writer, parts, (start, stop), set(done), summary, bar)
    parts.join(writer, math.ceil((stop - start) / job.part_rows))
    summary.seconds = time.perf_counter() - started
    return summary


def _score(
    job: Job,
    pool: ProcessPoolExecutor,
    reader: Reader,
    writer: Writer,
    parts: Parts,
    rows: tuple[int, int],
    done: set[int],
    summary: Summary,
    bar: tqdm,
) -> None:
    """Score every part not in ``done``, writing each in order as its tasks come back."""
    in_flight: deque[tuple[int, object, list[Future]]] = deque()
    held = 0
    # enough tasks queued to keep every worker busy while the oldest part is written
    most = max(job.part_rows, 4 * job.workers * job.task_rows)

    def finish_oldest() -> int:
        index, chunk, futures = in_flight.popleft()
        results = [result for future in futures for result in future.result()]
        parts.commit(index, lambda path: writer.write(path, chunk, results), counts(results))
        summary.add(counts(results))
        summary.scored_now += len(results)
        return len(results)

    for index, (chunk, values) in enumerate(reader.chunks(*rows, job.part_rows)):
        if index in done:
            continue
        futures = []
        for first in range(0, len(values), job.task_rows):
            task = values[first : first + job.task_rows]
            futures.append(pool.submit(worker_score, task))
            futures[-1].add_done_callback(_advance(bar, len(task)))
        in_flight.append((index, chunk, futures))
        held += len(values)
        while in_flight and held > most:
            held -= finish_oldest()
    while in_flight:
        finish_oldest()


def _advance(bar: tqdm, rows: int) -> Callable[[Future], None]:
    """A future's callback that moves the progress bar by ``rows`` when the task is back."""
    return lambda _: bar.update(rows)


def _size(path: str) -> int:
    """Bytes of a file, or of a folder's files (a Parquet dataset)."""
    source = Path(path)
    return (
        sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        if source.is_dir()
        else source.stat().st_size
    )
