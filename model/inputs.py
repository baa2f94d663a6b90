"""Model inputs as numpy arrays: the one padding routine used by evaluation and serving."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded at the end to int64 ``[batch, time]``, and int64 lengths ``[batch]``.

    Every sequence must hold at least one token: the network has no meaning for an empty review.
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if len(sequences) == 0 or lengths.min() < 1:
        raise ValueError("pad_batch needs at least one sequence, each with at least one token")
    ids = np.full((len(sequences), int(lengths.max())), pad_id, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
    return ids, lengths
