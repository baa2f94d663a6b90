"""Hostile clients against a real server: the figures the service must hold under each attack.

    python -m benchmarks hostile [--bundle models/default] [--source OTHER_CHECKOUT]

Each scenario starts ``python -m app`` on a loopback port with the shipped model and its
default settings, attacks it as issue 22 reproduced, and measures from outside, as a client
and an operator would: the server's peak RSS (the kernel's high-water mark, VmHWM), its CPU
time, and the answers and latencies of well-behaved clients beside the attackers.

- ``saliency``: 16 concurrent saliency maps of the longest trace while one client predicts;
- ``slow_clients``: 260 slow bodies (1 byte/s) and 200 slowloris headers while one client predicts;
- ``long_predictions``: 8 saliency maps while one client posts 30,000-character reviews;
- ``normalisation``: 16 clients posting U+FDFA x 19,999 (18-fold under NFKC) while /healthz is probed;
- ``headers``: a 64 MB header, then four unfinished 100 MB headers, while one client predicts.

Every figure is written to ``benchmarks/results/hostile.json`` with the bound it must hold, and
with each scenario's run time; the command exits 1 when one does not hold (CI runs it). Each
scenario also has a bound showing that its attack ran (saliency maps admitted, flood requests
answered, slowloris connections closed), so that none holds because the attack never happened.
The timeouts it waits past are the server's settings, read from the same environment. The load
comes from plain sockets and ``http.client`` in threads: cheap, so most of the machine's two
cores are the server's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.settings import Settings
from benchmarks.server import cpu_seconds, peak_rss_mb, port_of, rss_mb, running

REVIEW = (
    "A beautifully shot film with a story that stays with you. The acting is superb, the score "
    "swells at just the right moments, and I loved every minute of it, though the middle drags."
)
LONG_TEXT = " ".join(["good", "bad", "film", "dull", "great", "plot"] * 120)  # over 400 tokens


@dataclass(frozen=True)
class Server:
    """What to attack: ``bundle`` served by the code in ``source`` (None: this checkout), with
    ``settings``: those of this environment, which the server is started with."""

    bundle: Path
    source: Path | None = None
    settings: Settings = field(default_factory=Settings)


class Client:
    """One keep-alive HTTP connection to the server, posting JSON; reconnects when closed."""

    def __init__(self, port: int, timeout: float = 30) -> None:
        self.port, self.timeout = port, timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, float]:
        """``(status, seconds)``; status 0 when the connection failed."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        started = time.perf_counter()
        try:
            self.connection.request(method, path, payload, headers)
            response = self.connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            status = 0
        return status, time.perf_counter() - started


class Probe:
    """A client repeating one request in a thread until stopped, recording statuses and latencies."""

    def __init__(self, port: int, method: str, path: str, body: dict | None, pause: float = 0.0) -> None:
        self.results: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port, method, path, body, pause), daemon=True)

    def _run(self, port: int, method: str, path: str, body: dict | None, pause: float) -> None:
        client = Client(port)
        while not self._stop.is_set():
            self.results.append(client.call(method, path, body))
            if pause:
                time.sleep(pause)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def summary(self) -> dict:
        """Count, share of 200s, p50 and p99 in ms."""
        statuses = [status for status, _ in self.results]
        latencies = np.array([seconds for _, seconds in self.results]) * 1000
        return {
            "requests": len(statuses),
            "ok_share": statuses.count(200) / max(1, len(statuses)),
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
            "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
        }


def _unloaded_p99(port: int, body: dict, count: int = 300) -> float:
    client = Client(port)
    for _ in range(20):  # warm the connection and the model's buffers
        client.call("POST", "/v1/predict", body)
    latencies = [client.call("POST", "/v1/predict", body)[1] for _ in range(count)]
    return float(np.percentile(np.array(latencies) * 1000, 99))


def _statuses(answers: list[tuple[int, float]]) -> dict[str, int]:
    statuses = [status for status, _ in answers]
    return {str(s): statuses.count(s) for s in sorted(set(statuses))}


def _admitted(statuses: dict[str, int]) -> int:
    """Requests past the trace pool's 429: answered (200) or stopped at their deadline (504).
    With one trace worker, the first admitted starts at once, so one means saliency ran."""
    return statuses.get("200", 0) + statuses.get("504", 0)


def _in_threads(count: int, work: Callable[[int], object]) -> list:
    """``work(i)`` for i < count, all at once in threads; their results in order."""
    results: list = [None] * count

    def run(index: int) -> None:
        results[index] = work(index)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@contextmanager
def _server(server: Server):
    # no drain period at the end: nothing balances load here, and it would add 5 s a scenario
    with running(server.bundle, {"SENTIMENT_DRAIN_S": "0"}, server.source) as (process, base, _):
        yield process, port_of(base)


def saliency(server: Server) -> dict:
    """16 concurrent saliency maps of the longest trace, one client predicting beside them."""
    with _server(server) as (process, port):
        unloaded = _unloaded_p99(port, {"text": REVIEW})
        timeout = server.settings.request_timeout_s
        started = time.monotonic()
        with Probe(port, "POST", "/v1/predict", {"text": REVIEW}) as probe:
            answers = _in_threads(
                16, lambda _: Client(port).call("POST", "/v1/trace/saliency", {"text": LONG_TEXT})
            )
        last_deadline = started + timeout
        time.sleep(max(0.0, last_deadline + 1 - time.monotonic()))
        before = cpu_seconds(process.pid)
        time.sleep(1.0)
        cpu_after_deadline = cpu_seconds(process.pid) - before
        statuses = _statuses(answers)
        loaded = probe.summary()
        return {
            "saliency_statuses": statuses,
            "saliency_admitted": _admitted(statuses),
            "peak_rss_mb": peak_rss_mb(process.pid),
            "predict_unloaded_p99_ms": unloaded,
            "predict_during": loaded,
            "predict_p99_ratio": loaded["p99_ms"] / unloaded,
            "server_cpu_s_in_the_second_after_deadline_plus_1s": cpu_after_deadline,
        }


def _open_slow_attackers(port: int, slow_bodies: int, slowloris: int) -> list[socket.socket]:
    sockets = []
    for index in range(slow_bodies + slowloris):
        connection = socket.create_connection(("127.0.0.1", port))
        if index < slow_bodies:
            connection.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{"
            )
        else:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sockets.append(connection)
    return sockets


def _trickle(sockets: list[socket.socket], stop: threading.Event, bodies: int) -> list[int]:
    """One byte a second on every socket until ``stop``; the count each sent before it closed."""
    sent = [0] * len(sockets)
    open_ = set(range(len(sockets)))
    while not stop.wait(1.0):
        for index in list(open_):
            try:
                sockets[index].sendall(b" " if index < bodies else b"X")
                sent[index] += 1
            except OSError:
                open_.discard(index)
    return sent


def slow_clients(server: Server) -> dict:
    """260 slow bodies and 200 slowloris connections; one client predicting beside them."""
    bodies, loris = 260, 200
    seconds = server.settings.header_timeout_s + 1.0  # past the header timeout
    with _server(server) as (process, port):
        attackers = _open_slow_attackers(port, bodies, loris)
        stop = threading.Event()
        trickler = threading.Thread(target=_trickle, args=(attackers, stop, bodies), daemon=True)
        trickler.start()
        with Probe(port, "POST", "/v1/predict", {"text": REVIEW}, pause=0.01) as probe:
            time.sleep(seconds)
        stop.set()
        trickler.join()
        closed = sum(_closed_by_server(connection) for connection in attackers[bodies:])
        for connection in attackers:
            connection.close()
        return {
            "slow_bodies": bodies,
            "slowloris": loris,
            "seconds": seconds,
            "predict_during": probe.summary(),
            "slowloris_closed_by_server": closed,
            "peak_rss_mb": peak_rss_mb(process.pid),
        }


def _closed_by_server(connection: socket.socket) -> bool:
    connection.setblocking(False)
    try:
        while True:
            data = connection.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def long_predictions(server: Server) -> dict:
    """8 saliency maps, one client posting 30,000-character reviews beside them."""
    text = (REVIEW + " ") * (30_000 // (len(REVIEW) + 1))
    with _server(server) as (_, port):
        client = Client(port)
        client.call("POST", "/v1/predict", {"text": text})
        unloaded = [client.call("POST", "/v1/predict", {"text": text})[1] * 1000 for _ in range(20)]
        with Probe(port, "POST", "/v1/predict", {"text": text}) as probe:
            answers = _in_threads(
                8, lambda _: Client(port).call("POST", "/v1/trace/saliency", {"text": LONG_TEXT})
            )
        statuses = _statuses(answers)
        return {
            "characters": len(text),
            "predict_unloaded_p50_ms": float(np.median(unloaded)),
            "predict_during": probe.summary(),
            "saliency_statuses": statuses,
            "saliency_admitted": _admitted(statuses),
        }


def normalisation(server: Server) -> dict:
    """16 clients posting text that grows 18-fold under NFKC; /healthz probed beside them."""
    body = {"text": "\ufdfa" * 19_999}
    with _server(server) as (_, port):
        stop = threading.Event()
        counts = [0] * 16

        def flood(index: int) -> None:
            client = Client(port)
            while not stop.is_set():
                status, _ = client.call("POST", "/v1/predict", body)
                counts[index] += status == 200

        flooders = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(16)]
        for thread in flooders:
            thread.start()
        time.sleep(0.5)
        with Probe(port, "GET", "/healthz", None, pause=0.02) as probe:
            time.sleep(4.0)
        stop.set()
        for thread in flooders:
            thread.join(timeout=30)
        return {"flood_predictions_ok": sum(counts), "healthz_during": probe.summary()}


def _send_header(port: int, megabytes: int, finish: bool) -> tuple[socket.socket, float, bytes]:
    """Send a header of ``megabytes`` MB; the socket, seconds until refused or sent, the answer."""
    connection = socket.create_connection(("127.0.0.1", port))
    started = time.perf_counter()
    answer = b""
    try:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: ")
        chunk = b"a" * (1 << 20)
        for _ in range(megabytes):
            connection.sendall(chunk)
        if finish:
            connection.sendall(b"\r\n\r\n")
        connection.settimeout(5)
        answer = connection.recv(200)
    except OSError:
        pass
    return connection, time.perf_counter() - started, answer


def headers(server: Server) -> dict:
    """A 64 MB header, then four unfinished 100 MB ones; one client predicting beside them."""
    with _server(server) as (process, port):
        unloaded = _unloaded_p99(port, {"text": REVIEW})
        peak_before, rss_before = peak_rss_mb(process.pid), rss_mb(process.pid)
        with Probe(port, "POST", "/v1/predict", {"text": REVIEW}) as probe:
            big, seconds, answer = _send_header(port, 64, finish=True)
            big.close()
            unfinished = _in_threads(4, lambda _: _send_header(port, 100, finish=False))
            for connection, _, _ in unfinished:
                connection.close()
            time.sleep(0.5)
        loaded = probe.summary()
        return {
            "big_header_refused_in_s": seconds,
            "big_header_answer": answer.split(b"\r\n", 1)[0].decode(errors="replace"),
            "unfinished_headers_refused_in_s": max(took for _, took, _ in unfinished),
            "peak_rss_growth_mb": peak_rss_mb(process.pid) - peak_before,
            "rss_growth_mb": rss_mb(process.pid) - rss_before,
            "predict_unloaded_p99_ms": unloaded,
            "predict_during": loaded,
            "predict_p99_ratio": loaded["p99_ms"] / unloaded,
        }


# Each "must hold" of issue 22, and that each attack ran:
# (scenario, figure's path in its results, comparison, bound)
BOUNDS: list[tuple[str, str, str, float]] = [
    ("saliency", "saliency_admitted", ">=", 1),
    ("saliency", "peak_rss_mb", "<=", 512),
    ("saliency", "predict_during.ok_share", ">=", 1.0),
    ("saliency", "predict_p99_ratio", "<=", 10),
    ("saliency", "server_cpu_s_in_the_second_after_deadline_plus_1s", "<=", 0.1),
    ("slow_clients", "slowloris_closed_by_server", ">=", 200),
    ("slow_clients", "predict_during.ok_share", ">=", 0.99),
    ("long_predictions", "saliency_admitted", ">=", 1),
    ("long_predictions", "predict_during.ok_share", ">=", 1.0),
    ("normalisation", "flood_predictions_ok", ">=", 1),
    ("normalisation", "healthz_during.p99_ms", "<=", 100),
    ("normalisation", "healthz_during.ok_share", ">=", 1.0),
    ("headers", "big_header_refused_in_s", "<=", 1.0),
    ("headers", "unfinished_headers_refused_in_s", "<=", 1.0),
    ("headers", "peak_rss_growth_mb", "<=", 50),
    ("headers", "rss_growth_mb", "<=", 50),
    ("headers", "predict_during.ok_share", ">=", 1.0),
    ("headers", "predict_p99_ratio", "<=", 10),
]


def check(results: dict) -> list[dict]:
    """Each bound, the figure measured, and whether it held."""
    checks = []
    for scenario, path, comparison, bound in BOUNDS:
        value = results[scenario]
        for key in path.split("."):
            value = value[key]
        held = value <= bound if comparison == "<=" else value >= bound
        checks.append(
            {"figure": f"{scenario}.{path}", "value": value, "bound": f"{comparison} {bound}", "held": held}
        )
    return checks


SCENARIOS = {
    "saliency": saliency,
    "slow_clients": slow_clients,
    "long_predictions": long_predictions,
    "normalisation": normalisation,
    "headers": headers,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--source", type=Path, help="attack another checkout's server (an older commit)")


def run(args: argparse.Namespace) -> dict:
    """Every scenario's figures, each bound with the figure measured against it, and the
    seconds each scenario took (server start and stop included) and all of them together."""
    server = Server(args.bundle.absolute(), args.source)
    results: dict = {}
    seconds: dict[str, float] = {}
    for name, scenario in SCENARIOS.items():
        started = time.perf_counter()
        results[name] = scenario(server)
        seconds[name] = time.perf_counter() - started
        print(f"{name} ({seconds[name]:.1f} s): {json.dumps(results[name])}", flush=True)
    seconds["total"] = sum(seconds.values())
    return {"results": results, "checks": check(results), "seconds": seconds}


def held(figures: dict) -> bool:
    """Whether every bound held."""
    return all(item["held"] for item in figures["checks"])
