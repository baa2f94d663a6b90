"""deploy/monitoring: the Prometheus configs and alert rules pass promtool, every query of the
rules, the dashboard and the KEDA triggers names a metric the service exports, and a real
Prometheus scrapes a running service and fires an alert."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.limits import MODEL_ROUTES
from app.main import create_app
from app.settings import Settings
from model.reference import make_reference, write_reference
from tests.bundles import make_bundle
from tests.serving import free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
SCALED_OBJECT = ROOT / "deploy" / "k8s" / "keda" / "api-scaledobject.yaml"
CONFIGS = ("prometheus.yml", "prometheus-kubernetes.yml")
# the names a query may use: the service's, and the one Prometheus adds to every target
METRIC = re.compile(r"\b((?:sentiment|http)_[a-z_]+|up)\b(?!\s*\()")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def _tool(name: str) -> str:
    """The path of Debian's ``name``; a skip where it is missing, a failure in CI (.ci/run installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI; .ci/run installs Debian's prometheus")
        pytest.skip(f"{name} is not installed (apt-get install prometheus; .ci/run does this)")
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    folder, _, _ = make_bundle(tmp_path_factory.mktemp("bundle") / "tiny", max_tokens=12)
    return folder


def _queries() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    scaled = yaml.safe_load(SCALED_OBJECT.read_text())
    return (
        [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
        + [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
        + [trigger["metadata"]["query"] for trigger in scaled["spec"]["triggers"]]
    )


def test_every_query_names_a_metric_the_service_exports(bundle) -> None:
    with TestClient(create_app(Settings(model_dir=bundle))) as client:
        families = list(text_string_to_metric_families(client.get("/metrics").text))
    exported = {"up"}
    for family in families:
        exported |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    used = {name for query in _queries() for name in METRIC.findall(query)}
    assert {"sentiment_in_flight_requests", "sentiment_near_half_share", "http_requests_total"} <= used
    assert used - exported == set()


def test_the_refusal_alert_divides_by_every_model_route() -> None:
    """The 429 rate divides every refusal (the in-flight cap's, the rate limit's, a full work
    pool's) by the requests of every route they guard, the LM's and the inspector's included."""
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    (rule,) = (
        r for group in rules["groups"] for r in group["rules"] if r["alert"] == "SentimentRefusingRequests"
    )
    numerator, denominator = rule["expr"].split("/ sum(")
    assert "sentiment_rejected_total" in numerator and "reason" not in numerator  # every reason
    (handlers,) = re.findall(r'handler=~"([^"]+)"', denominator)
    # the inspector's match and unit-context routes run on the trace pool, whose refusals count
    assert all(re.fullmatch(handlers, prefix + "x") for prefix in (*MODEL_ROUTES, "/v1/inspect/")), handlers


def test_promtool_passes_the_configs_and_the_rules() -> None:
    promtool = _tool("promtool")
    # Debian builds Prometheus without Kubernetes service discovery, so its promtool cannot read
    # prometheus-kubernetes.yml; that file is held to the same job and rules below
    for what, name in (("rules", "alerts.yml"), ("config", "prometheus.yml")):
        checked = subprocess.run([promtool, "check", what, MONITORING / name], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_both_configs_scrape_the_same_job_with_the_same_rules() -> None:
    compose, kubernetes = (yaml.safe_load((MONITORING / name).read_text()) for name in CONFIGS)
    assert compose["rule_files"] == kubernetes["rule_files"] == ["alerts.yml"]
    (compose_job,), (kubernetes_job,) = compose["scrape_configs"], kubernetes["scrape_configs"]
    assert compose_job["job_name"] == kubernetes_job["job_name"] == "imdb-lstm-api"
    assert compose_job["metrics_path"] == kubernetes_job["metrics_path"] == "/metrics"
    kept = [rule["regex"] for rule in kubernetes_job["relabel_configs"] if rule.get("action") == "keep"]
    deployment = yaml.safe_load((ROOT / "deploy" / "k8s" / "base" / "api-deployment.yaml").read_text())
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert kept == [pod["metadata"]["labels"]["app.kubernetes.io/name"], container["ports"][0]["name"]]


def test_promtool_can_fail(tmp_path) -> None:
    promtool = _tool("promtool")
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(\n")
    assert subprocess.run([promtool, "check", "rules", broken], capture_output=True).returncode != 0


def _api(base: str, path: str, **params) -> list:
    answer = httpx.get(f"{base}/api/v1/{path}", params=params, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"] if path == "query" else answer["data"]["alerts"]


def test_a_real_prometheus_scrapes_the_service_and_fires_the_drift_alert(bundle, tmp_path) -> None:
    prometheus = _tool("prometheus")
    served = tmp_path / "bundle"
    shutil.copytree(bundle, served)
    # a test set on which no score was near 0.5: any served near it is drift
    write_reference(served, make_reference([0.02, 0.98], [5, 6], [0.0, 0.0], "two confident reviews"))
    with (tmp_path / "server.log").open("w") as log:
        process, base, _ = start_server(served, output=log)
    try:
        scores = [
            httpx.post(f"{base}/v1/predict", json={"text": text}, timeout=5).json()["score"]
            for text in ("a wonderful film", "an awful mess", "great acting", "dull plot", "i loved it")
        ]
        assert any(abs(score - 0.5) < 0.1 for score in scores), scores  # the tiny model is unsure
        rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
        for rule in (rule for group in rules["groups"] for rule in group["rules"]):
            rule["for"] = "0s"  # fire on the first evaluation that holds
        (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
        config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["scrape_configs"][0]["static_configs"] = [{"targets": [base.removeprefix("http://")]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        with (tmp_path / "prometheus.log").open("w") as output:
            scraper = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            counted, firing = _wait_for_prometheus(f"http://127.0.0.1:{port}", tmp_path / "prometheus.log")
        finally:
            scraper.terminate()
            scraper.wait(timeout=20)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert counted == len(scores)
    assert firing == {"SentimentDrift"}


def _wait_for_prometheus(base: str, log: Path) -> tuple[float, set[str]]:
    """Once Prometheus has scraped and evaluated: the served predictions it counted, and the
    alerts firing."""
    query = 'sentiment_prediction_score_count{job="imdb-lstm-api"}'
    counted, firing = None, set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            result = _api(base, "query", query=query)["result"]
            counted = float(result[0]["value"][1]) if result else None
            firing = {a["labels"]["alertname"] for a in _api(base, "alerts") if a["state"] == "firing"}
        except (httpx.HTTPError, ValueError):
            pass  # not listening yet
        if counted is not None and firing:
            return counted, firing
        time.sleep(0.5)
    pytest.fail(f"Prometheus never counted the predictions or fired an alert: {log.read_text()[-3000:]}")
