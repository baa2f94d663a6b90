"""``python -m app.score``: every format (by extension or ``--format``, any ``--text-field``),
every bad row kept in place, the API's own scores (bit for bit with the shipped model), nothing
lost or scored twice across a kill and ``--resume``, or across shards, the progress bar, and
memory that does not grow with the input."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.score.__main__ import main
from app.score.scorer import RESULT_COLUMNS
from app.settings import Settings
from benchmarks import reviews
from benchmarks.server import peak_rss_mb
from tests.bundles import CORPUS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "default"
SHIPPED_REVIEWS = 500  # IMDB test reviews, drawn as the benchmarks draw them
# reviews of 1 to 30 tokens: the bundle reads 12, so some are truncated
TEXTS = [" ".join((CORPUS[i % 4] + " " + CORPUS[(i + 1) % 4]).split()[: 1 + i % 30]) for i in range(90)]


def run(*args: object, expect: int = 0, capsys=None) -> str:
    """``python -m app.score`` in this process; its summary line (or error) when capsys is given."""
    try:
        main([*map(str, args), "--no-progress"])
        code = 0
    except SystemExit as stopped:
        code = stopped.code
    assert code == expect
    if capsys is not None:
        captured = capsys.readouterr()
        return captured.out + captured.err
    return ""


def read_jsonl(path: Path) -> list[dict]:
    # split at newlines only: a review may hold U+2028, which str.splitlines also splits at
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def api_answers(client, texts: list[str]) -> list[dict]:
    """``/v1/predict/batch`` on ``texts``, 64 at a time (its limit)."""
    answers = []
    for first in range(0, len(texts), 64):
        response = client.post("/v1/predict/batch", json={"texts": texts[first : first + 64]})
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    return answers


def assert_same_as_api(rows: list[dict], answers: list[dict]) -> None:
    assert len(rows) == len(answers)
    for row, answer in zip(rows, answers, strict=True):
        assert row["error"] is None
        assert row["label"] == answer["label"]
        assert abs(row["score"] - answer["score"]) <= 1e-6
        assert (row["tokens"], row["truncated"]) == (answer["tokens"], answer["truncated"])
        assert row["model_version"] == answer["model"]["version"]


def test_a_file_gets_exactly_the_apis_scores(tmp_path, bundle_dir, client) -> None:
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    run(
        source,
        tmp_path / "scored.jsonl",
        "--bundle",
        bundle_dir,
        "--workers",
        2,
        "--part-rows",
        25,
        "--task-rows",
        7,
    )
    rows = read_jsonl(tmp_path / "scored.jsonl")
    assert [row["id"] for row in rows] == list(range(len(TEXTS)))
    assert_same_as_api(rows, api_answers(client, TEXTS))
    assert any(row["truncated"] for row in rows) and not all(row["truncated"] for row in rows)


def test_the_shipped_model_gives_the_apis_scores_bit_for_bit_on_imdb_reviews(tmp_path, imdb_archive) -> None:
    """The claim in docs/batch.md: on real reviews with the shipped model, the command's scores
    are the API's to the last bit (2 workers of 1 thread, the service's defaults)."""
    texts = reviews.review_texts(str(imdb_archive), SHIPPED_REVIEWS)
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    run(source, tmp_path / "scored.jsonl", "--bundle", SHIPPED, "--workers", 2)
    rows = read_jsonl(tmp_path / "scored.jsonl")
    with TestClient(create_app(Settings(model_dir=SHIPPED))) as shipped:
        answers = api_answers(shipped, texts)
    assert_same_as_api(rows, answers)
    assert [row["score"] for row in rows] == [answer["score"] for answer in answers]


def _write(kind: str, path: Path, rows: list[dict]) -> None:
    if kind == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif kind == "csv":
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(row["text"] + "\n" for row in rows))


def _read(kind: str, path: Path) -> list[dict]:
    if kind == "jsonl":
        return read_jsonl(path)
    if kind == "csv":
        with path.open(newline="", encoding="utf-8", errors="surrogateescape") as file:
            rows = list(csv.DictReader(file))
        for row in rows:  # CSV has only text: the numbers as the API's types
            row["score"] = float(row["score"]) if row["score"] else None
            row["tokens"] = int(row["tokens"]) if row["tokens"] else None
            row["truncated"] = {"True": True, "False": False}.get(row["truncated"])
            row["error"] = row["error"] or None
        return rows
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize(
    "kind,suffix", [("jsonl", ".jsonl"), ("csv", ".csv"), ("parquet", ".parquet"), ("text", ".txt")]
)
def test_every_format_keeps_the_input_columns_and_adds_the_results(
    tmp_path, bundle_dir, client, kind, suffix
) -> None:
    field = "text" if kind == "text" else "review"  # a line of plain text is "text"
    rows = [{"id": str(i), field: text} for i, text in enumerate(TEXTS[:40])]
    source = tmp_path / f"reviews{suffix}"
    _write(kind, source, rows)
    output = tmp_path / ("scored.jsonl" if kind == "text" else f"scored{suffix}")
    run(source, output, "--bundle", bundle_dir, "--workers", 1, "--part-rows", 16, "--text-field", field)
    scored = _read("jsonl" if kind == "text" else kind, output)
    expected_columns = (["text"] if kind == "text" else ["id", field]) + list(RESULT_COLUMNS)
    assert list(scored[0]) == expected_columns
    assert [row[field] for row in scored] == [row[field] for row in rows]
    assert_same_as_api(scored, api_answers(client, [row[field] for row in rows]))
    assert not (tmp_path / f"{output.name}.parts").exists()  # joined, then removed


def test_the_format_flag_overrides_the_extension(tmp_path, bundle_dir, client) -> None:
    rows = [{"id": str(i), "text": text} for i, text in enumerate(TEXTS[:10])]
    _write("csv", tmp_path / "reviews.dat", rows)  # an extension no format has
    run(tmp_path / "reviews.dat", tmp_path / "scored.dat", "--bundle", bundle_dir, "--format", "csv")
    scored = _read("csv", tmp_path / "scored.dat")
    assert list(scored[0]) == ["id", "text", *RESULT_COLUMNS]
    assert_same_as_api(scored, api_answers(client, TEXTS[:10]))
    _write("jsonl", tmp_path / "reviews.txt", rows)  # JSON lines, named as plain text
    run(tmp_path / "reviews.txt", tmp_path / "scored.jsonl", "--bundle", bundle_dir, "--format", "jsonl")
    scored = read_jsonl(tmp_path / "scored.jsonl")
    assert [row["id"] for row in scored] == [row["id"] for row in rows]  # rows, not lines of text
    assert_same_as_api(scored, api_answers(client, TEXTS[:10]))


def test_the_progress_bar_shows_rows_and_rows_per_second(tmp_path, bundle_dir, capsys) -> None:
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    arguments = [str(source), str(tmp_path / "scored.jsonl"), "--bundle", str(bundle_dir)]
    main([*arguments, "--workers", "1", "--task-rows", "30"])
    shown = capsys.readouterr()
    assert f"{len(TEXTS)}/{len(TEXTS)}" in shown.err and " rows/s" in shown.err
    assert f"{len(TEXTS)} rows ->" in shown.out  # the bar is on stderr, the summary on stdout
    main([*arguments, "--workers", "1", "--no-progress"])
    assert capsys.readouterr().err == ""


def test_plain_text_can_be_written_as_csv_or_parquet(tmp_path, bundle_dir) -> None:
    source = tmp_path / "reviews.txt"
    source.write_text("Great film.\nDull.\n")
    for name in ("scored.csv", "scored.parquet"):
        run(source, tmp_path / name, "--bundle", bundle_dir, "--workers", 1)
    assert [row["text"] for row in _read("csv", tmp_path / "scored.csv")] == ["Great film.", "Dull."]
    assert _read("parquet", tmp_path / "scored.parquet")[1]["text"] == "Dull."


def test_a_bad_row_gets_an_error_in_its_place_and_scoring_goes_on(tmp_path, bundle_dir, capsys) -> None:
    lines = [
        json.dumps({"id": 0, "text": "a wonderful film"}),
        json.dumps({"id": 1}),  # missing
        json.dumps({"id": 2, "text": None}),  # null
        json.dumps({"id": 3, "text": 42}),  # not a string
        json.dumps({"id": 4, "text": ""}),  # empty
        json.dumps({"id": 5, "text": " \t\u200b "}),  # nothing to read
        "not json at all",
        json.dumps([1, 2]),  # JSON, not an object
        "",  # a blank line is a row too
        json.dumps({"id": 9, "text": "an awful , boring mess"}),
    ]
    source = tmp_path / "reviews.jsonl"
    source.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": 10, "text": "bad \xff byte"}\n')
    summary = run(source, tmp_path / "scored.jsonl", "--bundle", bundle_dir, "--workers", 1, capsys=capsys)
    rows = read_jsonl(tmp_path / "scored.jsonl")
    assert len(rows) == 11
    errors = [row["error"] for row in rows]
    assert errors[0] is None and errors[9] is None and rows[9]["id"] == 9
    assert "missing" in errors[1] and "missing" in errors[2] and "not a string" in errors[3]
    assert "no words" in errors[4] and "no words" in errors[5]
    assert all("JSON" in errors[i] for i in (6, 7, 8)) and "not UTF-8" in errors[10]
    assert all(row["label"] is None and row["model_version"] == "test" for row in rows if row["error"])
    assert rows[1]["id"] == 1 and rows[3]["text"] == 42  # the input's fields are kept
    assert "11 rows" in summary and "2 scored, 9 errors" in summary
    assert "2 empty, 2 missing, 1 not UTF-8, 3 not a JSON object, 1 not a string" in summary


def test_undecodable_bytes_in_csv_and_text_are_errors_of_their_row_only(tmp_path, bundle_dir) -> None:
    (tmp_path / "r.txt").write_bytes(b"a wonderful film\nbad \xff\xfe line\n\nan awful mess\n")
    run(tmp_path / "r.txt", tmp_path / "t.jsonl", "--bundle", bundle_dir, "--workers", 1)
    rows = read_jsonl(tmp_path / "t.jsonl")
    assert [row["error"] is None for row in rows] == [True, False, False, True]
    assert "not UTF-8" in rows[1]["error"] and "no words" in rows[2]["error"]
    # valid JSON, from which the line's bytes come back
    assert rows[1]["text"].encode("utf-8", "surrogateescape") == b"bad \xff\xfe line"
    (tmp_path / "r.csv").write_bytes(b'id,text\n1,"fine , good film"\n2,"caf\xe9"\n3\n')
    run(tmp_path / "r.csv", tmp_path / "s.csv", "--bundle", bundle_dir, "--workers", 1)
    rows = _read("csv", tmp_path / "s.csv")
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["error"] is None and "not UTF-8" in rows[1]["error"] and "missing" in rows[2]["error"]
    assert (tmp_path / "s.csv").read_bytes().count(b"caf\xe9") == 1  # the bytes kept as they were


def test_an_input_with_a_label_column_needs_a_prefix(tmp_path, bundle_dir, capsys) -> None:
    source = tmp_path / "labelled.csv"
    source.write_text("text,label\nGreat film.,pos\n")
    message = run(source, tmp_path / "out.csv", "--bundle", bundle_dir, expect=2, capsys=capsys)
    assert "--prefix" in message
    run(source, tmp_path / "out.csv", "--bundle", bundle_dir, "--prefix", "pred_", "--workers", 1)
    with (tmp_path / "out.csv").open(newline="") as file:
        (row,) = csv.DictReader(file)
    assert row["label"] == "pos" and row["pred_label"] in ("positive", "negative")


def test_a_usage_error_is_one_line(tmp_path, bundle_dir, capsys) -> None:
    (tmp_path / "r.csv").write_text("id,body\n1,x\n")
    assert "no column 'text'" in run(
        tmp_path / "r.csv", tmp_path / "o.csv", "--bundle", bundle_dir, expect=2, capsys=capsys
    )
    (tmp_path / "r.txt").write_text("x\n")
    assert "no room" in run(
        tmp_path / "r.txt", tmp_path / "o.txt", "--bundle", bundle_dir, expect=2, capsys=capsys
    )
    assert "extension" in run(
        tmp_path / "r.xml", tmp_path / "o.xml", "--bundle", bundle_dir, expect=2, capsys=capsys
    )


def test_the_ray_engine_refuses_the_local_engines_options(tmp_path, capsys) -> None:
    arguments = [tmp_path / "reviews.parquet", tmp_path / "scored", "--engine", "ray"]
    message = run(*arguments, "--resume", expect=2, capsys=capsys)
    assert message.startswith("error: --resume is the local engine's") and message.count("\n") == 1
    assert "--shard is the local engine's" in run(*arguments, "--shard", "1/2", expect=2, capsys=capsys)
    assert "reads and writes Parquet" in run(*arguments, "--format", "csv", expect=2, capsys=capsys)


def test_shards_together_are_the_whole_file_in_order(tmp_path, bundle_dir) -> None:
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    run(source, tmp_path / "all.jsonl", "--bundle", bundle_dir, "--workers", 1)
    for index in range(3):
        run(
            source,
            tmp_path / f"shard-{index}.jsonl",
            "--bundle",
            bundle_dir,
            "--workers",
            1,
            "--shard",
            f"{index}/3",
        )
    joined = "".join((tmp_path / f"shard-{index}.jsonl").read_text() for index in range(3))
    assert joined == (tmp_path / "all.jsonl").read_text()


def test_parquet_folders_are_one_dataset_in_file_order(tmp_path, bundle_dir) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    for index, first in enumerate(range(0, 60, 20)):
        rows = [{"id": i, "text": TEXTS[i]} for i in range(first, first + 20)]
        pq.write_table(pa.Table.from_pylist(rows), folder / f"part-{index}.parquet", row_group_size=7)
    run(folder, tmp_path / "scored.parquet", "--bundle", bundle_dir, "--workers", 2, "--part-rows", 9)
    assert pq.read_table(tmp_path / "scored.parquet").column("id").to_pylist() == list(range(60))


def _command(source: Path, output: Path, bundle: Path, *extra: str) -> list[str]:
    options = ["--workers", "1", "--part-rows", "100", "--task-rows", "50", "--no-progress", *extra]
    return [sys.executable, "-m", "app.score", str(source), str(output), "--bundle", str(bundle), *options]


def test_a_killed_run_resumes_without_scoring_a_row_twice_or_skipping_one(tmp_path, bundle_dir) -> None:
    source = tmp_path / "reviews.jsonl"
    rows = 20_000
    source.write_text(
        "".join(json.dumps({"id": i, "text": TEXTS[i % len(TEXTS)]}) + "\n" for i in range(rows))
    )
    reference = tmp_path / "reference.jsonl"
    subprocess.run(_command(source, reference, bundle_dir), cwd=ROOT, check=True, capture_output=True)

    output = tmp_path / "scored.jsonl"
    parts = tmp_path / "scored.jsonl.parts"
    # its own process group, so that the kill takes the workers too, as a lost machine would
    process = subprocess.Popen(_command(source, output, bundle_dir), cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list(parts.glob("part-*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    kept = len(list(parts.glob("part-*.json")))
    assert 3 <= kept < rows // 100 and not output.exists(), "killed midway"

    refused = subprocess.run(_command(source, output, bundle_dir), cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never restarts over the parts
    done = subprocess.run(
        _command(source, output, bundle_dir, "--resume"), cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert output.read_bytes() == reference.read_bytes()
    assert f"{rows:,} rows" in done.stdout
    resumed = int(done.stdout.split("this run scored ")[1].split()[0].replace(",", ""))
    assert resumed <= rows - kept * 100  # the kept parts were not scored again
    assert not parts.exists()


def _peak_memory_mb(command: list[str]) -> float:
    """Run ``command``; the sum of the peak resident sets (VmHWM) of it and every process under
    it (the forkserver, the workers), each read while it lives."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    tree = psutil.Process(process.pid)
    peaks: dict[int, float] = {}
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            for member in [tree, *tree.children(recursive=True)]:
                with contextlib.suppress(OSError, RuntimeError):  # it may have just exited
                    peaks[member.pid] = peak_rss_mb(member.pid)
        time.sleep(0.01)
    assert process.returncode == 0
    return sum(peaks.values())


def test_memory_stays_flat_whatever_the_inputs_size(tmp_path, bundle_dir) -> None:
    def peak(rows: int, part_rows: int) -> float:
        source = tmp_path / f"reviews-{rows}.jsonl"
        source.write_text(
            "".join(json.dumps({"id": i, "text": TEXTS[i % len(TEXTS)]}) + "\n" for i in range(rows))
        )
        output = tmp_path / f"scored-{rows}-{part_rows}.jsonl"
        return _peak_memory_mb(
            _command(source, output, bundle_dir, "--workers", "2", "--part-rows", str(part_rows))
        )

    small = peak(5_000, 1_000)
    # ten times the rows: the main process and the workers hold a few parts, not the input;
    # 3-7 MB more was seen (of about 300), from buffers that fill once
    assert peak(50_000, 1_000) < small + 15
    # the measure can see it: a part as large as the input holds it all (about 45 MB more)
    assert peak(50_000, 50_000) > small + 15


def test_resume_continues_only_the_same_run(tmp_path, bundle_dir, capsys) -> None:
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    parts = tmp_path / "scored.jsonl.parts"
    parts.mkdir()
    (parts / "run.json").write_text(json.dumps({"input": "elsewhere"}))
    message = run(
        source, tmp_path / "scored.jsonl", "--bundle", bundle_dir, "--resume", expect=2, capsys=capsys
    )
    assert "another run" in message and "input" in message


def test_every_option_has_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.score", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0
    for option in ("--format", "--text-field", "--resume", "--shard", "--engine", "--workers"):
        assert option in done.stdout
