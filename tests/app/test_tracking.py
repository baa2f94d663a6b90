"""Request IDs on every answer, in error bodies and log lines; one access line per request; a
server error logged once with its traceback and never shown to the client."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient

from app.context import request_id_of
from app.logs import configure_logging
from app.main import create_app
from app.settings import Settings

REVIEW = "A moving, beautifully acted film."
INFER = "/v2/models/tiny/infer"


@pytest.fixture
def json_logs():
    """The JSON lines the app logs, as the service configures logging, since the last call
    (root logging restored afterwards)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("json", "info")
    written = io.StringIO()
    root.handlers[0].setStream(written)  # the service's handler, writing here instead of stderr

    def lines() -> list[dict]:
        text = written.getvalue()
        written.seek(0)
        written.truncate()
        return [json.loads(line) for line in text.splitlines()]

    yield lines
    root.handlers[:], root.level = saved


def test_a_safe_client_id_is_kept_and_anything_else_replaced() -> None:
    assert request_id_of([(b"x-request-id", b"4bf92f3577b34da6a3ce929d0e0e4736")]) == (
        "4bf92f3577b34da6a3ce929d0e0e4736"
    )
    assert request_id_of([(b"x-request-id", b"client-7:retry=2/a+b.c_d")]) == "client-7:retry=2/a+b.c_d"
    for unsafe in (b"", b"a" * 129, b"two words", b'quote"', b"new\nline", "é".encode()):
        generated = request_id_of([(b"x-request-id", unsafe)])
        assert generated != unsafe.decode("latin-1") and len(generated) == 32 and generated.isalnum()
    assert request_id_of([]) != request_id_of([])


def test_every_answer_carries_the_id_and_errors_quote_it(make_client) -> None:
    client = make_client(rate_limit="3/minute", max_body_bytes=1024)  # the 4th model request is refused
    sent = client.post("/v1/predict", json={"text": REVIEW}, headers={"x-request-id": "abc-123"})
    assert sent.status_code == 200 and sent.headers["x-request-id"] == "abc-123"
    made = client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    empty = client.post("/v1/predict", json={"text": ""}, headers={"x-request-id": "empty-1"})
    assert empty.json()["error"] == {
        "code": "empty_text",
        "message": "the text has no words to read (empty, blank or control characters only)",
        "request_id": "empty-1",
    }
    too_big = client.post("/v1/predict/batch", content=b"{" + b" " * 2000 + b"}")  # a middleware's 413
    assert too_big.status_code == 413
    assert too_big.json()["error"]["request_id"] == too_big.headers["x-request-id"]
    limited = client.post(INFER, json={"inputs": []})  # the rate limit's 429, before routing
    assert limited.status_code == 429 and limited.headers["x-request-id"]
    # the Open Inference Protocol's error is one string, as its specification has it: the ID is
    # in the header only
    assert limited.json() == {"error": limited.json()["error"]} and isinstance(limited.json()["error"], str)


def test_a_server_error_is_logged_with_its_traceback_and_id_and_not_shown(bundle_dir, json_logs) -> None:
    app = create_app(Settings(model_dir=bundle_dir))

    async def fail() -> None:
        raise RuntimeError("secret detail of a bug")

    app.add_api_route("/v1/fail", fail)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/fail", headers={"x-request-id": "crash-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "crash-1"
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal server error", "request_id": "crash-1"}
    }
    assert "secret" not in response.text
    lines = [line for line in json_logs() if line.get("request_id") == "crash-1"]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert len(errors) == 1 and "RuntimeError: secret detail of a bug" in errors[0]["exc_info"]
    assert [line["status"] for line in lines if line["logger"] == "app.access"] == [500]


def test_one_access_line_per_request_with_the_prediction_figures(make_client, json_logs) -> None:
    client = make_client()
    json_logs()  # start-up lines
    answer = client.post(
        "/v1/predict/batch", json={"texts": [REVIEW, "Dull."]}, headers={"x-request-id": "b-1"}
    ).json()
    client.get("/v2/models/other", headers={"x-request-id": "m-1"})
    access = [line for line in json_logs() if line["logger"] == "app.access"]
    assert [line["request_id"] for line in access] == ["b-1", "m-1"]
    batch, missing = access
    assert batch["route"] == "/v1/predict/batch" and batch["status"] == 200 and batch["latency_ms"] > 0
    assert (
        batch["texts"] == 2
        and batch["tokens"] == sum(p["tokens"] for p in answer["predictions"])
        and 1 <= batch["batch_size"] <= 2
    )
    assert batch["model_version"] == "test" and batch["level"] == "INFO" and batch["time"]
    assert missing["route"] == "/v2/models/{name}" and missing["status"] == 404 and "tokens" not in missing


def test_the_access_line_can_be_turned_off(make_client, json_logs) -> None:
    client = make_client(access_log=False)
    json_logs()
    client.post("/v1/predict", json={"text": REVIEW})
    assert not [line for line in json_logs() if line["logger"] == "app.access"]
