"""App fixtures: the real app over a tiny bundle written to a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from bench.service import free_port
from tests.bundles import make_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    folder, _, _ = make_bundle(tmp_path_factory.mktemp("bundle") / "tiny", max_tokens=12)
    return folder


@pytest.fixture
def make_client(bundle_dir):
    """A factory: ``make_client(**settings)`` gives a started TestClient."""
    clients = []

    def factory(**overrides) -> TestClient:
        client = TestClient(
            create_app(Settings(model_dir=bundle_dir, **overrides)), raise_server_exceptions=False
        )
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture(scope="module")
def server(bundle_dir):
    """A real ``python -m app`` process on a free loopback port; yields (base URL, port)."""
    port = free_port()
    env = {**os.environ, "SENTIMENT_MODEL_DIR": str(bundle_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"server never became ready: {process.stdout.read()}")
    yield base, port
    process.terminate()
    process.wait(timeout=10)
