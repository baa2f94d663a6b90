"""The peer benchmark's parts that need no peer installed: wrk's label check, the figures'
arithmetic and their section."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks import render
from benchmarks.peers import harness, load, servers


def _server(wrong_for: str) -> ThreadingHTTPServer:
    """Answers ``{"label": "positive"}`` to every review, "negative" to ``wrong_for``'s."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

        def do_POST(self) -> None:
            text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"]
            body = json.dumps({"label": "negative" if text == wrong_for else "positive"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian: apt-get install wrk)")
@pytest.mark.parametrize("wrong_for", ["nobody writes this", "a dull film"])
def test_wrk_counts_every_wrong_label_as_an_error(tmp_path: Path, wrong_for: str) -> None:
    reviews = load.write_reviews(tmp_path / "r.tsv", ["a fine film", "a dull film"], ["positive", "positive"])
    server = _server(wrong_for)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        row = load.run(url, reviews, "/predict", '{"text": %s}', 2, 1)
    finally:
        server.shutdown()
    assert row["checked"] > 10 and row["requests_per_s"] > 0
    if wrong_for == "a dull film":  # every other review of each connection is answered wrong
        assert abs(row["errors"] - row["checked"] / 2) <= 2
    else:
        assert row["errors"] == 0


def test_an_answer_label_is_read_from_an_object_or_a_list_of_one() -> None:
    assert servers.label_of('{"label": "positive", "score": 0.9}') == "positive"
    assert servers.label_of('[{"label": "negative"}]') == "negative"
    assert servers.label_of("Internal Server Error") is None


def _round(rps: float, cold: float) -> dict:
    row = {"requests_per_s": rps, "p50_ms": 10.0, "p99_ms": 20.0, "errors": 0, "checked": 50}
    rows = [
        {**row, "clients": c, "requests_per_s": rps * c, "wrk_cpu_s": 0.1, "seconds": 5.0} for c in (1, 8)
    ]
    return {"cold_start_s": cold, "load": rows, "rss_mb": 100.0, "pss_mb": 90.0, "processes": 1}


def test_figures_are_medians_and_ranges_over_rounds_and_saturation_is_a_rounds_best() -> None:
    summary = harness.summarise([_round(10, 1.0), _round(30, 3.0), _round(20, 2.0)], (1, 8))
    assert summary["saturation_requests_per_s"] == {"median": 160, "min": 80, "max": 240}
    assert summary["cold_start_s"] == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert summary["load"][0]["requests_per_s"]["median"] == 20
    assert summary["load"][1]["wrk_cores"]["median"] == pytest.approx(0.02)


def test_one_clients_p50_is_compared_round_by_round() -> None:
    fast, slow = _round(10, 1.0), _round(10, 1.0)
    slow["load"][0]["p50_ms"] = 30.0  # the machine slowed down between the rounds
    ours = [fast, slow]
    theirs = [_round(10, 1.0), {**slow, "load": [{**slow["load"][0], "p50_ms": 40.0}]}]
    assert harness.paired_p50_ratio(ours, theirs, 0) == {"median": 0.875, "min": 0.75, "max": 1.0}


def test_the_section_judges_the_service_against_the_ceiling_and_the_peers() -> None:
    service = harness.summarise([_round(20, 1.0)], (1, 32))
    peer = harness.summarise([_round(30, 1.0)], (1, 32))
    figures = {
        "reviews": 2, "median_chars": 10, "rounds": 1, "seconds": 5, "clients": [1, 32],
        "server_cores": "0,1", "load_cores": "0,1",
        "ceiling": {key: {"median": 1000.0, "min": 1000.0, "max": 1000.0} for key in ("threads_2", "threads_1")},  # noqa: E501
        "service_over_ceiling": {"median": 0.64, "min": 0.64, "max": 0.64},
        "servers": {
            "service": {"batching": "its defaults", "size_mb": 1.0, **service},
            "peer": {"batching": "none", "size_mb": 1.0, **peer},
        },
    }  # fmt: skip
    targets = {row[0].split(" (")[0]: row for row in render.peers_targets(figures)}
    assert targets["service saturation ≥ 0.7 × in-process batched ceiling"][2] == "**no**"
    assert targets["saturation ahead of every peer"][1:] == ["160 vs 240", "**no**"]
    assert "| peer | 32 | 240 (240–240) |" in "\n".join(render.SECTIONS["peers"](figures))


def test_one_clients_p50_is_judged_against_the_old_defaults_and_overlapping_ranges_are_said() -> None:
    def server(rounds: list[tuple[float, float]]) -> dict:
        """Rounds of (p50, p99) at 1 and 32 clients, 10 requests/s."""
        made = []
        for p50, p99 in rounds:
            row = {"requests_per_s": 10.0, "p50_ms": p50, "p99_ms": p99, "errors": 0, "checked": 5}
            made.append(
                {
                    "cold_start_s": 1.0, "rss_mb": 1.0, "pss_mb": 1.0, "processes": 1,
                    "load": [{**row, "clients": c, "wrk_cpu_s": 0.1, "seconds": 5.0} for c in (1, 32)],
                }
            )  # fmt: skip
        return {"batching": "", "size_mb": 1.0, **harness.summarise(made, (1, 32))}

    figures = {
        "service_over_ceiling": {"median": 0.8, "min": 0.8, "max": 0.8},
        "one_client_p50_over_before": {"median": 1.25, "min": 1.1, "max": 1.3},
        "servers": {
            "service": server([(7.0, 280.0), (8.0, 300.0)]),
            "service-before": server([(6.0, 400.0), (6.0, 400.0)]),
            "peer": server([(9.0, 250.0), (9.0, 290.0)]),
        },
    }
    targets = {row[0].split(" (")[0]: row for row in render.peers_targets(figures)}
    one_client = targets["one client's p50 ≤ 1.2 × the defaults before issue 28"]
    assert one_client[1:] == ["1.25 (1.10–1.30) ×", "**no**"]
    figures["one_client_p50_over_before"] = {"median": 1.05, "min": 0.85, "max": 1.52}  # one slow round
    targets = {row[0].split(" (")[0]: row for row in render.peers_targets(figures)}
    assert targets["one client's p50 ≤ 1.2 × the defaults before issue 28"][2] == "within noise"
    figures["one_client_p50_over_before"] = {"median": 1.05, "min": 0.85, "max": 1.15}
    targets = {row[0].split(" (")[0]: row for row in render.peers_targets(figures)}
    assert targets["one client's p50 ≤ 1.2 × the defaults before issue 28"][2] == "yes"
    # the old defaults are the service's own arm, not a peer to beat
    assert targets["p99 at 32 clients below every peer's"][1:] == ["290 vs 270 ms", "**no** (ranges overlap)"]
    figures["servers"]["peer"] = server([(9.0, 310.0), (9.0, 320.0)])
    targets = {row[0].split(" (")[0]: row for row in render.peers_targets(figures)}
    assert targets["p99 at 32 clients below every peer's"][2] == "yes"
    assert targets["saturation ahead of every peer"][2] == "**no** (ranges overlap)"  # 10 vs 10
