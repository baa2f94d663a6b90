"""Small synthetic training data for tests that run :func:`training.train.fit` in seconds."""

from __future__ import annotations

import torch

from training import train

SMALL = {"train.epochs": 1, "train.batch_size": 4, "model.embed_dim": 6, "model.hidden_size": 4}
VOCAB = 30  # token ids 2..29; 0 and 1 are <pad> and <unk>


def random_splits(reviews: int = 16) -> train.Splits:
    """``reviews`` random reviews of 1-11 tokens with alternating labels; the first 4 also validate."""
    torch.manual_seed(0)
    sequences = [torch.randint(2, VOCAB, (int(n),)).tolist() for n in torch.randint(1, 12, (reviews,))]
    labels = [i % 2 for i in range(reviews)]
    return train.Splits(
        train=(sequences, labels),
        validation=(sequences[:4], labels[:4]),
        test=([], []),
        unlabelled_tokens=[],
        train_tokens=[],
        unlabelled_texts=[],
    )
