"""Weight-space ensembles of a fine-tuned bundle and the bundle it started from.

    python -m training.interpolate --start models/default --end runs/ft-distil/bundle \\
        --alpha 0.3 0.5 0.7 --data ../shared/data/aclImdb_v1.tar.gz --output runs/wise

Fine-tuning on what the behavioural suite finds (:mod:`training.finetune`) moves the network
away from the IMDB optimum it started at, and costs some test accuracy. WiSE-FT (Wortsman et
al., 2022) averages the two sets of weights instead of choosing one: ``(1 - alpha) * start +
alpha * end``. Both networks start from the same weights, so their average stays in one basin
and keeps most of what each knows. One bundle is written per ``alpha`` (``<output>/alpha-<a>``),
evaluated like any bundle; choose between them on validation and dev data
(``python -m behaviour ablation``), never on the test set.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from model.bundle import ONNX_FILE, TOKENIZER_FILE, load_card
from model.network import SentimentClassifier
from model.tokenizer import Tokenizer
from training.bundle import TrainingRecord, write_bundle
from training.commands import recorded_command
from training.config import RunConfig, TrainConfig
from training.data import bundle_splits, load_imdb, split_reviews
from training.export import model_from_onnx
from training.finetune import upgrade_tokenizer


def interpolate(start: SentimentClassifier, end: SentimentClassifier, alpha: float) -> SentimentClassifier:
    """A network whose every weight is ``(1 - alpha) * start + alpha * end``."""
    if start.config != end.config:
        raise ValueError(f"the networks differ: {start.config} against {end.config}")
    mixed = SentimentClassifier(end.config)
    ends = end.state_dict()
    mixed.load_state_dict(
        {name: torch.lerp(weight, ends[name], alpha) for name, weight in start.state_dict().items()}
    )
    return mixed.eval()


def matching_start(start: Path, end_tokenizer: Tokenizer) -> SentimentClassifier:
    """The start bundle's network over the end bundle's vocabulary: a version-1 start of a
    version-2 end gains the placeholders' rows as fine-tuning began with them."""
    tokenizer = Tokenizer.load(start / TOKENIZER_FILE)
    model = model_from_onnx(start / ONNX_FILE)
    if tokenizer.version < end_tokenizer.version:
        tokenizer, model = upgrade_tokenizer(tokenizer, model)
    if tokenizer.vocabulary.itos != end_tokenizer.vocabulary.itos:
        raise ValueError(f"{start} and the fine-tuned bundle do not share one vocabulary")
    return model


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=Path, default=Path("models/default"), help="the bundle fine-tuned")
    parser.add_argument("--end", type=Path, required=True, help="the fine-tuned bundle")
    parser.add_argument(
        "--alpha", type=float, nargs="+", required=True, help="weights of the end (0: start, 1: end)"
    )
    parser.add_argument("--data", required=True, help="IMDB archive (.tar.gz) or extracted folder")
    parser.add_argument("--output", type=Path, required=True, help="folder of the bundles, one per alpha")
    parser.add_argument(
        "--limit-reviews", type=int, default=0, help="IMDB reviews per part and label (tests)"
    )
    args = parser.parse_args(argv)
    if not all(0.0 <= alpha <= 1.0 for alpha in args.alpha):
        raise SystemExit("error: every --alpha lies in [0, 1]")
    command = recorded_command("training.interpolate", argv)
    card = load_card(args.end)
    tokenizer = Tokenizer.load(args.end / TOKENIZER_FILE)
    end = model_from_onnx(args.end / ONNX_FILE)
    try:
        start = matching_start(args.start, tokenizer)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    train = TrainConfig(**{**card["train_config"], "output": str(args.output)})
    config = RunConfig(
        model={k: v for k, v in end.config.to_dict().items() if k != "vocab_size"}, train=train
    )
    dataset = load_imdb(args.data, expect_full=not args.limit_reviews)
    # the fine-tuning run's split (the shipped run's): its validation reviews were never trained on
    _, validation, test = split_reviews(dataset, args.limit_reviews, train.validation_fraction, train.seed)
    splits = bundle_splits(tokenizer, ([], []), validation, test, train.max_tokens)
    for alpha in args.alpha:
        record = TrainingRecord(
            seconds=0.0,
            machine=platform.machine(),
            embeddings=(
                f"WiSE-FT: {1 - alpha:g} x the bundle {args.start} + {alpha:g} x the bundle {args.end} "
                f"(version {card['version']}: {card['training']['embeddings']})"
            ),
            data_path=str(Path(args.data).resolve()),
            train_size=0,
            command=command,
        )
        folder = args.output / f"alpha-{alpha:g}"
        history = card["training"]["history"]
        write_bundle(folder, interpolate(start, end, alpha), tokenizer, splits, config, history, record)
        print(f"bundle written to {folder}")


if __name__ == "__main__":
    main()
