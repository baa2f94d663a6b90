"""The rate limit behind a proxy and across replicas: who the client is, and where counts live.

The shared store is a real ``redis-server`` started here on a free port (no disk, no
persistence); the tests that need it are skipped, and say why, where the binary is absent.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import httpx
import pytest
from pydantic import ValidationError

from app.settings import Settings
from tests.serving import free_port, start_server

redis = pytest.importorskip("redis")

TEXT = {"text": "a dull, lifeless film"}
STORE_ERRORS = "sentiment_rate_limit_store_errors_total"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A real redis-server on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port, folder = free_port(), tmp_path_factory.mktemp("redis")
    # no persistence: nothing written to disk, nothing read back by the next run
    arguments = [
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen([binary, *arguments], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.025)
    else:
        process.kill()
        pytest.fail("redis-server did not answer PING within 5 s")
    yield f"redis://127.0.0.1:{port}", process, client
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def store(redis_server):
    """The shared store's URL, emptied for each test."""
    url, _, client = redis_server
    client.flushall()
    return url


def _predict_codes(client, count: int) -> list[int]:
    return [client.post("/v1/predict", json=TEXT).status_code for _ in range(count)]


def _metric(client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_two_instances_on_one_redis_share_one_allowance(make_client, store) -> None:
    first, second = (
        make_client(rate_limit="3/minute", rate_limit_storage=store, rate_limit_store_timeout_s=2)
        for _ in range(2)
    )
    assert _predict_codes(first, 2) + _predict_codes(second, 1) == [200] * 3
    assert _predict_codes(second, 1) == [429] and _predict_codes(first, 1) == [429]
    assert _metric(first, STORE_ERRORS) == 0 and _metric(second, STORE_ERRORS) == 0


def test_two_instances_in_memory_count_apart(make_client) -> None:
    """The contrast: each process's own memory gives a client the allowance once per replica."""
    first, second = (make_client(rate_limit="3/minute") for _ in range(2))
    assert _predict_codes(first, 3) + _predict_codes(second, 3) == [200] * 6
    assert _predict_codes(first, 1) == [429]


def test_an_unreachable_store_fails_open_and_is_counted(make_client) -> None:
    client = make_client(rate_limit="1/minute", rate_limit_storage=f"redis://127.0.0.1:{free_port()}")
    assert _predict_codes(client, 3) == [200] * 3
    assert _metric(client, STORE_ERRORS) == 3
    assert client.get("/readyz").status_code == 200  # readiness does not depend on the store


def test_a_hung_store_costs_a_request_the_timeout_at_most(make_client, redis_server, store) -> None:
    """A stopped redis-server still accepts connections but never answers: the timeout ends the wait."""
    _, process, direct = redis_server
    client = make_client(rate_limit="2/minute", rate_limit_storage=store, rate_limit_store_timeout_s=0.05)
    assert _predict_codes(client, 1) == [200]  # connected while the store answers
    process.send_signal(signal.SIGSTOP)
    try:
        started = time.perf_counter()
        assert _predict_codes(client, 4) == [200] * 4  # over the limit, but unlimited while it hangs
        per_request = (time.perf_counter() - started) / 4
    finally:
        process.send_signal(signal.SIGCONT)
    assert _metric(client, STORE_ERRORS) == 4
    assert per_request < 0.5, f"{per_request:.3f} s per request while the store hung"
    direct.flushall()  # the hits it queued while stopped ran when it resumed
    assert _predict_codes(client, 3) == [200, 200, 429]  # limited again once the store answers
    assert _metric(client, STORE_ERRORS) == 4


@pytest.mark.parametrize(
    ("trusted", "second_client_code", "counted_as"),
    [("127.0.0.1", 200, "203.0.113.7"), ("192.0.2.1", 429, "127.0.0.1")],
    ids=["trusted-peer", "untrusted-peer"],
)
def test_the_limit_counts_the_forwarded_client_only_from_a_trusted_peer(
    bundle_dir, trusted: str, second_client_code: int, counted_as: str
) -> None:
    """A real ``python -m app``: uvicorn's proxy headers apply through the guarded protocol."""
    env = {"SENTIMENT_RATE_LIMIT": "1/minute", "SENTIMENT_FORWARDED_ALLOW_IPS": trusted}
    process, base, _ = start_server(bundle_dir, env)
    try:
        with httpx.Client(base_url=base) as http:

            def post(client_ip: str) -> httpx.Response:
                return http.post("/v1/predict", json=TEXT, headers={"X-Forwarded-For": client_ip})

            assert post("203.0.113.7").status_code == 200
            assert post("203.0.113.8").status_code == second_client_code
            refused = post("203.0.113.7")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].endswith(f"exceeded for {counted_as}")


@pytest.mark.parametrize(
    "setting",
    [
        {"rate_limit_storage": "mongodb://db:27017"},
        {"rate_limit_storage": "redis-host:6379"},
        {"forwarded_allow_ips": "10.0.0.0/8,proxy.internal"},
    ],
)
def test_bad_proxy_or_store_settings_are_refused_at_start(setting) -> None:
    with pytest.raises(ValidationError):
        Settings(**setting)
