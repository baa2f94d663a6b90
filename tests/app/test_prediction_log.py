"""The prediction log: sampled JSONL entries with the request's ID, rotated by size; a slow or
stuck writer drops entries and counts them, and never holds up a request."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time

from app.prediction_log import PredictionLog

REVIEW = "A moving, beautifully acted film."


def _entries(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_text_of_a_request_is_one_line_with_its_request_id(make_client, tmp_path) -> None:
    path = tmp_path / "log" / "predictions.jsonl"
    client = make_client(prediction_log=path, prediction_log_text="hash")
    batch = {"texts": [REVIEW, "Dull."]}
    answer = client.post("/v1/predict/batch", json=batch, headers={"x-request-id": "p-1"})
    single = client.post("/v1/predict", json={"text": REVIEW})
    client.__exit__(None, None, None)  # stop: the writer writes what is queued
    first, second, third = _entries(path)
    assert [first["request_id"], first["index"], second["index"]] == ["p-1", 0, 1]
    assert third["request_id"] == single.headers["x-request-id"]
    predictions = answer.json()["predictions"]
    for entry, prediction, text in zip((first, second), predictions, (REVIEW, "Dull."), strict=True):
        assert entry["label"] == prediction["label"] and entry["score"] == prediction["score"]
        assert entry["tokens"] == prediction["tokens"] and 0 <= entry["unk_rate"] <= 1
        assert entry["model"] == "tiny" and entry["model_version"] == "test" and entry["latency_ms"] > 0
        assert entry["text_sha256"] == hashlib.sha256(text.encode()).hexdigest() and "text" not in entry
        assert entry["time"].endswith("+00:00")


def test_the_text_is_left_out_by_default_and_in_full_when_asked(make_client, tmp_path) -> None:
    for mode, expected in (("off", None), ("full", REVIEW)):
        path = tmp_path / f"{mode}.jsonl"
        client = make_client(prediction_log=path, prediction_log_text=mode)
        client.post("/v1/predict", json={"text": REVIEW})
        client.__exit__(None, None, None)
        (entry,) = _entries(path)
        assert entry.get("text") == expected and "text_sha256" not in entry


def test_sampling_and_rotation(make_client, tmp_path) -> None:
    none = tmp_path / "none.jsonl"
    client = make_client(prediction_log=none, prediction_log_sample=0.0)
    for _ in range(5):
        client.post("/v1/predict", json={"text": REVIEW})
    client.__exit__(None, None, None)
    assert not none.exists() or none.read_text() == ""
    rotated = tmp_path / "rotated.jsonl"
    client = make_client(prediction_log=rotated, prediction_log_max_bytes=1024, prediction_log_backups=2)
    for _ in range(40):  # about 250 bytes an entry: several rotations
        client.post("/v1/predict", json={"text": REVIEW})
    client.__exit__(None, None, None)
    files = sorted(path.name for path in tmp_path.glob("rotated.jsonl*"))
    assert files == ["rotated.jsonl", "rotated.jsonl.1", "rotated.jsonl.2"]
    assert all(path.stat().st_size <= 1024 for path in tmp_path.glob("rotated.jsonl*"))


class _StuckDisk(logging.FileHandler):
    """A file whose writes hang until ``unstuck`` is set."""

    def __init__(self, path, unstuck: threading.Event) -> None:
        super().__init__(path, encoding="utf-8")
        self.unstuck = unstuck

    def emit(self, record: logging.LogRecord) -> None:
        self.unstuck.wait()
        super().emit(record)


def test_a_stuck_writer_drops_and_counts_and_never_blocks(tmp_path) -> None:
    drops = []
    release = threading.Event()
    path = tmp_path / "p.jsonl"
    stuck = _StuckDisk(path, release)  # the disk hangs
    log = PredictionLog(path, 1.0, "off", 10**6, 1, 2, on_drop=lambda: drops.append(1), handler=stuck)
    log.start()
    item = {"label": "positive", "score": 0.9, "tokens": 3}
    started = time.perf_counter()
    for _ in range(10):
        log.record("r", {"name": "m", "version": "1"}, [item], [0.0], ["text"], 0.001)
    assert time.perf_counter() - started < 0.05  # never waited for the writer
    assert 7 <= len(drops) <= 8  # one in the writer's hands (maybe), two queued, the rest dropped
    release.set()
    log.stop()
    assert len(_entries(path)) == 10 - len(drops)


def test_drops_are_a_metric(client) -> None:
    assert "sentiment_prediction_log_dropped_total 0.0" in client.get("/metrics").text
