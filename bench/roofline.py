"""Roofline: how close the served model runs to what this machine's arithmetic allows.

    python -m bench.roofline --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

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
review per call. Speeds come from numpy's BLAS with ``threadpoolctl`` setting its threads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench import cli
from model.bundle import ONNX_FILE, TOKENIZER_FILE, onnx_session, read_onnx
from model.config import ModelConfig
from model.inputs import pad_batch
from model.tokenizer import Tokenizer

GATES = {"lstm": 4, "peephole": 4, "gru": 3, "rnn": 1}


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


def onnx_ms_per_review(session, sequences: Sequence[Sequence[int]], repeats: int = 3) -> float:
    """Median onnxruntime milliseconds of one review per call (each review timed ``repeats`` times, "
    "best kept)."""
    times = []
    for sequence in sequences:
        ids, lengths = pad_batch([sequence])
        feed = {"token_ids": ids, "lengths": lengths}
        session.run(["probabilities"], feed)
        times.append(_best_seconds(lambda feed=feed: session.run(["probabilities"], feed), repeats))
    return 1000 * statistics.median(times)


def roofline(bundle: Path, texts: Sequence[str], tokens: int = 230, count: int = 100) -> dict:
    """Bound and measurement for 1 and 2 threads; ``ratio`` = measured / bound."""
    _, config, _ = read_onnx(bundle / ONNX_FILE)
    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    sequences = exact_length_sequences(tokenizer, texts, tokens, count)
    flops = forward_flops(config, tokens)
    gated = GATES[config.cell] * config.hidden_size
    results = {"tokens": tokens, "reviews": len(sequences), "flops": {**asdict(flops), "total": flops.total}}
    matvec = {threads: matvec_gflops(gated, config.hidden_size, threads) for threads in (1, 2)}
    for threads in (1, 2):
        matmul = matmul_gflops(tokens, config.embed_dim, gated, threads)
        # two independent recurrences (the directions) can use one core each
        parallel = min(threads, config.num_directions)
        recurrent_speed = max(matvec[threads], matvec[1]) * parallel
        bound_ms = 1000 * (
            flops.input_projection / (matmul * 1e9) + (flops.recurrent + flops.head) / (recurrent_speed * 1e9)
        )
        measured = onnx_ms_per_review(onnx_session(bundle / ONNX_FILE, threads), sequences)
        results[f"threads_{threads}"] = {
            "matmul_gflops": matmul,
            "matvec_gflops": matvec[threads],
            "recurrent_gflops": recurrent_speed,
            "bound_ms": bound_ms,
            "onnx_ms": measured,
            "onnx_gflops": flops.total / (measured / 1000) / 1e9,
            "ratio": measured / bound_ms,
        }
    results["square_matmul_gflops"] = {str(t): matmul_gflops(1024, 1024, 1024, t, repeats=5) for t in (1, 2)}
    return results


def print_roofline(results: dict) -> None:
    """Human-readable lines."""
    flops = results["flops"]
    print(
        f"roofline at {results['tokens']} tokens ({results['reviews']} real reviews): "
        f"{flops['total'] / 1e6:.1f} MFLOP per review ({flops['input_projection'] / 1e6:.1f} input "
        "projection, "
        f"{flops['recurrent'] / 1e6:.1f} recurrent)"
    )
    for threads in (1, 2):
        r = results[f"threads_{threads}"]
        print(
            f"  {threads} thread(s): matmul {r['matmul_gflops']:.1f} GFLOP/s, matvec "
            f"{r['matvec_gflops']:.1f} GFLOP/s "
            f"-> bound {r['bound_ms']:.2f} ms; onnxruntime {r['onnx_ms']:.2f} ms "
            f"({r['onnx_gflops']:.1f} GFLOP/s) = {r['ratio']:.2f}x the bound"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI."""
    from training.data import load_imdb

    parser = cli.parser("FLOPs, machine speed, bound and measured time per review.")
    parser.add_argument("--tokens", type=int, default=230, help="review length in tokens")
    parser.add_argument("--reviews", type=int, default=100, help="real reviews to time")
    args = parser.parse_args(argv)
    texts = [r.text for r in load_imdb(args.data).test[::50]]
    results = roofline(args.bundle, texts, args.tokens, args.reviews)
    cli.publish(results, print_roofline, args.json)


if __name__ == "__main__":
    main()
