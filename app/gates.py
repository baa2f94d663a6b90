"""Per-step gate activations of the served ONNX recurrent layers, computed with numpy.

The ONNX ``LSTM``/``GRU``/``RNN`` ops output only hidden states; the gates are recomputed here
from the *same initializers* of the served ``model.onnx`` (never from a PyTorch checkpoint),
following the operator definitions in the ONNX specification: gate blocks in ONNX order
(LSTM ``i, o, f, c``; GRU ``z, r, h``), peepholes ``P`` in ``i, o, f`` order, and GRU with
``linear_before_reset=1``. Each layer reads the served model's own outputs of the layer below.
"""

from __future__ import annotations

import numpy as np

DIRECTIONS = ("forward", "backward")  # a layer's direction 0 and 1, as the API names them
GATE_NAMES = {
    "lstm": ("input", "forget", "cell_candidate", "output", "cell", "hidden"),
    "peephole": ("input", "forget", "cell_candidate", "output", "cell", "hidden"),
    "gru": ("reset", "update", "candidate", "hidden"),
    "rnn": ("hidden",),
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _lstm_step(
    x_proj: np.ndarray, h: np.ndarray, c: np.ndarray, r: np.ndarray, rb: np.ndarray, peephole: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """One LSTM step; ``x_proj`` = W·x + Wb, all blocks in ONNX order (i, o, f, c)."""
    pre_i, pre_o, pre_f, pre_c = np.split(x_proj + r @ h + rb, 4)
    p_i, p_o, p_f = np.split(peephole, 3)
    input_gate = _sigmoid(pre_i + p_i * c)
    forget_gate = _sigmoid(pre_f + p_f * c)
    candidate = np.tanh(pre_c)
    cell = forget_gate * c + input_gate * candidate
    output_gate = _sigmoid(pre_o + p_o * cell)  # ONNX: the output gate sees the new cell state
    hidden = output_gate * np.tanh(cell)
    return hidden, cell, (input_gate, forget_gate, candidate, output_gate, cell, hidden)


def _gru_step(
    x_proj: np.ndarray, h: np.ndarray, r: np.ndarray, rb: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One GRU step with ``linear_before_reset=1``; blocks in ONNX order (z, r, h)."""
    x_z, x_r, x_h = np.split(x_proj, 3)
    r_z, r_r, r_h = np.split(r, 3)
    rb_z, rb_r, rb_h = np.split(rb, 3)
    update = _sigmoid(x_z + r_z @ h + rb_z)
    reset = _sigmoid(x_r + r_r @ h + rb_r)
    candidate = np.tanh(x_h + reset * (r_h @ h + rb_h))
    hidden = (1.0 - update) * candidate + update * h
    return hidden, (reset, update, candidate, hidden)


def direction_gates(
    cell: str, x: np.ndarray, w: np.ndarray, r: np.ndarray, b: np.ndarray, p: np.ndarray | None, reverse: bool
) -> dict[str, np.ndarray]:
    """Gate activations ``{name: [T, hidden]}`` of one direction over ``x`` ``[T, input]``.

    ``w``, ``r``, ``b``, ``p`` are one direction's slices of the ONNX op's inputs. A reverse
    direction reads ``x`` from its last step; results are returned in reading order.
    """
    hidden_size = r.shape[1]
    wb, rb = np.split(b, 2)
    projected = x @ w.T + wb  # [T, gates*H]
    h = np.zeros(hidden_size, dtype=np.float64)
    c = np.zeros(hidden_size, dtype=np.float64)
    peephole = p if p is not None else np.zeros(3 * hidden_size)
    steps = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    names = GATE_NAMES[cell]
    collected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for t in steps:
        if cell in ("lstm", "peephole"):
            h, c, values = _lstm_step(projected[t], h, c, r, rb, peephole)
        elif cell == "gru":
            h, values = _gru_step(projected[t], h, r, rb)
        else:
            h = np.tanh(projected[t] + r @ h + rb)
            values = (h,)
        for name, value in zip(names, values, strict=True):
            collected[name].append(value)
    ordered = {name: np.stack(values) for name, values in collected.items()}
    return {name: values[::-1] for name, values in ordered.items()} if reverse else ordered
