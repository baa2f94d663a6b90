"""Roofline: how close the served model runs to what this machine's arithmetic allows.

Part of ``python -m benchmarks model`` (:mod:`benchmarks.model_speed`).

For a review of ``--tokens`` tokens (default 230, the median IMDB review) it counts the
matrix FLOPs of one forward pass of the bundle's network, measures this machine's float32
matrix-multiply speed (at the shape of the input projection) and matrix-vector speed (at the
shape of one recurrent step), and derives a lower bound on the time of one review:

    bound = input-projection FLOPs / matmul speed + recurrent FLOPs / matvec speed

The input projection of all time steps is one matrix multiply; the recurrent steps are
sequential matrix-vector products (each needs the previous hidden state), so they cannot run
at matmul speed. With two threads the two directions of a bidirectional layer are independent,
so their recurrences may run on one core each. Element-wise gate arithmetic, embedding lookup
and pooling are left out of the bound, which makes it lower (stricter) than the truth.

The measured side is onnxruntime on real test reviews cut to exactly ``--tokens`` tokens, one
review per call. Speeds come from numpy's BLAS with ``threadpoolctl`` setting its threads; the
matvec speed is the faster of BLAS's and a plain C loop's compiled here (:func:`compiled_matvec`),
because numpy pays a library call per step that an LSTM kernel does not. A ratio under 1 means
onnxruntime beat both: the bound then understates the machine and says nothing.

It also times the recurrent layers alone (:func:`recurrent_part`: the same graph cut at its
last recurrent node's output, without pooling and head), which tells how much of the gap to
the bound is onnxruntime's recurrent kernel and how much the rest of the graph.
"""

from __future__ import annotations

import ctypes
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from threadpoolctl import threadpool_limits

from benchmarks import engine
from model.bundle import ONNX_FILE, TOKENIZER_FILE, read_onnx
from model.config import ModelConfig
from model.inputs import pad_batch
from model.tokenizer import Tokenizer

GATES = {"lstm": 4, "peephole": 4, "gru": 3, "rnn": 1}
RECURRENT_OPS = ("LSTM", "GRU", "RNN")


@dataclass(frozen=True)
class Flops:
    """Matrix FLOPs (multiply and add counted separately) of one forward pass."""

    input_projection: int  # all layers and directions: [T, in] x [in, G*H]
    recurrent: int  # all layers and directions: T x ([G*H, H] x [H])
    head: int

    @property
    def total(self) -> int:
        """All counted FLOPs."""
        return self.input_projection + self.recurrent + self.head


def forward_flops(config: ModelConfig, tokens: int) -> Flops:
    """FLOPs of the network's matrix products for one review of ``tokens`` tokens."""
    gated = GATES[config.cell] * config.hidden_size
    projection = recurrent = 0
    for layer in range(config.num_layers):
        inputs = config.embed_dim if layer == 0 else config.encoder_dim
        projection += config.num_directions * 2 * tokens * inputs * gated
        recurrent += config.num_directions * 2 * tokens * config.hidden_size * gated
    return Flops(projection, recurrent, 2 * config.pooled_dim * config.num_classes)


def _best_seconds(run, repeats: int) -> float:
    """Fastest of ``repeats`` timings of ``run()``: the machine's speed, not the noise around it."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_gflops(rows: int, inner: int, cols: int, threads: int, repeats: int = 50) -> float:
    """float32 ``[rows, inner] x [inner, cols]`` speed with ``threads`` BLAS threads."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    b = rng.standard_normal((inner, cols), dtype=np.float32)
    out = np.empty((rows, cols), dtype=np.float32)
    with threadpool_limits(threads):
        np.matmul(a, b, out=out)
        seconds = _best_seconds(lambda: np.matmul(a, b, out=out), repeats)
    return 2 * rows * inner * cols / seconds / 1e9


def matvec_gflops(rows: int, cols: int, threads: int, steps: int = 2000, repeats: int = 7) -> float:
    """float32 ``[rows, cols] x [cols]`` speed, as in a recurrent step, with ``threads`` BLAS threads.

    Timed as a loop of ``steps`` calls; the loop's own cost (the same loop over a 1x1 product)
    is subtracted, so the figure is BLAS's speed and not Python's.
    """
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((rows, cols), dtype=np.float32)
    vector = rng.standard_normal(cols, dtype=np.float32)
    out = np.empty(rows, dtype=np.float32)
    tiny_m, tiny_v, tiny_out = np.ones((1, 1), np.float32), np.ones(1, np.float32), np.empty(1, np.float32)

    def loop(m, v, o) -> None:
        for _ in range(steps):
            np.matmul(m, v, out=o)

    with threadpool_limits(threads):
        loop(matrix, vector, out)
        seconds = _best_seconds(lambda: loop(matrix, vector, out), repeats)
        overhead = _best_seconds(lambda: loop(tiny_m, tiny_v, tiny_out), repeats)
    return 2 * rows * cols * steps / max(seconds - overhead, 1e-9) / 1e9


# One recurrent step's product, y = W x with W stored input-major ([cols][rows]) so that the
# inner loop is a vectorisable multiply-add over y; the next step reads this one's output, as a
# recurrence does. Timed inside C, so no Python or library call sits between the steps.
_MATVEC_C = r"""
#include <time.h>
double matvec_seconds(const float *restrict w, float *restrict x, float *restrict y,
                      int rows, int cols, int steps) {
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < rows; i++) y[i] = 0.0f;
        /* four columns per pass over y: fewer loads and stores of y */
        int j = 0;
        for (; j + 3 < cols; j += 4) {
            const float x0 = x[j], x1 = x[j + 1], x2 = x[j + 2], x3 = x[j + 3];
            const float *restrict c0 = w + (long)j * rows;
            const float *restrict c1 = c0 + rows, *restrict c2 = c1 + rows, *restrict c3 = c2 + rows;
            for (int i = 0; i < rows; i++) y[i] += c0[i] * x0 + c1[i] * x1 + c2[i] * x2 + c3[i] * x3;
        }
        for (; j < cols; j++) {
            const float *restrict c = w + (long)j * rows;
            for (int i = 0; i < rows; i++) y[i] += c[i] * x[j];
        }
        /* the next step reads this one's output; a sign keeps it from decaying into slow denormals */
        for (int k = 0; k < cols; k++) x[k] = y[k] >= 0.0f ? 0.5f : -0.5f;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    return (double)(end.tv_sec - start.tv_sec) + 1e-9 * (double)(end.tv_nsec - start.tv_nsec);
}
"""


def compiled_matvec() -> Callable[[np.ndarray, np.ndarray, np.ndarray, int], float] | None:
    """The C loop above, compiled here for this CPU (``cc -O3 -march=native``), or None when
    there is no C compiler or it cannot build the loop: ``run(weights [cols, rows], x [cols],
    y [rows], steps)`` does ``steps`` recurrent steps in place and returns their seconds. Arrays
    are float32, C-contiguous, ``x`` and ``y`` writable and apart (the C side declares them
    ``restrict``), and ``rows >= cols``."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        source, library = Path(folder) / "matvec.c", Path(folder) / "matvec.so"
        source.write_text(_MATVEC_C)
        command = [compiler, "-O3", "-march=native", "-shared", "-fPIC", str(source), "-o", str(library)]
        if subprocess.run(command, capture_output=True).returncode != 0:
            return None  # e.g. a compiler that does not know -march=native: the bound uses BLAS alone
        kernel = ctypes.CDLL(str(library)).matvec_seconds  # the loaded library outlives its file
    pointer = ctypes.POINTER(ctypes.c_float)
    kernel.argtypes = [pointer, pointer, pointer, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    kernel.restype = ctypes.c_double

    def run(weights: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int) -> float:
        cols, rows = weights.shape
        if not (rows >= cols == len(x) and len(y) == rows):
            raise ValueError(
                f"weights {weights.shape}, x {x.shape}, y {y.shape}: need [cols, rows], [cols], [rows]"
            )
        for array in (weights, x, y):
            if array.dtype != np.float32 or not array.flags.c_contiguous:
                raise ValueError("float32, C-contiguous arrays only")
        if not (x.flags.writeable and y.flags.writeable) or np.shares_memory(x, y):
            raise ValueError("x and y must be writable and must not overlap")
        data = [array.ctypes.data_as(pointer) for array in (weights, x, y)]
        return kernel(*data, rows, cols, int(steps))

    return run


def _aligned(values: np.ndarray, alignment: int = 64) -> np.ndarray:
    """A copy of ``values`` whose data starts on an ``alignment``-byte boundary (a cache line, and
    a 512-bit vector): numpy only promises 16 bytes, and a vector load that straddles two lines
    costs more, which made the loop's speed differ from one allocation to the next."""
    raw = np.empty(values.nbytes + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    aligned = raw[start : start + values.nbytes].view(values.dtype).reshape(values.shape)
    aligned[...] = values
    return aligned


def compiled_matvec_gflops(rows: int, cols: int, steps: int = 2000, repeats: int = 7) -> float | None:
    """float32 ``[rows, cols] x [cols]`` speed of :func:`compiled_matvec`, one thread; None when
    there is no C compiler. ``rows`` must be at least ``cols`` (a recurrent step: G gates of H
    units from H inputs).

    numpy's BLAS pays a library call per product, which at a recurrent step's size (a few
    microseconds of work) weighs on its figure; a fused LSTM kernel pays no such call, and on
    some CPUs ran faster than numpy's figure allowed, which made the "bound" no bound.
    """
    if rows < cols:
        raise ValueError(f"rows must be at least cols, got {rows} x {cols}")
    run = compiled_matvec()
    if run is None:
        return None
    rng = np.random.default_rng(0)
    weights = _aligned(rng.standard_normal((cols, rows), dtype=np.float32))
    x = _aligned(rng.standard_normal(cols, dtype=np.float32))
    y = _aligned(np.zeros(rows, dtype=np.float32))
    run(weights, x, y, steps)  # caches
    seconds = min(run(weights, x, y, steps) for _ in range(repeats))
    return 2 * rows * cols * steps / seconds / 1e9


def compiled_speed(speed: float | None) -> str:
    """:func:`compiled_matvec_gflops`' figure for a page; None is a loop that could not be compiled."""
    return "not compiled" if speed is None else f"{speed:.1f} GFLOP/s"


def exact_length_sequences(
    tokenizer: Tokenizer, texts: Sequence[str], tokens: int, count: int
) -> list[list[int]]:
    """Token ids of the first ``count`` texts with at least ``tokens`` tokens, cut to ``tokens``."""
    sequences = []
    for text in texts:
        ids = tokenizer.encode(text, tokens)
        if len(ids) == tokens:
            sequences.append(ids)
            if len(sequences) == count:
                break
    return sequences


def onnx_ms_per_review(
    session, sequences: Sequence[Sequence[int]], repeats: int = 3, output: str = "probabilities"
) -> float:
    """Median onnxruntime milliseconds of one review per call, computing ``output`` (each review
    timed ``repeats`` times, best kept)."""
    outputs = [output]
    times = []
    for sequence in sequences:
        ids, lengths = pad_batch([sequence])
        feed = {"token_ids": ids, "lengths": lengths}
        session.run(outputs, feed)
        times.append(_best_seconds(lambda feed=feed: session.run(outputs, feed), repeats))
    return 1000 * statistics.median(times)


def recurrent_part(model: onnx.ModelProto) -> tuple[bytes, str]:
    """``model`` cut at its last recurrent node's output: the embedding lookup and the recurrent
    layers, with no pooling or head (serialized, for :func:`benchmarks.engine.session`), and the
    name of that output."""
    last = [node.output[0] for node in model.graph.node if node.op_type in RECURRENT_OPS][-1]
    inputs = [tensor.name for tensor in model.graph.input]
    return onnx.utils.Extractor(model).extract_model(inputs, [last]).SerializeToString(), last


def roofline(bundle: Path, texts: Sequence[str], tokens: int = 230, count: int = 100) -> dict:
    """Bound and measurement for 1 and 2 threads; ``ratio`` = measured / bound."""
    proto, config, _ = read_onnx(bundle / ONNX_FILE)
    recurrent_only, recurrent_output = recurrent_part(proto)
    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    sequences = exact_length_sequences(tokenizer, texts, tokens, count)
    flops = forward_flops(config, tokens)
    gated = GATES[config.cell] * config.hidden_size
    results = {"tokens": tokens, "reviews": len(sequences), "flops": {**asdict(flops), "total": flops.total}}
    blas = {threads: matvec_gflops(gated, config.hidden_size, threads) for threads in (1, 2)}
    compiled = compiled_matvec_gflops(gated, config.hidden_size)
    results["matvec_compiled_gflops"] = compiled
    # the faster of numpy's BLAS and the compiled loop: the bound must not exceed what either allows
    matvec = {threads: max(blas[threads], compiled or 0.0) for threads in (1, 2)}
    for threads in (1, 2):
        matmul = matmul_gflops(tokens, config.embed_dim, gated, threads)
        # two independent recurrences (the directions) can use one core each
        parallel = min(threads, config.num_directions)
        recurrent_speed = max(matvec[threads], matvec[1]) * parallel
        bound_ms = 1000 * (
            flops.input_projection / (matmul * 1e9) + (flops.recurrent + flops.head) / (recurrent_speed * 1e9)
        )
        measured = onnx_ms_per_review(engine.session(bundle / ONNX_FILE, threads), sequences)
        recurrent_ms = onnx_ms_per_review(
            engine.session(recurrent_only, threads), sequences, output=recurrent_output
        )
        results[f"threads_{threads}"] = {
            "matmul_gflops": matmul,
            "matvec_gflops": matvec[threads],
            "matvec_blas_gflops": blas[threads],
            "recurrent_gflops": recurrent_speed,
            "bound_ms": bound_ms,
            "onnx_ms": measured,
            "onnx_gflops": flops.total / (measured / 1000) / 1e9,
            "ratio": measured / bound_ms,
            "recurrent_layers_ms": recurrent_ms,
            "recurrent_layers_ratio": recurrent_ms / bound_ms,
        }
    results["square_matmul_gflops"] = {str(t): matmul_gflops(1024, 1024, 1024, t, repeats=5) for t in (1, 2)}
    return results
