"""The shipped language model: a forward word-level LSTM over the classifier's vocabulary.

    python -m training.lm --data ../shared/data/aclImdb_v1.tar.gz --threads 2

It reads a review from its start marker and predicts each next token (Mikolov et al. 2010; the
recipe of pytorch/examples' word_language_model). The output layer is PyTorch's adaptive softmax
(Grave et al. 2017): on a CPU a full softmax over 20k words would cost several times the LSTM.
Batches of reviews are cut into windows of ``--bptt`` tokens with the state carried (truncated
backpropagation through time): a whole batch per update gave too few updates (1,381 in 45
minutes, perplexity 226) for the tokens read. The budget is wall-clock time, not epochs, because
the machine is shared: the learning rate warms up and then follows a cosine over the budget, so
training ends annealed whenever the budget ends. The weights are rounded to float16 at the end
(the bundle stores them so, to stay under 25 MB); every figure is measured on the rounded
network, which is the one shipped. Writes ``lm.pt`` (state dict, config, vocabulary digest,
history) and ``lm_metrics.jsonl`` into ``--output``; :mod:`training.lm_export` makes the bundle from it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from model.tokenizer import Tokenizer
from training.checkpoint import load_checkpoint, save_checkpoint
from training.data import bucketed_batches
from training.export import model_from_onnx
from training.lm_corpus import START_ID, load_corpus
from training.loop import set_seed
from training.pretrain import adaptive_cutoffs

LM_FILE = "lm.pt"
LM_KIND = "forward_language_model"


@dataclass(frozen=True)
class LMConfig:
    """Hyperparameters of :class:`WordLanguageModel`."""

    vocab_size: int
    embed_dim: int = 256
    hidden_size: int = 512
    cutoffs: tuple[int, ...] = ()  # adaptive-softmax clusters (ids are in frequency order); () is
    # adaptive_cutoffs(vocab_size): (500, 4000) for 20k words
    div_value: float = 4.0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if not self.cutoffs:
            object.__setattr__(self, "cutoffs", tuple(adaptive_cutoffs(self.vocab_size)))

    @classmethod
    def from_dict(cls, values: dict) -> LMConfig:
        """The config saved by ``asdict`` (cutoffs come back as a list)."""
        return cls(**{**values, "cutoffs": tuple(values["cutoffs"])})


class WordLanguageModel(nn.Module):
    """Embedding -> one LSTM layer -> adaptive log-softmax over the vocabulary."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.embed_dim, config.hidden_size, batch_first=True)
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(
            config.hidden_size,
            config.vocab_size,
            list(config.cutoffs),
            div_value=config.div_value,
            head_bias=True,
        )

    def forward(self, token_ids: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple]:
        """LSTM outputs ``[B, T, H]`` after each token, and the state ``(h, c)`` ``[1, B, H]``
        after the last."""
        embedded = self.dropout(self.embedding(token_ids))  # [B, T, E]
        outputs, state = self.lstm(embedded, state)  # [B, T, H]
        return self.dropout(outputs), state

    def log_probs(self, outputs: Tensor) -> Tensor:
        """Log-probabilities of every next word ``[N, V]`` from outputs ``[N, H]``."""
        return self.softmax.log_prob(outputs)

    def target_log_probs(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Log-probability of each target ``[N]`` (cheaper than :meth:`log_probs`)."""
        return self.softmax(outputs, targets).output

    def round_to_half(self) -> None:
        """Round every weight to float16 precision (kept in float32): the shipped network."""
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(parameter.half().float())


def batches(
    sequences: Sequence[np.ndarray], batch_size: int, seed: int | None
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """``(inputs, targets, mask)`` ``[B, T]``: the start marker and all but the last token, every
    token, and which positions are real (reviews are padded at the end, so the forward LSTM's
    outputs at real positions never see the padding)."""
    shifted = [np.concatenate([[START_ID], s]) for s in sequences if len(s)]
    for batch in bucketed_batches(shifted, [0] * len(shifted), batch_size, shuffle_seed=seed):
        ids = torch.tensor(batch.token_ids)  # [B, T+1]
        lengths = torch.tensor(batch.lengths) - 1  # tokens predicted per review
        mask = torch.arange(ids.shape[1] - 1) < lengths.unsqueeze(1)  # [B, T]
        yield ids[:, :-1], ids[:, 1:], mask


class CarriedState:
    """The LSTM state from one window of a batch to the next, detached: gradients stop at the
    window's edge (truncated backpropagation through time), the values do not."""

    def __init__(self) -> None:
        self.state: tuple[Tensor, Tensor] | None = None

    def get(self) -> tuple[Tensor, Tensor] | None:
        """The state to start the next window from (``None``: the reviews' start)."""
        return self.state

    def set(self, state: tuple[Tensor, Tensor]) -> None:
        """Keep the state after a window, cut from its graph."""
        self.state = (state[0].detach(), state[1].detach())


def windows(
    sequences: Sequence[np.ndarray], batch_size: int, bptt: int, seed: int | None
) -> Iterator[tuple[Tensor, Tensor, Tensor, CarriedState]]:
    """:func:`batches` cut into windows of ``bptt`` time steps (0: whole), with the state each
    window starts from. Each review is still read from its start, as in scoring, but the weights
    move every ``bptt`` tokens instead of once a batch: many more updates for the same tokens."""
    for inputs, targets, mask in batches(sequences, batch_size, seed):
        state, width = CarriedState(), bptt or inputs.shape[1]
        for start in range(0, inputs.shape[1], width):
            window = slice(start, start + width)
            yield inputs[:, window], targets[:, window], mask[:, window], state


@torch.no_grad()
def token_log_probs(
    model: WordLanguageModel, sequences: Sequence[np.ndarray], batch_size: int = 64
) -> list[np.ndarray]:
    """Natural log-probability of every token of every review, in the order given."""
    model.eval()
    shifted = [np.concatenate([[START_ID], s]) for s in sequences]
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    for batch in bucketed_batches(shifted, [0] * len(shifted), batch_size):
        ids = torch.tensor(batch.token_ids)
        outputs, _ = model(ids[:, :-1])
        scores = model.target_log_probs(outputs.reshape(-1, outputs.shape[-1]), ids[:, 1:].reshape(-1))
        scores = scores.reshape(len(batch.indices), -1).double().numpy()
        for row, (index, length) in enumerate(zip(batch.indices, batch.lengths, strict=True)):
            out[index] = scores[row, : length - 1]
    model.train()
    return out


def perplexity(log_probs: Sequence[np.ndarray]) -> float:
    """exp of the mean negative log-likelihood per token."""
    total = sum(float(lp.sum()) for lp in log_probs)
    count = sum(len(lp) for lp in log_probs)
    return math.exp(-total / count)


def train(model: WordLanguageModel, corpus, args: argparse.Namespace, log: Path) -> list[dict]:
    """Train until the budget (minutes, or steps) is spent; returns the evaluation history."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    budget = args.minutes * 60
    started, step, tokens, epoch, history = time.perf_counter(), 0, 0, 0, []
    watch = corpus.validation[: args.watch_reviews]
    next_evaluation = args.evaluate_minutes * 60

    def progress() -> float:
        by_time = (time.perf_counter() - started) / budget
        return max(by_time, step / args.max_steps) if args.max_steps else by_time

    def evaluate() -> None:
        seconds = time.perf_counter() - started
        record = {
            "step": step,
            "epoch": epoch,
            "tokens": tokens,
            "seconds": round(seconds, 1),
            "train_perplexity": round(math.exp(loss.item()), 2),
            "validation_perplexity": round(perplexity(token_log_probs(model, watch)), 2),
        }
        history.append(record)
        with log.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    while progress() < 1:
        epoch += 1
        for inputs, targets, mask, state in windows(
            corpus.train, args.batch_size, args.bptt, args.seed + epoch
        ):
            fraction = progress()
            if fraction >= 1:
                break
            warm = min(1.0, fraction / args.warmup_fraction)
            for group in optimizer.param_groups:
                group["lr"] = args.learning_rate * warm * 0.5 * (1 + math.cos(math.pi * fraction))
            outputs, after = model(inputs, state.get())
            state.set(after)
            loss = -model.target_log_probs(outputs[mask], targets[mask]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip_norm)
            optimizer.step()
            step, tokens = step + 1, tokens + int(mask.sum())
            if time.perf_counter() - started >= next_evaluation:
                evaluate()
                next_evaluation += args.evaluate_minutes * 60
    model.round_to_half()
    evaluate()
    return history


def init_from_classifier(model: WordLanguageModel, bundle: str | Path) -> None:
    """Start from a classifier bundle's embedding and first-layer forward LSTM (ULMFiT's transfer
    the other way round: the shipped classifier's encoder was itself pretrained as a language
    model). Only the softmax starts from scratch; the sizes must be the classifier's."""
    classifier = model_from_onnx(Path(bundle) / "model.onnx")
    forward = classifier.encoder.layers[0][0]
    if classifier.config.cell != "lstm" or forward.hidden_size != model.config.hidden_size:
        raise ValueError(f"{bundle}: its first layer is not an LSTM of {model.config.hidden_size} units")
    if classifier.embedding.weight.shape != model.embedding.weight.shape:
        raise ValueError(f"{bundle}: its embedding is {tuple(classifier.embedding.weight.shape)}")
    model.embedding.load_state_dict(classifier.embedding.state_dict())
    model.lstm.load_state_dict(forward.state_dict())


def load_language_model(
    path: str | Path, tokenizer: Tokenizer | None = None
) -> tuple[WordLanguageModel, dict]:
    """The network of a checkpoint written by :func:`main` (in eval mode), and the checkpoint."""
    saved = load_checkpoint(path, tokenizer.vocabulary if tokenizer else None)
    if saved.get("kind") != LM_KIND:
        raise ValueError(f"{path}: not a forward language-model checkpoint")
    model = WordLanguageModel(LMConfig.from_dict(saved["model_config"]))
    model.load_state_dict(saved["model_state"])
    return model.eval(), saved


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Train the forward LSTM language model.")
    parser.add_argument("--data", help="IMDB archive or folder (else $IMDB_DATA)")
    parser.add_argument(
        "--tokenizer", default="models/default/tokenizer.json", help="the classifier's vocabulary"
    )
    parser.add_argument("--output", default="runs/lm", help="folder for lm.pt and lm_metrics.jsonl")
    parser.add_argument("--minutes", type=float, default=85.0, help="wall-clock training budget")
    parser.add_argument(
        "--max-steps", type=int, default=0, help="stop after this many steps too (0: no limit)"
    )
    parser.add_argument("--init-from", help="a classifier bundle: start from its embedding and forward LSTM")
    parser.add_argument("--embed-dim", type=int, default=256, help="word vector size")
    parser.add_argument("--hidden-size", type=int, default=512, help="LSTM state size")
    parser.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="on the embeddings and the LSTM outputs (about two passes: none)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="reviews per batch")
    parser.add_argument(
        "--bptt", type=int, default=64, help="time steps per update (0: a whole batch of reviews per update)"
    )
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="AdamW peak rate")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decoupled decay")
    parser.add_argument("--warmup-fraction", type=float, default=0.02, help="share of the budget warming up")
    parser.add_argument("--clip-norm", type=float, default=1.0, help="gradient norm clip")
    parser.add_argument("--evaluate-minutes", type=float, default=10.0, help="validation every so often")
    parser.add_argument(
        "--watch-reviews", type=int, default=300, help="validation reviews watched while training"
    )
    parser.add_argument(
        "--limit-reviews",
        type=int,
        default=0,
        help="train on the first N reviews only; accept a partial archive (tests)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the held-out draw, the order and the weights"
    )
    args = parser.parse_args(argv)
    set_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.load(args.tokenizer)
    corpus = load_corpus(
        output / "corpus.npz", args.data, tokenizer, seed=args.seed, expect_full=not args.limit_reviews
    )
    if args.limit_reviews:
        corpus.train = corpus.train[: args.limit_reviews]
    config = LMConfig(len(tokenizer.vocabulary), args.embed_dim, args.hidden_size, dropout=args.dropout)
    model = WordLanguageModel(config)
    if args.init_from:
        init_from_classifier(model, args.init_from)
    (output / "lm_metrics.jsonl").write_text("")
    history = train(model, corpus, args, output / "lm_metrics.jsonl")
    save_checkpoint(
        output / LM_FILE,
        {
            "kind": LM_KIND,
            "model_state": model.state_dict(),
            "model_config": asdict(config),
            "train_args": vars(args),
            "corpus": corpus.summary(),
            "history": history,
        },
        tokenizer.vocabulary,
    )
    print(f"language model written to {output / LM_FILE}")


if __name__ == "__main__":
    main()
