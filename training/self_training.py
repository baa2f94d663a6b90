"""Self-training and distillation on the unlabelled reviews.

One or several trained bundles (the teachers; several are averaged, an ensemble) label the 50k
unlabelled reviews. Two ways to use those labels:

- *hard* (self-training: Yarowsky, 1995; "pseudo-labelling", Lee, 2013): the reviews the
  teachers are confident about join the training split with their predicted label, as many
  positive as negative ones so the class balance stays;
- *soft* (knowledge distillation: Hinton et al., 2015): the teachers' P(positive) itself is the
  target, so one network learns what the ensemble knows, at one network's serving cost.

A teacher need not be a network: ``ngram`` among the teachers is an n-gram model
(:mod:`training.ngram`) fitted on the run's training split, whose mistakes differ from the
networks'. The validation and test reviews are never labelled here. ``python -m
training.self_training runs/*/bundle [--ngram]`` ranks every set of teachers by its ensemble's
validation accuracy.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np

from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card, require_vocabulary
from model.tokenizer import Tokenizer, Vocabulary, tokenize
from training.config import RunConfig
from training.data import Splits, load_imdb, stratified_split
from training.evaluate import onnx_session, predict_positive
from training.ngram import NGRAM_TEACHER, NgramTeacher


def teacher_positive(
    bundles: Sequence[Path],
    texts: Sequence[str],
    vocabulary: Vocabulary,
    max_tokens: int,
    others: Sequence[np.ndarray] = (),
) -> tuple[list[list[int]], np.ndarray]:
    """Token ids of ``texts`` and the teachers' mean P(positive) for each.

    Every teacher bundle must share this run's vocabulary, so one token-id sequence serves them
    all. ``others`` are P(positive) of the same texts from teachers that are not bundles (the
    n-gram model); each weighs as much as one bundle in the mean.
    """
    if not bundles and not others:
        raise ValueError("no teacher given")
    for bundle in bundles:
        load_card(bundle)
        require_vocabulary(bundle, vocabulary, "teachers need the same one")
    tokenizer = Tokenizer(vocabulary)
    sequences = [tokenizer.encode(text, max_tokens) for text in texts]
    each = [predict_positive(onnx_session(bundle / ONNX_FILE, threads=2), sequences) for bundle in bundles]
    for other in others:
        if len(other) != len(texts):
            raise ValueError(f"a teacher gave {len(other)} probabilities for {len(texts)} reviews")
        each.append(np.asarray(other, dtype=np.float64))
    positive = np.mean(each, axis=0)
    return sequences, positive


def pseudo_label(
    bundles: Sequence[Path],
    texts: Sequence[str],
    vocabulary: Vocabulary,
    threshold: float,
    max_tokens: int,
    soft: bool = False,
    others: Sequence[np.ndarray] = (),
) -> tuple[list[list[int]], list[int] | list[float]]:
    """Token ids and targets of the texts the teachers classify with P >= ``threshold``.

    Hard targets are labels 0/1, balanced by class, most confident first; soft targets are the
    teachers' P(positive) of every review that passes the threshold (0.5 keeps them all).
    ``others``: as in :func:`teacher_positive`.
    """
    sequences, positive = teacher_positive(bundles, texts, vocabulary, max_tokens, others)
    if soft:
        kept = np.flatnonzero(np.maximum(positive, 1.0 - positive) >= threshold)
        return [sequences[i] for i in kept], [float(positive[i]) for i in kept]
    confident_pos = np.flatnonzero(positive >= threshold)
    confident_neg = np.flatnonzero(positive <= 1.0 - threshold)
    keep = min(len(confident_pos), len(confident_neg))
    chosen_pos = confident_pos[np.argsort(-positive[confident_pos])][:keep]
    chosen_neg = confident_neg[np.argsort(positive[confident_neg])][:keep]
    chosen = [(int(i), 1) for i in chosen_pos] + [(int(i), 0) for i in chosen_neg]
    return [sequences[i] for i, _ in chosen], [label for _, label in chosen]


def add_pseudo_labels(config: RunConfig, tokenizer: Tokenizer, splits: Splits) -> str:
    """Add the unlabelled reviews the teachers of ``config`` label to the training split; describe it."""
    if not config.train.pseudo_labels:
        return "none"
    names = [part.strip() for part in config.train.pseudo_labels.split(",") if part.strip()]
    if len(set(names)) < len(names):
        raise ValueError(f"a teacher is named twice in pseudo_labels: {config.train.pseudo_labels}")
    others: list[np.ndarray] = []
    if NGRAM_TEACHER in names:
        # fitted on the labelled training reviews only, before the unlabelled ones join them
        labelled = len(splits.train_tokens)
        print(f"fitting the n-gram teacher on {labelled} training reviews", flush=True)
        teacher = NgramTeacher().fit(splits.train_tokens, splits.train[1][:labelled])
        unlabelled = splits.unlabelled_tokens or [tokenize(text) for text in splits.unlabelled_texts]
        others.append(teacher.positive(unlabelled))
    sequences, targets = pseudo_label(
        [Path(name) for name in names if name != NGRAM_TEACHER],
        splits.unlabelled_texts,
        tokenizer.vocabulary,
        config.train.pseudo_threshold,
        config.train.max_tokens,
        soft=config.train.pseudo_soft,
        others=others,
    )
    splits.train[0].extend(sequences)
    splits.train[1].extend(targets)
    teachers, threshold = ", ".join(names), config.train.pseudo_threshold
    if config.train.pseudo_soft:
        return (
            f"{len(targets)} unlabelled reviews with soft targets (distillation): the mean P(positive) "
            f"of {teachers}, kept at max(P, 1 - P) >= {threshold}"
        )
    return f"{len(targets)} unlabelled reviews pseudo-labelled by {teachers} at P >= {threshold}"


def rank_teacher_sets(
    bundles: Sequence[Path], data: str | None, max_size: int = 0, ngram: bool = False
) -> list[tuple[float, tuple[str, ...]]]:
    """Validation accuracy of the averaged P(positive) of every set of ``bundles``, best first.

    Only the validation split of the bundles' common training split is read: choosing teachers
    is choosing a model, and the test set chooses nothing. ``ngram`` adds the n-gram teacher,
    fitted on the training part of that split, as one more candidate named ``ngram``.
    """
    cards = [load_card(bundle) for bundle in bundles]
    splits = {(card["dataset"]["split_seed"], card["dataset"]["validation_fraction"]) for card in cards}
    if len(splits) != 1:
        raise ValueError(f"the bundles were trained on different splits: {sorted(splits)}")
    seed, fraction = splits.pop()
    train, validation = stratified_split(load_imdb(data).train, fraction, seed)
    vocabulary = Tokenizer.load(bundles[0] / TOKENIZER_FILE).vocabulary
    max_tokens = cards[0]["max_tokens"]
    texts, labels = [r.text for r in validation], np.array([r.label for r in validation])
    positive = {str(b): teacher_positive([b], texts, vocabulary, max_tokens)[1] for b in bundles}
    if ngram:
        teacher = NgramTeacher().fit([tokenize(r.text) for r in train], [r.label for r in train])
        positive[NGRAM_TEACHER] = teacher.positive([tokenize(text) for text in texts])
    return rank_sets(positive, labels, max_size)


def rank_sets(
    positive: dict[str, np.ndarray], labels: np.ndarray, max_size: int = 0
) -> list[tuple[float, tuple[str, ...]]]:
    """Accuracy of the averaged ``positive`` of every set of teachers up to ``max_size`` (0: all),
    best first; among equals, smaller sets first."""
    ranked = []
    for size in range(1, (max_size or len(positive)) + 1):
        for chosen in combinations(positive, size):
            mean = np.mean([positive[name] for name in chosen], axis=0)
            ranked.append((float(((mean >= 0.5) == labels).mean()), chosen))
    return sorted(ranked, key=lambda item: (-item[0], len(item[1])))


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: rank every set of teacher bundles by its ensemble's validation accuracy."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("bundles", nargs="+", type=Path, help="model bundle folders")
    parser.add_argument("--data", help="IMDB archive or folder (default: $IMDB_DATA)")
    parser.add_argument("--max-size", type=int, default=0, help="largest set (0: all the bundles)")
    parser.add_argument("--top", type=int, default=10, help="sets to print")
    parser.add_argument("--ngram", action="store_true", help="rank the n-gram teacher among the bundles")
    args = parser.parse_args(argv)
    for accuracy, chosen in rank_teacher_sets(args.bundles, args.data, args.max_size, args.ngram)[: args.top]:
        print(f"{accuracy:.4f}  {','.join(chosen)}")


if __name__ == "__main__":
    main()
