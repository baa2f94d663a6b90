"""The bundle as every peer serves it: the repository's tokenizer, the bundle's ONNX graph on an
onnxruntime CPU session, one call per batch (padded to the batch's longest text).

Configured from the environment the harness sets: ``PEER_BUNDLE`` (the bundle folder) and
``PEER_THREADS`` (onnxruntime intra-op threads; 0: onnxruntime's default, one per physical core,
as a tutorial that sets nothing gets). Needs numpy and onnxruntime only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime

from model.inputs import pad_batch
from model.tokenizer import Tokenizer

LABELS = ("negative", "positive")  # the graph's class order (model.bundle.LABELS)


class SentimentModel:
    """Tokenise, pad, one ``session.run``: what a request costs a peer."""

    def __init__(self, bundle: Path, threads: int) -> None:
        self.tokenizer = Tokenizer.load(bundle / "tokenizer.json")
        self.max_tokens = json.loads((bundle / "model_card.json").read_text())["max_tokens"]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(bundle / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def from_env(cls) -> SentimentModel:
        """The model the harness asked for, through ``PEER_BUNDLE`` and ``PEER_THREADS``."""
        return cls(
            Path(os.environ.get("PEER_BUNDLE", "models/default")), int(os.environ.get("PEER_THREADS", "1"))
        )

    def predict(self, texts: Sequence[str]) -> list[dict]:
        """``{"label", "score"}`` of each text, from one onnxruntime call."""
        ids, lengths = pad_batch([self.tokenizer.encode(text, self.max_tokens) for text in texts])
        probabilities = self.session.run(["probabilities"], {"token_ids": ids, "lengths": lengths})[0]
        return [{"label": LABELS[int(np.argmax(row))], "score": float(row[1])} for row in probabilities]


def workers() -> int:
    """Model workers (processes or replicas) the harness asked a batching peer for
    (``PEER_WORKERS``): the service runs two inference workers, so a peer gets as many."""
    return int(os.environ.get("PEER_WORKERS", "1"))


def batching() -> tuple[int, float]:
    """The batch size cap and the longest wait for a batch to fill, in seconds, that the harness
    set (``PEER_MAX_BATCH``, ``PEER_BATCH_WAIT_MS``)."""
    return int(os.environ.get("PEER_MAX_BATCH", "32")), float(
        os.environ.get("PEER_BATCH_WAIT_MS", "5")
    ) / 1000
