"""The benchmarks compute what they say: FLOP counts, ratios, parity checks, Server-Timing, tables.

Their figures are not asserted (speed is measured in benchmarks, not in timed tests); these
tests run each benchmark's measuring functions on a tiny bundle and check the arithmetic and the
structure of what they return. The end-to-end runs are in ``test_commands.py``.
"""

from __future__ import annotations

import math
import subprocess

import numpy as np
import onnx
import pytest

from benchmarks import engine, model_speed, precision, render, results, roofline, server_timing, service
from model.bundle import ONNX_FILE, read_onnx
from model.config import ModelConfig
from model.inputs import pad_batch
from tests.bundles import CORPUS, make_bundle

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
    run = roofline.compiled_matvec()
    if run is None:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(1)
    # [cols, rows]: 6 inputs (4 + 2 left over), 10 outputs
    weights = rng.standard_normal((6, 10), dtype=np.float32)
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
    figures = roofline.roofline(bundle, TEXTS, tokens=6, count=5)
    assert figures["reviews"] == 5
    for threads in (1, 2):
        row = figures[f"threads_{threads}"]
        assert row["bound_ms"] > 0
        assert row["ratio"] == pytest.approx(row["onnx_ms"] / row["bound_ms"])
        assert row["recurrent_layers_ratio"] == pytest.approx(row["recurrent_layers_ms"] / row["bound_ms"])
        # the faster of numpy's BLAS and the compiled loop sets the bound
        assert row["matvec_gflops"] == max(
            row["matvec_blas_gflops"], figures["matvec_compiled_gflops"] or 0.0
        )


@pytest.mark.parametrize("cell, layers", [("lstm", 2), ("gru", 1)])
def test_the_recurrent_part_is_the_graph_up_to_its_last_recurrent_output(tmp_path, cell, layers) -> None:
    """No pooling or head is left, and the cut graph computes what the whole one does there."""
    bundle, _, _ = make_bundle(tmp_path / "b", cell=cell, num_layers=layers)
    proto, _, _ = read_onnx(bundle / ONNX_FILE)
    part, output = roofline.recurrent_part(proto)
    cut = onnx.load_from_string(part)
    assert [o.name for o in cut.graph.output] == [output] == [f"hidden_{layers - 1}"]
    ops = {node.op_type for node in cut.graph.node}
    assert cell.upper() in ops and not ops & {"ReduceMax", "Gemm", "Softmax"}
    ids, lengths = pad_batch([[3, 4, 5, 6], [7, 8]])
    feed = {"token_ids": ids, "lengths": lengths}
    whole = engine.session(bundle / ONNX_FILE, 1).run([output], feed)[0]
    np.testing.assert_array_equal(engine.session(part, 1).run([output], feed)[0], whole)


def test_exact_length_sequences_keeps_only_long_enough_reviews(tmp_path) -> None:
    _, _, tokenizer = make_bundle(tmp_path / "b")
    sequences = roofline.exact_length_sequences(
        tokenizer, ["good", "a great great movie !", "bad film"], 3, 5
    )
    assert [len(s) for s in sequences] == [3]


def test_the_in_process_ceiling_answers_as_the_graph_does(tmp_path) -> None:
    """Tokenise under the card's cap, one call: the probabilities the bundle's graph gives."""
    bundle, _, tokenizer = make_bundle(tmp_path / "b", max_tokens=3)
    ceiling = engine.InProcess(bundle, threads=1)
    text = "a wonderful , moving film with great acting"
    expected = engine.probabilities(engine.session(bundle / ONNX_FILE, 1), [tokenizer.encode(text, 3)])[0]
    np.testing.assert_array_equal(ceiling.predict(text), expected)
    assert len(ceiling.milliseconds(TEXTS[:4], warmup=1)) == 4


def test_engines_compare_the_same_weights_at_every_batch_size(tmp_path) -> None:
    bundle, _, tokenizer = make_bundle(tmp_path / "b")
    sequences = [tokenizer.encode(text) for text in TEXTS[:10]]
    figures = model_speed.engines(bundle, sequences, sizes=(1, 4, 64))
    assert figures["parity_max_abs_dp"] <= 1e-5 and figures["reviews"] == 10
    assert [(r["threads"], r["batch"]) for r in figures["rows"]] == [
        (t, b) for t in (1, 2) for b in (1, 4, 64)
    ]
    for row in figures["rows"]:
        assert row["ratio"] == pytest.approx(row["onnxruntime_wall_ms"] / row["pytorch_wall_ms"])
        assert row["onnxruntime_cpu_ms"] > 0 and row["pytorch_cpu_ms"] > 0
        assert ("onnxruntime_median_call_ms" in row) == (row["batch"] == 1)


def test_per_review_divides_by_reviews_not_calls() -> None:
    calls = []

    def run(ids, lengths):
        calls.append(len(lengths))

    figures = model_speed.per_review(run, [[1, 2]] * 10, batch_size=4, repeats=2)
    assert calls == [4] + [4, 4, 2] * 2  # a warm-up call, then every batch per repeat
    assert figures["wall_ms"] > 0 and "median_call_ms" not in figures


def test_precision_variants_are_timed_and_scored(tmp_path) -> None:
    bundle, _, tokenizer = make_bundle(tmp_path / "b")
    sequences = [tokenizer.encode(text) for text in TEXTS]
    labels = np.arange(len(TEXTS)) % 2
    splits = {"validation": (sequences[:10], labels[:10]), "test": (sequences[10:], labels[10:])}
    figures = precision.compare(bundle, splits, sequences[:8])
    assert set(figures) == {"float32", "int8", "fp16"}
    for row in figures.values():
        assert 0 <= row["test_accuracy"] <= 1 and row["ms_1_thread"] > 0 and row["ms_2_thread"] > 0
    assert figures["fp16"]["bytes"] < figures["float32"]["bytes"]
    positive = engine.probabilities(engine.session(bundle / ONNX_FILE, 1), sequences[10:])[:, 1]
    assert figures["float32"]["test_accuracy"] == pytest.approx(((positive >= 0.5) == labels[10:]).mean())


def test_the_fp16_variant_computes_the_same_probabilities_in_half_precision(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    half = tmp_path / "half.onnx"
    precision.half_precision(bundle / ONNX_FILE, half)
    weights = {t.data_type for t in onnx.load(str(half)).graph.initializer if t.name in ("embedding", "W_0")}
    assert weights == {onnx.TensorProto.FLOAT16}
    sequences = [[3, 4, 5, 6], [7, 8]]
    full = engine.probabilities(engine.session(bundle / ONNX_FILE, 1), sequences)
    np.testing.assert_allclose(engine.probabilities(engine.session(half, 1), sequences), full, atol=1e-2)


# the header as the app sends it (issue 23's contract), with what the spec also allows around it
HEADER = 'tokenize;dur=0.21, queue;dur=0.05;desc="wait, then run", infer;dur=2.30, total;dur=2.71'


def test_server_timing_is_parsed_by_the_spec() -> None:
    assert server_timing.parse(HEADER) == {"tokenize": 0.21, "queue": 0.05, "infer": 2.30, "total": 2.71}
    # parameters in any order and case, spaces, a metric without dur, a quoted dur, a repeated name
    odd = 'cache;desc="hit; fast", db ; desc=x ; DUR = 53.2, app;dur="1.5", db;dur=9, bad;dur=abc'
    assert server_timing.parse(odd) == {"db": 53.2, "app": 1.5}
    assert server_timing.parse("") == {}


def test_the_stage_breakdown_splits_the_client_latency() -> None:
    stages = server_timing.parse(HEADER)
    figures = server_timing.breakdown([(4.0, stages), (5.0, stages), (9.0, {"total": 1.0})])
    assert figures["requests"] == 2  # the request without every stage is left out
    rows = {row["stage"]: row for row in figures["stages"]}
    assert rows["infer"]["p50_ms"] == pytest.approx(2.30)
    assert rows["rest of the app"]["mean_ms"] == pytest.approx(2.71 - 0.21 - 0.05 - 2.30)
    assert rows["outside the app"]["mean_ms"] == pytest.approx(4.5 - 2.71)
    assert rows["client"]["p50_ms"] == pytest.approx(4.5)
    assert server_timing.breakdown([(4.0, {})]) is None
    serialised = server_timing.breakdown([(4.0, {**stages, "serialise": 0.5})])
    rows = {row["stage"]: row for row in serialised["stages"]}
    assert rows["serialise"]["p50_ms"] == 0.5
    assert rows["outside the app"]["p50_ms"] == pytest.approx(4.0 - 2.71 - 0.5)


def test_one_client_run_alternates_with_the_in_process_ceiling(monkeypatch) -> None:
    calls = []

    class Ceiling:
        def milliseconds(self, texts):
            calls.append(("in process", list(texts)))
            return [1.0] * len(texts)

    async def fake_load(base, texts, clients):
        calls.append(("http", list(texts)))
        return 100.0, [(0.0, 0.002, {}) for _ in texts]

    monkeypatch.setattr(service, "load", fake_load)
    texts = [f"review {i}" for i in range(10)]
    rps, log, inproc = service.one_client_beside("http://x", texts, Ceiling())
    assert [kind for kind, _ in calls] == ["in process", "http"] * service.BLOCKS
    assert all(calls[i][1] == calls[i + 1][1] for i in range(0, len(calls), 2))  # same texts, side by side
    assert sorted(t for kind, block in calls if kind == "http" for t in block) == sorted(texts)
    assert rps == pytest.approx(100.0) and len(log) == len(inproc) == len(texts)


def test_a_result_file_names_its_command_commit_machine_and_settings(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SENTIMENT_BATCH_WAIT_MS", "2")
    path = results.write("model", {"x": 1}, ["model", "--reviews", "8"], tmp_path)
    record = results.read(tmp_path)["model"]
    assert path == tmp_path / "model.json"
    assert record["command"] == "python -m benchmarks model --reviews 8"
    assert record["figures"] == {"x": 1} and record["machine"]["cores"] >= 1
    assert record["settings"] == {"SENTIMENT_BATCH_WAIT_MS": "2"}
    assert "`SENTIMENT_BATCH_WAIT_MS=2 python -m benchmarks model --reviews 8`" in render.provenance(record)
    monkeypatch.delenv("SENTIMENT_BATCH_WAIT_MS")
    results.write("model", {"x": 2}, ["model"], tmp_path)  # a rerun overwrites
    assert results.read(tmp_path)["model"]["figures"] == {"x": 2}


def test_a_recorded_command_names_paths_relative_to_the_repository() -> None:
    archive = results.ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"
    assert results.portable(str(archive)) == "../shared/data/aclImdb_v1.tar.gz"
    assert results.portable(f"--data={archive}") == "--data=../shared/data/aclImdb_v1.tar.gz"
    assert results.portable(str(results.ROOT / "models" / "default")) == "models/default"
    assert results.portable("--reviews") == "--reviews" and results.portable("a=b") == "a=b"


def test_published_figures_name_their_commit_and_uncommitted_changes(tmp_path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("a")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    monkeypatch.chdir(repo)
    head = results.commit()
    assert len(head) >= 7 and "+" not in head
    (repo / "f.txt").write_text("b")
    assert results.commit() == head + "+changes"
    monkeypatch.chdir(tmp_path)  # not a checkout
    assert results.commit() == ""


def _engine_row(threads: int, batch: int, ratio: float) -> dict:
    row = {"threads": threads, "batch": batch, "ratio": ratio}
    for name in ("onnxruntime", "pytorch"):
        row |= {f"{name}_wall_ms": 2.0, f"{name}_cpu_ms": 3.0}
        if batch == 1:
            row[f"{name}_median_call_ms"] = 1.5
    return row


def test_the_model_targets_read_the_measured_ratios(tmp_path) -> None:
    bundle, _, _ = make_bundle(tmp_path / "b")
    figures = {
        "roofline": roofline.roofline(bundle, TEXTS, tokens=6, count=3),
        "engines": {"rows": [_engine_row(1, 1, 0.45), _engine_row(2, 1, 0.7), _engine_row(1, 64, 0.2)]},
    }
    for threads, ratio in ((1, 1.2), (2, 2.0)):
        figures["roofline"][f"threads_{threads}"]["ratio"] = ratio
    engines, roof = render.model_targets(figures)
    assert engines[1:] == ["0.45 (1 thr.) / 0.70 (2 thr.)", "yes"]
    assert roof[2] == "yes"
    figures["roofline"]["threads_1"]["ratio"] = 0.8  # a time under its bound: the bound was no bound
    assert render.model_targets(figures)[1][2] == "unknown"


def test_the_ops_bound_is_met_only_when_the_range_of_its_rounds_is_within_it() -> None:
    def ratio(median: float, low: float, high: float) -> dict:
        return {"median": median, "min": low, "max": high}

    assert render.ops_verdict(ratio(0.98, 0.95, 1.04), 3) == render.VERDICT[True]
    assert render.ops_verdict(ratio(1.01, 0.90, 1.12), 3) == "within noise"
    assert render.ops_verdict(ratio(1.08, 1.06, 1.10), 3) == render.VERDICT[False]
    assert render.ops_verdict(ratio(0.90, 0.90, 0.90), 1).startswith("unknown")


def test_the_rendered_page_has_a_section_per_result_file(tmp_path) -> None:
    load = {
        "users": 4,
        "seconds": 2,
        "requests": 100,
        "failures": 0,
        "requests_per_s": 50.0,
        "p50_ms": 20.0,
        "p99_ms": 40.0,
        "max_ms": 60.0,
        "server_peak_rss_mb": 150.0,
        "server_alive_same_pid": True,
    }
    results.write("load", load, ["load"], tmp_path)
    checks = [{"figure": "saliency.peak_rss_mb", "value": 300.0, "bound": "<= 512", "held": True}]
    seconds = {"saliency": 20.0, "headers": 9.6, "total": 29.6}
    results.write("hostile", {"results": {}, "checks": checks, "seconds": seconds}, ["hostile"], tmp_path)
    (tmp_path / "notes.json").write_text("{}")  # not a benchmark's: left out
    sections = render.markdown(tmp_path)
    assert list(sections) == ["hostile", "load"]
    assert "`python -m benchmarks load`" in sections["load"]
    assert "| 4 | 2 | 100 | 0 | 50 | 20 | 40 | 60 | 150 | no |" in sections["load"]
    assert "| `saliency.peak_rss_mb` | 300 | <= 512 | held |" in sections["hostile"]
    assert "The run took 30 s (saliency 20 s, headers 10 s)" in sections["hostile"]


def test_a_server_runs_the_code_of_its_source_checkout(tmp_path) -> None:
    """``source`` decides which checkout's ``app`` answers, so ``hostile --source`` attacks an
    older version."""
    import urllib.request

    from benchmarks import server

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
    with server.running(tmp_path, source=tmp_path / "checkout") as (process, base, _):
        assert urllib.request.urlopen(f"{base}/anything").read() == b"the other checkout"
        assert server.peak_rss_mb(process.pid) >= server.rss_mb(process.pid) > 0
        assert server.cpu_seconds(process.pid) > 0
    assert process.poll() is not None  # stopped when the block ended
