"""The HTTP contract through the ASGI app: shapes, errors, limits, keys, health, metrics."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.main import create_app
from app.routes import api_routes
from app.settings import Settings
from model.bundle import load_card

ROOT = Path(__file__).resolve().parents[2]
REVIEW = "a wonderful , moving film with great acting"


def test_predict_contract(client) -> None:
    body = client.post("/v1/predict", json={"text": REVIEW}).json()
    assert set(body) == {"label", "score", "probabilities", "tokens", "truncated", "model"}
    assert body["label"] == ("positive" if body["score"] >= 0.5 else "negative")
    assert body["probabilities"]["positive"] == body["score"]
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-6
    assert body["tokens"] == 8 and body["truncated"] is False
    assert body["model"] == {"name": "tiny", "version": "test"}


def test_long_text_is_truncated_and_says_so(client) -> None:
    body = client.post("/v1/predict", json={"text": " ".join(["great"] * 50)}).json()
    assert body["tokens"] == 12 and body["truncated"] is True


def test_batch_keeps_order_and_equals_single(client) -> None:
    texts = [REVIEW, "awful , boring mess", "ok", "i loved it ! " * 5]
    batch = client.post("/v1/predict/batch", json={"texts": texts}).json()
    assert len(batch["predictions"]) == 4
    for text, prediction in zip(texts, batch["predictions"], strict=True):
        single = client.post("/v1/predict", json={"text": text}).json()
        assert abs(single["score"] - prediction["score"]) <= 1e-6


def test_a_text_without_words_is_422_naming_it(client) -> None:
    for text in ["", "   \n\t", "\u00a0\u3000"]:
        response = client.post("/v1/predict", json={"text": text})
        assert response.status_code == 422 and response.json()["error"]["code"] == "empty_text"
    batch = client.post("/v1/predict/batch", json={"texts": ["good", " "]})
    assert batch.status_code == 422 and "text 1 has no words" in batch.json()["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [({"text": 5}, 422), ({}, 422), ({"text": "x", "extra": 1}, 422), ([1, 2], 422), ({"texts": []}, 422)],
)
def test_invalid_bodies_get_the_error_shape(client, payload, status) -> None:
    path = "/v1/predict/batch" if "texts" in payload else "/v1/predict"
    response = client.post(path, json=payload)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "request_id"}


def test_malformed_json_is_422_not_500(client) -> None:
    response = client.post("/v1/predict", content=b'{"text": ', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_limits_are_413(make_client) -> None:
    client = make_client(max_text_chars=100, max_batch_texts=3, max_body_bytes=2048)
    assert client.post("/v1/predict", json={"text": "x" * 101}).status_code == 413
    assert client.post("/v1/predict/batch", json={"texts": ["a"] * 4}).status_code == 413
    too_big = client.post(
        "/v1/predict", content=b"{" + b" " * 5000 + b"}", headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    assert client.post("/v1/predict", json={"text": "fine"}).status_code == 200


def test_trace_needs_the_api_key_when_one_is_set(make_client) -> None:
    client = make_client(api_key="s3cret")
    assert client.post("/v1/trace", json={"text": REVIEW}).status_code == 401
    assert client.post("/v1/trace", json={"text": REVIEW}, headers={"X-API-Key": "wrong"}).status_code == 401
    response = client.post("/v1/trace", json={"text": REVIEW}, headers={"X-API-Key": "s3cret"})
    assert response.status_code == 200
    assert client.post("/v1/predict", json={"text": REVIEW}).status_code == 200  # predictions stay open


def test_trace_contract_and_agreement_with_predict(client) -> None:
    trace = client.post("/v1/trace", json={"text": REVIEW, "max_tokens": 5}).json()
    assert trace["tokens"] == ["a", "wonderful", ",", "moving", "film"]
    assert len(trace["token_ids"]) == 5 and trace["cell"] == "lstm"
    gates = trace["layers"][0]["backward"]["gates"]
    assert set(gates) == {"input", "forget", "cell_candidate", "output", "cell", "hidden"}
    assert all(0 <= v <= 1 for row in gates["forget"] for v in row)
    predicted = client.post("/v1/predict", json={"text": "a wonderful , moving film"}).json()
    assert abs(trace["prediction"]["score"] - predicted["score"]) <= 1e-6


def test_trace_can_be_disabled(make_client) -> None:
    assert make_client(trace_enabled=False).post("/v1/trace", json={"text": "x"}).status_code == 404


def test_health_model_card_and_metrics(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/model").json()["name"] == "tiny"
    client.post("/v1/predict", json={"text": REVIEW})
    metrics = client.get("/metrics").text
    for name in (
        "http_requests_total",
        "http_request_duration_seconds",
        "sentiment_inference_seconds_count",
        "sentiment_batch_size_bucket",
        "sentiment_tokens_per_text_sum",
        "sentiment_model_info{",
    ):
        assert name in metrics, name
    assert 'handler="/v1/predict"' in metrics


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_the_shipped_model_card_is_served_without_local_paths() -> None:
    shipped = ROOT / "models" / "default"
    on_disk = (shipped / "model_card.json").read_bytes()
    with TestClient(create_app(Settings(model_dir=shipped))) as client:
        served = client.get("/v1/model").json()
    paths = [text for text in _strings(served) if "runs/" in text or text.startswith(("/", "../", "./", "~"))]
    assert not paths
    card = load_card(shipped)
    kept = ("name", "version", "max_tokens", "architecture", "model_config", "metrics", "dataset", "parity")
    assert {field: served[field] for field in kept} == {field: card[field] for field in kept}
    # the hyperparameters stay; docker/e2e.sh reads limit_reviews
    hyperparameters = ("seed", "epochs", "batch_size", "learning_rate", "vat_epsilon", "limit_reviews")
    assert {k: served["train_config"][k] for k in hyperparameters} == {
        k: card["train_config"][k] for k in hyperparameters
    }
    assert served["training"]["history"] == card["training"]["history"]
    assert (shipped / "model_card.json").read_bytes() == on_disk  # the card on disk keeps everything


def test_unknown_route_and_method(client) -> None:
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    assert client.get("/v1/predict").status_code == 405


def test_not_ready_is_503(bundle_dir) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    client = TestClient(create_app(Settings(model_dir=bundle_dir)))  # no lifespan: nothing loaded
    assert client.get("/readyz").status_code == 503
    assert client.get("/v2/health/ready").status_code == 503
    response = client.post("/v1/predict", json={"text": "x"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "not_ready"


def test_open_inference_protocol(client) -> None:
    assert client.get("/v2").json()["name"] == "imdb-lstm-sentiment"
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/models/tiny/ready").json() == {"name": "tiny", "ready": True}
    assert client.get("/v2/models/other").status_code == 404
    request = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": [REVIEW, "dull"]}]}
    body = client.post("/v2/models/tiny/infer", json=request).json()
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["probabilities"]["shape"] == [2, 2] and outputs["label"]["shape"] == [2]
    single = client.post("/v1/predict", json={"text": REVIEW}).json()
    assert abs(outputs["probabilities"]["data"][1] - single["score"]) <= 1e-6
    bad = {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    assert client.post("/v2/models/tiny/infer", json=bad).status_code == 422


def test_hostile_bodies_get_4xx_never_5xx(make_client) -> None:
    client = make_client(max_body_bytes=4096)
    json_headers = {"content-type": "application/json"}
    # an unpaired surrogate cannot be echoed back in a trace: refused up front
    surrogate = client.post("/v1/trace", content=b'{"text": "a \\ud800"}', headers=json_headers)
    assert surrogate.status_code == 422
    nested = client.post("/v1/predict", content=b"[" * 1000 + b"]" * 1000, headers=json_headers)
    assert nested.status_code == 422 and nested.json()["error"]["code"] == "invalid_request"

    def chunks():
        for _ in range(10):
            yield b" " * 1000

    chunked = client.post("/v1/predict", content=chunks(), headers=json_headers)
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "payload_too_large"
    oversized_v2 = client.post("/v2/models/tiny/infer", content=b"{" + b" " * 5000 + b"}")
    assert oversized_v2.status_code == 413 and isinstance(oversized_v2.json()["error"], str)
    for text in [
        "e\u0301" * 50,
        "\u05e9\u05dc\u05d5\u05dd",
        "😀" * 30,
        "<script>x</script>",
        "a" * 3000,
    ]:
        assert client.post("/v1/predict", json={"text": text}).status_code == 200


@pytest.mark.parametrize("text", ["", "   \n", "\u0000\u0007", "\u0001\u0002", "\u200b\ufeff"])
def test_every_route_refuses_a_text_with_nothing_to_read(client, text: str) -> None:
    """Empty, blank, control or format characters only: a 422 from every route alike."""
    for path, body in [
        ("/v1/predict", {"text": text}),
        ("/v1/predict/batch", {"texts": ["fine", text]}),
        ("/v1/trace", {"text": text}),
        ("/v1/trace/saliency", {"text": text}),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == 422, (path, text, response.text)
        assert response.json()["error"]["code"] == "empty_text"
    infer = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]}
    assert client.post("/v2/models/tiny/infer", json=infer).status_code == 422


def test_open_inference_protocol_validation(client) -> None:
    request = {"inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": ["dull"]}]}
    assert client.post("/v2/models/tiny/infer", json=request).status_code == 200
    bad_output = {**request, "outputs": [{"name": ["x"]}]}
    response = client.post("/v2/models/tiny/infer", json=bad_output)
    assert response.status_code == 422 and isinstance(response.json()["error"], str)
    only_labels = client.post(
        "/v2/models/tiny/infer", json={**request, "outputs": [{"name": "label"}]}
    ).json()
    assert [o["name"] for o in only_labels["outputs"]] == ["label"]
    wrong_shape = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a"]}]}
    assert client.post("/v2/models/tiny/infer", json=wrong_shape).status_code == 422


def test_pages_are_served_without_external_assets(client) -> None:
    index = client.get("/")
    assert index.status_code == 200 and 'href="/inspect"' in index.text
    page = client.get("/inspect").text
    for asset in ("/static/inspect.js", "/static/inspect.css"):
        assert asset in page and client.get(asset).status_code == 200
    assert "http://" not in page and "https://" not in page  # no CDN


def test_the_api_docs_are_served_from_local_assets(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert not re.findall(r"https?://", page.text)  # no CDN, no validator badge
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    assert sorted(Path(asset).suffix for asset in assets) == [".css", ".js", ".png"]
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            types[Path(asset).suffix]
        ), asset
        assert len(response.content) > 1000
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/redoc").status_code == 404  # not served: it needs inline styles (app.api.pages)


def _api_routes(routes) -> list[APIRoute]:
    """Every APIRoute, also inside included routers."""
    return [route for route in api_routes(routes) if isinstance(route, APIRoute)]


def _dependency_calls(dependant) -> list:
    calls = []
    for sub in dependant.dependencies:
        calls += [sub.call, *_dependency_calls(sub)]
    return calls


def test_routes_and_dependencies_run_on_the_event_loop(bundle_dir) -> None:
    """FastAPI runs a plain ``def`` route or dependency in its thread pool: a hop per request."""
    app = create_app(Settings(model_dir=bundle_dir))
    routes = _api_routes(app.routes)
    dependencies = [call for route in routes for call in _dependency_calls(route.dependant)]
    calls = [route.endpoint for route in routes] + dependencies
    assert len(routes) > 10 and {call.__name__ for call in dependencies} >= {
        "get_service",
        "prediction_service",
    }
    blocking = {call.__qualname__ for call in calls if not inspect.iscoroutinefunction(call)}
    assert not blocking


def test_opentelemetry_is_looked_up_only_when_asked_for(bundle_dir, monkeypatch) -> None:
    """Off (the default), a request never asks OpenTelemetry for a provider; on, it does."""
    from opentelemetry import _logs, metrics, trace

    lookups = []
    for module, getter in (
        (trace, "get_tracer_provider"),
        (metrics, "get_meter_provider"),
        (_logs, "get_logger_provider"),
    ):
        real = getattr(module, getter)
        monkeypatch.setattr(module, getter, lambda real=real, name=getter: lookups.append(name) or real())
    for enabled, expected in ((False, False), (True, True)):
        lookups.clear()
        with TestClient(create_app(Settings(model_dir=bundle_dir, opentelemetry=enabled))) as client:
            lookups.clear()  # start-up may look, too
            assert client.post("/v1/predict", json={"text": REVIEW}).status_code == 200
        assert bool(lookups) is expected


def test_trace_options_over_http(client) -> None:
    full = client.post("/v1/trace", json={"text": REVIEW})
    compact = client.post(
        "/v1/trace", json={"text": REVIEW, "gates": ["forget"], "units": [0], "decimals": 2}
    )
    assert full.status_code == compact.status_code == 200
    assert len(compact.content) < len(full.content) / 5
    gates = compact.json()["layers"][0]["forward"]["gates"]
    assert list(gates) == ["forget"] and all(len(row) == 1 for row in gates["forget"])
    assert all(round(row[0], 2) == row[0] for row in gates["forget"])
    for wrong in ({"gates": ["nonsense"]}, {"layers": [7]}, {"units": [10_000]}, {"decimals": -1}):
        response = client.post("/v1/trace", json={"text": REVIEW, **wrong})
        assert response.status_code == 422, wrong
        assert response.json()["error"]["code"] == "invalid_request"
