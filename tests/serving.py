"""A real ``python -m app`` process on a free loopback port, as a user starts it.

The tests that need a server process (start-up, signals, connections, reload) start it here;
so do the benchmarks (``benchmarks.server``), so that both measure the server as a user runs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    bundle: Path,
    env: dict[str, str] | None = None,
    output: IO | None = None,
    source: Path | None = None,
) -> tuple[subprocess.Popen, str, float]:
    """A server process, its base URL, and seconds from launch until ``/readyz`` answered 200.

    It runs the code in ``source`` (a checkout of this repository) when given, else ours, with
    ``env`` over this process's environment. The server logs at ``--log-level info`` into
    ``output`` when given, else at ``warning`` to ours, unless ``env`` sets
    ``SENTIMENT_LOG_LEVEL``, which the server then reads as it would without the flag. Raises
    ``SystemExit`` when the server exits first or is not ready within 60 s.
    """
    port = free_port()
    # absolute for a server in another checkout; not resolved, so that a symlinked bundle
    # folder stays the operator's switch that SIGHUP reads again
    environment = {**os.environ, "SENTIMENT_MODEL_DIR": str(Path(bundle).absolute()), **(env or {})}
    started = time.perf_counter()
    level = [] if "SENTIMENT_LOG_LEVEL" in (env or {}) else ["--log-level", "info" if output else "warning"]
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), *level],
        env=environment,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        cwd=source,  # ``-m`` imports from the working folder first
    )
    base = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < 60:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
                connection.sendall(b"GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                if connection.recv(32).startswith(b"HTTP/1.1 200"):
                    return process, base, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    process.kill()
    raise SystemExit("the server did not become ready within 60 s")
