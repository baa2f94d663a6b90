"""The ONNX export: standard ops, symbolic axes, and equality with PyTorch and the ONNX reference."""

from __future__ import annotations

import itertools
import random

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from model.config import CELLS, POOLINGS, RECURRENT_CELLS, ModelConfig
from model.inputs import pad_batch
from model.network import SentimentClassifier
from training.evaluate import onnx_session
from training.export import (
    ExportError,
    build_onnx,
    check_symbolic_axes,
    export_model,
    verify_export,
)


def tiny_model(cell: str, bidirectional: bool = True, num_layers: int = 2, pooling: str = "concat"):
    """A tiny network; a Transformer's is one-directional, as it must be, with 2 heads."""
    torch.manual_seed(5)
    bidirectional = bidirectional and cell != "transformer"
    config = ModelConfig(vocab_size=60, embed_dim=8, hidden_size=6, num_layers=num_layers,
                         bidirectional=bidirectional, cell=cell, pooling=pooling, num_heads=2)  # fmt: skip
    model = SentimentClassifier(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)  # push probabilities away from 0.5 so differences show
    return model.eval()


def random_reviews(count: int = 12, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    lengths = [1, 50] + [rng.randint(1, 50) for _ in range(count - 2)]
    return [[rng.randrange(2, 60) for _ in range(length)] for length in lengths]


@pytest.mark.parametrize(
    ("cell", "bidirectional", "num_layers", "pooling"),
    [
        *itertools.product(RECURRENT_CELLS, (False, True), (1, 2), POOLINGS),
        *itertools.product(["transformer"], (False,), (1, 2), POOLINGS),
    ],
)
def test_every_configuration_exports_exactly(tmp_path, cell, bidirectional, num_layers, pooling) -> None:
    model = tiny_model(cell, bidirectional, num_layers, pooling)
    report = export_model(model, tmp_path / "model.onnx", random_reviews())
    assert report.torch_vs_onnx <= 1e-5
    assert report.alone_vs_batched <= 1e-5
    assert report.min_length == 1


@pytest.mark.parametrize("cell", RECURRENT_CELLS)
def test_graph_uses_the_standard_recurrent_op(cell: str) -> None:
    proto = build_onnx(tiny_model(cell))
    ops = [node for node in proto.graph.node if node.op_type in ("LSTM", "GRU", "RNN")]
    assert [node.op_type for node in ops] == [{"gru": "GRU", "rnn": "RNN"}.get(cell, "LSTM")] * 2
    for node in ops:
        assert node.input[4] == "sequence_lens"
        assert (len(node.input) == 8 and node.input[7].startswith("P_")) == (cell == "peephole")
    assert proto.opset_import[0].version >= 17
    onnx.checker.check_model(proto, full_check=True)


def test_a_transformer_graph_is_attention_with_no_recurrent_op_or_hidden_output(tmp_path) -> None:
    proto = build_onnx(tiny_model("transformer"))
    ops = {node.op_type for node in proto.graph.node}
    assert not ops & {"LSTM", "GRU", "RNN"}
    assert {"LayerNormalization", "Softmax", "Sin", "Cos"} <= ops
    assert [output.name for output in proto.graph.output] == ["logits", "probabilities"]
    onnx.checker.check_model(proto, full_check=True)
    # no length is baked in: the sinusoids are computed for the input's own length
    onnx.save(proto, tmp_path / "model.onnx")
    ids, lengths = pad_batch([[5] * 3000, [7, 8]])
    probabilities = onnx_session(tmp_path / "model.onnx").run(
        ["probabilities"], {"token_ids": ids, "lengths": lengths}
    )[0]
    assert probabilities.shape == (2, 2) and np.isfinite(probabilities).all()


def test_inputs_have_symbolic_batch_and_time() -> None:
    proto = build_onnx(tiny_model("lstm"))
    shapes = {v.name: [d.dim_param for d in v.type.tensor_type.shape.dim] for v in proto.graph.input}
    assert shapes == {"token_ids": ["batch", "time"], "lengths": ["batch"]}
    check_symbolic_axes(proto)
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 128
    with pytest.raises(ExportError, match="fixed dimension"):
        check_symbolic_axes(proto)


def test_verify_export_rejects_a_graph_that_differs(tmp_path) -> None:
    model = tiny_model("lstm")
    export_model(model, tmp_path / "model.onnx", random_reviews())
    with torch.no_grad():
        model.head.bias[1] += 1.0  # the network moves on; the saved graph does not
    with pytest.raises(ExportError, match="differs"):
        verify_export(model, onnx_session(tmp_path / "model.onnx"), random_reviews())


@pytest.mark.parametrize("cell", CELLS)
def test_reference_evaluator_agrees_with_onnxruntime_and_torch(tmp_path, cell: str) -> None:
    """An independent reading of the op semantics (gate order, peepholes, GRU reset placement).

    ``onnx.reference`` ignores ``sequence_lens``, so all reviews here have the same length.
    """
    model = tiny_model(cell)
    proto = build_onnx(model)
    onnx.save(proto, tmp_path / "model.onnx")
    ids, lengths = pad_batch([[3, 4, 5, 6, 7], [8, 9, 10, 11, 12], [13, 2, 2, 40, 59]])
    feeds = {"token_ids": ids, "lengths": lengths}
    reference = ReferenceEvaluator(proto).run(["probabilities"], feeds)[0]
    runtime = onnx_session(tmp_path / "model.onnx").run(["probabilities"], feeds)[0]
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(ids), torch.from_numpy(lengths)), 1).numpy()
    assert np.abs(reference - runtime).max() <= 1e-5
    assert np.abs(reference - expected).max() <= 1e-5
    assert np.abs(expected - 0.5).max() > 0.05  # a real signal, not a flat 0.5


def test_hidden_outputs_are_the_encoder_states(tmp_path) -> None:
    model = tiny_model("lstm", bidirectional=True, num_layers=1)
    export_model(model, tmp_path / "model.onnx", random_reviews())
    ids, lengths = pad_batch([[5, 6, 7, 8], [9, 10]])
    hidden = onnx_session(tmp_path / "model.onnx").run(["hidden_0"], {"token_ids": ids, "lengths": lengths})[
        0
    ]
    with torch.no_grad():
        encoded = model.encoder(model.embedding(torch.from_numpy(ids)), torch.from_numpy(lengths))
    # hidden_0 is [time, directions, batch, hidden]; compare real positions only
    for row, length in enumerate(lengths):
        ours = hidden[:length, :, row, :].transpose(0, 1, 2).reshape(length, -1)
        np.testing.assert_allclose(ours, encoded[row, :length].numpy(), atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_model_from_onnx_restores_the_exact_weights(tmp_path, cell: str) -> None:
    from training.export import model_from_onnx

    model = tiny_model(cell)
    export_model(model, tmp_path / "model.onnx", random_reviews())
    restored = model_from_onnx(tmp_path / "model.onnx")
    original = model.state_dict()
    assert set(restored.state_dict()) == set(original)
    for name, value in restored.state_dict().items():
        assert torch.equal(value, original[name]), name
