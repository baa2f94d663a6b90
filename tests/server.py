"""A real ``python -m app`` process for the tests that need one (sockets, signals, uvicorn)."""

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
    bundle: Path, env: dict[str, str] | None = None, output: IO | None = None
) -> tuple[subprocess.Popen, str, float]:
    """A server process serving ``bundle``, its base URL, and seconds from launch until
    ``/readyz`` answered 200. It logs at ``info`` into ``output`` when given, else at ``warning``
    to ours; :class:`SystemExit` when it exits or is not ready within 60 s."""
    port = free_port()
    # not resolved: a symlinked bundle folder stays the operator's switch that SIGHUP reads again
    environment = {**os.environ, "SENTIMENT_MODEL_DIR": str(Path(bundle).absolute()), **(env or {})}
    started = time.perf_counter()
    level = "info" if output else "warning"
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--log-level", level],
        env=environment,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
    )
    while time.perf_counter() - started < 60:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
                connection.sendall(b"GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                if connection.recv(32).startswith(b"HTTP/1.1 200"):
                    return process, f"http://127.0.0.1:{port}", time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    process.kill()
    raise SystemExit("the server did not become ready within 60 s")
