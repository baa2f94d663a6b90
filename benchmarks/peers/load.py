"""The load generator of the peer benchmark: ``wrk`` (Debian's) with :file:`check.lua`.

wrk is a C event loop; the Lua script builds each request from a list of real reviews and checks
each answer's label against the label the in-process model gives the same review. One thread per
connection keeps each connection's answers in its requests' order, which is what lets the script
pair them; wrk's threads sleep in epoll, so 64 of them cost little CPU. Its own CPU time is
measured (:func:`run`) and reported, so that what it takes from the server is known.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

SCRIPT = Path(__file__).with_name("check.lua")


def write_reviews(path: Path, texts: Sequence[str], labels: Sequence[str]) -> Path:
    """The script's input: one review a line, its expected label, a tab, the text as JSON."""
    lines = (f"{label}\t{json.dumps(text)}" for text, label in zip(texts, labels, strict=True))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(
    url: str,
    reviews: Path,
    path: str,
    template: str,
    connections: int,
    seconds: int,
    cores: str | None = None,
) -> dict:
    """One wrk run of ``seconds`` at ``connections`` clients against ``url`` + ``path``:
    requests/s, p50/p99 in ms, errors (transport, non-200, wrong label) and wrk's own CPU
    seconds. ``template`` is the JSON body with ``%s`` where the review goes."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    command = [
        "wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
        "-s", str(SCRIPT), url, "--", str(reviews), path, template,
    ]  # fmt: skip
    if cores:
        command = ["taskset", "-c", cores, *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or not last[0].startswith("{"):
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    figures = json.loads(last[0])
    elapsed = figures["duration_us"] / 1e6
    transport = sum(figures[key] for key in ("connect", "read", "write", "timeout"))
    return {
        "clients": connections,
        "requests": figures["requests"],
        "requests_per_s": figures["requests"] / elapsed,
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        # an answer that is not a 200 with the right label, and what never came back
        "errors": figures["wrong"] + transport,
        "checked": figures["checked"],
        "wrk_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "seconds": elapsed,
    }
