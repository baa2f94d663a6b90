"""The served graph in lower precision: int8 and fp16 variants, timed and scored next to float32.

Part of ``python -m benchmarks model`` (:mod:`benchmarks.model_speed`).

* ``int8``: onnxruntime's dynamic quantization turns the recurrent op's weights to int8
  (``DynamicQuantizeLSTM``); activations stay float.
* ``fp16``: every float tensor in float16 (onnxconverter-common), the outputs included; the
  trace outputs (``hidden_*``) are left out.

Each variant is written to a temporary folder, timed one review per call with 1 and 2 threads
(all variants in turn, block by block), and scored on the given splits next to the float32
graph. They are measurements, not the served model: the service's exactness properties (a gate
trace that reproduces the served hidden states, a review's result independent of the reviews
batched with it) hold for the float32 graph only.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
from onnxruntime.quantization import QuantType, quantize_dynamic

from benchmarks import engine
from model.bundle import ONNX_FILE
from model.inputs import pad_batch
from training.evaluate import predict_positive


def quantize_recurrent(source: Path, target: Path) -> None:
    """Write ``source`` with its LSTM weights in int8 to ``target``."""
    quantize_dynamic(str(source), str(target), op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8)


def half_precision(source: Path, target: Path) -> None:
    """Write ``source`` with its float tensors in float16 to ``target``.

    The ``hidden_*`` outputs (for traces) are left out and the stored intermediate types are
    dropped: the converter otherwise leaves types that onnxruntime rejects. ``Cast`` nodes stay
    as they are, so the lengths are cast to float32 and converted back where the graph uses them.
    The converter clamps the max pooling's -inf mask value to -10000 (float16 reaches 65504),
    still below any hidden state, which lies in [-1, 1].
    """
    model = onnx.load(str(source))
    outputs = [output for output in model.graph.output if not output.name.startswith("hidden_")]
    del model.graph.output[:]
    model.graph.output.extend(outputs)
    del model.graph.value_info[:]
    onnx.save(convert_float_to_float16(model, op_block_list=[*DEFAULT_OP_BLOCK_LIST, "Cast"]), str(target))


def _single_seconds(session, sequences: Sequence[Sequence[int]]) -> list[float]:
    times = []
    for sequence in sequences:
        ids, lengths = pad_batch([sequence])
        feed = {"token_ids": ids, "lengths": lengths}
        started = time.perf_counter()
        session.run(["probabilities"], feed)
        times.append(time.perf_counter() - started)
    return times


def compare(
    bundle: Path,
    splits: dict[str, tuple[list[list[int]], np.ndarray]],
    timed: Sequence[Sequence[int]],
    rounds: int = 4,
) -> dict:
    """Per variant: file bytes, median ms per review with 1 and 2 threads, and accuracy on each
    of ``splits`` (name: token ids, labels).

    The ``timed`` sequences are split into ``rounds`` blocks, and every variant times each block
    in turn, so that the machine's drift during the run falls on all of them alike rather than
    on whichever variant ran at a slow moment.
    """
    blocks = [timed[i::rounds] for i in range(rounds)]
    with tempfile.TemporaryDirectory() as folder:
        variants = {
            "float32": bundle / ONNX_FILE,
            "int8": Path(folder) / "model.int8.onnx",
            "fp16": Path(folder) / "model.fp16.onnx",
        }
        quantize_recurrent(variants["float32"], variants["int8"])
        half_precision(variants["float32"], variants["fp16"])
        results = {name: {"bytes": path.stat().st_size} for name, path in variants.items()}
        for threads in (1, 2):
            sessions = {name: engine.session(path, threads) for name, path in variants.items()}
            times: dict[str, list[float]] = {name: [] for name in variants}
            for session in sessions.values():
                _single_seconds(session, timed[:16])  # warm-up
            for block in blocks:
                for name, session in sessions.items():
                    times[name] += _single_seconds(session, block)
            for name in variants:
                results[name][f"ms_{threads}_thread"] = 1000 * statistics.median(times[name])
        for name, session in sessions.items():  # the 2-thread sessions
            for split, (sequences, labels) in splits.items():
                positive = predict_positive(session, sequences)
                results[name][f"{split}_accuracy"] = float(((positive >= 0.5) == labels).mean())
    return results
