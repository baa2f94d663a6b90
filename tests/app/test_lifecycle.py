"""The real server process under load: graceful shutdown on SIGTERM, hot reload on SIGHUP.

Clients open a new connection per request (``Connection: close``), so every request either is
refused at connect time or is answered in full: anything else (a reset, a 5xx) is a loss.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import httpx

from bench.service import start_server
from tests.bundles import make_bundle

TEXT = {"text": "a wonderful , moving film with great acting"}


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


def test_sigterm_drains_then_stops_without_losing_a_request(bundle_dir) -> None:
    process, base, _ = start_server(bundle_dir, {"SENTIMENT_DRAIN_S": "1.5"})
    try:
        with Load(base) as load:
            time.sleep(0.5)
            served_before = len(load.outcomes)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            readiness = []
            while time.monotonic() - signalled < 1.0:
                readiness.append(_status(f"{base}/readyz"))
                time.sleep(0.05)
            during = httpx.post(f"{base}/v1/predict", json=TEXT, timeout=5)
            code = process.wait(timeout=30)
            stopped_after = time.monotonic() - signalled
            time.sleep(0.2)
            after = _status(f"{base}/healthz")
    finally:
        if process.poll() is None:
            process.kill()
    outcomes = Counter(load.outcomes)
    assert code == -signal.SIGTERM  # uvicorn re-raises the signal after its graceful shutdown
    assert readiness[0] == 503 and set(readiness) == {503}  # not ready from the first poll on
    assert during.status_code == 200  # still serving while draining
    assert stopped_after >= 1.5
    assert after == "refused"
    assert set(outcomes) <= {"200", "refused"}, outcomes  # nothing lost: no reset, no 5xx
    assert outcomes["200"] > served_before


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
