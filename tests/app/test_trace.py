"""Trace exactness: every gate of every layer and direction against a PyTorch computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.runtime import LoadedModel, make_prediction
from app.settings import Settings
from app.store import ModelStore
from tests.bundles import make_bundle

TEXT = "a wonderful , moving film . i loved it ! but the plot was dull and boring"


def load(folder) -> LoadedModel:
    """The bundle at ``folder``, read, checked and warmed up as the server loads it."""
    store = ModelStore(Settings(model_dir=folder))
    store.load()
    return store.model


def torch_gates(cell: str, direction: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gates of one PyTorch direction over ``x`` [T, I], from its own parameters (PyTorch order)."""
    p = dict(direction.named_parameters())
    hidden_size = p["weight_hh_l0"].shape[1]
    h = torch.zeros(hidden_size)
    c = torch.zeros(hidden_size)
    names = {"gru": ["reset", "update", "candidate", "hidden"], "rnn": ["hidden"]}.get(
        cell, ["input", "forget", "cell_candidate", "output", "cell", "hidden"]
    )
    out: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for x_t in x:
        gx = p["weight_ih_l0"] @ x_t + p["bias_ih_l0"]
        gh = p["weight_hh_l0"] @ h + p["bias_hh_l0"]
        if cell in ("lstm", "peephole"):
            i, f, g, o = (gx + gh).chunk(4)
            pi, pf, po = p["peephole"].chunk(3) if cell == "peephole" else (0, 0, 0)
            i, f, g = torch.sigmoid(i + pi * c), torch.sigmoid(f + pf * c), torch.tanh(g)
            c = f * c + i * g
            o = torch.sigmoid(o + po * c)
            h = o * torch.tanh(c)
            values = [i, f, g, o, c, h]
        elif cell == "gru":
            xr, xz, xn = gx.chunk(3)
            hr, hz, hn = gh.chunk(3)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            values = [r, z, n, h]
        else:
            h = torch.tanh(gx + gh)
            values = [h]
        for name, value in zip(names, values, strict=True):
            out[name].append(value)
    return {name: torch.stack(v) for name, v in out.items()}


def reference_trace(model, ids: list[int]) -> list[dict[str, dict[str, np.ndarray]]]:
    """Per layer, per direction, the gates PyTorch computes for one review."""
    cell = model.config.cell
    x = model.embedding(torch.tensor(ids))  # [T, E]
    layers = []
    for directions in model.encoder.layers:
        traced, outputs = {}, []
        for index, direction in enumerate(directions):
            inputs = x if index == 0 else x.flip(0)
            gates = torch_gates(cell, direction, inputs)
            if index == 1:
                gates = {name: value.flip(0) for name, value in gates.items()}
            traced[("forward", "backward")[index]] = {k: v.detach().numpy() for k, v in gates.items()}
            outputs.append(gates["hidden"])
        layers.append(traced)
        x = torch.cat(outputs, dim=1)
    return layers


@pytest.mark.parametrize(
    ("cell", "bidirectional", "num_layers"),
    [
        ("lstm", True, 2),
        ("lstm", False, 1),
        ("peephole", True, 2),
        ("gru", True, 2),
        ("rnn", True, 2),
        ("gru", False, 1),
        ("rnn", False, 2),
        ("peephole", False, 1),
    ],
)
def test_every_gate_matches_pytorch(tmp_path, cell: str, bidirectional: bool, num_layers: int) -> None:
    folder, model, _ = make_bundle(tmp_path / "bundle", cell, bidirectional, num_layers)
    served = load(folder)
    trace = served.trace(TEXT, max_tokens=100)
    with torch.no_grad():
        expected = reference_trace(model, trace["token_ids"])
    assert len(trace["layers"]) == num_layers
    for got_layer, want_layer in zip(trace["layers"], expected, strict=True):
        assert (
            set(got_layer) == set(want_layer) == ({"forward", "backward"} if bidirectional else {"forward"})
        )
        for direction, want in want_layer.items():
            got = got_layer[direction]["gates"]
            assert set(got) == set(want)
            for name, values in want.items():
                assert np.abs(np.asarray(got[name]) - values).max() <= 1e-5, (cell, direction, name)
    # the trace's prediction is the classifier's own, and /v1/predict's
    with torch.no_grad():
        probs = torch.softmax(
            model(torch.tensor([trace["token_ids"]]), torch.tensor([len(trace["token_ids"])])), 1
        )
    assert abs(trace["prediction"].score - float(probs[0, 1])) <= 1e-5
    encoded = served.encode(TEXT)
    assert make_prediction(served.infer([encoded.ids])[0], encoded) == trace["prediction"]


def test_trace_respects_max_tokens(tmp_path) -> None:
    folder, _, _ = make_bundle(tmp_path / "bundle")
    trace = load(folder).trace(TEXT, max_tokens=4)
    assert trace["tokens"] == ["a", "wonderful", ",", "moving"]
    assert trace["prediction"].truncated
    assert np.asarray(trace["layers"][0]["forward"]["gates"]["forget"]).shape == (4, 6)


def test_saliency_running_and_occlusion_match_pytorch(tmp_path) -> None:
    folder, model, _ = make_bundle(tmp_path / "bundle", "gru", bidirectional=True)
    served = load(folder)
    result = served.saliency(TEXT, max_tokens=10, max_batch_tokens=4096)
    ids = served.trace(TEXT, max_tokens=10)["token_ids"]
    assert len(result["running"]) == len(result["occlusion"]) == len(ids) == 10

    def p_positive(sequence: list[int]) -> float:
        with torch.no_grad():
            logits = model(torch.tensor([sequence]), torch.tensor([len(sequence)]))
        return float(torch.softmax(logits, 1)[0, 1])

    assert abs(result["score"] - p_positive(ids)) <= 1e-5
    for t in (0, 4, 9):
        assert abs(result["running"][t] - p_positive(ids[: t + 1])) <= 1e-5
        occluded = [*ids[:t], 1, *ids[t + 1 :]]
        assert abs(result["occlusion"][t] - (p_positive(ids) - p_positive(occluded))) <= 1e-5


class CountingSession:
    """An onnxruntime session that records the padded size of every call it runs."""

    def __init__(self, session) -> None:
        self.session = session
        self.padded: list[int] = []

    def run(self, outputs, feeds):
        self.padded.append(feeds["token_ids"].size)
        return self.session.run(outputs, feeds)


def test_saliency_runs_in_calls_under_the_token_budget_and_stops_at_its_deadline(tmp_path) -> None:
    from dataclasses import replace

    from app.workpool import Abandoned, Deadline

    folder, _, _ = make_bundle(tmp_path / "bundle", max_tokens=64)
    text = " ".join(TEXT.split() * 4)  # 64 tokens: 128 sequences of up to 64
    served = load(folder)
    expected, got = served.saliency(text, 64, 100_000), served.saliency(text, 64, 256)
    assert np.abs(np.array(got["running"]) - expected["running"]).max() <= 1e-6
    assert np.abs(np.array(got["occlusion"]) - expected["occlusion"]).max() <= 1e-6
    # the calls themselves, on a model whose trace session counts them
    counting = CountingSession(served.trace_session)
    model = replace(served, trace_session=counting)
    sequences = [[2 + i % 30 for i in range(length)] for length in range(1, 65)] * 2
    positive = model.infer_chunked(sequences, 256, Deadline(60))
    assert len(counting.padded) > 10 and max(counting.padded) <= 256
    assert np.abs(positive - model.infer(sequences)[:, 1]).max() <= 1e-6
    calls = len(counting.padded)
    deadline = Deadline(60)
    deadline.abandon()
    with pytest.raises(Abandoned):
        model.infer_chunked(sequences, 256, deadline)
    assert len(counting.padded) == calls  # stopped before its first call


def test_a_compact_trace_selects_layers_gates_and_units_and_rounds(tmp_path) -> None:
    from app.runtime import TraceView

    folder, _, _ = make_bundle(tmp_path / "bundle", "lstm", bidirectional=True, num_layers=2)
    served = load(folder)
    full = served.trace(TEXT, max_tokens=100)
    view = TraceView(layers=(1,), gates=("forget", "hidden"), units=(2, 0), decimals=3)
    compact = served.trace(TEXT, max_tokens=100, view=view)
    assert compact["layers"][0] == {} and set(compact["layers"][1]) == {"forward", "backward"}
    for direction in ("forward", "backward"):
        gates = compact["layers"][1][direction]["gates"]
        assert set(gates) == {"forget", "hidden"}
        for name, values in gates.items():
            wanted = np.asarray(full["layers"][1][direction]["gates"][name])[:, [2, 0]]
            assert values.shape == wanted.shape
            assert np.array_equal(values, np.round(wanted, 3))
    assert compact["prediction"] == full["prediction"]
