"""App fixtures: the real app over a tiny bundle written to a temporary folder."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.bundles import make_bundle
from tests.serving import start_server


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
def server(bundle_dir, tmp_path_factory):
    """A real ``python -m app`` process on a free loopback port; yields (base URL, port)."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as output:
        try:
            process, base, _ = start_server(bundle_dir, output=output)
        except SystemExit as error:
            pytest.fail(f"server never became ready ({error}): {log.read_text()}")
    yield base, int(base.rsplit(":", 1)[1])
    process.terminate()
    process.wait(timeout=10)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# flags for a root, offline, sandboxed CI machine (see the python machine notes)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does this)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements/dev.txt")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
