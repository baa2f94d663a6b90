"""The inspector's corpus routes: thin over the index, with the API's errors, key and limits."""

from __future__ import annotations

import dataclasses

import pytest

from app.match_index import Unit, build_index
from app.settings import Settings
from app.store import ModelStore
from tests.bundles import CORPUS

UNIT = {"layer": 0, "direction": "backward", "unit": 2}


@pytest.fixture(scope="module")
def index(bundle_dir):
    store = ModelStore(Settings(model_dir=bundle_dir))
    store.load()
    reviews = [(i, i % 2, text) for i, text in enumerate(CORPUS * 3)]
    return build_index(store.model, reviews, max_tokens=12, threshold=0.1, top_k=5, source="tiny")


@pytest.fixture(scope="module")
def index_path(index, tmp_path_factory):
    path = tmp_path_factory.mktemp("index") / "corpus.npz"
    index.save(path)
    return path


def test_a_span_s_units_are_matched_across_the_corpus(make_client, index, index_path) -> None:
    client = make_client(match_index=index_path)
    info = client.get("/v1/inspect/index").json()
    assert (
        info["reviews"] == 12 and info["threshold"] == 0.1 and info["directions"] == ["forward", "backward"]
    )
    body = {"units": [UNIT], "length": 2, "k": 3}
    response = client.post("/v1/inspect/match", json=body)
    assert response.status_code == 200, response.text
    found = response.json()
    assert found == {**index.match([Unit(0, 1, 2)], 2, 3), "model": {"name": "tiny", "version": "test"}}
    assert 0 < len(found["matches"]) <= 3 and found["total"] >= len(found["matches"])


def test_a_unit_s_top_contexts(make_client, index, index_path) -> None:
    client = make_client(match_index=index_path)
    response = client.get("/v1/inspect/units/0/backward/2", params={"k": 2})
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["unit"] == UNIT
    assert found["highest"] == index.top_contexts(Unit(0, 1, 2), 2)["highest"]
    assert found["highest"][0]["value"] >= found["highest"][1]["value"] > found["lowest"][0]["value"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        (
            "post",
            "/v1/inspect/match",
            {"units": [{**UNIT, "unit": 6}]},
            422,
            "unit 6: the indexed model has 6",
        ),
        ("post", "/v1/inspect/match", {"units": []}, 422, "units"),
        ("post", "/v1/inspect/match", {"units": [UNIT], "k": 1000}, 422, "k"),
        ("post", "/v1/inspect/match", {"units": [UNIT], "extra": 1}, 422, "extra"),
        ("get", "/v1/inspect/units/0/sideways/2", None, 422, "direction"),
        ("get", "/v1/inspect/units/1/forward/2", None, 422, "layer 1"),
        ("get", "/v1/inspect/units/0/forward/2?k=6", None, 422, "keeps 5 contexts"),
    ],
)
def test_bad_input_is_a_clear_4xx(make_client, index_path, method, path, body, status, words) -> None:
    client = make_client(match_index=index_path)
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_without_an_index_the_routes_say_how_to_build_one(make_client) -> None:
    client = make_client()
    for response in (
        client.get("/v1/inspect/index"),
        client.post("/v1/inspect/match", json={"units": [UNIT]}),
        client.get("/v1/inspect/units/0/forward/0"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "no_match_index"
        assert "python -m app.match_index" in response.json()["error"]["message"]


def test_an_index_of_another_model_is_refused(make_client, index, tmp_path) -> None:
    other = dataclasses.replace(index, meta={**index.meta, "model": {"name": "tiny", "version": "old"}})
    other.save(tmp_path / "old.npz")
    response = make_client(match_index=tmp_path / "old.npz").post("/v1/inspect/match", json={"units": [UNIT]})
    assert response.status_code == 409
    assert "built for tiny old, not the served tiny test" in response.json()["error"]["message"]


def test_a_named_index_that_cannot_be_read_stops_start_up(bundle_dir, tmp_path) -> None:
    from app.errors import BundleError
    from app.match_index import open_configured

    with pytest.raises(BundleError, match="cannot read the match index"):
        open_configured(Settings(model_dir=bundle_dir, match_index=tmp_path / "missing.npz"))
    assert open_configured(Settings(model_dir=tmp_path / "bundle")) is None  # none beside the bundle
    (tmp_path / "bundle.match_index.npz").write_bytes(b"broken")  # beside the bundle folder
    with pytest.raises(BundleError, match=r"bundle\.match_index\.npz: cannot read"):
        open_configured(Settings(model_dir=tmp_path / "bundle"))


def test_the_routes_need_the_api_key_when_one_is_set(make_client, index_path) -> None:
    client = make_client(match_index=index_path, api_key="secret")
    assert client.post("/v1/inspect/match", json={"units": [UNIT]}).status_code == 401
    assert client.get("/v1/inspect/units/0/forward/0").status_code == 401
    keyed = client.post("/v1/inspect/match", json={"units": [UNIT]}, headers={"X-API-Key": "secret"})
    assert keyed.status_code == 200
