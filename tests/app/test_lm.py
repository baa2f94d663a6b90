"""The language-model routes over a tiny random LM bundle sharing the tiny classifier's vocabulary."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.lm import Generation, LanguageModel, Sampling
from app.main import create_app
from app.settings import Settings
from model.tokenizer import Tokenizer
from tests.bundles import make_lm_bundle


@pytest.fixture(scope="module")
def lm_dir(bundle_dir, tmp_path_factory):
    """A random-weight LM bundle over the tiny classifier's vocabulary."""
    return make_lm_bundle(tmp_path_factory.mktemp("lm"), Tokenizer.load(bundle_dir / "tokenizer.json"))


@pytest.fixture
def lm_client(make_client, lm_dir) -> TestClient:
    return make_client(lm_bundle=lm_dir)


def test_status_says_loaded(lm_client) -> None:
    body = lm_client.get("/v1/lm").json()
    assert body["loaded"] is True and body["model"] == {"name": "tiny-lm", "version": "test"}


def test_without_a_bundle_the_routes_say_so(make_client, tmp_path) -> None:
    client = make_client(lm_bundle="")
    assert client.get("/v1/lm").json()["loaded"] is False
    for route, body in (("next", {"text": "a"}), ("score", {"text": "a"}), ("generate", {"prompt": "a"})):
        response = client.post(f"/v1/lm/{route}", json=body)
        assert response.status_code == 404 and response.json()["error"]["code"] == "lm_not_loaded"


def test_a_missing_default_bundle_leaves_the_lm_off_but_an_explicit_one_stops_start_up(
    bundle_dir, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default models/lm is not there
    with TestClient(create_app(Settings(model_dir=bundle_dir))) as client:
        assert "no language-model bundle" in client.get("/v1/lm").json()["reason"]
    settings = Settings(model_dir=bundle_dir, lm_bundle=tmp_path / "nowhere")
    with pytest.raises(Exception, match="no language-model bundle"), TestClient(create_app(settings)):
        pass


def test_another_vocabulary_is_refused(bundle_dir, lm_dir, tmp_path) -> None:
    other = tmp_path / "lm"
    other.mkdir()
    for name in ("model.onnx", "model_card.json"):
        (other / name).write_bytes((lm_dir / name).read_bytes())
    Tokenizer(Tokenizer.load(lm_dir / "tokenizer.json").vocabulary.__class__(("<pad>", "<unk>", "x"))).save(
        other / "tokenizer.json"
    )
    settings = Settings(model_dir=bundle_dir, lm_bundle=other)
    with (
        pytest.raises(Exception, match="vocabulary is not the classifier's"),
        TestClient(create_app(settings)),
    ):
        pass


def test_next_words_are_sorted_probabilities_without_special_tokens(lm_client) -> None:
    body = lm_client.post("/v1/lm/next", json={"text": "a wonderful film", "k": 5}).json()
    assert body["tokens"] == ["a", "wonderful", "film"]
    probabilities = [item["probability"] for item in body["next"]]
    assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert not {"<pad>", "<unk>"} & {item["token"] for item in body["next"]}
    every = lm_client.post("/v1/lm/next", json={"text": "a", "k": 50}).json()[
        "next"
    ]  # more than the tiny vocabulary
    assert (
        len(every)
        == len(Tokenizer.load(lm_client.app.state.lm.model.folder / "tokenizer.json").vocabulary) - 2
    )
    start = lm_client.post("/v1/lm/next", json={"text": ""}).json()  # the start of a review
    assert start["tokens"] == [] and len(start["next"]) == 10


def test_score_agrees_with_next(lm_client) -> None:
    scored = lm_client.post("/v1/lm/score", json={"text": "a great movie", "top_k": 3}).json()
    tokens = scored["tokens"]
    assert [t["token"] for t in tokens] == ["a", "great", "movie"]
    mean = sum(t["log_prob"] for t in tokens) / 3
    assert scored["perplexity"] == pytest.approx(math.exp(-mean))
    assert tokens[1]["surprisal"] == pytest.approx(-tokens[1]["log_prob"] / math.log(2))
    guesses = lm_client.post("/v1/lm/next", json={"text": "a", "k": 3}).json()["next"]
    assert tokens[1]["top"] == guesses  # the guesses at a position are the next words of its prefix
    unknown = lm_client.post("/v1/lm/score", json={"text": "a zyzzyva"}).json()["tokens"]
    assert (unknown[1]["unknown"] is True and "top" not in unknown[1]) or unknown[1]["top"] is None


def test_same_seed_same_text_and_a_readable_continuation(lm_client) -> None:
    body = {"prompt": "I loved it", "max_new_tokens": 12, "seed": 3}
    first, second = (lm_client.post("/v1/lm/generate", json=body).json() for _ in range(2))
    assert first["text"] == second["text"] and first["seed"] == 3 and len(first["tokens"]) == 12
    assert "<unk>" not in first["tokens"] and "<pad>" not in first["tokens"]
    other = lm_client.post("/v1/lm/generate", json={**body, "seed": 4}).json()
    assert other["text"] != first["text"]
    unseeded = lm_client.post("/v1/lm/generate", json={"prompt": "a", "max_new_tokens": 2}).json()
    assert isinstance(unseeded["seed"], int)


def test_steered_generation_keeps_the_candidate_the_classifier_prefers(lm_client) -> None:
    body = {"prompt": "the film", "max_new_tokens": 6, "seed": 1, "sentiment": "negative", "candidates": 4}
    answer = lm_client.post("/v1/lm/generate", json=body).json()
    sentiment = answer["sentiment"]
    assert sentiment["candidates"] == 4 and sentiment["score"] == max(sentiment["scores"])
    predicted = lm_client.post("/v1/predict", json={"text": "the film" + answer["text"]}).json()
    assert 1 - predicted["score"] == pytest.approx(sentiment["score"], abs=1e-6)


def test_streaming_gives_one_event_per_token_then_the_same_body(lm_client) -> None:
    body = {"prompt": "a great", "max_new_tokens": 5, "seed": 9}
    whole = lm_client.post("/v1/lm/generate", json=body).json()
    with lm_client.stream("POST", "/v1/lm/generate", json={**body, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [block for block in response.read().decode().split("\n\n") if block]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    data = [json.loads(block.split("\n")[1].removeprefix("data: ")) for block in events]
    assert names == ["token"] * 5 + ["done"]
    assert "".join(d["text"] for d in data[:5]) == whole["text"] and data[-1] == whole


@pytest.mark.parametrize(
    ("route", "body", "status"),
    [
        ("next", {"text": "a", "k": 0}, 422),
        ("next", {"text": "a", "k": 51}, 422),
        ("next", {"txt": "a"}, 422),
        ("score", {"text": ""}, 422),
        ("score", {"text": "   "}, 422),
        ("score", {"text": "a", "top_k": 11}, 422),
        ("generate", {"prompt": "a", "max_new_tokens": 0}, 422),
        ("generate", {"prompt": "a", "max_new_tokens": 201}, 422),  # over the server's cap
        ("generate", {"prompt": "a", "temperature": 0}, 422),
        ("generate", {"prompt": "a", "temperature": 1e-300}, 422),
        ("generate", {"prompt": "a", "top_p": 0}, 422),
        ("generate", {"prompt": "a", "sentiment": "happy"}, 422),
        ("generate", {"prompt": "a", "sentiment": "positive", "candidates": 9}, 422),  # over the cap
        ("generate", {"prompt": "a", "sentiment": "positive", "stream": True}, 422),
        ("generate", {"prompt": "a", "seed": -1}, 422),
        ("generate", {"prompt": "x" * 100_001}, 413),
        ("generate", [1, 2], 422),
    ],
)
def test_bad_input_is_a_clear_4xx(lm_client, route, body, status) -> None:
    response = lm_client.post(f"/v1/lm/{route}", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_the_lm_routes_need_the_api_key_when_one_is_set(make_client, lm_dir) -> None:
    client = make_client(lm_bundle=lm_dir, api_key="s3cret")
    assert client.post("/v1/lm/next", json={"text": "a"}).status_code == 401
    assert client.post("/v1/lm/next", json={"text": "a"}, headers={"X-API-Key": "s3cret"}).status_code == 200


def test_lm_work_is_counted_in_the_metrics(lm_client) -> None:
    lm_client.post("/v1/lm/generate", json={"prompt": "a", "max_new_tokens": 3, "seed": 0})
    metrics = lm_client.get("/metrics").text
    assert 'sentiment_lm_tokens_total{kind="generated"} 3.0' in metrics
    assert 'sentiment_lm_seconds_count{operation="step"}' in metrics


def _refused_while_one_is_held(settings: Settings, route: str, monkeypatch) -> tuple:
    """With ``settings``, one /v1/lm/next held by the LM's worker, then a POST to ``route``: the
    refused answer, the held one's and the metrics."""
    release = threading.Event()
    original = LanguageModel.next_words

    def held(self, *args):
        release.wait(5)
        return original(self, *args)

    monkeypatch.setattr(LanguageModel, "next_words", held)
    app = create_app(settings)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                first = asyncio.ensure_future(client.post("/v1/lm/next", json={"text": "a"}))
                await asyncio.sleep(0.1)  # the LM's one worker holds the first
                refused = await client.post(route, json={"text": "a"})
                release.set()
                return refused, await first, (await client.get("/metrics")).text

    return asyncio.run(scenario())


def test_a_full_lm_pool_answers_429_and_counts_it_as_a_refusal(bundle_dir, lm_dir, monkeypatch) -> None:
    settings = Settings(model_dir=bundle_dir, lm_bundle=lm_dir, lm_queue=0)
    refused, answered, metrics = _refused_while_one_is_held(settings, "/v1/lm/next", monkeypatch)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "overloaded"
    assert answered.status_code == 200
    assert 'sentiment_rejected_total{reason="lm"} 1.0' in metrics


def test_a_generation_s_steps_share_the_request_s_deadline(make_client, lm_dir, monkeypatch) -> None:
    """Each step is far quicker than the timeout, the whole generation is not: a 504, and the
    steps stop (a deadline per step would let 40 steps run 40 timeouts)."""
    original, steps = Generation.step, []

    def slow(self):
        steps.append(1)
        threading.Event().wait(0.05)
        return original(self)

    monkeypatch.setattr(Generation, "step", slow)
    client = make_client(lm_bundle=lm_dir, request_timeout_s=0.5)
    response = client.post("/v1/lm/generate", json={"prompt": "a", "max_new_tokens": 40, "seed": 0})
    assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
    assert len(steps) < 20
    streamed = client.post(
        "/v1/lm/generate", json={"prompt": "a", "max_new_tokens": 40, "seed": 0, "stream": True}
    )
    assert (
        streamed.status_code == 200 and "event: error" in streamed.text and "event: done" not in streamed.text
    )


def test_long_texts_are_read_up_to_the_token_cap(make_client, lm_dir) -> None:
    """A prompt is continued from its last lm_max_tokens tokens; a score covers its first ones."""
    client = make_client(lm_bundle=lm_dir, lm_max_tokens=3)
    text = "good bad movie film great awful"
    following = client.post("/v1/lm/next", json={"text": text}).json()
    assert following["truncated"] is True and following["tokens"] == ["film", "great", "awful"]
    scored = client.post("/v1/lm/score", json={"text": text}).json()
    assert scored["truncated"] is True and [t["token"] for t in scored["tokens"]] == ["good", "bad", "movie"]
    whole = client.post("/v1/lm/score", json={"text": "good bad"}).json()
    assert whole["truncated"] is False and len(whole["tokens"]) == 2


def test_the_lm_routes_count_in_the_rate_limit_and_the_in_flight_cap(
    make_client, bundle_dir, lm_dir, monkeypatch
) -> None:
    limited = make_client(lm_bundle=lm_dir, rate_limit="2/minute")
    statuses = [limited.post("/v1/lm/next", json={"text": "a"}).status_code for _ in range(2)]
    refused = limited.post("/v1/lm/generate", json={"prompt": "a"})
    assert statuses == [200, 200] and refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"

    settings = Settings(model_dir=bundle_dir, lm_bundle=lm_dir, max_in_flight=1)
    refused, answered, metrics = _refused_while_one_is_held(settings, "/v1/lm/score", monkeypatch)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "overloaded"
    assert answered.status_code == 200
    assert 'sentiment_rejected_total{reason="in_flight"} 1.0' in metrics


def test_sampling_respects_top_k_and_top_p() -> None:
    log_probs = np.log(np.array([[0.0, 0.0, 0.5, 0.3, 0.15, 0.05]]) + 1e-30)
    rng = np.random.default_rng(0)
    drawn = {int(Sampling(top_k=2).choose(log_probs, rng)[0]) for _ in range(200)}
    assert drawn == {2, 3}
    drawn = {int(Sampling(top_k=0, top_p=0.5).choose(log_probs, rng)[0]) for _ in range(200)}
    assert drawn == {2}
    drawn = {int(Sampling(top_k=0, temperature=5.0).choose(log_probs, rng)[0]) for _ in range(400)}
    assert drawn == {2, 3, 4, 5}  # never <pad> (0) or <unk> (1)


def test_the_runtime_reads_a_prompt_once_and_steps_with_the_state(lm_dir) -> None:
    model = LanguageModel.load(lm_dir, Tokenizer.load(lm_dir / "tokenizer.json").vocabulary)
    generation = model.start("a great", 1, Sampling(), seed=5, cap=400)
    for _ in range(4):
        generation.step()
    ids = model.tokenizer.vocabulary.encode(["a", "great"]) + generation.generated[0]
    log_probs, _ = model.run(np.array([[0, *ids]]), model.zero_state(1))
    np.testing.assert_allclose(log_probs[0, -1], generation.log_probs[0], atol=1e-5)


def test_a_real_server_never_answers_the_lm_routes_with_a_5xx(bundle_dir, lm_dir) -> None:
    """schemathesis over the LM operations of a real server (``python -m app``) with the LM loaded."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    from tests.serving import start_server

    process, base, _ = start_server(bundle_dir, env={"SENTIMENT_LM_BUNDLE": str(lm_dir)})
    try:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations() if r.ok().label.startswith("POST /v1/lm/")]
        assert len(operations) == 3
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case) -> None:
                response = case.call(timeout=30)
                assert response.status_code < 500, f"{case.path}: {response.status_code} {response.text}"

            check()
    finally:
        process.terminate()
        process.wait(timeout=10)
