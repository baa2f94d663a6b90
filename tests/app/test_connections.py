"""The connection guard of a real ``python -m app``: slow, huge, unfinished and surplus requests.

The server runs with short deadlines and small limits so that each case ends in well under a
second; what is checked is what the client sees (the status line, the connection closed) and
what the operator sees (the metrics), not how fast.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.serving import start_server

TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def guarded(bundle_dir):
    """A server with 0.5 s header and body deadlines, 2 KB of headers, 8 connections, 1 in flight."""
    settings = {
        "SENTIMENT_HEADER_TIMEOUT_S": str(TIMEOUT_S),
        "SENTIMENT_BODY_TIMEOUT_S": str(TIMEOUT_S),
        "SENTIMENT_MAX_HEADER_BYTES": "2048",
        "SENTIMENT_MAX_CONNECTIONS": "8",
        "SENTIMENT_MAX_IN_FLIGHT": "1",
        "SENTIMENT_DRAIN_S": "0",
    }
    process, base, _ = start_server(bundle_dir, settings)
    yield base, int(base.rsplit(":", 1)[1])
    process.terminate()
    process.wait(timeout=10)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _read_until_closed(connection: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    started, answer = time.monotonic(), b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer, time.monotonic() - started


def _metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # a connection that sends nothing
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",  # slowloris: headers never end
        b"GET /healthz\r\n",  # an HTTP/0.9 request line, which the parser waits on
    ],
    ids=["idle", "slowloris", "http-0.9"],
)
def test_unfinished_headers_get_a_408_and_are_closed(guarded, sent: bytes) -> None:
    _, port = guarded
    with _connect(port) as connection:
        connection.sendall(sent)
        answer, seconds = _read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert b'"request_timeout"' in answer
    assert seconds < TIMEOUT_S + 3  # closed by the deadline, not held open


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{",
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",  # no final chunk
    ],
    ids=["content-length", "chunked"],
)
def test_an_unfinished_body_gets_a_408_and_counts_as_no_server_error(guarded, head: bytes) -> None:
    base, port = guarded
    errors_before = _metric(base, "http_requests_total", status="5xx")
    gone_before = _metric(base, "http_client_disconnects_total", handler="/v1/predict")
    with _connect(port) as connection:
        connection.sendall(head)
        answer, seconds = _read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert seconds < TIMEOUT_S + 3
    time.sleep(0.2)  # the app sees the disconnect once the connection is closed
    assert _metric(base, "http_requests_total", status="5xx") == errors_before
    assert _metric(base, "http_client_disconnects_total", handler="/v1/predict") == gone_before + 1
    assert _metric(base, "sentiment_connections_closed_total", reason="body_timeout") >= 1


def test_a_client_that_aborts_its_upload_is_a_disconnect_not_a_5xx(guarded) -> None:
    base, port = guarded
    gone_before = _metric(base, "http_client_disconnects_total", handler="/v1/predict")
    with _connect(port) as connection:
        connection.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.05)
    for _ in range(50):  # the server notices the close at once; the metric follows
        if _metric(base, "http_client_disconnects_total", handler="/v1/predict") > gone_before:
            break
        time.sleep(0.02)
    assert _metric(base, "http_client_disconnects_total", handler="/v1/predict") == gone_before + 1
    assert _metric(base, "http_requests_total", status="5xx") == 0


@pytest.mark.parametrize("whole", [True, False], ids=["in-one-read", "unfinished"])
def test_headers_over_the_limit_get_a_431(guarded, whole: bool) -> None:
    base, port = guarded
    with _connect(port) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096)
        if whole:
            connection.sendall(b"\r\n\r\n")
        answer, _ = _read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert _metric(base, "sentiment_connections_closed_total", reason="header_size") >= 1
    # headers under the limit, sent in pieces, are fine
    assert httpx.get(f"{base}/healthz", headers={"x-fine": "a" * 1500}).status_code == 200


def test_connections_beyond_the_cap_are_closed_at_once(guarded) -> None:
    base, port = guarded
    held = [_connect(port) for _ in range(8)]
    try:
        time.sleep(0.1)
        with _connect(port) as surplus:
            answer, seconds = _read_until_closed(surplus)
        assert answer == b"" and seconds < TIMEOUT_S  # closed on accept, before any deadline
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.2)
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert _metric(base, "sentiment_connections_closed_total", reason="connections") >= 1


def test_a_slow_body_holds_no_in_flight_slot(guarded) -> None:
    """With one slot in flight, a body still arriving must not lock out a complete request."""
    base, port = guarded
    with _connect(port) as slow:
        slow.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        time.sleep(0.05)
        response = httpx.post(f"{base}/v1/predict", json={"text": "a wonderful film"})
        assert response.status_code == 200


def test_keep_alive_requests_still_work(guarded) -> None:
    base, _ = guarded
    with httpx.Client(base_url=base) as client:
        for _ in range(3):
            assert client.post("/v1/predict", json={"text": "a wonderful film"}).status_code == 200
            time.sleep(TIMEOUT_S * 1.5)  # idle between requests: the keep-alive timer's, not ours
