"""Model inputs as numpy arrays: the one padding routine, and the grouping of sequences into calls."""

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


def length_groups(
    lengths: list[int], max_batch_size: int, waste: float = 1.5, max_tokens: int | None = None
) -> list[list[int]]:
    """Indices grouped for inference: sorted by length, each group's padded size at most
    ``waste`` times its real tokens and at most ``max_tokens``, and at most ``max_batch_size`` long.

    1.5 lets up to a third of a batch's steps be padding: enough to coalesce reviews of similar
    length, while a 10-token text is never padded to the length of a 500-token neighbour. The
    token budget bounds the memory of one call (its activations grow with batch x length).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    for index in order:
        group = groups[-1] if groups else None
        if group is not None and len(group) < max_batch_size:
            real = sum(lengths[i] for i in group) + lengths[index]
            padded = lengths[index] * (len(group) + 1)  # sorted: this one is the longest
            if padded <= waste * real and (max_tokens is None or padded <= max_tokens):
                group.append(index)
                continue
        groups.append([index])
    return groups
