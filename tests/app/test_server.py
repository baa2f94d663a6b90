"""A real uvicorn process on a loopback port: HTTP, the tritonclient, start-up failures, and
the log settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving import free_port, start_server


def test_predict_over_http(server) -> None:
    base, _ = server
    response = httpx.post(f"{base}/v1/predict", json={"text": "a wonderful film"})
    assert response.status_code == 200 and response.json()["label"] in ("positive", "negative")
    batch = httpx.post(f"{base}/v1/predict/batch", json={"texts": ["a wonderful film", "dull"]}).json()
    assert abs(batch["predictions"][0]["score"] - response.json()["score"]) <= 1e-6
    assert (
        httpx.post(
            f"{base}/v1/predict", content=b"\xff\xfe", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_tritonclient_speaks_to_the_server(server) -> None:
    import tritonclient.http as triton

    base, port = server
    client = triton.InferenceServerClient(f"127.0.0.1:{port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
    metadata = client.get_model_metadata("tiny")
    assert metadata["inputs"][0]["datatype"] == "BYTES"
    texts = np.array([b"a wonderful film", b"dull"], dtype=np.object_)
    request = triton.InferInput("text", [2], "BYTES")
    request.set_data_from_numpy(texts, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=False),
        triton.InferRequestedOutput("label", binary_data=False),
    ]
    result = client.infer("tiny", [request], outputs=outputs)
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 2) and probabilities.dtype == np.float32
    single = httpx.post(f"{base}/v1/predict", json={"text": "a wonderful film"}).json()
    assert abs(float(probabilities[0, 1]) - single["score"]) <= 1e-6
    assert [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")] == [
        single["label"],
        httpx.post(f"{base}/v1/predict", json={"text": "dull"}).json()["label"],
    ]


@pytest.mark.parametrize("problem", ["missing", "empty", "corrupt", "mismatched"])
def test_bad_bundle_stops_start_up_with_one_line(tmp_path, bundle_dir, problem) -> None:
    import shutil

    folder = tmp_path / "bundle"
    if problem != "missing":
        shutil.copytree(bundle_dir, folder)
    if problem == "empty":
        (folder / "model.onnx").write_bytes(b"")
    if problem == "corrupt":
        (folder / "model.onnx").write_bytes(b"not an onnx model at all")
    if problem == "mismatched":
        tokenizer = (
            (folder / "tokenizer.json")
            .read_text()
            .replace('"itos": ["<pad>", "<unk>"', '"itos": ["<pad>", "<unk>", "extra"')
        )
        (folder / "tokenizer.json").write_text(tokenizer)
    env = {**os.environ, "SENTIMENT_MODEL_DIR": str(folder)}
    result = subprocess.run(
        [sys.executable, "-m", "app", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot load the model bundle" in lines[0]
    named = {
        "missing": "model.onnx: missing",
        "empty": "model.onnx: empty file",
        "corrupt": "model.onnx: not an ONNX model",
        "mismatched": "tokenizer.json: the tokenizer has",
    }
    assert f"{folder / named[problem]}" in lines[0]


def test_bad_setting_stops_start_up(bundle_dir) -> None:
    env = {**os.environ, "SENTIMENT_MODEL_DIR": str(bundle_dir), "SENTIMENT_THREADS": "zero"}
    result = subprocess.run(
        [sys.executable, "-m", "app"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "SENTIMENT_THREADS" in result.stderr


def _server_log(bundle: Path, env: dict[str, str], log: Path) -> list[str]:
    """The lines a server started with ``env`` writes while answering one prediction, whose
    request ID is ``log-1``."""
    with log.open("w") as output:
        process, base, _ = start_server(bundle, env, output=output)
    try:
        answer = httpx.post(
            f"{base}/v1/predict", json={"text": "a fine film"}, headers={"X-Request-ID": "log-1"}
        )
        assert answer.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    return [line for line in log.read_text().splitlines() if line.strip()]


def test_the_log_format_and_level_are_the_settings(bundle_dir, tmp_path) -> None:
    """SENTIMENT_LOG_FORMAT=json and SENTIMENT_LOG_LEVEL=warning reach the running server: every
    line is a JSON object and no INFO line (the access line) is written. An unreachable
    rate-limit store makes one WARNING line to read."""
    store = f"redis://127.0.0.1:{free_port()}"
    quiet = {
        "SENTIMENT_LOG_FORMAT": "json",
        "SENTIMENT_LOG_LEVEL": "warning",
        "SENTIMENT_RATE_LIMIT": "100/minute",
        "SENTIMENT_RATE_LIMIT_STORAGE": store,
    }
    records = [json.loads(line) for line in _server_log(bundle_dir, quiet, tmp_path / "json.log")]
    assert {record["level"] for record in records} == {"WARNING"}, records
    (store_down,) = [r for r in records if r["message"].startswith("rate-limit store unavailable")]
    assert store_down["request_id"] == "log-1" and store_down["logger"] == "app.limits"

    lines = _server_log(bundle_dir, {}, tmp_path / "text.log")  # the defaults: text, info
    (access,) = [line for line in lines if " INFO app.access [log-1] " in line]
    assert "[log-1] POST /v1/predict 200 " in access, access
    assert not any(line.startswith("{") for line in lines)
