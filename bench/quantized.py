"""Variants of the served model: speed and accuracy next to float32, measured in one run.

    python -m bench.quantized --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

* ``int8``: onnxruntime's dynamic quantization turns the recurrent op's weights to int8
  (``DynamicQuantizeLSTM``); activations stay float.
* ``fp16``: every float tensor in float16 (onnxconverter-common), the outputs included; the
  trace outputs (``hidden_*``) are left out.
* the float32 graph under onnxruntime's lower graph optimisation levels (``off``, ``basic``,
  ``extended``; sessions use ``all``).

Each variant is written to a temporary folder, timed one review per call with 1 and 2 threads
(all variants in turn, block by block), and scored on the validation split and on the full
test set next to the float32 graph. They are measurements, not the served model: the service's
exactness properties (a gate trace that reproduces the served hidden states) hold for the
float32 graph only.
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

from bench import cli
from model.bundle import ONNX_FILE, load_card, onnx_session
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


def compare(bundle: Path, validation, test, timed: int = 200, rounds: int = 4) -> dict:
    """Per-review time and accuracy of the float32 graph and its variants.

    The timed reviews are split into ``rounds`` blocks, and every variant times each block in
    turn, so that the machine's drift during the run falls on all of them alike rather than on
    whichever variant ran at a slow moment.
    """
    splits = {
        name: (
            cli.token_ids(bundle, [r.text for r in reviews]),
            np.array([r.label for r in reviews]),
        )
        for name, reviews in (("validation", validation), ("test", test))
    }
    timed_sequences = splits["test"][0][:timed]
    blocks = [timed_sequences[i::rounds] for i in range(rounds)]
    with tempfile.TemporaryDirectory() as folder:
        int8, fp16 = Path(folder) / "model.int8.onnx", Path(folder) / "model.fp16.onnx"
        quantize_recurrent(bundle / ONNX_FILE, int8)
        half_precision(bundle / ONNX_FILE, fp16)
        float32 = bundle / ONNX_FILE
        variants = {"float32": (float32, "all"), "int8": (int8, "all"), "fp16": (fp16, "all")}
        variants |= {
            f"float32, graph optimisation {level}": (float32, level) for level in ("off", "basic", "extended")
        }
        results = {name: {"bytes": path.stat().st_size} for name, (path, _) in variants.items()}
        for threads in (1, 2):
            sessions = {
                name: onnx_session(path, threads, graph_optimization=level)
                for name, (path, level) in variants.items()
            }
            times: dict[str, list[float]] = {name: [] for name in variants}
            for session in sessions.values():
                _single_seconds(session, timed_sequences[:16])  # warm-up
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


def print_quantized(results: dict) -> None:
    """Human-readable lines."""
    for name, row in results.items():
        print(
            f"{name}: {row['ms_1_thread']:.2f} ms/review (1 thread), {row['ms_2_thread']:.2f} ms "
            "(2 threads); "
            f"validation {100 * row['validation_accuracy']:.2f} %, test {100 * row['test_accuracy']:.2f} %; "
            f"{row['bytes'] / 1e6:.1f} MB"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    from training.data import load_imdb, stratified_split

    parser = cli.parser("Variants of the served graph against float32: time per review and accuracy.")
    args = parser.parse_args(argv)
    card = load_card(args.bundle)
    dataset = load_imdb(args.data)
    split = card["train_config"]
    _, validation = stratified_split(dataset.train, split["validation_fraction"], split["seed"])
    results = compare(args.bundle, validation, dataset.test)
    cli.publish(results, print_quantized, args.json)


if __name__ == "__main__":
    main()
