"""The model in this process, through public interfaces only: an onnxruntime session of our own
on the bundle's ``model.onnx``, and the bundle's tokenizer.

:class:`InProcess` is the in-process ceiling the service is compared with: the work one request
needs without HTTP (tokenise, pad, one onnxruntime call), with nothing of ``app`` in it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime

from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card
from model.inputs import length_groups, pad_batch
from model.tokenizer import Tokenizer

# onnxruntime's graph optimisation levels by name; "all" is onnxruntime's default
OPTIMIZATION = {
    "off": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(
    model: str | Path | bytes, threads: int, optimization: str = "all"
) -> onnxruntime.InferenceSession:
    """A CPU session for a ``.onnx`` path or its serialized bytes, with ``threads`` intra-op
    threads and one inter-op thread, as the service runs its graph."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = OPTIMIZATION[optimization]
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def probabilities(run: onnxruntime.InferenceSession, sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """``[len(sequences), 2]`` class probabilities from one call."""
    ids, lengths = pad_batch(sequences)
    return run.run(["probabilities"], {"token_ids": ids, "lengths": lengths})[0]


class InProcess:
    """One text per call, tokenised by the bundle's tokenizer under its card's ``max_tokens`` and
    run by :func:`session`: what a request costs without HTTP."""

    def __init__(self, bundle: Path, threads: int) -> None:
        self.tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
        self.max_tokens = load_card(bundle)["max_tokens"]
        self.session = session(bundle / ONNX_FILE, threads)

    def predict(self, text: str) -> np.ndarray:
        """The text's class probabilities."""
        return probabilities(self.session, [self.tokenizer.encode(text, self.max_tokens)])[0]

    def milliseconds(self, texts: Sequence[str], warmup: int = 5) -> list[float]:
        """Milliseconds of each text's call, after ``warmup`` untimed calls (caches, thread pool)."""
        for text in texts[:warmup]:
            self.predict(text)
        times = []
        for text in texts:
            started = time.perf_counter()
            self.predict(text)
            times.append(1000 * (time.perf_counter() - started))
        return times


def batched_seconds(
    bundle: Path, texts: Sequence[str], batch_size: int = 32, max_batch_tokens: int = 4096
) -> float:
    """Seconds to score ``texts`` in one process on one thread, as the service batches them:
    tokenised under the card's ``max_tokens``, grouped by length (at most ``batch_size`` texts
    and ``max_batch_tokens`` padded tokens a call), one onnxruntime call per group. The session
    is made and warmed before the clock starts; no file, no other process."""
    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    max_tokens = load_card(bundle)["max_tokens"]
    run = session(bundle / ONNX_FILE, 1)
    probabilities(run, [tokenizer.encode(text, max_tokens) for text in texts[:8]])
    started = time.perf_counter()
    sequences = [tokenizer.encode(text, max_tokens) for text in texts]
    lengths = [len(sequence) for sequence in sequences]
    for group in length_groups(lengths, batch_size, max_tokens=max_batch_tokens):
        probabilities(run, [sequences[i] for i in group])
    return time.perf_counter() - started
