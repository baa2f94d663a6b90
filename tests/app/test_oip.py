"""The Open Inference Protocol codec: its errors take the specification's shape on its routes,
chosen by the router the request reached, not by the path."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from app.errors import ModelNotFound, install_handlers
from app.oip import OipRoute

INFER = "/v2/models/tiny/infer"
REQUEST = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a wonderful film"]}]}


def test_errors_on_the_protocols_routes_are_one_string(make_client) -> None:
    client = make_client()
    unknown = client.get("/v2/models/other")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": "model_not_found: model 'other' is not served here; this server serves 'tiny'"
    }
    invalid = client.post(INFER, json={"inputs": [{**REQUEST["inputs"][0], "datatype": "FP32"}]})
    assert invalid.status_code == 422 and invalid.json()["error"].startswith("invalid_request: ")
    wrong_method = client.get(INFER)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"].startswith("method_not_allowed: ")
    limiting = make_client(rate_limit="1/minute")
    assert limiting.post(INFER, json=REQUEST).status_code == 200
    limited = limiting.post(INFER, json=REQUEST)  # refused by a middleware, before routing
    assert limited.status_code == 429 and limited.json()["error"].startswith("rate_limited: ")
    # the service's own routes keep theirs; a path that reaches no route belongs to no protocol
    assert client.post("/v1/predict", json={"text": ""}).json()["error"]["code"] == "empty_text"
    nowhere = client.get("/v2/nowhere")
    assert nowhere.json() == {
        "error": {"code": "not_found", "message": "Not Found", "request_id": nowhere.headers["x-request-id"]}
    }


def test_the_shape_follows_the_router_not_the_path() -> None:
    def refuse() -> None:
        raise ModelNotFound("no such model")

    protocol = APIRouter(prefix="/elsewhere", route_class=OipRoute)
    protocol.add_api_route("/models/x", refuse)
    plain = APIRouter(prefix="/v2")
    plain.add_api_route("/plain", refuse)
    app = FastAPI()
    install_handlers(app)
    app.include_router(protocol)
    app.include_router(plain)
    client = TestClient(app)
    assert client.get("/elsewhere/models/x").json() == {"error": "model_not_found: no such model"}
    assert client.get("/v2/plain").json() == {
        "error": {"code": "model_not_found", "message": "no such model"}
    }


def test_infer_response_follows_the_requested_outputs(client) -> None:
    both = client.post(INFER, json={**REQUEST, "id": "r1"}).json()
    assert both["model_name"] == "tiny" and both["model_version"] == "test" and both["id"] == "r1"
    assert [o["name"] for o in both["outputs"]] == ["probabilities", "label"]
    single = client.post("/v1/predict", json={"text": "a wonderful film"}).json()
    assert both["outputs"][0]["data"] == [
        single["probabilities"]["negative"],
        single["probabilities"]["positive"],
    ]
    assert both["outputs"][1]["data"] == [single["label"]]
    labels_first = {**REQUEST, "outputs": [{"name": "label"}, {"name": "probabilities"}, {"name": "label"}]}
    assert [o["name"] for o in client.post(INFER, json=labels_first).json()["outputs"]] == [
        "label",
        "probabilities",
    ]
    metadata = client.get("/v2/models/tiny").json()
    assert metadata["name"] == "tiny" and metadata["versions"] == ["test"]
