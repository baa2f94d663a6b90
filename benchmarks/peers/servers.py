"""The servers of the peer benchmark: how each is installed, started, asked and stopped.

Each runs from its own virtual environment, ``.peers/<name>/`` (git-ignored), made here from
its pinned requirements file (the service's from ``requirements/serve.txt``, the others' from
``benchmarks/peers/requirements/<name>.txt``), with the repository on ``PYTHONPATH``. Each is
started pinned to the server cores, in a session of its own, so that stopping it ends every
process it started (Ray's raylet and workers, LitServe's and BentoML's workers, TorchServe's
Java frontend and Python worker).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]  # the repository
PEERS = ROOT / ".peers"  # the servers' environments and logs (git-ignored)
REQUIREMENTS = Path(__file__).with_name("requirements")


@dataclass(frozen=True)
class Server:
    """One server under test: its environment, its command, and how a request to it looks."""

    name: str
    requirements: Path
    # the command line, from the environment's folder and the port
    command: Callable[[Path, int], list[str]]
    path: str = "/predict"
    template: str = '{"text": %s}'  # the request body, %s the review as a JSON string
    env: dict[str, str] = field(default_factory=dict)
    batching: str = ""  # its batching, in words, for the table
    extra_size: tuple[Path, ...] = ()  # what it needs outside its environment (TorchServe's Java)
    # what must exist before it starts (TorchServe's model store and config), from venv and port
    prepare: Callable[[Path, int], None] | None = None
    environment: str = ""  # another server's environment it runs from ("": its own)

    @property
    def venv(self) -> Path:
        """Its virtual environment."""
        return PEERS / (self.environment or self.name)

    def pins(self) -> str:
        """Its requirements file and the files it includes (``-r``), as one text."""
        lines = self.requirements.read_text().splitlines()
        included = [self.requirements.with_name(line.split()[1]) for line in lines if line.startswith("-r ")]
        return "".join(path.read_text() for path in (self.requirements, *included))

    def install(self) -> None:
        """Make its environment from its requirements file, once (a marker records the file)."""
        marker = self.venv / ".installed"
        wanted = self.pins()
        if marker.is_file() and marker.read_text() == wanted:
            return
        print(f"installing {self.name} into {self.venv}", file=sys.stderr)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(self.venv)], check=True)
        pip = [str(self.venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(self.requirements)], check=True)
        marker.write_text(wanted)

    def size_mb(self) -> float:
        """Disk taken by its environment and what it needs beside it, in MB."""
        folders = [self.venv, *self.extra_size]
        done = subprocess.run(["du", "-sbc", *map(str, folders)], capture_output=True, text=True, check=True)
        return int(done.stdout.strip().splitlines()[-1].split()[0]) / 1e6


def _bin(venv: Path, program: str) -> str:
    return str(venv / "bin" / program)


# the service's defaults before issue 28 (2 onnxruntime threads, 1 inference worker): the arm
# that one client's latency under the new defaults is compared with, in the same run
BEFORE = {"SENTIMENT_THREADS": "2", "SENTIMENT_INFERENCE_WORKERS": "1"}


def catalogue(threads: int, max_batch: int, wait_ms: float, workers: int = 2) -> list[Server]:
    """The service and its peers. The peers' batching: at most ``max_batch`` texts a call and,
    where the peer has the knob, ``wait_ms`` for a batch to fill; ``threads`` onnxruntime
    intra-op threads in each of ``workers`` model workers of a batching peer (the service runs
    two inference workers of one thread; the tutorial app leaves onnxruntime's default)."""
    model = {
        "PEER_THREADS": str(threads),
        "PEER_MAX_BATCH": str(max_batch),
        "PEER_BATCH_WAIT_MS": str(wait_ms),
        "PEER_WORKERS": str(workers),
    }
    batched = f"≤ {max_batch} a call, ≤ {wait_ms:g} ms wait, {workers} worker(s) of {threads} thread(s)"

    def service(venv: Path, port: int) -> list[str]:
        return [_bin(venv, "python"), "-m", "app", "--port", str(port)]

    return [
        Server(
            "service",
            ROOT / "requirements" / "serve.txt",
            service,
            path="/v1/predict",
            batching="its defaults (2 inference workers of 1 thread)",
        ),
        Server(
            "service-before",
            ROOT / "requirements" / "serve.txt",
            service,
            path="/v1/predict",
            env=BEFORE,
            batching="its defaults before issue 28 (1 inference worker of 2 threads)",
            environment="service",
        ),
        Server(
            "fastapi",
            REQUIREMENTS / "fastapi.txt",
            lambda venv, port: [
                _bin(venv, "uvicorn"),
                "benchmarks.peers.apps.fastapi_app:app",
                "--port",
                str(port),
            ],
            env={"PEER_THREADS": "0"},
            batching="none: one session.run a request (onnxruntime's default threads)",
        ),
        Server(
            "litserve",
            REQUIREMENTS / "litserve.txt",
            lambda venv, port: [_bin(venv, "python"), "-m", "benchmarks.peers.apps.litserve_app", str(port)],
            env=model,
            batching=batched,
        ),
        Server(
            "bentoml",
            REQUIREMENTS / "bentoml.txt",
            lambda venv, port: [
                _bin(venv, "bentoml"),
                "serve",
                "benchmarks.peers.apps.bentoml_service:Sentiment",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            template='{"texts": [%s]}',
            env=model,
            batching=f"≤ {max_batch} a call, adaptive wait, {workers} worker(s) of {threads} thread(s)",
        ),
        Server(
            "ray",
            REQUIREMENTS / "ray.txt",
            lambda venv, port: [_bin(venv, "python"), "-m", "benchmarks.peers.apps.ray_app", str(port)],
            env={**model, "RAY_USAGE_STATS_ENABLED": "0"},
            batching=batched,
        ),
        Server(
            "torchserve",
            REQUIREMENTS / "torchserve.txt",
            lambda venv, port: [
                _bin(venv, "torchserve"),
                "--start",
                "--foreground",
                "--ncs",
                "--disable-token-auth",
                "--model-store",
                str(TORCHSERVE),
                "--ts-config",
                str(TORCHSERVE / "config.properties"),
            ],
            path="/predictions/sentiment",
            env={**model, "JAVA_HOME": str(JAVA), "PATH": f"{JAVA}/bin:{os.environ.get('PATH', '')}"},
            batching=batched,
            extra_size=(JAVA,),
            prepare=torchserve_prepare(max_batch, wait_ms, workers),
        ),
    ]


JAVA = Path("/usr/lib/jvm/java-17-openjdk-amd64")  # Debian's openjdk-17-jre-headless
TORCHSERVE = PEERS / "torchserve-store"  # its model store and config, made at each start


def torchserve_prepare(max_batch: int, wait_ms: float, workers: int) -> Callable[[Path, int], None]:
    """Write TorchServe's model folder (torch-model-archiver, unarchived) and its config:
    ``workers`` workers, batches of up to ``max_batch`` waiting at most ``wait_ms``, on ``port`` (the
    management and metrics APIs on the two ports after it), no token authorisation."""

    def prepare(venv: Path, port: int) -> None:
        TORCHSERVE.mkdir(parents=True, exist_ok=True)
        handler = Path(__file__).with_name("apps") / "torchserve_handler.py"
        subprocess.run(
            [
                _bin(venv, "torch-model-archiver"), "--model-name", "sentiment", "--version", "1.0",
                "--handler", str(handler), "--export-path", str(TORCHSERVE),
                "--archive-format", "no-archive", "--force",
            ],
            check=True,
        )  # fmt: skip
        model = {
            "defaultVersion": True,
            "marName": "sentiment",
            "minWorkers": workers,
            "maxWorkers": workers,
            "batchSize": max_batch,
            "maxBatchDelay": round(wait_ms),
            "responseTimeout": 120,
        }
        (TORCHSERVE / "config.properties").write_text(
            f"inference_address=http://127.0.0.1:{port}\n"
            f"management_address=http://127.0.0.1:{free_port()}\n"
            f"metrics_address=http://127.0.0.1:{free_port()}\n"
            f"model_store={TORCHSERVE}\n"
            "load_models=sentiment\n"
            f"models={json.dumps({'sentiment': {'1.0': model}})}\n"
            "disable_token_authorization=true\n"
            "enable_model_api=false\n"
        )

    return prepare


def ask(port: int, server: Server, body: str, timeout: float = 5.0) -> tuple[int, str]:
    """One POST of ``body`` on a new connection: status and answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", server.path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def label_of(answer: str) -> str | None:
    """The label in an answer: ``{"label": ...}`` or a list of one such object."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    return parsed.get("label") if isinstance(parsed, dict) else None


class Running:
    """A started server: its process group, port and log; :meth:`stop` ends them all."""

    def __init__(self, server: Server, bundle: Path, cores: str | None) -> None:
        self.server = server
        self.port = free_port()
        self.log = (PEERS / "logs").joinpath(f"{server.name}.log")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT) + os.environ.get("EXTRA_PYTHONPATH", ""),
            "PEER_BUNDLE": str(bundle.absolute()),
            "SENTIMENT_MODEL_DIR": str(bundle.absolute()),
            **server.env,
        }
        if server.prepare is not None:
            server.prepare(server.venv, self.port)
        command = server.command(server.venv, self.port)
        if cores:
            command = ["taskset", "-c", cores, *command]
        with self.log.open("w") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def first_answer(self, body: str, label: str, limit_s: float = 180) -> float:
        """Seconds from the start to the first correct answer to ``body`` (whose label is ``label``)."""
        while time.perf_counter() - self.started < limit_s:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.server.name} exited ({self.process.returncode}); see {self.log}")
            try:
                status, answer = ask(self.port, self.server, body)
                if status == 200 and label_of(answer) == label:
                    return time.perf_counter() - self.started
                # a wrong answer, or a request it refuses (a 404 is a route not up yet: Ray's)
                if status == 200 or (400 <= status < 500 and status != 404):
                    raise SystemExit(f"{self.server.name} answered {status} {answer[:200]!r}, not {label!r}")
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise SystemExit(f"{self.server.name} gave no correct answer within {limit_s:g} s; see {self.log}")

    def processes(self) -> list[psutil.Process]:
        """The server's processes: the one started and all its descendants."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def memory_mb(self) -> dict[str, float]:
        """Resident and proportional (shared pages split among sharers) memory of all its
        processes, summed, in MB."""
        rss = pss = 0
        processes = self.processes()
        for process in processes:
            try:
                info = process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss, pss = rss + info.rss, pss + info.pss
        return {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20, "processes": len(processes)}

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL to whatever of it is left after 30 s."""
        left = self.processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(left, timeout=30)
        for process in alive:  # a process that left the group, or ignored SIGTERM
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.process.wait()
