"""A Transformer bundle served: predictions as for any model, gate traces refused with a 409."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from model.inputs import pad_batch
from tests.bundles import make_bundle

REVIEW = "a wonderful , moving film . i loved it ! but the plot was dull"


@pytest.fixture(scope="module")
def transformer_bundle(tmp_path_factory):
    return make_bundle(
        tmp_path_factory.mktemp("bundle") / "transformer", cell="transformer", bidirectional=False
    )


@pytest.fixture
def client(transformer_bundle):
    folder, _, _ = transformer_bundle
    with TestClient(create_app(Settings(model_dir=folder)), raise_server_exceptions=False) as client:
        yield client


def test_a_transformer_bundle_loads_and_predicts_what_torch_does(client, transformer_bundle) -> None:
    _, model, tokenizer = transformer_bundle
    response = client.post("/v1/predict", json={"text": REVIEW})
    assert response.status_code == 200
    body = response.json()
    ids, lengths = pad_batch([tokenizer.encode_text(REVIEW, 64).ids])
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(ids), torch.from_numpy(lengths)), 1)[0, 1].item()
    assert body["score"] == pytest.approx(expected, abs=1e-5)
    assert abs(expected - 0.5) > 1e-3  # a real signal, not a flat 0.5
    assert client.get("/v1/model").json()["model_config"]["cell"] == "transformer"


def test_a_gate_trace_of_a_transformer_is_a_clear_409(client) -> None:
    response = client.post("/v1/trace", json={"text": REVIEW})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "no_gates"
    assert "transformer encoder: it has no recurrent gates" in error["message"]
    # the same for a trace narrowed to one gate: the model has none, whatever is asked
    narrowed = client.post("/v1/trace", json={"text": REVIEW, "layers": [0], "gates": ["forget"]})
    assert narrowed.status_code == 409


def test_saliency_needs_no_gates_and_works_for_a_transformer(client) -> None:
    response = client.post("/v1/trace/saliency", json={"text": REVIEW})
    assert response.status_code == 200
    body = response.json()
    assert len(body["running"]) == len(body["occlusion"]) == len(body["tokens"])
    predicted = client.post("/v1/predict", json={"text": REVIEW}).json()["score"]
    assert np.isclose(body["score"], predicted, atol=1e-5)
