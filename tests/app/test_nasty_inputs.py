"""A fixed corpus of hostile and odd requests against the real server process.

Each gets its documented answer (a prediction, or the JSON error shape with a 4xx), never a
5xx, and the process keeps serving after every one of them.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

JSON = {"content-type": "application/json"}
TEN_MB = 10 * 2**20


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _text(text: str) -> bytes:
    return _json({"text": text})


def _v2(datatype: str, shape: list[int], data: list) -> bytes:
    return _json({"inputs": [{"name": "text", "shape": shape, "datatype": datatype, "data": data}]})


P, V2 = "/v1/predict", "/v2/models/tiny/infer"
RTL = "\u202e\u05e1\u05e8\u05d8 \u0645\u0645\u062a\u0627\u0632"


# (name, method, path, body bytes or None, headers, expected statuses)
CORPUS = [
    ("empty text", "POST", "/v1/predict", _json({"text": ""}), JSON, {422}),
    ("whitespace only", "POST", "/v1/predict", _json({"text": " \t\n\r\u3000"}), JSON, {422}),
    ("10 MB body", "POST", "/v1/predict", b'{"text": "' + b"a" * TEN_MB + b'"}', JSON, {413}),
    ("10 MB, no length", "POST", "/v1/predict", None, JSON, {413}),  # chunked, see below
    ("nested 100k deep", "POST", "/v1/predict", b"[" * 100_000 + b"]" * 100_000, JSON, {422}),
    ("nested objects", "POST", "/v1/predict", b'{"text":' * 5000 + b'"a"' + b"}" * 5000, JSON, {422}),
    ("text is a number", "POST", "/v1/predict", _json({"text": 5}), JSON, {422}),
    ("text is null", "POST", "/v1/predict", _json({"text": None}), JSON, {422}),
    ("text is a list", "POST", "/v1/predict", _json({"text": ["a"]}), JSON, {422}),
    ("body is a string", "POST", "/v1/predict", _json("a review"), JSON, {422}),
    ("texts is a string", "POST", "/v1/predict/batch", _json({"texts": "abc"}), JSON, {422}),
    ("extra field", "POST", "/v1/predict", _json({"text": "a", "admin": True}), JSON, {422}),
    ("invalid JSON", "POST", "/v1/predict", b'{"text": "a"', JSON, {422}),
    ("invalid UTF-8", "POST", "/v1/predict", b'{"text": "\xff\xfe\xfd"}', JSON, {422}),
    ("lone surrogate", "POST", "/v1/predict", b'{"text": "a \\ud800 b"}', JSON, {422}),
    ("not JSON at all", "POST", "/v1/predict", b"text=a", {"content-type": "text/plain"}, {422}),
    ("NUL and controls", "POST", P, _text("good\u0000film\u0007\u001b[31m"), JSON, {200}),
    ("combining marks", "POST", "/v1/predict", _json({"text": "gre\u0301at" + "\u0301" * 500}), JSON, {200}),
    ("right to left", "POST", P, _text(RTL), JSON, {200}),
    ("emoji", "POST", "/v1/predict", _json({"text": "👍🏽🎬🍿" * 200 + "👨‍👩‍👧"}), JSON, {200}),
    ("HTML and script", "POST", P, _text("<script>alert(1)</script><br /><b>great</b>"), JSON, {200}),
    ("99,999-char token", "POST", "/v1/predict", _json({"text": "a" * 99_999}), JSON, {200}),
    ("over the text limit", "POST", "/v1/predict", _json({"text": "a " * 50_001}), JSON, {413}),
    ("batch over the limit", "POST", "/v1/predict/batch", _json({"texts": ["good"] * 65}), JSON, {413}),
    ("empty batch", "POST", "/v1/predict/batch", _json({"texts": []}), JSON, {422}),
    ("trace max_tokens 0", "POST", "/v1/trace", _json({"text": "a", "max_tokens": 0}), JSON, {422}),
    ("trace max_tokens 1e30", "POST", "/v1/trace", _json({"text": "a", "max_tokens": 10**30}), JSON, {200}),
    ("v2 wrong datatype", "POST", V2, _v2("FP32", [1], [1.5]), JSON, {422}),
    ("v2 shape lies", "POST", V2, _v2("BYTES", [3], ["a"]), JSON, {422}),
    ("v2 odd model name", "POST", "/v2/models/..%2f..%2fetc/infer", _json({"inputs": []}), JSON, {404, 422}),
    ("static path traversal", "GET", "/static/../../app/settings.py", None, {}, {404}),
    ("static encoded traversal", "GET", "/static/..%2f..%2fapp%2fsettings.py", None, {}, {404}),
    ("bad query bytes", "GET", "/v1/model?x=%ff%fe", None, {}, {200}),
    ("wrong method", "DELETE", "/v1/predict", None, {}, {405}),
    ("negative content-length", "POST", P, b"{}", {**JSON, "content-length": "-1"}, {400, 422}),
]  # fmt: skip


def _send(base: str, method: str, path: str, body: bytes | None, headers: dict) -> httpx.Response:
    if body is None and method == "POST":  # a 10 MB body sent chunked, without a Content-Length

        def chunks():
            yield b'{"text": "'
            for _ in range(10):
                yield b"a" * 2**20
            yield b'"}'

        body = chunks()
    if "content-length" in headers:  # httpx refuses to send a bad one: write the request by hand
        return _raw(base, method, path, body, headers)
    with httpx.Client(base_url=base, timeout=30) as client:
        request = client.build_request(method, path, content=body, headers=headers)
        if path.startswith("/static/.."):  # httpx would normalise the dots away
            request.url = httpx.URL(base + path)
        return client.send(request)


def _raw(base: str, method: str, path: str, body: bytes, headers: dict) -> httpx.Response:
    host, port = base.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n{head}\r\n".encode() + body)
        status_line = connection.recv(65536).split(b"\r\n", 1)[0]
    return httpx.Response(int(status_line.split()[1]))


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "headers", "expected"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_nasty_input_gets_its_answer_and_the_server_lives(
    server, name, method, path, body, headers, expected
) -> None:
    base, _ = server
    response = _send(base, method, path, body, headers)
    assert response.status_code in expected, response.text[:300]
    if response.status_code >= 400 and path.startswith("/v1/") and response.content:
        assert set(response.json()["error"]) == {"code", "message", "request_id"}
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    assert httpx.post(f"{base}/v1/predict", json={"text": "still fine"}, timeout=5).status_code == 200
