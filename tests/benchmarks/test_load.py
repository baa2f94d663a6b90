"""The load test of the issue, in CI: 64 clients for 60 s on the shipped model, nothing fails."""

from __future__ import annotations

from pathlib import Path

from benchmarks.load import run_load
from benchmarks.reviews import BUILT_IN

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "default"


def test_64_clients_for_60_seconds_without_a_failure() -> None:
    figures = run_load(SHIPPED, BUILT_IN, users=64, seconds=60)
    assert figures["locust_exit_code"] == 0
    assert figures["requests"] > 1000  # the load really ran (a few hundred requests a second)
    assert figures["failures"] == 0
    assert figures["server_alive_same_pid"]
