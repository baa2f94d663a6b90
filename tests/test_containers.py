"""The container files, checked without a Docker engine: hadolint, the compose-spec schema,
``docker compose config``, and the resolved configuration's parts agreeing with each other.
(docker/e2e.sh, run by .ci/run, builds and runs them on a real engine.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert path, f"{name} is not installed (requirements/dev.txt has it)"
    return path


def _config(tmp_path: Path, *args: str, **env: str) -> dict:
    """``docker compose config`` as JSON, from the repository root, with a test environment."""
    archive = tmp_path / "aclImdb_v1.tar.gz"
    archive.touch()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BASE_IMAGE", "API_PORT", "TRAIN_"))},
        "IMDB_ARCHIVE": str(archive),
        **env,
    }
    result = subprocess.run(
        [_tool("docker-compose"), *args, "config", "--format", "json"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _mount(service: dict, target: str) -> dict:
    return next(v for v in service["volumes"] if v["target"] == target)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    result = subprocess.run([_tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags (``!reset``, ``!override``) read as their plain values."""


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
            if isinstance(node, yaml.MappingNode)
            else loader.construct_scalar(node)
        ),
    )


@pytest.mark.parametrize(
    "compose_file", ["docker-compose.yml", "docker/compose.ci.yml", "docker/compose.scale.yml"]
)
def test_compose_spec_schema(compose_file: str, tmp_path) -> None:
    # check-jsonschema's YAML reader knows no compose tags: it validates the same data as JSON
    data = yaml.load((ROOT / compose_file).read_text(), Loader=_ComposeLoader)
    instance = tmp_path / "compose.json"
    instance.write_text(json.dumps(data))
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(instance)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_can_fail(tmp_path) -> None:
    instance = tmp_path / "compose.json"
    instance.write_text(json.dumps({"services": {"api": {"ports": "8000", "depends_on": 3}}}))
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(instance)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_build_on_any_base(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    assert text.index("ARG BASE_IMAGE=python:3.11-slim") < text.index("FROM ")
    assert all(line.split()[1] == "${BASE_IMAGE}" for line in text.splitlines() if line.startswith("FROM "))
    assert not re.search(r"/usr/(local/)?bin/(python|pip)", text), "python and pip come from PATH"
    assert re.search(r"^USER 10001$", text, re.MULTILINE), "runs as a non-root user"
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            source = line.split()[1]
            assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"


def _run_instruction(text: str, needle: str) -> str:
    """The Dockerfile's RUN instruction that holds ``needle``, its continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return next(line for line in joined.splitlines() if line.startswith("RUN ") and needle in line)


def test_the_trainer_takes_cpu_torch_from_pytorchs_index_unless_a_local_wheel_overrides_it(tmp_path) -> None:
    """TORCH_INDEX defaults to PyTorch's CPU index, searched beside PyPI; a torch wheel in
    docker/wheels (the offline build, as CI's docker/e2e.sh makes it) switches the index off.
    The install step's own lines that choose the index run here in sh, with and without a wheel."""
    text = (ROOT / "docker" / "trainer.Dockerfile").read_text()
    default = re.search(r"^ARG TORCH_INDEX=(\S*)$", text, re.MULTILINE)
    assert default and default.group(1) == "https://download.pytorch.org/whl/cpu"
    install = _run_instruction(text, "pip install")
    assert "--find-links /tmp/wheels" in install and install.count("index-url") == 1
    steps = [step.strip() for step in install.removeprefix("RUN ").split("&&")]
    pip = next(i for i, step in enumerate(steps) if "pip install" in step)
    choice = [step for step in steps[:pip] if "index=" in step]
    assert choice[0] == 'index="${TORCH_INDEX}"' and '${index:+--extra-index-url "${index}"}' in steps[pip]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    script = " && ".join(choice).replace("/tmp/wheels", str(wheels))
    script += ' && printf "%s\\n" ${index:+--extra-index-url "${index}"}'

    def index_options(torch_index: str) -> list[str]:
        """What pip is given about indexes: build args reach RUN as environment variables."""
        environment = {"PATH": os.environ["PATH"], "TORCH_INDEX": torch_index}
        run = subprocess.run(
            ["sh", "-c", script], env=environment, capture_output=True, text=True, check=True
        )
        return run.stdout.split()

    assert index_options(default.group(1)) == ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]
    assert index_options("") == []  # --build-arg TORCH_INDEX= : PyPI only
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    assert index_options(default.group(1)) == []  # the local wheel wins; the index is not consulted


def test_api_image_serves_without_torch_and_checks_readiness() -> None:
    text = (ROOT / "docker" / "api.Dockerfile").read_text()
    assert "requirements/serve.txt" in text and "train.txt" not in text
    assert "torch" not in (ROOT / "requirements" / "serve.txt").read_text().replace("no torch", "")
    healthcheck = re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD (\[[^\n]*\])$", text, re.MULTILINE)
    assert healthcheck, "HEALTHCHECK in exec form"
    probe = json.loads(healthcheck.group(1))
    assert probe[0] == "python" and "http://127.0.0.1:8000/readyz" in probe[-1]
    assert 'CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]' in text


def test_train_then_api_share_the_volume(tmp_path) -> None:
    config = _config(tmp_path)
    services = config["services"]
    assert set(services) == {"train", "api"}, "api-shipped only runs with --profile shipped"
    train, api = services["train"], services["api"]

    # train writes the bundle into the named volume; the API reads it from there, read-only
    output = _option(train["command"], "--output")
    assert "--skip-if-current" in train["command"]  # idempotent one-shot job
    train_volume, api_volume = _mount(train, "/bundles"), _mount(api, "/bundles")
    assert train_volume["type"] == api_volume["type"] == "volume"
    assert train_volume["source"] == api_volume["source"] == "bundles" and "bundles" in config["volumes"]
    assert not train_volume.get("read_only") and api_volume["read_only"] is True
    assert output.startswith("/bundles/")
    assert api["environment"]["SENTIMENT_MODEL_DIR"] == f"{output}/bundle"

    # the data archive is a read-only bind mount from a configurable host path
    data = _mount(train, _option(train["command"], "--data"))
    assert data["type"] == "bind" and data["read_only"] is True
    assert data["source"] == str(tmp_path / "aclImdb_v1.tar.gz")

    # the API starts only after training succeeded, on loopback, with a readiness healthcheck
    assert api["depends_on"] == {"train": {"condition": "service_completed_successfully", "required": True}}
    (port,) = api["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8000)
    probe = api["healthcheck"]["test"]
    assert probe[:2] == ["CMD", "python"] and f"127.0.0.1:{port['target']}/readyz" in probe[-1]
    assert train["restart"] == "no"
    for service in (train, api):
        assert service["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim"

    # read-only root filesystems; Docker waits out the service's drain and request timeout
    for service in (train, api):
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    defaults = Settings.model_fields
    drain, timeout = defaults["drain_s"].default, defaults["request_timeout_s"].default
    assert float(api["stop_grace_period"].removesuffix("s")) > drain + timeout


def test_base_image_and_port_are_settable(tmp_path) -> None:
    config = _config(tmp_path, BASE_IMAGE="local/base:1", API_PORT="18000", TRAIN_CONFIG="finetune")
    services = config["services"]
    assert all(s["build"]["args"]["BASE_IMAGE"] == "local/base:1" for s in services.values())
    assert services["api"]["ports"][0]["published"] == "18000"
    assert _option(services["train"]["command"], "--config") == "configs/finetune.toml"


def test_shipped_profile_runs_the_api_alone(tmp_path) -> None:
    services = _config(tmp_path, "--profile", "shipped")["services"]
    shipped = services["api-shipped"]
    assert "depends_on" not in shipped and not shipped.get("volumes")
    assert "SENTIMENT_MODEL_DIR" not in (shipped.get("environment") or {})  # the image's own model
    assert shipped["image"] == services["api"]["image"]
    assert shipped["healthcheck"] == services["api"]["healthcheck"]


def test_ci_override_shrinks_training_only(tmp_path) -> None:
    plain = _config(tmp_path)
    ci = _config(tmp_path, "-f", "docker-compose.yml", "-f", "docker/compose.ci.yml")
    assert set(ci["services"]) == set(plain["services"])
    assert ci["services"]["api"] == plain["services"]["api"]
    train, ci_train = plain["services"]["train"], ci["services"]["train"]
    assert {k: v for k, v in ci_train.items() if k != "command"} == {
        k: v for k, v in train.items() if k != "command"
    }
    for flag in ("--data", "--output", "--config"):
        assert _option(ci_train["command"], flag) == _option(train["command"], flag)
    assert "--skip-if-current" in ci_train["command"] and "--limit-reviews" in ci_train["command"]


def test_scaled_replicas_sit_behind_one_port(tmp_path) -> None:
    config = _config(tmp_path, "-f", "docker-compose.yml", "-f", "docker/compose.scale.yml")
    api, lb = config["services"]["api"], config["services"]["lb"]
    assert not api.get("ports"), "replicas publish no port of their own, or a second one would clash"
    (port,) = lb["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8000)
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    nginx = (ROOT / "docker" / "nginx.conf").read_text()
    assert re.search(r"server api:(\d+)", nginx).group(1) == "8000"  # the API's container port
    assert re.search(r"listen (\d+);", nginx).group(1) == str(port["target"])
    assert "/readyz" in lb["healthcheck"]["test"][-1]


def test_scaled_replicas_share_one_rate_limit_store_and_trust_only_lb(tmp_path) -> None:
    config = _config(tmp_path, "-f", "docker-compose.yml", "-f", "docker/compose.scale.yml")
    api, redis = config["services"]["api"], config["services"]["redis"]
    storage = api["environment"]["SENTIMENT_RATE_LIMIT_STORAGE"]
    assert storage == "redis://redis:6379" and not redis.get("ports")
    assert redis["build"]["dockerfile"] == "docker/redis.Dockerfile"
    assert re.search(r"^EXPOSE (\d+)", (ROOT / "docker" / "redis.Dockerfile").read_text(), re.M)[1] == "6379"
    # trusting every peer's X-Forwarded-For holds only while lb is the replicas' one peer, and lb
    # replaces the client's header rather than appending to it
    assert api["environment"]["SENTIMENT_FORWARDED_ALLOW_IPS"] == "*" and not api.get("ports")
    nginx = (ROOT / "docker" / "nginx.conf").read_text()
    assert re.findall(r"proxy_set_header X-Forwarded-For (\S+);", nginx) == ["$remote_addr"]
    Settings(**{k.removeprefix("SENTIMENT_").lower(): v for k, v in api["environment"].items() if v})
