"""The language model against its anchor: a Kneser-Ney 5-gram on the same text and vocabulary.

    python -m experiments.lm_anchor --checkpoint runs/lm/lm.pt --lmplz PATH/TO/lmplz

The anchor is KenLM's ``lmplz`` (interpolated modified Kneser-Ney, Chen & Goodman 1998;
Heafield et al. 2013), estimated on the LSTM's training text: the reviews of
:mod:`training.lm_corpus`, as tokens of the classifier's vocabulary, every out-of-vocabulary
word already ``<unk>`` (written ``@unk@``: lmplz reserves ``<unk>`` for words it never saw,
and refuses it in its input). It is queried through the ``kenlm`` Python module, each review
from ``<s>`` with no ``</s>``: the same tokens the LSTM predicts, from its start marker, with
nothing after the last. Both models are scored on the same test reviews, every token counted,
``<unk>`` included, and again over the known words alone. Writes one JSON file.

KenLM's ``lmplz`` is not on PyPI (its package builds the query module only): build it from
the same source (``pip download kenlm==0.3.0 --no-binary :all:``, then ``cmake`` and
``make lmplz``; it needs the Boost program_options, system and thread headers).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.tokenizer import UNK, Tokenizer
from training.commands import recorded_command
from training.lm import load_language_model, perplexity, token_log_probs
from training.lm_corpus import load_corpus, sample_test_reviews

UNK_WORD = "@unk@"  # one token the tokenizer can never produce ("@" is always split off)
PREVIOUS = {
    "validation_perplexity_forward": 176.5,
    "what": "the recipe's pretraining step (BiLSTM-128, run 5)",
}


def words(ids: np.ndarray, itos: Sequence[str]) -> str:
    """A review as the line lmplz reads: tokens separated by spaces, ``<unk>`` as ``@unk@``."""
    return " ".join(UNK_WORD if itos[i] == UNK else itos[i] for i in ids)


def estimate(lmplz: str, corpus: list[np.ndarray], itos: Sequence[str], order: int, folder: Path) -> Path:
    """Run lmplz on the training reviews (one per line); returns the ARPA file."""
    folder.mkdir(parents=True, exist_ok=True)
    text, arpa = folder / "train.txt", folder / f"kn{order}.arpa"
    with text.open("w") as handle:
        for ids in corpus:
            handle.write(words(ids, itos) + "\n")
    with text.open("rb") as source, arpa.open("wb") as target:
        subprocess.run(
            [lmplz, "-o", str(order), "-S", "30%", "-T", str(folder)], stdin=source, stdout=target, check=True
        )
    return arpa


def kenlm_log_probs(arpa: Path, test: list[np.ndarray], itos: Sequence[str]) -> list[np.ndarray]:
    """Natural log-probability of every test token under the n-gram model."""
    import kenlm  # only this command needs it (requirements/anchor.txt)

    model = kenlm.Model(str(arpa))
    to_natural = math.log(10)
    return [
        np.array([score for score, _, _ in model.full_scores(words(ids, itos), bos=True, eos=False)])
        * to_natural
        for ids in test
    ]


def figures(log_probs: list[np.ndarray], test: list[np.ndarray]) -> dict:
    """Perplexity over every token and over the known words alone."""
    known = [lp[ids != 1] for lp, ids in zip(log_probs, test, strict=True)]
    return {
        "perplexity": round(perplexity(log_probs), 2),
        "perplexity_known_words": round(perplexity(known), 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Compare the LSTM language model with a Kneser-Ney n-gram.")
    parser.add_argument("--checkpoint", default="runs/lm/lm.pt", help="lm.pt written by training.lm")
    parser.add_argument(
        "--tokenizer", default="models/default/tokenizer.json", help="the classifier's vocabulary"
    )
    parser.add_argument("--data", help="IMDB archive (else $IMDB_DATA); read only without the corpus cache")
    parser.add_argument("--lmplz", default="lmplz", help="KenLM's lmplz binary")
    parser.add_argument("--order", type=int, default=5, help="n-gram order")
    parser.add_argument("--arpa", help="a model lmplz already wrote, ARPA or KenLM binary (skips estimating)")
    parser.add_argument("--test-reviews", type=int, default=2500, help="test reviews both are scored on")
    parser.add_argument(
        "--limit-reviews", type=int, default=0, help="estimate on the first N reviews (tests)"
    )
    parser.add_argument("--output", default="experiments/results/lm_anchor.json", help="the result file")
    args = parser.parse_args(argv)
    tokenizer = Tokenizer.load(args.tokenizer)
    itos = tokenizer.vocabulary.itos
    model, saved = load_language_model(args.checkpoint, tokenizer)
    folder = Path(args.checkpoint).parent
    corpus = load_corpus(folder / "corpus.npz", args.data, tokenizer, seed=saved["train_args"]["seed"])
    train = corpus.train[: args.limit_reviews or None]
    test = sample_test_reviews(corpus.test, args.test_reviews)
    started = time.perf_counter()
    arpa = Path(args.arpa) if args.arpa else estimate(args.lmplz, train, itos, args.order, folder / "anchor")
    estimate_seconds = None if args.arpa else round(time.perf_counter() - started, 1)
    lstm, kneser_ney = (
        figures(token_log_probs(model, test), test),
        figures(kenlm_log_probs(arpa, test, itos), test),
    )
    result = {
        "test": {
            "reviews": len(test),
            "tokens": int(sum(map(len, test))),
            "unk_share": round(float(sum(int((t == 1).sum()) for t in test)) / sum(map(len, test)), 4),
        },
        "train": {"reviews": len(train), "tokens": int(sum(map(len, train)))},
        "lstm": {
            **lstm,
            "checkpoint": args.checkpoint,
            "config": saved["model_config"],
            "tokens_seen": saved["history"][-1]["tokens"],
            "minutes": round(saved["history"][-1]["seconds"] / 60, 1),
        },
        "kneser_ney": {
            **kneser_ney,
            "order": args.order,
            "library": "KenLM lmplz (interpolated modified Kneser-Ney)",
            "estimate_seconds": estimate_seconds,
        },
        "lstm_beats_kneser_ney": lstm["perplexity"] < kneser_ney["perplexity"],
        "previous_lm": PREVIOUS,
        "unk": "<unk> is one word of the vocabulary for both models: predicted and counted",
        "machine": platform.processor() or platform.machine(),
        "command": recorded_command("experiments.lm_anchor", argv),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"lstm": lstm, "kneser_ney": kneser_ney}))


if __name__ == "__main__":
    main()
