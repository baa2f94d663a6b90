"""The Makefile's user commands: ``make serve`` stops with its child, ``make up``/``down`` use
compose v2 from ``.venv`` and ``down`` reaches every profile. (docker/e2e.sh runs ``make down``
on a real engine.)"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.bundles import make_bundle
from tests.serving import free_port

ROOT = Path(__file__).resolve().parent.parent


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            return connection.recv(32).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_to_make_serves_child_frees_the_port(tmp_path) -> None:
    """What a supervisor or a terminal does: signal make's child; the server, not a shell, gets it."""
    bundle, _, _ = make_bundle(tmp_path / "tiny", max_tokens=12)
    venv = tmp_path / "serve-venv"  # stands in for .venv-serve: this interpreter, already set up
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed").touch()
    port = free_port()
    make = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"SERVE_VENV={venv}", f"PORT={port}", f"BUNDLE={bundle}"],
        cwd=ROOT,
        env={**os.environ, "SENTIMENT_DRAIN_S": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spawned: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert make.poll() is None and time.monotonic() < deadline, "make serve never became ready"
            time.sleep(0.1)
        spawned = psutil.Process(make.pid).children(recursive=True)
        (child,) = psutil.Process(make.pid).children()
        name = child.name()
        child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _listening(port), f"the port is still served after SIGTERM to {name}"
        make.wait(timeout=10)
    finally:
        if make.poll() is None:
            make.kill()
        for process in spawned:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("up", ".venv/bin/docker-compose up --build --wait"),
        ("down", ".venv/bin/docker-compose --profile '*' down --volumes --remove-orphans"),
    ],
)
def test_up_and_down_run_compose_from_the_venv(target: str, command: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COMPOSE"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith(command), result.stdout


def test_every_profile_is_in_what_down_reaches(tmp_path) -> None:
    """``--profile '*'`` activates every profile, so ``down`` also stops ``api-shipped``."""
    archive = tmp_path / "aclImdb_v1.tar.gz"
    archive.touch()
    compose = str(Path(sys.executable).parent / "docker-compose")
    env = {**os.environ, "IMDB_ARCHIVE": str(archive)}
    listed = subprocess.run(
        [compose, "--profile", "*", "config", "--services"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    plain = subprocess.run(
        [compose, "config", "--services"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "api-shipped" in listed.stdout.split() and "api-shipped" not in plain.stdout.split()
