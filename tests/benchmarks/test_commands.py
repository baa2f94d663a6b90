"""Each benchmark runs end to end as a user runs it (``python -m benchmarks NAME``), on a tiny
bundle and a tiny copy of the IMDB layout, writes its result file and prints its section."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as commands
from benchmarks import hostile
from tests.bundles import CORPUS, make_bundle

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_imdb(tmp_path_factory) -> Path:
    """An extracted ``aclImdb/`` with 12 reviews per label in each split."""
    base = tmp_path_factory.mktemp("imdb") / "aclImdb"
    for part in ("train", "test"):
        for polarity, texts in (("pos", CORPUS[0::2]), ("neg", CORPUS[1::2])):
            folder = base / part / polarity
            folder.mkdir(parents=True)
            for index in range(12):
                words = " ".join(CORPUS[index % 4].split()[: index % 5])
                rating = 8 if polarity == "pos" else 2
                (folder / f"{index}_{rating}.txt").write_text(f"{texts[index % 2]} {words}", encoding="utf-8")
    return base


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    folder, _, _ = make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")
    card = json.loads((folder / "model_card.json").read_text())
    card["train_config"] = {"validation_fraction": 0.25, "seed": 1}  # the split the variants score
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def benchmark(name: str, *options: str, results: Path) -> dict:
    """Run ``python -m benchmarks name`` here, check its printed section, return its record."""
    command = [sys.executable, "-m", "benchmarks", name, "--results", str(results), *options]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Measured by `python -m benchmarks " + name in done.stdout
    record = json.loads((results / f"{name}.json").read_text())
    assert record["benchmark"] == name and record["command"].startswith(f"python -m benchmarks {name}")
    return record


def test_model(tmp_path, tiny_imdb, bundle) -> None:
    options = ["--data", str(tiny_imdb), "--bundle", str(bundle), "--reviews", "12", "--tokens", "6"]
    figures = benchmark("model", *options, "--roofline-reviews", "4", results=tmp_path)["figures"]
    assert figures["roofline"]["reviews"] == 4
    assert {r["batch"] for r in figures["engines"]["rows"]} == {1, 8, 32, 64}
    assert figures["engines"]["reviews"] == 12
    assert set(figures["precision"]) == {"float32", "int8", "fp16"}


def test_service(tmp_path, tiny_imdb, bundle) -> None:
    options = ["--data", str(tiny_imdb), "--bundle", str(bundle), "--requests", "16", "--clients", "1", "4"]
    figures = benchmark("service", *options, results=tmp_path)["figures"]
    on = figures["batching_on"]
    assert [r["clients"] for r in on["load"]] == [1, 4]
    assert on["ready_s"] > 0 and on["rss_peak_mb"] >= on["rss_rest_mb"] > 0
    assert figures["throughput_gain"]["1"] == pytest.approx(1.0)
    assert figures["http_over_in_process_p50"] == pytest.approx(
        on["load"][0]["p50_ms"] / figures["in_process_p50_ms"]
    )
    assert (tmp_path / "service.png").stat().st_size > 0
    stages = {row["stage"]: row for row in figures["stages"]["stages"]}
    assert figures["stages"]["requests"] == 16
    assert 0 < stages["infer"]["p50_ms"] <= stages["total"]["p50_ms"] < stages["client"]["p50_ms"]


def test_ops(tmp_path, tiny_imdb, bundle) -> None:
    options = ["--data", str(tiny_imdb), "--bundle", str(bundle), "--requests", "12", "--clients", "1", "2"]
    figures = benchmark("ops", *options, "--rounds", "2", results=tmp_path)["figures"]
    configurations = figures["configurations"]
    assert list(configurations) == ["off", "defaults", "json logs", "prediction log", "tracing"]
    assert figures["rounds"] == 2 and list(configurations["off"]["load"]) == ["1", "2"]
    rounds = {name: measured["rounds"] for name, measured in configurations.items()}
    assert all(len(runs) == 2 for runs in rounds.values())
    # each configuration did what it says, in every round: no access lines when off, one a
    # request when on; the tracing server really exported its spans, and only it
    for name, runs in rounds.items():
        for r in runs:
            logged = name in ("defaults", "json logs")
            assert r["access_lines"] >= 2 * 12 if logged else r["access_lines"] == 0
            predicted = name == "prediction log"
            assert r["prediction_log_entries"] >= 2 * 12 if predicted else r["prediction_log_entries"] == 0
            assert r["spans_exported"] >= 2 * 12 if name == "tracing" else r["spans_exported"] == 0
    # a cost is the median of each round's difference to the same round's off
    differences = [
        1000 * (logged["load"]["1"]["p50_ms"] - off["load"]["1"]["p50_ms"])
        for logged, off in zip(rounds["json logs"], rounds["off"], strict=True)
    ]
    assert figures["costs"]["json logs"]["1"]["p50_us"]["median"] == pytest.approx(sum(differences) / 2)
    ratio = figures["defaults_p50_over_off"]
    assert ratio["min"] <= ratio["median"] <= ratio["max"] and len(ratio["rounds"]) == 2


def test_training(tmp_path, tiny_imdb) -> None:
    options = ["--data", str(tiny_imdb), "--batches", "2", "--limit-reviews", "8"]
    figures = benchmark("training", *options, results=tmp_path)["figures"]
    assert figures["steps"]["batches"] == 2 and figures["steps"]["tokens_per_second"] > 0
    distributed = figures["distributed"]
    assert distributed["ratio"] == pytest.approx(
        distributed["two_processes_tokens_per_s"] / distributed["one_process_tokens_per_s"]
    )


def test_score(tmp_path, tiny_imdb, bundle) -> None:
    options = ["--data", str(tiny_imdb), "--bundle", str(bundle), "--reviews", "24", "--clients", "4"]
    figures = benchmark("score", *options, results=tmp_path)["figures"]
    assert figures["reviews"] == 24 and figures["ceiling_all_cores"] > 0
    ray = ["ray"] if importlib.util.find_spec("ray") else []  # make test installs it
    for key in ("score_one_worker", "score_all_cores", *ray, "http"):
        assert figures[key]["reviews_per_s"] > 0, key
    assert "24 rows -> " in figures["score_all_cores"]["summary"]
    assert figures["score_one_worker"]["peak_rss_mb"] > 0 and figures["http"]["clients"] == 4


def test_match(tmp_path, tiny_imdb, bundle) -> None:
    from app.match_index import main as build_index

    index = tmp_path / "index.npz"
    build_index(
        ["--data", str(tiny_imdb), "--model-dir", str(bundle), "--output", str(index), "--threshold", "0.1"]
    )
    options = ["--data", str(tiny_imdb), "--bundle", str(bundle), "--index", str(index), "--queries", "6"]
    figures = benchmark("match", *options, "--k", "3", results=tmp_path)["figures"]
    assert figures["index"]["reviews"] == 24 and figures["index"]["file_mb"] > 0
    assert 0 < figures["queries"] <= 6 and figures["units_per_query"] >= 1
    for where in ("in_process", "http"):
        for query in ("match", "contexts"):
            timing = figures[where][query]
            assert 0 < timing["p50_ms"] <= timing["p95_ms"] <= timing["max_ms"], (where, query)


def _hostile_results() -> dict:
    """Figures of a hostile run in which every bound holds."""
    return {
        "saliency": {
            "saliency_admitted": 3,
            "peak_rss_mb": 300.0,
            "predict_during": {"ok_share": 1.0},
            "predict_p99_ratio": 2.0,
            "server_cpu_s_in_the_second_after_deadline_plus_1s": 0.0,
        },
        "slow_clients": {"slowloris_closed_by_server": 200, "predict_during": {"ok_share": 0.995}},
        "long_predictions": {"saliency_admitted": 3, "predict_during": {"ok_share": 1.0}},
        "normalisation": {"flood_predictions_ok": 300, "healthz_during": {"p99_ms": 20.0, "ok_share": 1.0}},
        "headers": {
            "big_header_refused_in_s": 0.01,
            "unfinished_headers_refused_in_s": 0.02,
            "peak_rss_growth_mb": 1.0,
            "rss_growth_mb": 50.0,  # on the bound holds it
            "predict_during": {"ok_share": 1.0},
            "predict_p99_ratio": 2.0,
        },
    }


def test_hostile_checks_every_bound_and_says_when_one_broke() -> None:
    results = _hostile_results()
    assert hostile.held({"checks": hostile.check(results)})
    broken = {
        ("headers", "rss_growth_mb"): 60.0,
        ("headers", "predict_p99_ratio"): 10.5,  # another client slowed down by the attack
        ("headers", "big_header_refused_in_s"): 8.2,  # refused, but not fast
        ("saliency", "saliency_admitted"): 0,  # every saliency map refused: the attack never ran
        ("normalisation", "flood_predictions_ok"): 0,
    }
    for (scenario, key), value in broken.items():
        results[scenario][key] = value
    checks = hostile.check(results)
    assert len(checks) == len(hostile.BOUNDS)
    assert {c["figure"] for c in checks if not c["held"]} == {f"{s}.{k}" for s, k in broken}
    assert not hostile.held({"checks": checks})


@pytest.mark.parametrize("broken", [False, True])
def test_hostile_writes_its_record_and_exits_1_when_a_bound_broke(monkeypatch, tmp_path, broken) -> None:
    """The command's exit status, on made-up figures: no server is started, no attack runs."""
    figures = _hostile_results()
    if broken:
        figures["headers"]["predict_p99_ratio"] = 12.0
    seconds = {"headers": 1.0, "total": 1.0}
    made_up = {"results": figures, "checks": hostile.check(figures), "seconds": seconds}
    monkeypatch.setattr(hostile, "run", lambda args: made_up)
    argv = ["hostile", "--bundle", str(tmp_path / "unused"), "--results", str(tmp_path)]
    if broken:
        with pytest.raises(SystemExit) as exit:
            commands.main(argv)
        assert exit.value.code == 1
    else:
        commands.main(argv)  # returns: exit status 0
    record = json.loads((tmp_path / "hostile.json").read_text())
    assert record["figures"]["checks"] == made_up["checks"]  # written before it exits


@pytest.mark.parametrize("name", [*commands.BENCHMARKS, "all"])
def test_every_command_has_help(name, capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        commands.parser().parse_args([name, "--help"])
    assert exit.value.code == 0 and "--results" in capsys.readouterr().out


def test_all_runs_each_benchmark_in_its_own_process_and_fails_when_one_does(monkeypatch, tmp_path) -> None:
    ran = []

    def fake_run(command):
        ran.append(command[1:])
        return subprocess.CompletedProcess(command, 1 if command[3] == "hostile" else 0)

    monkeypatch.setattr(commands.subprocess, "run", fake_run)
    with pytest.raises(SystemExit, match="failed: hostile"):
        commands.main(["all", "--bundle", "b", "--results", str(tmp_path), "--data", "d"])
    common = ["--bundle", "b", "--results", str(tmp_path), "--data", "d"]
    assert ran == [["-m", "benchmarks", name, *common] for name in commands.BENCHMARKS]
