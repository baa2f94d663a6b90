"""The benchmark scripts compute what they say: FLOP counts, ratios, parity checks, the report.

Their figures are not asserted (speed is measured in benchmarks, not in timed tests); these
tests run each script's measuring function on a tiny bundle and check the arithmetic and the
structure of what it returns.
"""

from __future__ import annotations

import math
import re
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest

from bench import cli, engines, levers, overhead, profile, quantized, report, roofline, service, stages
from model.config import ModelConfig
from tests.bundles import CORPUS, make_bundle
from training.data import Review

TEXTS = [f"{text} {' '.join(CORPUS[(i + 1) % 4].split()[: i % 7])}" for i, text in enumerate(CORPUS * 6)]


def test_forward_flops_counts_every_matrix_product() -> None:
    config = ModelConfig(
        vocab_size=10, embed_dim=4, hidden_size=3, num_layers=2, bidirectional=True, pooling="concat"
    )
    flops = roofline.forward_flops(config, tokens=5)
    # layer 0 reads 4 inputs, layer 1 reads 2 directions x 3; LSTM has 4 gates of 3 units
    assert flops.input_projection == 2 * (2 * 5 * 4 * 12) + 2 * (2 * 5 * 6 * 12)
    assert flops.recurrent == 2 * 2 * (2 * 5 * 3 * 12)
    assert flops.head == 2 * config.pooled_dim * 2
    gru = roofline.forward_flops(
        ModelConfig(vocab_size=10, embed_dim=4, hidden_size=3, cell="gru", bidirectional=False), tokens=5
    )
    assert gru.recurrent == 2 * 5 * 3 * 9  # one direction, 3 gates


def test_machine_speeds_are_finite_and_positive() -> None:
    assert 0 < roofline.matmul_gflops(16, 8, 32, threads=1, repeats=3) < math.inf
    assert 0 < roofline.matvec_gflops(32, 8, threads=1, steps=50, repeats=2) < math.inf


def test_compiled_matvec_computes_a_recurrent_step() -> None:
    import numpy as np

    run = roofline.compiled_matvec()
    if run is None:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(1)
    weights = rng.standard_normal(
        (6, 10), dtype=np.float32
    )  # [cols, rows]: 6 inputs (4 + 2 left over), 10 outputs
    x = rng.standard_normal(6, dtype=np.float32)
    start = x.copy()
    y = np.empty(10, dtype=np.float32)
    assert run(weights, x, y, 1) > 0
    np.testing.assert_allclose(y, weights.T @ start, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(x, np.where(y[:6] >= 0, 0.5, -0.5))  # the next step's input
    run(weights, x, y, 1)
    np.testing.assert_allclose(
        y, weights.T @ np.where((weights.T @ start)[:6] >= 0, 0.5, -0.5), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="float32"):
        run(weights.astype(np.float64), x, y, 1)
    with pytest.raises(ValueError, match="cols"):
        roofline.compiled_matvec_gflops(3, 4)


def test_roofline_ratio_is_measured_over_bound(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    results = roofline.roofline(bundle, TEXTS, tokens=6, count=5)
    assert results["reviews"] == 5
    for threads in (1, 2):
        row = results[f"threads_{threads}"]
        assert row["bound_ms"] > 0
        assert row["ratio"] == pytest.approx(row["onnx_ms"] / row["bound_ms"])
        assert row["recurrent_layers_ratio"] == pytest.approx(row["recurrent_layers_ms"] / row["bound_ms"])
        # the faster of numpy's BLAS and the compiled loop sets the bound
        assert row["matvec_gflops"] == max(
            row["matvec_blas_gflops"], results["matvec_compiled_gflops"] or 0.0
        )


@pytest.mark.parametrize("cell, layers", [("lstm", 2), ("gru", 1)])
def test_the_recurrent_part_is_the_graph_up_to_its_last_recurrent_output(tmp_path, cell, layers) -> None:
    """No pooling or head is left, and the cut graph computes what the whole one does there."""
    from model.bundle import ONNX_FILE, onnx_session, read_onnx
    from model.inputs import pad_batch

    bundle, _, _ = make_bundle(tmp_path / "b", cell=cell, num_layers=layers)
    proto, _, _ = read_onnx(bundle / ONNX_FILE)
    part, output = roofline.recurrent_part(proto)
    cut = onnx.load_from_string(part)
    assert [o.name for o in cut.graph.output] == [output] == [f"hidden_{layers - 1}"]
    ops = {node.op_type for node in cut.graph.node}
    assert cell.upper() in ops and not ops & {"ReduceMax", "Gemm", "Softmax"}
    ids, lengths = pad_batch([[3, 4, 5, 6], [7, 8]])
    feed = {"token_ids": ids, "lengths": lengths}
    whole = onnx_session(bundle / ONNX_FILE).run([output], feed)[0]
    np.testing.assert_array_equal(onnx_session(part).run([output], feed)[0], whole)


def test_exact_length_sequences_keeps_only_long_enough_reviews(tmp_path) -> None:
    _, _, tokenizer = make_bundle(tmp_path / "b")
    sequences = roofline.exact_length_sequences(
        tokenizer, ["good", "a great great movie !", "bad film"], 3, 5
    )
    assert [len(s) for s in sequences] == [3]


def test_engines_compares_the_same_weights(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    results = engines.compare_engines(bundle, TEXTS, single=8, batched=20)
    assert results["parity_max_abs_dp"] <= 1e-5
    assert [(r["threads"], r["batch"]) for r in results["rows"]] == [(1, 1), (1, 64), (2, 1), (2, 64)]
    for row in results["rows"]:
        assert row["ratio"] == pytest.approx(row["onnxruntime_ms"] / row["pytorch_ms"])


def test_graph_variants_are_timed_and_scored(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    reviews = [Review(i, text, i % 2, 1) for i, text in enumerate(TEXTS)]
    results = quantized.compare(bundle, reviews[:10], reviews[10:], timed=5)
    levels = {f"float32, graph optimisation {level}" for level in ("off", "basic", "extended")}
    assert set(results) == {"float32", "int8", "fp16", *levels}
    for row in results.values():
        assert 0 <= row["test_accuracy"] <= 1 and row["ms_1_thread"] > 0
    assert results["fp16"]["bytes"] < results["float32"]["bytes"]


def test_the_fp16_variant_computes_the_same_probabilities_in_half_precision(tmp_path) -> None:
    from model.bundle import ONNX_FILE, onnx_session
    from model.inputs import pad_batch

    bundle, _, _ = make_bundle(tmp_path / "b")
    half = tmp_path / "half.onnx"
    quantized.half_precision(bundle / ONNX_FILE, half)
    weights = {t.data_type for t in onnx.load(str(half)).graph.initializer if t.name in ("embedding", "W_0")}
    assert weights == {onnx.TensorProto.FLOAT16}
    ids, lengths = pad_batch([[3, 4, 5, 6], [7, 8]])
    feed = {"token_ids": ids, "lengths": lengths}
    full = onnx_session(bundle / ONNX_FILE).run(["probabilities"], feed)[0]
    np.testing.assert_allclose(onnx_session(half).run(["probabilities"], feed)[0], full, atol=1e-2)


def test_report_runs_a_script_and_reads_its_figures_without_its_commit(tmp_path, monkeypatch) -> None:
    """Every script's JSON names its commit (cli.publish); the report reads them into sections that
    iterate over their rows, so the commit key must not reach them (it broke the int8 table)."""
    import json
    from pathlib import Path

    rows = {"float32": {"ms_1_thread": 3.0}, "int8": {"ms_1_thread": 2.0}}

    def fake_run(command, check):
        assert command[1:3] == ["-m", "bench.quantized"] and check
        Path(command[-1]).write_text(json.dumps({"commit": "abc1234", **rows}))

    monkeypatch.setattr(report.subprocess, "run", fake_run)
    assert report._run("bench.quantized", [], tmp_path) == rows


def test_service_benchmark_and_report(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    results = service.benchmark(bundle, TEXTS, clients=(1, 4, 32))
    on = results["batching_on"]
    assert [r["clients"] for r in on["load"]] == [1, 4, 32]
    assert on["ready_s"] > 0 and on["rss_rest_mb"] > 0
    assert results["throughput_gain"]["1"] == pytest.approx(1.0)
    assert results["http_over_in_process_p50"] == pytest.approx(
        on["load"][0]["p50_ms"] / results["in_process_p50_ms"]
    )
    combined = {
        "machine": report.machine(),
        "service": results,
        "roofline": roofline.roofline(bundle, TEXTS, tokens=6, count=3),
        "engines": engines.compare_engines(bundle, TEXTS, single=4, batched=8),
        "training": {"tokens_per_second": 1000.0, "batches": 3},
        "quantized": {
            name: {
                "ms_1_thread": 3.0,
                "ms_2_thread": 2.0,
                "validation_accuracy": 0.9,
                "test_accuracy": 0.9,
                "bytes": 10**7,
            }
            for name in ("float32", "int8")
        },
    }
    rows = report.targets(combined)
    assert len(rows) == 7
    throughput = next(r for r in rows if r[0].startswith("throughput"))
    assert throughput[3] == (results["throughput_gain"]["32"] >= 3)
    text = report.markdown(combined, "python -m bench.report")
    assert "| target | measured | absolute | met |" in text
    assert "| int8 | 3.00 | 2.00 | 90.00 % | 90.00 % | 10.0 |" in text
    alone = combined["roofline"]["threads_1"]
    assert f"| {alone['recurrent_layers_ms']:.2f} | {alone['recurrent_layers_ratio']:.2f} |" in text
    for threads, ratio in ((1, 0.8), (2, 2.0)):  # a measured time under its bound: the bound was no bound
        combined["roofline"][f"threads_{threads}"]["ratio"] = ratio
    roof = next(r for r in report.targets(combined) if r[0].startswith("model time"))
    assert roof[3] is None
    assert "unknown: the bound was beaten" in report.markdown(combined, "python -m bench.report")
    combined["roofline"]["threads_1"]["ratio"] = 1.2
    assert next(r for r in report.targets(combined) if r[0].startswith("model time"))[3] is True
    assert report.plots(combined, tmp_path) == ["bench_service.png", "bench_engines.png"]
    assert (tmp_path / "bench_service.png").stat().st_size > 0


def test_overhead_splits_a_request_into_its_parts(tmp_path) -> None:
    import asyncio

    from app.settings import Settings

    bundle, _, _ = make_bundle(tmp_path / "b")
    figures = asyncio.run(overhead._measure(Settings(model_dir=bundle), requests=20))
    assert 0 < figures["inference_ms"] <= figures["service_predict_ms"] <= figures["request_ms"]
    assert figures["healthz_ms"] > 0


def test_loopback_overhead_splits_by_the_servers_own_metrics(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    figures = overhead.over_loopback(bundle, TEXTS * 3)
    assert figures["requests"] == 3 * len(TEXTS)
    assert figures["outside_app_ms"] > 0 and figures["app_ms"] > 0 and figures["inference_ms"] > 0
    assert 0 < figures["healthz_p50_ms"] < figures["client_p50_ms"]
    assert figures["in_process_mean_ms"] > 0


def test_levers_split_the_cpu_of_32_clients_and_bound_the_gain(tmp_path) -> None:
    import os

    bundle, _, _ = make_bundle(tmp_path / "b")
    r = levers.measure(bundle, TEXTS * 3, {"SENTIMENT_THREADS": "1"})
    assert r["gain_32"] == pytest.approx(r["rps_32"] / r["single_rps"])
    assert r["mean_batch_32"] >= 1
    for part in ("server_cpu", "inference", "client_cpu"):
        assert r[f"{part}_ms_per_request_32"] > 0, part
    cpu_ms = r["server_cpu_ms_per_request_32"] + r["client_cpu_ms_per_request_32"]
    cores = len(os.sched_getaffinity(0))
    assert r["ceiling_32"] == pytest.approx(cores * 1000 / r["single_rps"] / cpu_ms)


def test_stages_tile_each_request_in_order(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    figures = stages.measure(bundle, TEXTS * 2, threads=1, warmup=4)
    assert figures["requests"] == 2 * len(TEXTS)
    assert figures["stages"][0]["from"] == "send" and figures["stages"][-1]["to"] == "recv"
    # every request passed every stamp, in this order: no span is negative
    assert all(row["min_ms"] >= 0 for row in figures["stages"]), figures["stages"]
    assert figures["stages"][5]["what"] == "onnxruntime" and figures["stages"][5]["p50_ms"] > 0
    assert figures["in_process"]["p50_ms"] > 0
    with pytest.raises(ValueError, match="warm-up"):
        stages.measure(bundle, TEXTS[:3], threads=1, warmup=4)


METRICS = """# HELP http_request_duration_seconds Latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/v1/predict",le="0.1",method="POST"} 3.0
http_request_duration_seconds_bucket{handler="/v1/predict",le="+Inf",method="POST"} 4.0
http_request_duration_seconds_sum{handler="/v1/predict",method="POST"} 0.25
http_request_duration_seconds_count{handler="/v1/predict",method="POST"} 4.0
http_request_duration_seconds_sum{handler="/v1/predict",method="GET"} 0.5
http_request_duration_seconds_count{handler="/v1/predict",method="GET"} 1.0
http_request_duration_seconds_sum{handler="/healthz",method="GET"} 9.0
http_request_duration_seconds_count{handler="/healthz",method="GET"} 90.0
# HELP http_request_duration_seconds_created Latency.
# TYPE http_request_duration_seconds_created gauge
http_request_duration_seconds_created{handler="/v1/predict",method="POST"} 1.7e9
# HELP http_request_duration_highr_seconds Latency.
# TYPE http_request_duration_highr_seconds histogram
http_request_duration_highr_seconds_sum 99.0
http_request_duration_highr_seconds_count 99.0
# HELP sentiment_inference_seconds Time of one onnxruntime call.
# TYPE sentiment_inference_seconds histogram
sentiment_inference_seconds_bucket{le="+Inf"} 5.0
sentiment_inference_seconds_sum 0.125
sentiment_inference_seconds_count 5.0
"""


def test_metric_sums_read_only_the_predict_route_and_inference() -> None:
    assert overhead.metric_sums(METRICS) == {
        "sum": 0.75,
        "count": 5.0,
        "inference_sum": 0.125,
        "inference_count": 5.0,
    }


LOOP = "thread (1): MainThread;main (app/__main__.py:58)"
STACKS = [
    f"{LOOP};handle (fastapi/routing.py:10);predict (app/api/v1.py:26) 3",
    f"{LOOP};handle (fastapi/routing.py:12);handle (fastapi/routing.py:10) 1",
    "thread (7): asyncio_0;run (onnxruntime/session.py:406) 4",
    "thread (1): MainThread;main (app/__main__.py) 1",  # py-spy leaves out a line it does not know
]


def test_profile_shares_are_inclusive_per_function_and_thread() -> None:
    samples, shares = profile.inclusive_shares(STACKS, "MainThread")
    assert samples == 5
    # a function is counted once per sample however often it recurses, and its lines are summed
    assert dict((frame, share) for share, frame in shares) == {
        "main (app/__main__.py)": 1.0,
        "handle (fastapi/routing.py)": 0.8,
        "predict (app/api/v1.py)": 0.6,
    }
    samples, shares = profile.inclusive_shares(STACKS)
    assert samples == 9 and shares[0] == (5 / 9, "main (app/__main__.py)")
    assert "run (onnxruntime/session.py)" in {frame for _, frame in shares}
    assert profile.inclusive_shares(STACKS, "nobody") == (0, [])
    shares = profile.inclusive_shares(STACKS[:1])[1]  # three functions in every sample: ordered by name
    assert [frame for _, frame in shares] == sorted(frame for _, frame in shares)


def test_one_client_run_alternates_with_the_in_process_reference(monkeypatch) -> None:
    calls = []

    class Reference:
        def milliseconds(self, texts):
            calls.append(("in process", list(texts)))
            return [1.0] * len(texts)

    async def fake_load(base, texts, clients):
        calls.append(("http", list(texts)))
        return 100.0, [0.002] * len(texts)

    monkeypatch.setattr(service, "load", fake_load)
    texts = [f"review {i}" for i in range(10)]
    rps, latencies, inproc = service.one_client_beside("http://x", texts, Reference())
    assert [kind for kind, _ in calls] == ["in process", "http"] * service.BLOCKS
    assert all(calls[i][1] == calls[i + 1][1] for i in range(0, len(calls), 2))  # same texts, side by side
    assert sorted(t for kind, block in calls if kind == "http" for t in block) == sorted(texts)
    assert rps == pytest.approx(100.0) and len(latencies) == len(inproc) == len(texts)


def test_published_figures_name_their_commit_and_uncommitted_changes(tmp_path, monkeypatch) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("a")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    monkeypatch.chdir(repo)
    head = cli.commit()
    assert len(head) >= 7 and "+" not in head
    (repo / "f.txt").write_text("b")
    assert cli.commit() == head + "+changes"
    monkeypatch.chdir(tmp_path)  # not a checkout
    assert cli.commit() == ""


def test_bare_server_answers_like_the_service_without_the_app() -> None:
    import asyncio
    from types import SimpleNamespace

    import httpx

    from bench import bare

    class Runtime:
        calls = 0
        model = SimpleNamespace(ref={"name": "m", "version": "1"})  # stands for LoadedModel

        def predict(self, texts):
            from app.runtime import PredictionResult

            Runtime.calls += 1
            return [
                PredictionResult("negative", 0.2, {"negative": 0.8, "positive": 0.2}, 3, False) for _ in texts
            ]

    async def post(mode):
        transport = httpx.ASGITransport(app=bare.make_app(Runtime(), mode))
        async with httpx.AsyncClient(transport=transport, base_url="http://bare") as client:
            ready = await client.get("/readyz")
            answer = await client.post("/v1/predict", json={"text": "a dull film"})
            return ready.status_code, answer.json()

    expected = {
        "label": "negative",
        "score": 0.2,
        "probabilities": {"negative": 0.8, "positive": 0.2},
        "tokens": 3,
        "truncated": False,
        "model": {"name": "m", "version": "1"},
    }
    for mode in ("inline", "thread"):
        assert asyncio.run(post(mode)) == (200, expected)
    assert Runtime.calls == 2
    assert asyncio.run(post("echo"))[1] == bare.ECHO
    assert Runtime.calls == 2  # the echo never ran the model
    with pytest.raises(ValueError, match="mode"):
        bare.make_app(Runtime(), "fast")


def test_floor_serves_every_variant_beside_the_in_process_reference(tmp_path) -> None:
    from bench import floor

    bundle, _, _ = make_bundle(tmp_path / "b")
    results = floor.floor(bundle, TEXTS, rounds=1, threads=1)
    (row,) = results["rounds"]
    for name in floor.VARIANTS:
        r = row[name]
        assert r["ratio"] == pytest.approx(r["p50_ms"] / r["in_process_p50_ms"])
        assert r["gain_32"] == pytest.approx(r["rps_32"] / r["single_rps"])
    echo = row["bare, echo"]
    assert row["http_alone_over_in_process"] == pytest.approx(echo["p50_ms"] / echo["in_process_p50_ms"])


def test_ab_serves_both_checkouts_in_every_round(tmp_path) -> None:
    """Here both sides are this checkout; each side's figures come from its own server."""
    from bench import ab

    bundle, _, _ = make_bundle(tmp_path / "b")
    root = Path(__file__).resolve().parents[2]
    results = ab.compare(bundle, TEXTS, baseline=root, rounds=1, threads=1)
    (row,) = results["rounds"]
    assert row.pop("order") == ["baseline", "this"]
    assert set(row) == {"baseline", "this"}
    for r in row.values():
        assert r["ratio"] == pytest.approx(r["p50_ms"] / r["in_process_p50_ms"])
        assert r["single_rps"] > 0 and r["rps_32"] > 0
    assert re.fullmatch("[0-9a-f]{7,}", results["baseline"])  # the checkout's commit


def test_a_server_runs_the_code_of_its_source_checkout(tmp_path) -> None:
    """``source`` decides which checkout's ``app`` answers, so an A/B compares two versions."""
    fake = tmp_path / "checkout" / "app"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import argparse, http.server\n"
        "parser = argparse.ArgumentParser(); parser.add_argument('--port', type=int)\n"
        "parser.add_argument('--log-level')\n"
        "class Handler(http.server.BaseHTTPRequestHandler):\n"
        "    protocol_version = 'HTTP/1.1'\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.send_header('Content-Length', '18'); self.end_headers()\n"
        "        self.wfile.write(b'the other checkout')\n"
        "    def log_message(self, *args): pass\n"
        "port = parser.parse_args().port\n"
        "http.server.HTTPServer(('127.0.0.1', port), Handler).serve_forever()\n"
    )
    with service.serving(tmp_path, source=tmp_path / "checkout") as (_, base, _):
        assert urllib.request.urlopen(f"{base}/anything").read() == b"the other checkout"


def test_batching_times_the_same_reviews_at_every_batch_size(tmp_path) -> None:
    from bench import batching

    bundle, _, _ = make_bundle(tmp_path / "b")
    results = batching.batching(bundle, TEXTS, sizes=(1, 4, 64))
    assert results["reviews"] == len(TEXTS)
    assert [(r["threads"], r["batch"]) for r in results["rows"]] == [
        (t, b) for t in (1, 2) for b in (1, 4, 64)
    ]
    for r in results["rows"]:
        assert r["wall_ms"] > 0 and r["cpu_ms"] > 0
        first = next(x for x in results["rows"] if x["threads"] == r["threads"] and x["batch"] == 1)
        assert r["cpu_vs_batch_1"] == pytest.approx(r["cpu_ms"] / first["cpu_ms"])
    with pytest.raises(ValueError, match="first batch size"):
        batching.batching(bundle, TEXTS, sizes=(8, 1))
