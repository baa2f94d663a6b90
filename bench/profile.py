"""Where the server's threads spend their time under load: py-spy samples, summed by function.

    python -m bench.profile --data ../shared/data/aclImdb_v1.tar.gz --clients 32 --seconds 20

Starts ``python -m app``, loads it with ``--clients`` clients sending real test reviews back to
back, records the server with py-spy (``py-spy record --threads --format raw``: one collapsed
stack per line) and prints, for the event-loop thread and for all threads together, the share
of samples spent inside each function (inclusive: a function counts when it is anywhere on the
stack). This is how the thread-pool hop of plain ``def`` dependencies and FastAPI's per-request
OpenTelemetry lookups were found (docs/levers.md). py-spy needs to be allowed to read another
process's memory (ptrace); as root, or with ``kernel.yama.ptrace_scope`` at 0, it is.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench import cli
from bench.service import load, serving

EVENT_LOOP = "MainThread"  # uvicorn runs the event loop in the main thread
_LINE = re.compile(r":\d+\)$")  # "predict (app/api/v1.py:26)" -> "predict (app/api/v1.py)"


def inclusive_shares(lines: Iterable[str], thread: str | None = None) -> tuple[int, list[tuple[float, str]]]:
    """Samples, and (share of samples, function) for every function, most frequent first (ties by name).

    ``lines`` are py-spy's raw collapsed stacks, ``thread (TID): NAME;frame;frame... COUNT``;
    with ``thread`` only the stacks of threads of that name count. A frame is named by its
    function and file (``predict (app/api/v1.py)``), so a function's lines are summed.
    """
    totals: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        head, *frames = stack.split(";")
        if thread is not None and head.split(": ", 1)[-1] != thread:
            continue
        samples += int(count)
        seen = {_LINE.sub(")", frame) for frame in frames}
        for frame in seen:
            totals[frame] += int(count)
    # ties by name: a set orders by string hash, which differs between processes
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return samples, [(count / samples, frame) for frame, count in ranked]


def record(bundle: Path, texts: list[str], clients: int, seconds: float, env: dict[str, str]) -> list[str]:
    """py-spy's raw stacks of a server while ``clients`` clients load it for about ``seconds``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with serving(bundle, env) as (process, base, _):
        asyncio.run(load(base, texts[:64], 4))  # warm-up
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "stacks.txt"
            profiler = subprocess.Popen(
                [spy, "record", "-p", str(process.pid), "--threads", "--rate", "200", "--format", "raw",
                 "--output", str(out), "--duration", str(int(seconds) + 2), "--nonblocking"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                asyncio.run(load(base, texts, clients))
            if profiler.wait(timeout=seconds + 60) != 0:
                raise SystemExit("py-spy failed (it needs ptrace permission; see this module's docstring)")
            return out.read_text().splitlines()


def print_profile(figures: dict) -> None:
    """Human-readable lines."""
    for name in ("event_loop", "all_threads"):
        part = figures[name]
        print(f"{name.replace('_', ' ')}: {part['samples']} samples; inclusive share by function")
        for share, frame in part["functions"][: figures["top"]]:
            print(f"  {100 * share:5.1f} %  {frame}")


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    parser = cli.parser("py-spy profile of the server under load, summed by function.")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load to record")
    parser.add_argument("--requests", type=int, default=600, help="real test reviews to send in turn")
    parser.add_argument("--top", type=int, default=40, help="functions to print per part")
    args = parser.parse_args(argv)
    texts = cli.review_texts(args.data, args.requests)
    lines = record(args.bundle, texts, args.clients, args.seconds, {})
    figures: dict = {"clients": args.clients, "top": args.top}
    for name, thread in (("event_loop", EVENT_LOOP), ("all_threads", None)):
        samples, functions = inclusive_shares(lines, thread)
        figures[name] = {"samples": samples, "functions": functions}
    cli.publish(figures, print_profile, args.json)


if __name__ == "__main__":
    main()
