"""Kubernetes manifests (deploy/k8s/base and its KEDA overlay deploy/k8s/keda): valid against
the Kubernetes schemas, in agreement with the service, the images and each other, and both
kustomizations buildable.

No cluster is needed or used: kubernetes-validate checks every manifest against the published
OpenAPI schemas of a Kubernetes release, and the rest compares the manifests with the code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "deploy" / "k8s" / "base"
KEDA = ROOT / "deploy" / "k8s" / "keda"
KUBERNETES = "1.33"  # the schemas the manifests are checked against
MANIFESTS = sorted(p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")


def _load(name: str) -> dict:
    return yaml.safe_load((BASE / name).read_text())


def _by_kind() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in map(yaml.safe_load, (p.read_text() for p in MANIFESTS))}


def _option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _dockerfile_user(name: str) -> int:
    (user,) = re.findall(r"^USER (\d+)$", (ROOT / "docker" / name).read_text(), re.MULTILINE)
    return int(user)


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(manifest: Path) -> None:
    kubernetes_validate.validate(yaml.safe_load(manifest.read_text()), KUBERNETES, strict=True)


def test_validation_can_fail() -> None:
    broken = _load("api-deployment.yaml")
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"x": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)
    typo = _load("api-service.yaml")
    typo["spec"]["selectr"] = typo["spec"].pop("selector")
    with pytest.raises(kubernetes_validate.ValidationError):  # strict: unknown fields are errors
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    assert sorted(_load("kustomization.yaml")["resources"]) == [p.name for p in MANIFESTS]


def test_settings_are_the_services_own() -> None:
    settings = _load("configmap.yaml")["data"]
    known = {f"SENTIMENT_{name.upper()}" for name in Settings.model_fields}
    assert set(settings) <= known, set(settings) - known
    parsed = Settings(**{key.removeprefix("SENTIMENT_").lower(): value for key, value in settings.items()})
    # the busy onnxruntime threads fit the pod's CPU limit: more would only take turns
    (container,) = _by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert parsed.threads * parsed.inference_workers <= int(container["resources"]["limits"]["cpu"])


def test_deployment_agrees_with_the_service_and_the_image() -> None:
    kinds = _by_kind()
    deployment, service, config = kinds["Deployment"], kinds["Service"], kinds["ConfigMap"]["data"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    paths = create_app(Settings()).openapi()["paths"]

    # probes hit the service's real health routes, on the port the server listens on
    port = int(_option(container["args"], "--port"))
    (declared,) = container["ports"]
    assert (
        declared["containerPort"] == port and f"EXPOSE {port}" in (ROOT / "docker/api.Dockerfile").read_text()
    )
    for probe, path in (
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": declared["name"]}
        assert path in paths
    assert service["spec"]["ports"][0]["targetPort"] == declared["name"]

    # the settings come from the ConfigMap; the bundle folder is on the read-only volume
    assert container["envFrom"] == [{"configMapRef": {"name": kinds["ConfigMap"]["metadata"]["name"]}}]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == set(volumes)
    assert mounts["bundles"]["readOnly"] is True
    assert (
        volumes["bundles"]["persistentVolumeClaim"]["claimName"]
        == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    )
    assert config["SENTIMENT_MODEL_DIR"].startswith(mounts["bundles"]["mountPath"] + "/")

    # the kubelet waits longer than the service's drain plus its request timeout
    drain, timeout = float(config["SENTIMENT_DRAIN_S"]), float(config["SENTIMENT_REQUEST_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] > drain + timeout

    # non-root as in the image, read-only root filesystem, the image's name from compose
    assert pod["securityContext"]["runAsUser"] == _dockerfile_user("api.Dockerfile")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert container["image"] == compose["x-api"]["image"]


def test_job_writes_the_bundle_the_api_reads() -> None:
    kinds = _by_kind()
    job, config = kinds["Job"], kinds["ConfigMap"]["data"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert f"{_option(container['args'], '--output')}/bundle" == config["SENTIMENT_MODEL_DIR"]
    assert "--skip-if-current" in container["args"] and "--download" in container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert (
        mounts["bundles"] == "/bundles"
        and claims["bundles"] == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    )
    assert _option(container["args"], "--data").startswith(mounts["data"] + "/")
    assert pod["securityContext"]["runAsUser"] == _dockerfile_user("trainer.Dockerfile")
    assert (ROOT / _option(container["args"], "--config")).is_file()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert container["image"] == compose["services"]["train"]["image"]


def test_autoscaler_and_disruption_budget_target_the_deployment() -> None:
    kinds = _by_kind()
    deployment, hpa, pdb, service = (
        kinds["Deployment"],
        kinds["HorizontalPodAutoscaler"],
        kinds["PodDisruptionBudget"],
        kinds["Service"],
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # a voluntary disruption can always take one pod, even at the autoscaler's floor
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "cpu" in container["resources"]["requests"]  # the HPA's utilisation needs a request


KEDA_CRD = ROOT / "tests" / "schemas" / "keda.sh_scaledobjects.yaml"


def _closed(schema: dict) -> dict:
    """``schema`` with unknown fields refused wherever it lists the known ones: the API server
    would prune a misspelt field silently, so a typo would never take effect."""
    schema = dict(schema)
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    if "properties" in schema:
        schema["properties"] = {name: _closed(child) for name, child in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _closed(schema[key])
    return schema


def _scaled_object_schema() -> dict:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return _closed(version["schema"]["openAPIV3Schema"])


def test_the_keda_scaled_object_is_valid_against_its_crd() -> None:
    scaled = yaml.safe_load((KEDA / "api-scaledobject.yaml").read_text())
    assert (scaled["apiVersion"], scaled["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    schema = _scaled_object_schema()
    jsonschema.validate(scaled, schema)
    for broken in (
        {**scaled, "spec": {**scaled["spec"], "minReplicaCount": "three"}},
        {**scaled, "spec": {**scaled["spec"], "maxReplicaCont": 4}},
        {**scaled, "spec": {**scaled["spec"], "triggers": []}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_the_keda_overlay_replaces_the_cpu_autoscaler_and_keeps_its_bounds() -> None:
    overlay = yaml.safe_load((KEDA / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../base", "api-scaledobject.yaml"]
    (patch,) = overlay["patches"]
    deleted = yaml.safe_load(patch["patch"])
    hpa = _by_kind()["HorizontalPodAutoscaler"]
    assert deleted["$patch"] == "delete"
    assert deleted["kind"] == hpa["kind"] and deleted["metadata"]["name"] == hpa["metadata"]["name"]
    scaled = yaml.safe_load((KEDA / "api-scaledobject.yaml").read_text())["spec"]
    assert scaled["scaleTargetRef"] == hpa["spec"]["scaleTargetRef"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        hpa["spec"]["minReplicas"],
        hpa["spec"]["maxReplicas"],
    )


def _assemble(folder: Path, overlays: tuple[Path, ...] = ()) -> list[dict]:
    """The documents ``kubectl kustomize folder`` builds, for the little these kustomizations use
    (files, folders, deleting patches). Like kustomize it refuses a base that contains one of
    the overlays that led to it, the layout that once made ``deploy/k8s/keda`` unbuildable."""
    folder = folder.resolve()
    if any(overlay.is_relative_to(folder) for overlay in overlays):
        raise ValueError(f"cycle: the base {folder} contains its overlay")
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        path = folder / resource
        if path.is_dir():
            documents += _assemble(path, (*overlays, folder))
        else:
            documents.append(yaml.safe_load(path.read_text()))
    for entry in kustomization.get("patches", []):
        patch = yaml.safe_load(entry["patch"])
        assert patch["$patch"] == "delete", "only deleting patches are modelled here"
        target = [d for d in documents if _key(d) == _key(patch)]
        assert len(target) == 1, f"the patch's target {_key(patch)} is not among the resources"
        documents.remove(target[0])
    return documents


def _key(document: dict) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


def _kinds(documents: list[dict]) -> list[str]:
    return sorted(document["kind"] for document in documents)


def test_the_base_builds_with_the_cpu_autoscaler_and_the_overlay_with_keda_instead() -> None:
    base, overlay = _kinds(_assemble(BASE)), _kinds(_assemble(KEDA))
    assert base.count("HorizontalPodAutoscaler") == 1 and "ScaledObject" not in base
    assert overlay.count("ScaledObject") == 1 and "HorizontalPodAutoscaler" not in overlay
    assert sorted([*overlay, "HorizontalPodAutoscaler"]) == sorted([*base, "ScaledObject"])


def test_an_overlay_inside_its_base_does_not_build(tmp_path: Path) -> None:
    inside = tmp_path / "k8s"
    shutil.copytree(BASE, inside)
    shutil.copytree(KEDA, inside / "keda")
    kustomization = inside / "keda" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("- ../base", "- .."))
    with pytest.raises(ValueError, match="cycle"):
        _assemble(inside / "keda")


@pytest.mark.parametrize("folder", [BASE, KEDA], ids=lambda p: p.name)
def test_kubectl_builds_what_the_assembly_above_models(folder: Path) -> None:
    """The same with the real kustomize, where kubectl is installed. It is not required in CI:
    Debian's kubernetes-client (1.20) predates the ``labels`` field the base uses."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert _kinds(list(yaml.safe_load_all(built))) == _kinds(_assemble(folder))
