"""``python -m benchmarks load``: locust, headless, against a real server on loopback, bounded in time.

    python -m benchmarks load --data ../shared/data/aclImdb_v1.tar.gz --users 64 --seconds 60

Starts ``python -m app``, runs ``locust`` (:mod:`benchmarks.locustfile`) with ``--users``
clients that send back to back for ``--seconds``, and records requests served, failures,
requests/s, p50/p99/max latency, the server's peak RSS and whether it restarted (its PID
changed or it exited). The command exits 1 on any failed request or a restart. Without
``--data`` (or ``$IMDB_DATA``) the texts are built-in short reviews. The same locust file loads
any deployment: ``LOAD_TEXTS=texts.json locust -f benchmarks/locustfile.py --host URL``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from benchmarks import reviews, server

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def run_load(bundle: Path, texts: list[str], users: int, seconds: int, env: dict | None = None) -> dict:
    """Serve ``bundle``, load it with ``users`` locust clients for ``seconds``, and return the figures."""
    with tempfile.TemporaryDirectory() as folder:
        texts_file = Path(folder) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        with server.running(bundle, env) as (process, base, _):
            pid = process.pid
            command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base]
            command += ["--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s"]
            command += ["--csv", f"{folder}/load", "--only-summary", "--loglevel", "WARNING"]
            locust = subprocess.run(
                command,
                env={**os.environ, "LOAD_TEXTS": str(texts_file)},
                capture_output=True,
                text=True,
                timeout=seconds + 120,
            )
            alive = process.poll() is None and psutil.pid_exists(pid)
            peak_mb = server.peak_rss_mb(pid) if alive else float("nan")
        rows = list(csv.DictReader(Path(f"{folder}/load_stats.csv").read_text().splitlines()))
    total = next(row for row in rows if row["Name"] == "Aggregated")
    return {
        "users": users,
        "seconds": seconds,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "requests_per_s": float(total["Requests/s"]),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
        "max_ms": float(total["Max Response Time"]),
        "server_peak_rss_mb": peak_mb,
        "server_alive_same_pid": alive,
        "locust_exit_code": locust.returncode,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--users", type=int, default=64, help="concurrent clients")
    parser.add_argument("--seconds", type=int, default=60, help="duration")


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/load.json``."""
    data = args.data or os.environ.get("IMDB_DATA")
    texts = reviews.review_texts(data, 2000) if data and Path(data).exists() else reviews.BUILT_IN
    return run_load(args.bundle, texts, args.users, args.seconds)


def held(figures: dict) -> bool:
    """No failed request, and the same server process throughout."""
    return figures["failures"] == 0 and figures["server_alive_same_pid"]
