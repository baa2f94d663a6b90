"""The ONNX graph of a Transformer encoder (:mod:`model.transformer`), and its inverse.

Written with ``onnx.helper`` like the recurrent layers (:mod:`training.export`): standard ops
only (``LayerNormalization``, ``MatMul``, ``Softmax``, ``Sin``/``Cos`` for the positions), both
axes symbolic, no maximum length. It reads the embedded review ``embedded`` ``[batch, time,
embed]`` and ``lengths``, and ends in the names the shared pooling nodes read: ``encoded``
``[time, batch, embed]`` and ``last_state`` ``[1, batch, embed]`` (each review's last real
position, the place of a recurrent layer's final state).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from model.network import SentimentClassifier
from model.transformer import inverse_frequencies

STACK = "encoder.stack."  # the nn.TransformerEncoder inside the classifier's state_dict
# (name in the layer's state_dict, name in the graph, stored transposed for MatMul)
LAYER_WEIGHTS = (
    ("norm1.weight", "norm1_scale", False),
    ("norm1.bias", "norm1_bias", False),
    ("self_attn.in_proj_weight", "qkv_weight", True),
    ("self_attn.in_proj_bias", "qkv_bias", False),
    ("self_attn.out_proj.weight", "attention_out_weight", True),
    ("self_attn.out_proj.bias", "attention_out_bias", False),
    ("norm2.weight", "norm2_scale", False),
    ("norm2.bias", "norm2_bias", False),
    ("linear1.weight", "feedforward_in_weight", True),
    ("linear1.bias", "feedforward_in_bias", False),
    ("linear2.weight", "feedforward_out_weight", True),
    ("linear2.bias", "feedforward_out_bias", False),
)
FINAL_NORM = (("norm.weight", "final_norm_scale"), ("norm.bias", "final_norm_bias"))


def _position_nodes(width: int) -> tuple[list, list]:
    """``positions`` ``[time, embed]``: the sinusoids of :func:`model.transformer.sinusoidal_positions`."""
    make = helper.make_node
    nodes = [
        make("Shape", ["token_ids"], ["tf_ids_shape"]),
        make("Gather", ["tf_ids_shape", "one"], ["tf_time_steps"], axis=0),
        make("Cast", ["tf_time_steps"], ["tf_time_steps_f"], to=TensorProto.FLOAT),
        make("Range", ["zero_f", "tf_time_steps_f", "one_f"], ["tf_steps_f"]),
        make("Unsqueeze", ["tf_steps_f", "axes_1"], ["tf_steps_t1"]),  # [T, 1]
        make("Mul", ["tf_steps_t1", "inverse_frequencies"], ["angles"]),  # [T, E/2]
        make("Sin", ["angles"], ["angles_sin"]),
        make("Cos", ["angles"], ["angles_cos"]),
        make("Unsqueeze", ["angles_sin", "axes_2"], ["angles_sin_3"]),
        make("Unsqueeze", ["angles_cos", "axes_2"], ["angles_cos_3"]),
        make("Concat", ["angles_sin_3", "angles_cos_3"], ["angles_pairs"], axis=2),  # [T, E/2, 2]
        make("Reshape", ["angles_pairs", "shape_b_flat"], ["positions"]),  # [T, E] interleaved
    ]
    constants = [
        numpy_helper.from_array(np.array(1, np.float32), "one_f"),
        numpy_helper.from_array(inverse_frequencies(width).numpy(), "inverse_frequencies"),
    ]
    return nodes, constants


def _attention_mask_nodes() -> list:
    """``key_mask`` ``[batch, 1, 1, time]``: 0 at a review's tokens, -inf at its padding."""
    make = helper.make_node
    return [
        make("Range", ["zero", "tf_time_steps", "one"], ["tf_steps"]),
        make("Unsqueeze", ["tf_steps", "axes_0"], ["tf_steps_1t"]),  # [1, T]
        make("Unsqueeze", ["lengths", "axes_1"], ["tf_lengths_b1"]),  # [B, 1]
        make("Less", ["tf_steps_1t", "tf_lengths_b1"], ["real_bt"]),  # [B, T]
        make("Where", ["real_bt", "zero_f", "minus_inf"], ["key_mask_bt"]),
        make("Unsqueeze", ["key_mask_bt", "axes_1_2"], ["key_mask"]),  # [B, 1, 1, T]
    ]


def _layer_nodes(layer: int, x: str) -> tuple[list, str]:
    """One pre-norm encoder layer over ``x`` ``[batch, time, embed]``; returns (nodes, output)."""
    make = helper.make_node

    def name(suffix: str) -> str:
        return f"layer{layer}_{suffix}"

    nodes = [
        make("LayerNormalization", [x, name("norm1_scale"), name("norm1_bias")], [name("h")], axis=-1),
        make("MatMul", [name("h"), name("qkv_weight")], [name("qkv_nobias")]),
        make("Add", [name("qkv_nobias"), name("qkv_bias")], [name("qkv")]),  # [B, T, 3E]
        make("Split", [name("qkv"), "split_qkv"], [name("q"), name("k"), name("v")], axis=2),
    ]
    for part, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        nodes += [
            make("Reshape", [name(part), "shape_heads"], [name(f"{part}_bthd")]),  # [B, T, H, D]
            make("Transpose", [name(f"{part}_bthd")], [name(f"{part}_heads")], perm=perm),
        ]
    nodes += [
        # q [B, H, T, D] @ k [B, H, D, T] -> scores [B, H, T, T], padding keys at -inf
        make("MatMul", [name("q_heads"), name("k_heads")], [name("scores_raw")]),
        make("Mul", [name("scores_raw"), "attention_scale"], [name("scores_scaled")]),
        make("Add", [name("scores_scaled"), "key_mask"], [name("scores")]),
        make("Softmax", [name("scores")], [name("weights")], axis=-1),
        make("MatMul", [name("weights"), name("v_heads")], [name("context_heads")]),  # [B, H, T, D]
        make("Transpose", [name("context_heads")], [name("context_bthd")], perm=[0, 2, 1, 3]),
        make("Reshape", [name("context_bthd"), "shape_tb_flat"], [name("context")]),  # [B, T, E]
        make("MatMul", [name("context"), name("attention_out_weight")], [name("attended_nobias")]),
        make("Add", [name("attended_nobias"), name("attention_out_bias")], [name("attended")]),
        make("Add", [x, name("attended")], [name("after_attention")]),  # residual
        make(
            "LayerNormalization",
            [name("after_attention"), name("norm2_scale"), name("norm2_bias")],
            [name("h2")],
            axis=-1,
        ),
        make("MatMul", [name("h2"), name("feedforward_in_weight")], [name("inner_nobias")]),
        make("Add", [name("inner_nobias"), name("feedforward_in_bias")], [name("inner_linear")]),
        make("Relu", [name("inner_linear")], [name("inner")]),
        make("MatMul", [name("inner"), name("feedforward_out_weight")], [name("outer_nobias")]),
        make("Add", [name("outer_nobias"), name("feedforward_out_bias")], [name("outer")]),
        make("Add", [name("after_attention"), name("outer")], [name("output")]),  # residual
    ]
    return nodes, name("output")


def _last_position_nodes() -> list:
    """``last_state`` ``[1, batch, embed]``: ``encoded_bte`` at each review's last real token."""
    make = helper.make_node
    return [
        make("Sub", ["lengths", "one"], ["last_index"]),
        make("Unsqueeze", ["last_index", "axes_1"], ["last_index_b1"]),  # [B, 1]
        make("GatherND", ["encoded_bte", "last_index_b1"], ["last_be"], batch_dims=1),  # [B, E]
        make("Unsqueeze", ["last_be", "axes_0"], ["last_state"]),
    ]


def transformer_nodes(model: SentimentClassifier) -> tuple[list, list, str, str]:
    """Nodes of the encoder: returns (nodes, initializers, encoded output, last state)."""
    config = model.config
    heads, head_dim = config.num_heads, config.embed_dim // config.num_heads
    state = {key: value.detach().numpy() for key, value in model.state_dict().items()}
    positions, initializers = _position_nodes(config.embed_dim)
    nodes = [*positions, *_attention_mask_nodes()]
    nodes.append(helper.make_node("Add", ["embedded", "positions"], ["layer0_input"]))
    x = "layer0_input"
    for layer in range(config.num_layers):
        for torch_name, onnx_name, transposed in LAYER_WEIGHTS:
            value = state[f"{STACK}layers.{layer}.{torch_name}"]
            initializers.append(
                numpy_helper.from_array(
                    np.ascontiguousarray(value.T if transposed else value), f"layer{layer}_{onnx_name}"
                )
            )
        layer_nodes, x = _layer_nodes(layer, x)
        nodes += layer_nodes
    initializers += [
        numpy_helper.from_array(state[STACK + torch_name], onnx_name) for torch_name, onnx_name in FINAL_NORM
    ]
    initializers += [
        numpy_helper.from_array(np.array([config.embed_dim] * 3, np.int64), "split_qkv"),
        numpy_helper.from_array(np.array([0, 0, heads, head_dim], np.int64), "shape_heads"),
        numpy_helper.from_array(np.array(head_dim**-0.5, np.float32), "attention_scale"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes_1_2"),
    ]
    nodes += [
        helper.make_node(
            "LayerNormalization", [x, "final_norm_scale", "final_norm_bias"], ["encoded_bte"], axis=-1
        ),
        *_last_position_nodes(),
        helper.make_node("Transpose", ["encoded_bte"], ["encoded"], perm=[1, 0, 2]),  # [T, B, E]
    ]
    return nodes, initializers, "encoded", "last_state"


def transformer_state(weights: dict[str, np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    """The encoder's ``state_dict`` entries, as arrays, rebuilt from a graph's initializers."""
    state = {}
    for layer in range(num_layers):
        for torch_name, onnx_name, transposed in LAYER_WEIGHTS:
            value = weights[f"layer{layer}_{onnx_name}"]
            state[f"{STACK}layers.{layer}.{torch_name}"] = value.T if transposed else value
    for torch_name, onnx_name in FINAL_NORM:
        state[STACK + torch_name] = weights[onnx_name]
    return state
