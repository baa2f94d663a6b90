"""Load test: locust headless against a real server on loopback, bounded in time.

    python -m bench.loadtest --data ../shared/data/aclImdb_v1.tar.gz --users 64 --seconds 60

Starts ``python -m app``, runs ``locust`` with ``--users`` clients that send back to back for
``--seconds``, and prints requests served, failures, requests/s, p50/p99/max latency, the
server's peak RSS and whether it restarted (its PID changed or it exited). Without ``--data``
(or ``$IMDB_DATA``) the texts are built-in short reviews.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psutil

from bench import cli
from bench.service import PeakRss, serving

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
BUILT_IN = [
    "A wonderful, moving film with great acting and a superb story.",
    "An awful, boring mess. The worst acting I have seen in years.",
    "I loved it! Brilliant and funny, a great great movie.",
    "Terrible plot, dull characters; I hated every minute of it.",
    "Not bad, not great. The second half drags, but the ending works.",
]


def run_load(bundle: Path, texts: list[str], users: int, seconds: int, env: dict | None = None) -> dict:
    """Serve ``bundle``, load it, and return the figures."""
    with tempfile.TemporaryDirectory() as folder:
        texts_file = Path(folder) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        with serving(bundle, env) as (process, base, _):
            pid = process.pid
            command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base]
            command += ["--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s"]
            command += ["--csv", f"{folder}/load", "--only-summary", "--loglevel", "WARNING"]
            with PeakRss(pid) as rss:
                locust = subprocess.run(
                    command,
                    env={**os.environ, "LOAD_TEXTS": str(texts_file)},
                    capture_output=True,
                    text=True,
                    timeout=seconds + 120,
                )
            alive = process.poll() is None and psutil.pid_exists(pid)
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
        "server_peak_rss_mb": rss.peak,
        "server_alive_same_pid": alive,
        "locust_exit_code": locust.returncode,
    }


def print_load(figures: dict) -> None:
    """Human-readable line."""
    print(
        f"{figures['users']} clients for {figures['seconds']} s: {figures['requests']} requests, "
        f"{figures['failures']} failed, {figures['requests_per_s']:.0f} req/s, "
        f"p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, max {figures['max_ms']:.0f} ms; "
        f"server peak RSS {figures['server_peak_rss_mb']:.0f} MB, "
        f"{'no restart' if figures['server_alive_same_pid'] else 'RESTARTED'}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("Locust load test of /v1/predict on loopback.")
    parser.add_argument("--users", type=int, default=64, help="concurrent clients")
    parser.add_argument("--seconds", type=int, default=60, help="duration")
    args = parser.parse_args(argv)
    texts = BUILT_IN
    data = args.data or os.environ.get("IMDB_DATA")
    if data and Path(data).exists():
        texts = cli.review_texts(data, 2000)
    figures = run_load(args.bundle, texts, args.users, args.seconds)
    cli.publish(figures, print_load, args.json)
    if figures["failures"] or not figures["server_alive_same_pid"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
