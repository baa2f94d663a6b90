"""A bundle's speed per review, as the variant study reports it."""

from __future__ import annotations

import statistics

from experiments.timing import time_sequences
from model.bundle import ONNX_FILE
from tests.bundles import CORPUS, make_bundle
from training.evaluate import onnx_session


def test_time_sequences_times_each_review_alone_and_batched(tmp_path) -> None:
    bundle, _, tokenizer = make_bundle(tmp_path / "b")
    sequences = [tokenizer.encode(text) for text in CORPUS * 5]
    figures = time_sequences(onnx_session(bundle / ONNX_FILE, 1), sequences)
    assert figures["reviews"] == 20
    assert figures["median_tokens"] == statistics.median(map(len, sequences))
    assert 0 < figures["single_ms_median"] <= figures["single_ms_p99"]
    assert figures["batched_ms_per_review"] > 0
