"""The HTTP request metrics: the instrumentator's names and labels, counted by route template."""

from __future__ import annotations

import asyncio
import math
import shutil
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from app.batcher import DynamicBatcher
from app.limits import InFlightLimit
from app.main import create_app
from app.metrics import HttpMetrics, ModelMetrics
from app.settings import Settings
from model.reference import make_reference, write_reference

REVIEW = "A moving, beautifully acted film."
SATURATION = (
    "sentiment_in_flight_requests",
    "sentiment_queued_texts",
    "sentiment_queued_tokens",
    "sentiment_batcher_wait_seconds",
)


def _samples(client) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics`` by (name, sorted labels)."""
    text = client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _count(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_template_method_and_status_class(client) -> None:
    for _ in range(3):
        assert client.post("/v1/predict", json={"text": REVIEW}).status_code == 200
    assert client.post("/v1/predict", json={"text": ""}).status_code == 422
    assert client.get("/v2/models/tiny/ready").status_code == 200
    assert client.get("/v2/models/other/ready").status_code == 404
    samples = _samples(client)
    total = "http_requests_total"
    assert _count(samples, total, method="POST", status="2xx", handler="/v1/predict") == 3
    assert _count(samples, total, method="POST", status="4xx", handler="/v1/predict") == 1
    # a path parameter is counted under its template, not under each value a client sends
    assert _count(samples, total, method="GET", status="2xx", handler="/v2/models/{name}/ready") == 1
    assert _count(samples, total, method="GET", status="4xx", handler="/v2/models/{name}/ready") == 1
    latency = "http_request_duration_seconds_count"
    assert _count(samples, latency, method="POST", handler="/v1/predict") == 4
    assert _count(samples, "http_request_duration_highr_seconds_count") >= 6


def test_metric_types_and_buckets_are_the_instrumentators(client) -> None:
    """What dashboards written for prometheus-fastapi-instrumentator's defaults query."""
    client.get("/healthz")
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    expected = {
        "http_requests": "counter",
        "http_request_size_bytes": "summary",
        "http_response_size_bytes": "summary",
        "http_request_duration_highr_seconds": "histogram",
        "http_request_duration_seconds": "histogram",
    }
    assert {name: families[name].type for name in expected} == expected

    def bounds(name: str) -> list[float]:
        return sorted({float(s.labels["le"]) for s in families[name].samples if s.name.endswith("_bucket")})

    highr = [
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1,
        1.5,
        2,
        2.5,
        3,
        3.5,
        4,
        4.5,
        5,
        7.5,
        10,
        30,
        60,
    ]
    assert bounds("http_request_duration_highr_seconds") == [*highr, float("inf")]
    assert bounds("http_request_duration_seconds") == [0.1, 0.5, 1.0, float("inf")]


def test_a_wrong_method_and_a_failing_route_count_under_the_route(bundle_dir) -> None:
    app = create_app(Settings(model_dir=bundle_dir))

    async def fail() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/fail", fail)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/v1/predict").status_code == 405
        assert client.get("/v1/fail").status_code == 500
        samples = _samples(client)
    total = "http_requests_total"
    assert _count(samples, total, method="GET", status="4xx", handler="/v1/predict") == 1
    assert _count(samples, total, method="GET", status="5xx", handler="/v1/fail") == 1


def test_unmatched_paths_share_one_label_and_metrics_scrapes_are_not_counted(client) -> None:
    for path in ("/no/such/page", "/another/one", "/metrics", "/metrics"):
        client.get(path)
    samples = _samples(client)
    handlers = {dict(labels).get("handler") for name, labels in samples if name == "http_requests_total"}
    assert "/no/such/page" not in handlers and "/another/one" not in handlers
    assert _count(samples, "http_requests_total", method="GET", status="4xx", handler="none") == 2
    assert "/metrics" not in handlers


def test_requests_refused_before_routing_count_under_their_route(make_client) -> None:
    """A limit answers before the router runs; the request still counts under the route it asked for."""
    client = make_client(max_body_bytes=1024)
    assert client.post("/v1/predict", json={"text": "x" * 2000}).status_code == 413
    assert client.post("/v2/models/tiny/infer", content=b"{" + b" " * 2000 + b"}").status_code == 413
    assert client.get("/static/inspect.js").status_code == 200
    samples = _samples(client)
    total = "http_requests_total"
    assert _count(samples, total, method="POST", status="4xx", handler="/v1/predict") == 1
    assert _count(samples, total, method="POST", status="4xx", handler="/v2/models/{name}/infer") == 1
    assert _count(samples, total, method="GET", status="2xx", handler="/static") == 1


def test_sizes_are_the_content_lengths(client) -> None:
    response = client.post("/v1/predict", json={"text": REVIEW})
    sent = len(response.request.content)
    samples = _samples(client)
    assert _count(samples, "http_request_size_bytes_sum", handler="/v1/predict") == sent
    assert _count(samples, "http_response_size_bytes_sum", handler="/v1/predict") == len(response.content)


def test_a_crashing_app_is_counted_as_a_5xx() -> None:
    """An exception escaping the app is still observed, as a 500, and still raised."""

    async def crash(scope, receive, send) -> None:
        raise RuntimeError("boom")

    registry = CollectorRegistry()
    middleware = HttpMetrics(crash, registry=registry)
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    with pytest.raises(RuntimeError):
        asyncio.run(middleware(scope, None, None))
    assert (
        registry.get_sample_value(
            "http_requests_total", {"method": "GET", "status": "5xx", "handler": "none"}
        )
        == 1.0
    )


def _server_timing(response) -> dict[str, float]:
    """The ``Server-Timing`` header's metrics: name -> milliseconds."""
    metrics = {}
    for entry in response.headers["server-timing"].split(","):
        name, duration = entry.strip().split(";")
        assert duration.startswith("dur=")
        metrics[name] = float(duration.removeprefix("dur="))
    return metrics


@pytest.mark.parametrize("batching", [True, False])
def test_prediction_routes_report_their_stages_in_a_header_and_a_histogram(make_client, batching) -> None:
    client = make_client(batching=batching)
    infer = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [REVIEW]}]}
    responses = [
        client.post("/v1/predict", json={"text": REVIEW}),
        client.post("/v1/predict/batch", json={"texts": [REVIEW, "Dull."]}),
        client.post("/v2/models/tiny/infer", json=infer),
    ]
    for response in responses:
        assert response.status_code == 200
        stages = _server_timing(response)
        assert list(stages) == ["tokenize", "queue", "infer", "serialise", "total"]
        assert all(ms >= 0 for ms in stages.values()) and stages["infer"] > 0
        assert stages["tokenize"] + stages["queue"] + stages["infer"] <= stages["total"] + 0.01
    assert "server-timing" not in client.post("/v1/trace", json={"text": REVIEW}).headers
    samples = _samples(client)
    for stage in ("tokenize", "queue", "infer", "serialise", "total"):
        assert _count(samples, "sentiment_stage_seconds_count", stage=stage) == 3
    assert _count(samples, "sentiment_stage_seconds_sum", stage="infer") > 0
    client.post("/v1/predict", json={"text": REVIEW})
    assert _count(_samples(client), "sentiment_stage_seconds_count", stage="total") == 4


def test_drift_signals_follow_the_served_predictions(make_client, bundle_dir, tmp_path) -> None:
    client = make_client()
    texts = [REVIEW, "Dull.", "great great great", "zzzz qqqq wonderful"]
    scores = [client.post("/v1/predict", json={"text": text}).json()["score"] for text in texts]
    samples = _samples(client)
    assert _count(samples, "sentiment_prediction_score_count") == len(texts)
    assert _count(samples, "sentiment_prediction_score_sum") == pytest.approx(sum(scores))
    assert _count(samples, "sentiment_unk_rate_count") == len(texts)
    assert _count(samples, "sentiment_unk_rate_sum") > 0  # "zzzz" and "qqqq" are not in the vocabulary
    near = sum(abs(score - 0.5) < 0.1 for score in scores) / len(texts)
    assert _count(samples, "sentiment_near_half_share") == pytest.approx(near)
    assert math.isnan(_count(samples, "sentiment_reference_near_half_share"))  # the tiny bundle has none
    shutil.copytree(bundle_dir, tmp_path / "bundle")
    write_reference(tmp_path / "bundle", make_reference([0.45, 0.9], [3, 4], [0.0, 0.0], "two"))
    referenced = TestClient(create_app(Settings(model_dir=tmp_path / "bundle")))
    with referenced:
        assert _count(_samples(referenced), "sentiment_reference_near_half_share") == 0.5


def test_saturation_gauges_read_the_in_flight_cap_and_the_batchers_queue() -> None:
    registry = CollectorRegistry()
    metrics = ModelMetrics(registry)
    release = threading.Event()

    def infer(sequences, model=None):
        release.wait()
        return np.full((len(sequences), 2), 0.5)

    async def scenario() -> dict[str, float]:
        batcher = DynamicBatcher(infer, max_batch_size=1, max_wait_s=0)
        metrics.saturation.queued_texts.set_function(lambda: batcher.queued_texts)
        metrics.saturation.queued_tokens.set_function(lambda: batcher.queued_tokens)
        metrics.saturation.oldest_wait.set_function(lambda: batcher.oldest_wait)
        entered = asyncio.Event()

        async def slow(scope, receive, send) -> None:
            entered.set()
            await batcher.submit([[1, 2, 3], [4, 5], [6]])

        limit = InFlightLimit(slow, max_in_flight=4, gauge=metrics.saturation.in_flight)
        await batcher.start()
        request = asyncio.create_task(limit({"type": "http", "path": "/v1/predict"}, None, None))
        await entered.wait()
        await asyncio.sleep(0.05)  # the worker holds the first text; two wait
        seen = {name: registry.get_sample_value(name) for name in SATURATION}
        release.set()
        await request
        await batcher.stop()
        return seen | {"after": registry.get_sample_value("sentiment_in_flight_requests")}

    seen = asyncio.run(scenario())
    assert seen["sentiment_in_flight_requests"] == 1 and seen["after"] == 0
    assert seen["sentiment_queued_texts"] == 2 and seen["sentiment_queued_tokens"] == 3
    assert seen["sentiment_batcher_wait_seconds"] >= 0.04
