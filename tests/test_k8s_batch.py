"""Batch-scoring manifests (deploy/k8s/batch): the Indexed Job and its claim against the
Kubernetes schemas, the RayJob against KubeRay's RayJob CRD schema (vendored in
tests/schemas/), and both in agreement with ``python -m app.score`` and the images."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from app.score.__main__ import parser
from tests.test_k8s import KUBERNETES

ROOT = Path(__file__).resolve().parents[1]
BATCH = ROOT / "deploy" / "k8s" / "batch"
RAYJOB_SCHEMA = ROOT / "tests" / "schemas" / "ray.io_rayjobs.v1.json"


def _load(name: str) -> dict:
    return yaml.safe_load((BATCH / name).read_text())


def _dockerfile_user(name: str) -> int:
    (user,) = re.findall(r"^USER (\d+)$", (ROOT / "docker" / name).read_text(), re.MULTILINE)
    return int(user)


@pytest.mark.parametrize("name", ["score-job.yaml", "score-data-pvc.yaml"])
def test_manifest_is_valid_kubernetes(name: str) -> None:
    kubernetes_validate.validate(_load(name), KUBERNETES, strict=True)


def test_indexed_job_scores_shard_k_of_n_with_the_command(tmp_path) -> None:
    job = _load("score-job.yaml")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    assert container["command"] == ["python", "-m", "app.score"]
    (shard,) = [e for e in container["env"] if e["name"] == "SHARD"]
    assert shard["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    # every pod's arguments parse, each names its own shard and output, and a retry resumes
    outputs = set()
    for index in range(spec["completions"]):
        args = parser().parse_args([a.replace("$(SHARD)", str(index)) for a in container["args"]])
        assert args.shard == (index, spec["completions"]) and args.resume and args.engine == "local"
        assert int(container["resources"]["requests"]["cpu"]) == args.workers
        outputs.add(args.output)
    assert len(outputs) == spec["completions"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(path.startswith("/data/") for path in [args.input, *outputs]) and mounts["/data"] == "data"
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert claim == _load("score-data-pvc.yaml")["metadata"]["name"]
    # the root filesystem is read-only, and the worker pool's forkserver needs a writable /tmp
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["securityContext"]["runAsUser"] == _dockerfile_user("api.Dockerfile")
    assert (
        "--build-arg REQUIREMENTS=score.txt -t " + container["image"].split(":")[0]
        in (BATCH / "score-job.yaml").read_text()
    )


def _closed(schema: dict) -> dict:
    """The schema with unknown fields refused wherever Kubernetes would prune them (an object
    with ``properties`` and no ``x-kubernetes-preserve-unknown-fields``): a typo fails, as
    ``kubectl apply --validate=strict`` makes it fail."""
    schema = copy.deepcopy(schema)

    def close(node: object) -> None:
        if isinstance(node, dict):
            if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@pytest.fixture(scope="module")
def rayjob_validator() -> jsonschema.Validator:
    schema = _closed(json.loads(RAYJOB_SCHEMA.read_text()))
    # metadata is the API server's ObjectMeta, which the CRD leaves open
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def test_rayjob_is_valid_against_the_rayjob_crd(rayjob_validator) -> None:
    rayjob = _load("rayjob.yaml")
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    errors = sorted(rayjob_validator.iter_errors(rayjob), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]


def test_rayjob_validation_can_fail(rayjob_validator) -> None:
    typo = _load("rayjob.yaml")
    typo["spec"]["entrypoints"] = typo["spec"].pop("entrypoint")
    assert not rayjob_validator.is_valid(typo)
    wrong = _load("rayjob.yaml")
    wrong["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "four"
    assert not rayjob_validator.is_valid(wrong)


def test_rayjob_runs_the_command_on_the_pinned_ray(rayjob_validator) -> None:
    spec = _load("rayjob.yaml")["spec"]
    args = parser().parse_args(spec["entrypoint"].split()[3:])
    assert spec["entrypoint"].startswith("python -m app.score ") and args.engine == "ray"
    assert (ROOT / args.bundle / "model.onnx").is_file()  # in the image, from the working directory
    pinned = re.search(
        r"^ray\[[a-z,]+\]==([\d.]+)", (ROOT / "requirements" / "ray.txt").read_text(), re.MULTILINE
    )
    assert spec["rayClusterSpec"]["rayVersion"] == pinned.group(1)
    cluster = spec["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        (container,) = pod["containers"]
        assert (
            container["image"] == "imdb-lstm-sentiment/ray-score:latest" and container["workingDir"] == "/srv"
        )
        assert pod["securityContext"]["runAsUser"] == _dockerfile_user("ray.Dockerfile")
    dockerfile = (ROOT / "docker" / "ray.Dockerfile").read_text()
    assert (
        "ray.txt" in dockerfile
        and "WORKDIR /srv" in dockerfile
        and "-t imdb-lstm-sentiment/ray-score" in dockerfile
    )
    assert not re.search(r"^ray\b", (ROOT / "requirements" / "serve.txt").read_text(), re.MULTILINE)
