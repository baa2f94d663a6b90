"""How fast a bundle's graph answers: onnxruntime milliseconds per review, alone and batched;
and the machine that measured it.

The variant study (``experiments.variants``) reports each trained variant's speed beside its
accuracy with this; the benchmarks (``python -m benchmarks model``) measure the served model
in more detail.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence

import numpy as np
import onnxruntime
import torch

from training.evaluate import predict_positive


def time_sequences(session: onnxruntime.InferenceSession, sequences: Sequence[Sequence[int]]) -> dict:
    """onnxruntime milliseconds per token-id sequence: one at a time (median, mean, p99) and
    batched by 64 (mean per review)."""
    predict_positive(session, sequences[:8])  # warm-up: allocations, thread pool
    single = []
    for sequence in sequences:
        started = time.perf_counter()
        predict_positive(session, [sequence], batch_size=1)
        single.append(time.perf_counter() - started)
    started = time.perf_counter()
    predict_positive(session, sequences, batch_size=64)
    batched = time.perf_counter() - started
    return {
        "reviews": len(sequences),
        "median_tokens": statistics.median(map(len, sequences)),
        "single_ms_median": 1000 * statistics.median(single),
        "single_ms_mean": 1000 * statistics.mean(single),
        "single_ms_p99": 1000 * float(np.percentile(single, 99)),
        "batched_ms_per_review": 1000 * batched / len(sequences),
    }


def machine() -> str:
    """Where it ran: the processor, its cores and the torch threads this process uses."""
    return f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)"
