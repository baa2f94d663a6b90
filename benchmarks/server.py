"""The server under measurement: ``python -m app`` started as the tests start it, and what the
kernel says about it (peak and current memory, CPU time)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.serving import start_server


@contextmanager
def running(
    bundle: Path, env: dict[str, str] | None = None, source: Path | None = None
) -> Iterator[tuple[subprocess.Popen, str, float]]:
    """``(process, base URL, seconds to ready)`` of a server of ``bundle`` with ``env`` over our
    environment, running the code in ``source`` (another checkout) when given; stopped after."""
    process, base, ready_s = start_server(bundle, env, source=source)
    try:
        yield process, base, ready_s
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def port_of(base: str) -> int:
    """The port of a base URL such as ``http://127.0.0.1:8000``."""
    return int(base.rsplit(":", 1)[1])


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (Linux VmHWM, the kernel's high-water mark), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def rss_mb(pid: int) -> float:
    """The process's resident set now, in MB."""
    return psutil.Process(pid).memory_info().rss / 2**20


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system
