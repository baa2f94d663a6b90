"""The real server process under load: graceful shutdown on SIGTERM, hot reload on SIGHUP.

Clients open a new connection per request (``Connection: close``), so every outcome is either
an answer or a connection error, and any error or 5xx is counted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections import Counter

import httpx

from tests.bundles import make_bundle
from tests.serving import start_server

TEXT = {"text": "a wonderful , moving film with great acting"}
SLOW_BODY = json.dumps(TEXT).encode()


class Load:
    """``clients`` threads posting predictions until stopped; records every outcome."""

    def __init__(self, base: str, clients: int = 4) -> None:
        self.base = base
        self.outcomes: list[str] = []
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        headers = {"connection": "close"}
        while not self._stop.is_set():
            try:
                response = httpx.post(f"{self.base}/v1/predict", json=TEXT, headers=headers, timeout=10)
                self.outcomes.append(str(response.status_code))
                if response.status_code == 200:
                    self.versions.append(response.json()["model"]["version"])
            except httpx.ConnectError:
                self.outcomes.append("refused")
                time.sleep(0.02)
            except httpx.HTTPError as error:
                self.outcomes.append(type(error).__name__)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def _status(url: str) -> int | str:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.ConnectError:
        return "refused"
    except httpx.TransportError:  # a probe caught by the listener closing (operations/reliability.md)
        return "reset"


def _start_slow_request(base: str) -> socket.socket:
    """A request whose headers are sent now and whose body comes later: in flight until then."""
    host, port = base.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    head = f"POST /v1/predict HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
    connection.sendall(f"{head}content-length: {len(SLOW_BODY)}\r\n\r\n".encode() + SLOW_BODY[:10])
    return connection


def _finish_slow_request(connection: socket.socket) -> bytes:
    connection.sendall(SLOW_BODY[10:])
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    connection.close()
    return answer


def test_sigterm_drains_then_stops_without_losing_a_request(bundle_dir) -> None:
    """SIGTERM: readiness 503 at once; requests still served while a load balancer would notice;
    a request in flight when the listener closes completes; then connections are refused."""
    drain = 2.0
    process, base, _ = start_server(bundle_dir, {"SENTIMENT_DRAIN_S": str(drain)})
    try:
        with Load(base) as load:
            time.sleep(0.5)
            served_before = len(load.outcomes)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            readiness = []
            while time.monotonic() - signalled < drain / 2:  # the balancer's probe period
                readiness.append(_status(f"{base}/readyz"))
                time.sleep(0.05)
            slow = _start_slow_request(base)
        # the balancer has stopped sending; the listener closes at `drain`
        during_drain = Counter(load.outcomes)
        while _status(f"{base}/healthz") != "refused" and time.monotonic() - signalled < drain + 5:
            time.sleep(0.05)
        closed_after = time.monotonic() - signalled
        in_flight = _finish_slow_request(slow)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert readiness[0] == 503 and set(readiness) == {503}  # not ready from the first poll on
    assert set(during_drain) == {"200"} and during_drain["200"] > served_before  # all served
    assert closed_after >= drain  # the listener stayed open for the whole drain
    assert in_flight.startswith(b"HTTP/1.1 200") and b'"label"' in in_flight  # finished after close
    assert code == -signal.SIGTERM  # uvicorn re-raises the signal after its graceful shutdown


def test_sighup_reloads_under_load_and_a_corrupt_bundle_is_rejected(tmp_path) -> None:
    versions = {}
    for version, seed in (("v1", 0), ("v2", 1)):
        folder, _, _ = make_bundle(tmp_path / version, seed=seed)
        card = json.loads((folder / "model_card.json").read_text())
        (folder / "model_card.json").write_text(json.dumps({**card, "version": version}))
        versions[version] = folder
    corrupt, _, _ = make_bundle(tmp_path / "corrupt")
    (corrupt / "model.onnx").write_bytes(b"truncated")
    current = tmp_path / "current"

    def point_to(folder) -> None:  # an atomic switch, as an operator would do it
        link = tmp_path / "next"
        link.symlink_to(folder)
        os.replace(link, current)

    point_to(versions["v1"])
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process, base, _ = start_server(current, output=output)
    try:
        with Load(base) as load:
            time.sleep(0.4)
            point_to(versions["v2"])
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "v2" not in load.versions[-5:] and time.monotonic() < deadline:
                time.sleep(0.05)
            point_to(corrupt)
            process.send_signal(signal.SIGHUP)
            time.sleep(1.0)
            after_corrupt = httpx.post(f"{base}/v1/predict", json=TEXT, timeout=5).json()
            ready = _status(f"{base}/readyz")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert set(load.outcomes) == {"200"}, Counter(load.outcomes)
    assert load.versions[0] == "v1" and load.versions[-1] == "v2"
    assert after_corrupt["model"]["version"] == "v2" and ready == 200
    assert "reload rejected, still serving tiny v2" in log.read_text()
