"""``python -m app.score --engine ray`` on a local Ray with 2 CPUs: the API's scores, every row in
the input's order, bad rows kept with their error. Skipped only where Ray is not installed
(``make test`` installs it: requirements/dev.txt includes ray.txt)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset
import pytest

from app.score.formats import ScoreError
from tests.app.test_score import TEXTS, api_answers, assert_same_as_api

ray = pytest.importorskip("ray")

from app.score.ray_job import RayJob, run_ray  # noqa: E402  (needs ray)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_scores_every_row_in_order_as_the_api_does(tmp_path, bundle_dir, client, local_ray) -> None:
    source = tmp_path / "reviews"
    source.mkdir()
    texts: list[object] = list(TEXTS)
    texts[5], texts[17], texts[40] = "", None, "   "  # bad rows stay in their place
    for index, first in enumerate(range(0, len(texts), 30)):
        rows = {"id": list(range(first, first + 30)), "review": texts[first : first + 30]}
        pa.parquet.write_table(pa.table(rows), source / f"part-{index}.parquet", row_group_size=11)
    job = RayJob(str(source), str(tmp_path / "scored"), bundle_dir, "review", actors=2, batch_rows=16)
    summary = run_ray(job)

    scored = pa.dataset.dataset(tmp_path / "scored", format="parquet").to_table().to_pylist()
    assert [row["id"] for row in scored] == list(range(len(texts)))
    bad = {5, 17, 40}
    assert {i for i, row in enumerate(scored) if row["error"]} == bad
    assert "missing" in scored[17]["error"] and "no words" in scored[40]["error"]
    good = [i for i in range(len(texts)) if i not in bad]
    assert_same_as_api([scored[i] for i in good], api_answers(client, [texts[i] for i in good]))
    assert summary.rows == len(texts) and sum(summary.errors.values()) == 3
    assert summary.errors == {"empty": 2, "missing": 1}


def test_ray_refuses_an_input_without_the_text_column(tmp_path, bundle_dir, local_ray) -> None:
    pa.parquet.write_table(pa.table({"body": ["x"]}), tmp_path / "in.parquet")
    with pytest.raises(ScoreError, match="no column 'text'"):
        run_ray(RayJob(str(tmp_path / "in.parquet"), str(tmp_path / "out"), bundle_dir))
