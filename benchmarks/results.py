"""One result file per benchmark: ``benchmarks/results/<name>.json``, overwritten by each rerun.

Git keeps the history. Each file holds the figures with what a table needs to say where they
came from: the command, the commit, the date, the machine and any ``SENTIMENT_*`` settings in
the environment (servers started by a benchmark inherit them).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from training.commands import portable, recorded_command  # noqa: F401 (portable: this module's API)

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The checked-out commit (short hash), with "+changes" when tracked files differ from it
    (the figures then come from uncommitted code), or "" outside a git checkout."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    head = done.stdout.strip()
    if head and subprocess.run(["git", "diff", "--quiet", "HEAD"], capture_output=True).returncode == 1:
        head += "+changes"
    return head


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict:
    """What ran the benchmark: CPU, the cores this process may use, Python and onnxruntime."""
    import onnxruntime

    return {
        "cpu": _cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }


def write(name: str, figures: dict, argv: Sequence[str], folder: Path = RESULTS) -> Path:
    """Write ``figures`` as ``folder/<name>.json`` with the command (``python -m benchmarks``
    and ``argv``), commit, date and machine; returns the path."""
    record = {
        "benchmark": name,
        "command": recorded_command("benchmarks", argv),
        "commit": commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        # the service's settings the servers inherit from this environment (SENTIMENT_*), so that
        # a run comparing a setting says which
        "settings": {key: value for key, value in sorted(os.environ.items()) if key.startswith("SENTIMENT_")},
        "figures": figures,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def read(folder: Path = RESULTS) -> dict[str, dict]:
    """Every result file in ``folder`` by benchmark name."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
