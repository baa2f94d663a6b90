"""Batch scoring: a file (or a Parquet dataset) of reviews scored by the service's own runtime.

``python -m app.score INPUT OUTPUT`` (:mod:`app.score.__main__`) reads JSONL, CSV, Parquet or
plain text (:mod:`app.score.formats`), scores it on worker processes that each load the bundle
with :class:`app.store.ModelStore` (:mod:`app.score.scorer`), and writes the output in parts that
a run interrupted resumes from (:mod:`app.score.parts`). ``--engine ray`` runs the same scoring
as a Ray Data job (:mod:`app.score.ray_job`).
"""
