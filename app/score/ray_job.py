"""The Ray engine: the same scoring as a Ray Data job, Parquet to Parquet, on any Ray cluster.

``python -m app.score --engine ray INPUT OUTPUT`` reads the Parquet files at ``INPUT`` (any path
Ray Data reads: a local folder, ``s3://``, ``gs://``), scores them with
``Dataset.map_batches`` on a pool of actors, each a :class:`BatchScorer` holding one
:class:`app.score.scorer.Scorer` (one onnxruntime session), and writes Parquet files to
``OUTPUT``, rows in the input's order. Ray is an optional extra (``requirements/ray.txt``); the
serving image never carries it. The bundle folder must be readable where the actors run (in the
job's working directory, or on a volume every node mounts).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.score.formats import ScoreError, with_results
from app.score.local import Summary
from app.score.scorer import RESULT_COLUMNS, Scorer, check_text, error_kind
from app.settings import Settings


class BatchScorer:
    """A Ray Data callable class: one model per actor, one Arrow table in, the same rows out
    with the result columns added."""

    def __init__(self, bundle: str, text_field: str, added: list[str]) -> None:
        self.scorer = Scorer(Settings(model_dir=Path(bundle), threads=1, trace_threads=1))
        self.text_field = text_field
        self.added = added

    def __call__(self, batch: Any) -> Any:
        values = [check_text(value, self.text_field) for value in batch.column(self.text_field).to_pylist()]
        return with_results(batch, self.scorer.score(values), self.added)


@dataclass(frozen=True)
class RayJob:
    """What a Ray run scores, where it writes, and how."""

    input: str
    output: str
    bundle: Path
    text_field: str = "text"
    prefix: str = ""
    actors: int | None = None  # None: as many as the cluster's CPUs allow
    batch_rows: int = 256


def run_ray(job: RayJob) -> Summary:
    """Score ``job`` on the Ray cluster this process is connected to (or a local one); checks
    that the output has exactly the input's rows."""
    import ray

    started = time.perf_counter()
    if not ray.is_initialized():
        ray.init()  # RAY_ADDRESS or `ray job submit` connect to the cluster; else a local one
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    source = ray.data.read_parquet(job.input)
    added = [job.prefix + column for column in RESULT_COLUMNS]
    columns = source.schema().names
    if job.text_field not in columns:
        raise ScoreError(f"{job.input}: no column {job.text_field!r} in {columns}; pass --text-field")
    if set(added) & set(columns):
        raise ScoreError(f"the input already has columns {sorted(set(added) & set(columns))}; pass --prefix")
    total = int(ray.cluster_resources().get("CPU", 1))
    scored = source.map_batches(
        BatchScorer,
        fn_constructor_kwargs={"bundle": str(job.bundle), "text_field": job.text_field, "added": added},
        batch_format="pyarrow",
        batch_size=job.batch_rows,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=job.actors or total),
        num_cpus=1,
    )
    scored.write_parquet(job.output)
    summary = _summary(job, source.count(), added[-1])
    summary.seconds = time.perf_counter() - started
    return summary


def _summary(job: RayJob, rows_in: int, error_column: str) -> Summary:
    """Counts read back from the written output: it must hold every input row."""
    import ray

    summary = Summary(job.output, scored_now=0)
    errors: Counter = Counter()
    rows = 0
    for batch in (
        ray.data.read_parquet(job.output).select_columns([error_column]).iter_batches(batch_format="pyarrow")
    ):
        reasons = batch.column(error_column).to_pylist()
        rows += len(reasons)
        errors.update(error_kind(reason) for reason in reasons if reason is not None)
    if rows != rows_in:
        raise ScoreError(f"{job.output} holds {rows} rows; the input has {rows_in}")
    summary.add({"rows": rows, "errors": dict(errors)})
    summary.scored_now = rows
    return summary
