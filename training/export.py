"""Export a trained :class:`SentimentClassifier` to ONNX and prove the export equals it.

The graph is written with ``onnx.helper`` from the network's weights and its
:class:`ModelConfig`, using the standard recurrent ops (``LSTM`` — with ``P`` for peepholes —,
``GRU``, ``RNN``) with the review lengths wired to ``sequence_lens`` (a Transformer encoder's
layers: :mod:`training.export_transformer`). Building it directly
(rather than tracing) keeps both axes symbolic and every op standard, and the parity checks
below compare it with PyTorch on real reviews.

Graph inputs: ``token_ids`` int64 ``[batch, time]`` padded at the end, ``lengths`` int64
``[batch]``. Outputs: ``logits`` and ``probabilities`` ``[batch, classes]`` and, per recurrent
layer, ``hidden_{layer}`` ``[time, directions, batch, hidden]`` (the ONNX recurrent ops' ``Y``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from model.bundle import CONFIG_PROPERTY, onnx_session, read_onnx
from model.config import ModelConfig
from model.inputs import pad_batch
from model.network import SentimentClassifier
from training.export_transformer import transformer_nodes, transformer_state

OPSET = 17
# PyTorch stores gate blocks as LSTM (i, f, g, o) and GRU (r, z, n); ONNX wants
# LSTM (i, o, f, c) and GRU (z, r, h). These are the PyTorch block indices in ONNX order.
_GATE_ORDER = {
    "lstm": [0, 3, 1, 2],
    "peephole": [0, 3, 1, 2],
    "gru": [1, 0, 2],
    "rnn": [0],
}
_OP = {"lstm": "LSTM", "peephole": "LSTM", "gru": "GRU", "rnn": "RNN"}


class ExportError(Exception):
    """The exported graph does not equal the trained network."""


def _reorder(weight: np.ndarray, cell: str) -> np.ndarray:
    blocks = np.split(weight, len(_GATE_ORDER[cell]), axis=0)
    return np.concatenate([blocks[i] for i in _GATE_ORDER[cell]], axis=0)


def _layer_initializers(model: SentimentClassifier, layer: int) -> list[np.ndarray]:
    """W, R, B (and P for peepholes) of one layer, directions stacked, in ONNX layout."""
    cell = model.config.cell
    directions = model.encoder.layers[layer]
    state = [{k: v.detach().numpy() for k, v in d.state_dict().items()} for d in directions]
    weights = [
        np.stack([_reorder(s["weight_ih_l0"], cell) for s in state]),
        np.stack([_reorder(s["weight_hh_l0"], cell) for s in state]),
        np.stack(
            [
                np.concatenate([_reorder(s["bias_ih_l0"], cell), _reorder(s["bias_hh_l0"], cell)])
                for s in state
            ]
        ),
    ]
    if cell == "peephole":
        # ours: (i, f, o); ONNX P: (i, o, f)
        weights.append(
            np.stack([np.concatenate([np.split(s["peephole"], 3)[k] for k in (0, 2, 1)]) for s in state])
        )
    return weights


def _recurrent_nodes(model: SentimentClassifier) -> tuple[list, list, str, str]:
    """Nodes of the stacked encoder: returns (nodes, initializers, top output, last state)."""
    config = model.config
    nodes = [
        helper.make_node("Transpose", ["embedded"], ["embedded_tbe"], perm=[1, 0, 2]),  # [T, B, E]
        helper.make_node("Cast", ["lengths"], ["sequence_lens"], to=TensorProto.INT32),
    ]
    initializers, x = [], "embedded_tbe"
    direction = "bidirectional" if config.bidirectional else "forward"
    for layer in range(config.num_layers):
        names = [f"{kind}_{layer}" for kind in ("W", "R", "B", "P")]
        arrays = _layer_initializers(model, layer)
        initializers += [
            numpy_helper.from_array(a.astype(np.float32), n) for a, n in zip(arrays, names, strict=False)
        ]
        inputs = [x, names[0], names[1], names[2], "sequence_lens"]
        if config.cell == "peephole":
            inputs += ["", "", names[3]]  # no initial_h / initial_c
        attributes = {"hidden_size": config.hidden_size, "direction": direction}
        if config.cell == "gru":
            attributes["linear_before_reset"] = 1  # PyTorch applies r after the recurrent matmul
        nodes.append(
            helper.make_node(
                _OP[config.cell],
                inputs,
                [f"hidden_{layer}", f"last_{layer}"],
                name=f"{_OP[config.cell]}_{layer}",
                **attributes,
            )
        )
        # Y [T, D, B, H] -> [T, B, D*H]: next layer's input
        nodes += [
            helper.make_node("Transpose", [f"hidden_{layer}"], [f"hidden_tbdh_{layer}"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"hidden_tbdh_{layer}", "shape_tb_flat"], [f"encoded_{layer}"]),
        ]
        x = f"encoded_{layer}"
    return nodes, initializers, x, f"last_{config.num_layers - 1}"


def _pooling_nodes(config: ModelConfig, encoded: str, last_state: str) -> list:
    """Masked last / max / mean pooling over time of ``encoded`` [T, B, D*H] -> ``pooled``."""
    make = helper.make_node
    nodes = [
        # mask [T, B, 1]: step < length
        make("Shape", ["token_ids"], ["ids_shape"]),
        make("Gather", ["ids_shape", "one"], ["time_steps"], axis=0),
        make("Range", ["zero", "time_steps", "one"], ["steps"]),
        make("Unsqueeze", ["steps", "axes_1"], ["steps_t1"]),
        make("Unsqueeze", ["lengths", "axes_0"], ["lengths_1b"]),
        make("Less", ["steps_t1", "lengths_1b"], ["mask_tb"]),
        make("Unsqueeze", ["mask_tb", "axes_2"], ["mask"]),
        # last: Y_h [D, B, H] -> [B, D*H], forward then backward as in PyTorch
        make("Transpose", [last_state], ["last_bdh"], perm=[1, 0, 2]),
        make("Reshape", ["last_bdh", "shape_b_flat"], ["pool_last"]),
        make("Where", ["mask", encoded, "minus_inf"], ["masked_for_max"]),
        make("ReduceMax", ["masked_for_max"], ["pool_max"], axes=[0], keepdims=0),
        make("Where", ["mask", encoded, "zero_f"], ["masked_for_mean"]),
        make("ReduceSum", ["masked_for_mean", "axes_0"], ["summed"], keepdims=0),
        make("Cast", ["lengths"], ["lengths_f"], to=TensorProto.FLOAT),
        make("Unsqueeze", ["lengths_f", "axes_1"], ["lengths_b1"]),
        make("Div", ["summed", "lengths_b1"], ["pool_mean"]),
    ]
    parts = {
        "last": ["pool_last"],
        "max": ["pool_max"],
        "mean": ["pool_mean"],
        "concat": ["pool_last", "pool_max", "pool_mean"],
    }[config.pooling]
    nodes.append(make("Concat", parts, ["pooled"], axis=1))
    return nodes


def _constants() -> list[TensorProto]:
    def const(name: str, value: np.ndarray) -> TensorProto:
        return numpy_helper.from_array(value, name)

    return [
        const("zero", np.array(0, np.int64)),
        const("one", np.array(1, np.int64)),
        const("axes_0", np.array([0], np.int64)),
        const("axes_1", np.array([1], np.int64)),
        const("axes_2", np.array([2], np.int64)),
        const("shape_tb_flat", np.array([0, 0, -1], np.int64)),
        const("shape_b_flat", np.array([0, -1], np.int64)),
        const("minus_inf", np.array(-np.inf, np.float32)),
        const("zero_f", np.array(0, np.float32)),
    ]


def build_onnx(model: SentimentClassifier, metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """The ONNX graph equal to ``model`` (in eval mode: dropout is not part of it)."""
    config = model.config
    embedding = model.embedding.weight.detach().numpy().astype(np.float32)
    head_w = model.head.weight.detach().numpy().astype(np.float32)
    head_b = model.head.bias.detach().numpy().astype(np.float32)
    make = helper.make_node
    encoder_nodes = _recurrent_nodes if config.recurrent else transformer_nodes
    encoder, weights, encoded, last_state = encoder_nodes(model)
    nodes = [
        make("Gather", ["embedding", "token_ids"], ["embedded"], axis=0),  # [B, T, E]
        *encoder,
        *_pooling_nodes(config, encoded, last_state),
        make("Gemm", ["pooled", "head_weight", "head_bias"], ["logits"], transB=1),
        make("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    dims = config.num_directions
    graph = helper.make_graph(
        nodes,
        "sentiment_classifier",
        inputs=[
            helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", "time"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", config.num_classes]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", config.num_classes]),
            *(
                helper.make_tensor_value_info(
                    f"hidden_{layer}", TensorProto.FLOAT, ["time", dims, "batch", config.hidden_size]
                )
                for layer in range(config.num_layers if config.recurrent else 0)  # a trace's inputs
            ),
        ],
        initializer=[
            numpy_helper.from_array(embedding, "embedding"),
            numpy_helper.from_array(head_w, "head_weight"),
            numpy_helper.from_array(head_b, "head_bias"),
            *weights,
            *_constants(),
        ],
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="imdb-lstm-sentiment"
    )
    proto.ir_version = 8  # readable by onnxruntime releases back to 1.10
    helper.set_model_props(
        proto,
        {
            CONFIG_PROPERTY: json.dumps(config.to_dict(), sort_keys=True),
            **(metadata or {}),
        },
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def check_symbolic_axes(proto: onnx.ModelProto) -> None:
    """Raise unless batch and time are symbolic on the inputs (no length baked into the graph)."""
    for value in proto.graph.input:
        dims = value.type.tensor_type.shape.dim
        if any(dim.HasField("dim_value") for dim in dims):
            raise ExportError(f"input {value.name!r} has a fixed dimension: {dims}")


@dataclass(frozen=True)
class ParityReport:
    """Largest probability differences found by :func:`verify_export`."""

    torch_vs_onnx: float
    alone_vs_batched: float
    reviews: int
    min_length: int
    max_length: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON form for the model card."""
        return asdict(self)


def verify_export(
    model: SentimentClassifier,
    session,
    sequences: Sequence[Sequence[int]],
    tolerance: float = 1e-5,
) -> ParityReport:
    """Prove the ONNX graph equals ``model`` on ``sequences`` (token ids of real reviews).

    Two properties, each as the largest |Δ probability|: onnxruntime vs PyTorch on one padded
    batch of all sequences; and each sequence alone vs inside that batch, next to longer and
    shorter neighbours. Raises :class:`ExportError` when either exceeds ``tolerance``.
    """
    model.eval()
    ids, lengths = pad_batch(sequences, model.config.pad_id)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(ids), torch.from_numpy(lengths)), dim=1).numpy()
    batched = session.run(["probabilities"], {"token_ids": ids, "lengths": lengths})[0]
    alone = np.concatenate(
        [
            session.run(
                ["probabilities"], {"token_ids": ids[i : i + 1, : lengths[i]], "lengths": lengths[i : i + 1]}
            )[0]
            for i in range(len(sequences))
        ]
    )
    report = ParityReport(
        torch_vs_onnx=float(np.abs(batched - expected).max()),
        alone_vs_batched=float(np.abs(batched - alone).max()),
        reviews=len(sequences),
        min_length=int(lengths.min()),
        max_length=int(lengths.max()),
    )
    if report.torch_vs_onnx > tolerance or report.alone_vs_batched > tolerance:
        raise ExportError(f"ONNX export differs from the trained network: {report}")
    return report


def export_model(
    model: SentimentClassifier,
    path: str | Path,
    check_sequences: Sequence[Sequence[int]],
    metadata: dict[str, str] | None = None,
) -> ParityReport:
    """Write ``model.onnx`` to ``path`` and verify it; returns the parity report."""
    proto = build_onnx(model.eval(), metadata)
    check_symbolic_axes(proto)
    onnx.save(proto, str(path))
    return verify_export(model, onnx_session(path), check_sequences)


def _restore(weight: np.ndarray, cell: str) -> np.ndarray:
    """Inverse of :func:`_reorder`: ONNX gate blocks back to PyTorch order."""
    order = _GATE_ORDER[cell]
    blocks = np.split(weight, len(order), axis=0)
    restored = [None] * len(order)
    for onnx_index, torch_index in enumerate(order):
        restored[torch_index] = blocks[onnx_index]
    return np.concatenate(restored, axis=0)


def model_from_onnx(path: str | Path) -> SentimentClassifier:
    """Rebuild the PyTorch network from a bundle's ``model.onnx`` (weights and config inside it).

    Lets a shipped bundle, which carries no checkpoint, be checked against PyTorch.
    """
    _, config, weights = read_onnx(path)
    state = {
        "embedding.weight": weights["embedding"],
        "head.weight": weights["head_weight"],
        "head.bias": weights["head_bias"],
    }
    if not config.recurrent:
        return _load(config, {**state, **transformer_state(weights, config.num_layers)})
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            prefix = f"encoder.layers.{layer}.{direction}."
            bias_ih, bias_hh = np.split(weights[f"B_{layer}"][direction], 2)
            state[prefix + "weight_ih_l0"] = _restore(weights[f"W_{layer}"][direction], config.cell)
            state[prefix + "weight_hh_l0"] = _restore(weights[f"R_{layer}"][direction], config.cell)
            state[prefix + "bias_ih_l0"] = _restore(bias_ih, config.cell)
            state[prefix + "bias_hh_l0"] = _restore(bias_hh, config.cell)
            if config.cell == "peephole":
                p_i, p_o, p_f = np.split(weights[f"P_{layer}"][direction], 3)
                state[prefix + "peephole"] = np.concatenate([p_i, p_f, p_o])
    return _load(config, state)


def _load(config: ModelConfig, state: dict) -> SentimentClassifier:
    """A network of ``config`` holding ``state`` (numpy arrays or tensors), in eval mode."""
    model = SentimentClassifier(config)
    model.load_state_dict({name: torch.as_tensor(np.array(value)) for name, value in state.items()})
    return model.eval()
