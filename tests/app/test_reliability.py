"""Overload, timeouts, hot reload, access control, rate limits and CORS, in process.

The slow model is the real tiny bundle with its inference slowed by a sleep: every path the
service takes (batcher, thread hop, middleware) is the real one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time

import httpx
import pytest

from app.main import create_app
from app.runtime import LoadedModel
from app.settings import Settings
from tests.bundles import make_bundle

TEXT = {"text": "a wonderful film"}


def slow_infer(monkeypatch, seconds: float) -> None:
    """Make every inference take at least ``seconds``."""
    original = LoadedModel.infer

    def infer(self, sequences):
        time.sleep(seconds)
        return original(self, sequences)

    monkeypatch.setattr(LoadedModel, "infer", infer)


async def _with_app(settings: Settings, body):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await body(client, app)


def run(settings: Settings, body):
    """Run ``body(client, app)`` against a started app."""
    return asyncio.run(_with_app(settings, body))


def test_over_the_in_flight_cap_is_a_quick_429(bundle_dir, monkeypatch) -> None:
    slow_infer(monkeypatch, 0.3)

    async def body(client, app):
        slow = asyncio.ensure_future(client.post("/v1/predict", json=TEXT))
        await asyncio.sleep(0.1)  # the first is in flight now
        started = time.perf_counter()
        refused = await client.post("/v1/predict", json=TEXT)
        refused_in = time.perf_counter() - started
        health = await client.get("/healthz")  # not a model route: never refused
        first = await slow
        after = await client.post("/v1/predict", json=TEXT)  # the slot was given back
        metrics = (await client.get("/metrics")).text
        return first, refused, refused_in, health, after, metrics

    first, refused, refused_in, health, after, metrics = run(
        Settings(model_dir=bundle_dir, max_in_flight=1), body
    )
    assert first.status_code == 200 and after.status_code == 200 and health.status_code == 200
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "overloaded" and refused.headers["retry-after"] == "1"
    assert refused_in < 0.2  # refused at once, not after the slow one
    assert 'sentiment_rejected_total{reason="in_flight"} 1.0' in metrics


@pytest.mark.parametrize("batching", [True, False])
def test_a_request_over_time_gets_504_and_frees_its_slot(bundle_dir, monkeypatch, batching) -> None:
    slow_infer(monkeypatch, 0.4)

    async def body(client, app):
        timed_out = await client.post("/v1/predict", json=TEXT)
        await asyncio.sleep(0.5)  # let the abandoned inference finish
        monkeypatch.undo()
        again = await client.post("/v1/predict", json=TEXT)
        metrics = (await client.get("/metrics")).text
        return timed_out, again, metrics

    settings = Settings(model_dir=bundle_dir, request_timeout_s=0.1, max_in_flight=1, batching=batching)
    timed_out, again, metrics = run(settings, body)
    assert timed_out.status_code == 504 and timed_out.json()["error"]["code"] == "timeout"
    assert again.status_code == 200  # with max_in_flight=1, only if the 504 gave its slot back
    assert "sentiment_timeouts_total 1.0" in metrics


def test_traces_have_their_own_bounded_pool_and_stop_at_the_deadline(bundle_dir, monkeypatch) -> None:
    """A full trace pool answers 429 at once, counted as a refusal; predictions go on beside a
    slow trace; a trace that times out stops its work between calls instead of running on after
    its 504."""
    calls: list[float] = []
    original = LoadedModel.infer_chunked

    def slow_chunks(self, sequences, max_tokens, deadline):
        for _ in range(20):  # 20 slow calls of 0.05 s, checking the deadline between them
            deadline.check()
            calls.append(time.monotonic())
            time.sleep(0.05)
        return original(self, sequences, max_tokens, deadline)

    monkeypatch.setattr(LoadedModel, "infer_chunked", slow_chunks)
    saliency = {"text": "a wonderful film"}

    async def body(client, app):
        slow = asyncio.ensure_future(client.post("/v1/trace/saliency", json=saliency))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        refused = await client.post("/v1/trace/saliency", json=saliency)
        refused_in = time.perf_counter() - started
        prediction = await client.post("/v1/predict", json=TEXT)
        timed_out = await slow
        ended = time.monotonic()
        await asyncio.sleep(0.3)
        metrics = (await client.get("/metrics")).text
        return refused, refused_in, prediction, timed_out, ended, metrics

    settings = Settings(model_dir=bundle_dir, trace_workers=1, trace_queue=0, request_timeout_s=0.4)
    refused, refused_in, prediction, timed_out, ended, metrics = run(settings, body)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "overloaded"
    assert refused_in < 0.2
    assert 'sentiment_rejected_total{reason="trace"} 1.0' in metrics
    assert prediction.status_code == 200
    assert timed_out.status_code == 504
    assert len(calls) < 20 and calls[-1] < ended + 0.1  # stopped within a call of the 504


def _write_version(folder, version: str) -> None:
    card_path = folder / "model_card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "version": version}))


def test_reload_swaps_the_model_and_rejects_a_corrupt_one(tmp_path, caplog) -> None:
    folder, _, _ = make_bundle(tmp_path / "served", seed=0)
    _write_version(folder, "v1")
    replacement, _, _ = make_bundle(tmp_path / "next", seed=1)
    _write_version(replacement, "v2")
    key = {"x-api-key": "secret"}

    async def body(client, app):
        before = (await client.post("/v1/predict", json=TEXT)).json()
        unauthorised = await client.post("/v1/admin/reload")
        for name in ("model.onnx", "tokenizer.json", "model_card.json"):
            shutil.copy(replacement / name, folder / name)
        reloaded = await client.post("/v1/admin/reload", headers=key)
        after = (await client.post("/v1/predict", json=TEXT)).json()
        (folder / "model.onnx").write_bytes(b"not an onnx model")
        with caplog.at_level(logging.ERROR, logger="app.store"):
            rejected = await client.post("/v1/admin/reload", headers=key)
        still = await client.post("/v1/predict", json=TEXT)
        ready = await client.get("/readyz")
        return before, unauthorised, reloaded, after, rejected, still, ready

    settings = Settings(model_dir=folder, api_key="secret")
    before, unauthorised, reloaded, after, rejected, still, ready = run(settings, body)
    assert before["model"]["version"] == "v1"
    assert unauthorised.status_code == 401
    assert reloaded.status_code == 200 and reloaded.json()["version"] == "v2"
    assert after["model"]["version"] == "v2" and after["score"] != before["score"]
    assert rejected.status_code == 409 and rejected.json()["error"]["code"] == "reload_rejected"
    assert still.status_code == 200 and still.json()["model"]["version"] == "v2"
    assert ready.status_code == 200
    assert any("reload rejected, still serving" in r.getMessage() for r in caplog.records)


def test_reload_over_http_is_off_without_an_api_key(make_client) -> None:
    response = make_client().post("/v1/admin/reload")
    assert response.status_code == 404 and response.json()["error"]["code"] == "disabled"


def test_a_reload_mid_batch_runs_each_request_on_its_own_model(tmp_path, monkeypatch) -> None:
    folder, _, _ = make_bundle(tmp_path / "served", seed=0)
    replacement, _, _ = make_bundle(tmp_path / "next", seed=1)
    _write_version(replacement, "v2")
    slow_infer(monkeypatch, 0.2)

    async def body(client, app):
        first = asyncio.ensure_future(client.post("/v1/predict", json=TEXT))
        await asyncio.sleep(0.05)  # first is in the batcher, on v1
        for name in ("model.onnx", "tokenizer.json", "model_card.json"):
            shutil.copy(replacement / name, folder / name)
        await app.state.service.reload()
        second = await client.post("/v1/predict", json=TEXT)
        return (await first).json(), second.json()

    first, second = run(Settings(model_dir=folder, batch_wait_ms=100), body)
    assert first["model"]["version"] == "test" and second["model"]["version"] == "v2"


def test_predictions_can_require_the_api_key(make_client) -> None:
    client = make_client(api_key="secret", protect_predictions=True)
    assert client.post("/v1/predict", json=TEXT).status_code == 401
    assert client.post("/v1/predict", json=TEXT, headers={"x-api-key": "wrong"}).status_code == 401
    assert client.post("/v1/predict", json=TEXT, headers={"x-api-key": "secret"}).status_code == 200
    v2 = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["dull"]}]}
    assert client.post("/v2/models/tiny/infer", json=v2).status_code == 401
    assert make_client(api_key="secret").post("/v1/predict", json=TEXT).status_code == 200


def test_rate_limit_per_client_spares_health_and_metrics(make_client) -> None:
    client = make_client(rate_limit="3/minute")
    assert [client.post("/v1/predict", json=TEXT).status_code for _ in range(3)] == [200] * 3
    limited = client.post("/v1/predict", json=TEXT)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert all(client.get(path).status_code == 200 for path in ("/healthz", "/readyz", "/metrics") * 3)
    assert 'sentiment_rejected_total{reason="rate_limit"} 1.0' in client.get("/metrics").text


def test_a_bad_rate_limit_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not a rate limit"):
        Settings(rate_limit="lots")


def test_cors_is_off_unless_configured(make_client) -> None:
    preflight = {"origin": "https://example.org", "access-control-request-method": "POST"}
    off = make_client().options("/v1/predict", headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    on = make_client(cors_origins=["https://example.org"]).options("/v1/predict", headers=preflight)
    assert on.headers["access-control-allow-origin"] == "https://example.org"
    other = make_client(cors_origins=["https://example.org"]).options(
        "/v1/predict", headers={**preflight, "origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
