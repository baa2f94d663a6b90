"""Initial word vectors for the embedding layer: word2vec on in-domain text, or a GloVe file.

In-domain word2vec (Mikolov et al., 2013) trained on the training split plus the 50k unlabelled
reviews gives the classifier word similarities learnt from far more text than its 22.5k labelled
reviews; the test reviews are never used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.config import ModelConfig
from model.tokenizer import Vocabulary
from training.config import RunConfig
from training.data import Splits


def word2vec_matrix(
    token_lists: Sequence[Sequence[str]],
    vocabulary: Vocabulary,
    dim: int,
    epochs: int,
    seed: int,
    workers: int = 2,
) -> tuple[np.ndarray, int]:
    """``[vocab, dim]`` vectors from gensim word2vec, and how many vocabulary words it covered.

    Words word2vec never saw keep a small random vector; ``<pad>`` is zero.
    """
    from gensim.models import Word2Vec  # imported here: only this option needs gensim

    trained = Word2Vec(
        sentences=[list(tokens) for tokens in token_lists],
        vector_size=dim,
        window=5,
        min_count=2,
        workers=workers,
        epochs=epochs,
        seed=seed,
    )
    return _fill(vocabulary, dim, seed, trained.wv.key_to_index, lambda word: trained.wv[word])


def glove_matrix(path: Path, vocabulary: Vocabulary, dim: int, seed: int) -> tuple[np.ndarray, int]:
    """``[vocab, dim]`` vectors read from a GloVe-format text file (``word v1 v2 ...`` lines)."""
    vectors: dict[str, np.ndarray] = {}
    wanted = set(vocabulary.itos)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            word, *values = line.rstrip("\n").split(" ")
            if word in wanted:
                if len(values) != dim:
                    raise ValueError(f"{path}:{number}: {len(values)} values, embed_dim is {dim}")
                vectors[word] = np.asarray(values, dtype=np.float32)
    return _fill(vocabulary, dim, seed, vectors, vectors.__getitem__)


def _fill(vocabulary: Vocabulary, dim: int, seed: int, known, lookup) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, size=(len(vocabulary), dim)).astype(np.float32)
    matrix[vocabulary.pad_id] = 0.0
    covered = 0
    for index, word in enumerate(vocabulary.itos[2:], start=2):
        if word in known:
            matrix[index] = lookup(word)
            covered += 1
    return matrix, covered


def initial_embeddings(
    config: RunConfig, model_config: ModelConfig, vocabulary: Vocabulary, splits: Splits
) -> tuple[np.ndarray | None, str]:
    """The word vectors a run starts from (None: random), and a description for the model card."""
    choice = config.train.embeddings
    if choice == "random":
        return None, "random"
    if choice == "word2vec":
        matrix, covered = word2vec_matrix(
            splits.train_tokens + splits.unlabelled_tokens,
            vocabulary,
            model_config.embed_dim,
            config.train.word2vec_epochs,
            config.train.seed,
        )
        texts = len(splits.train_tokens) + len(splits.unlabelled_tokens)
        return (
            matrix,
            f"word2vec on {texts} train+unlabelled reviews, {covered}/{len(vocabulary)} words",
        )
    matrix, covered = glove_matrix(Path(choice), vocabulary, model_config.embed_dim, config.train.seed)
    return matrix, f"GloVe file {Path(choice).name}, {covered}/{len(vocabulary)} words"
