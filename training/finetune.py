"""Fine-tune a model bundle on what the behavioural suite finds it gets wrong.

    python -m training.finetune --bundle models/default --data ../shared/data/aclImdb_v1.tar.gz \\
        --output runs/ft-all --counterfactual ../shared/data/cad --templates 4000 --tokenizer-version 2

Starts from the bundle's weights and vocabulary (a bundle holds no checkpoint; its ONNX graph
holds every weight) and trains on a mixture:

* ``--replay`` IMDB training reviews (the shipped run's train split; its validation split stays
  held out and picks the epoch), so the model keeps what it knew; with ``--replay-targets
  teacher`` their target is the starting bundle's own P(positive) (distillation, Hinton et al.,
  2015), which keeps its whole decision function and not only its labels;
* ``--counterfactual``: the train pairs of Kaushik et al. (2020) (:mod:`training.counterfactual`),
  a review and its minimal edit with opposite labels, which reward reading the words that matter;
* ``--templates``: short sentences on negation, contrast and change over time, some with
  irrelevant insertions (:mod:`training.templates`);
* ``--tokenizer-version 2``: the tokenizer reads URLs, handles and numbers as placeholders
  (:mod:`model.tokenizer`); the vocabulary gains their three tokens, whose word vectors start
  from the unknown word's (URL, handle) and the mean of the numbers' (number).

The loop, export and bundle are the training pipeline's (:func:`training.loop.fit`,
:func:`training.bundle.write_bundle`); the bundle's card records the command.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card
from model.network import SentimentClassifier
from model.tokenizer import NUMBER, PLACEHOLDERS, Tokenizer, Vocabulary
from training import counterfactual, templates
from training.bundle import TrainingRecord, write_bundle
from training.commands import recorded_command
from training.config import RunConfig, TrainConfig
from training.data import bundle_splits, load_imdb, split_reviews
from training.evaluate import onnx_session, predict_positive
from training.export import model_from_onnx
from training.loop import fit, set_seed


def upgrade_tokenizer(
    tokenizer: Tokenizer, model: SentimentClassifier
) -> tuple[Tokenizer, SentimentClassifier]:
    """The version-2 tokenizer of ``tokenizer``'s vocabulary plus the placeholders, and ``model``
    with a word vector for each: the unknown word's for URLs and handles (what they read as
    before), the mean of the vocabulary's numbers above 10 for ``<number>``."""
    itos = tokenizer.vocabulary.itos
    vocabulary = Vocabulary((*itos, *(token for token in PLACEHOLDERS if token not in itos)))
    embedding = model.embedding.weight.detach()
    numbers = [i for i, token in enumerate(itos) if token.isascii() and token.isdigit() and int(token) > 10]
    unknown = embedding[tokenizer.vocabulary.unk_id]
    rows = {NUMBER: embedding[numbers].mean(0) if numbers else unknown}
    new_rows = [rows.get(token, unknown) for token in vocabulary.itos[len(itos) :]]
    upgraded = SentimentClassifier(dataclasses.replace(model.config, vocab_size=len(vocabulary)))
    state = model.state_dict()
    state["embedding.weight"] = torch.cat([embedding, torch.stack(new_rows)]) if new_rows else embedding
    upgraded.load_state_dict(state)
    return Tokenizer(vocabulary, version=2), upgraded


def training_mixture(
    args: argparse.Namespace,
    train_reviews: Sequence,
    rng: random.Random,
    teacher: Callable[[list[str]], list[float]] | None = None,
) -> tuple[list[str], list[float], str]:
    """Texts and targets to train on, and a sentence saying what they are. ``teacher``, when
    given, sets the replayed reviews' targets (P(positive) of each text) instead of their labels."""
    replayed = rng.sample(list(train_reviews), min(args.replay, len(train_reviews)))
    texts = [review.text for review in replayed]
    if teacher is None:
        targets = [float(review.label) for review in replayed]
        parts = [f"{len(replayed)} IMDB training reviews"]
    else:
        targets = teacher(texts)
        parts = [f"{len(replayed)} IMDB training reviews with the starting bundle's P(positive) as targets"]
    if args.counterfactual:
        pair_texts, pair_labels = counterfactual.flatten(
            counterfactual.load_pairs(args.counterfactual, "train")
        )
        texts += pair_texts * args.counterfactual_repeats
        targets += [float(label) for label in pair_labels] * args.counterfactual_repeats
        parts.append(
            f"{len(pair_texts) // 2} counterfactual pairs (Kaushik et al., 2020)"
            + (f" x {args.counterfactual_repeats}" if args.counterfactual_repeats > 1 else "")
        )
    if args.insertion_rate:
        # label-preserving insertions into real reviews too, not only into short sentences
        texts = [
            templates.insert_irrelevant(t, rng) if rng.random() < args.insertion_rate else t for t in texts
        ]
    if args.templates:
        template_texts, template_targets = templates.template_examples(args.templates, args.seed)
        texts += template_texts
        targets += template_targets
        parts.append(f"{args.templates} template sentences")
    return texts, targets, ", ".join(parts)


def run(args: argparse.Namespace, command: str) -> Path:
    """Fine-tune, export and write the bundle; returns its folder."""
    set_seed(args.seed)
    torch.set_num_threads(args.threads)
    card = load_card(args.bundle)
    tokenizer = Tokenizer.load(args.bundle / TOKENIZER_FILE)
    model = model_from_onnx(args.bundle / ONNX_FILE)
    if args.tokenizer_version == 2 and tokenizer.version == 1:
        tokenizer, model = upgrade_tokenizer(tokenizer, model)
    shipped = card["train_config"]
    train = TrainConfig(
        data=args.data,
        output=str(args.output),
        seed=shipped["seed"],
        validation_fraction=shipped["validation_fraction"],
        max_tokens=card["max_tokens"],
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        warmup_fraction=0.1,
        patience=args.epochs,
        embeddings="random",  # unused: the weights come from the bundle
        init_from=str(args.bundle),
        threads=args.threads,
        name=card["name"],
    )
    config = RunConfig(
        model={k: v for k, v in model.config.to_dict().items() if k != "vocab_size"}, train=train
    )
    dataset = load_imdb(args.data, expect_full=not args.limit_reviews)
    # the shipped run's split: its validation reviews were never trained on, here either
    train_reviews, validation, test_reviews = split_reviews(
        dataset, args.limit_reviews, train.validation_fraction, train.seed
    )
    teacher = None
    if args.replay_targets == "teacher":
        # the starting bundle as it was loaded: its own tokenizer (before any upgrade) and graph
        original = Tokenizer.load(args.bundle / TOKENIZER_FILE)
        session = onnx_session(args.bundle / ONNX_FILE, threads=args.threads)

        def teacher(texts: list[str]) -> list[float]:
            sequences = [original.encode(text, args.train_max_tokens) for text in texts]
            return predict_positive(session, sequences).tolist()

    texts, targets, described = training_mixture(args, train_reviews, random.Random(args.seed), teacher)
    encoded = [tokenizer.encode(text, args.train_max_tokens) for text in texts]
    splits = bundle_splits(tokenizer, (encoded, targets), validation, test_reviews, train.max_tokens)
    args.output.mkdir(parents=True, exist_ok=True)
    history, seconds = fit(model.train(), splits, config, args.output, resume=False)
    record = TrainingRecord(
        seconds=round(seconds, 1),
        machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        embeddings=(
            f"from the bundle {args.bundle}, version {card['version']}, fine-tuned on {described}; "
            f"tokenizer version {tokenizer.version}"
        ),
        data_path=str(Path(args.data).resolve()),
        train_size=len(texts),
        command=command,
    )
    return write_bundle(args.output / "bundle", model, tokenizer, splits, config, history, record)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("models/default"), help="bundle to start from")
    parser.add_argument("--data", required=True, help="IMDB archive (.tar.gz) or extracted folder")
    parser.add_argument(
        "--output", type=Path, required=True, help="run folder (checkpoints, metrics, bundle/)"
    )
    parser.add_argument("--counterfactual", default="", help="folder of the CAD pairs ('': none)")
    parser.add_argument(
        "--counterfactual-repeats",
        type=int,
        default=1,
        choices=range(1, 21),
        metavar="1..20",
        help="times each pair is in the mixture",
    )
    parser.add_argument("--templates", type=int, default=0, help="template sentences to add (0: none)")
    parser.add_argument("--tokenizer-version", type=int, default=1, choices=(1, 2), help="tokenizer version")
    parser.add_argument(
        "--insertion-rate", type=float, default=0.0, help="share of reviews given an irrelevant insertion"
    )
    parser.add_argument("--replay", type=int, default=2000, help="IMDB training reviews in the mixture")
    parser.add_argument(
        "--replay-targets",
        choices=("labels", "teacher"),
        default="labels",
        help="the replayed reviews' targets: their labels, or the starting bundle's P(positive)",
    )
    parser.add_argument(
        "--train-max-tokens",
        type=int,
        default=256,
        help="tokens of each training text kept (the first ones; evaluation keeps the bundle's cap)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs over the mixture")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="peak AdamW learning rate")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per batch")
    parser.add_argument("--seed", type=int, default=29, help="seed for the mixture, dropout and order")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (one runs best on a busy machine)"
    )
    parser.add_argument(
        "--limit-reviews",
        type=int,
        default=0,
        help="IMDB reviews per part and label (0: all); for smoke runs",
    )
    args = parser.parse_args(argv)
    command = recorded_command("training.finetune", argv)
    try:
        bundle = run(args, command)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"bundle written to {bundle}")


if __name__ == "__main__":
    main()
