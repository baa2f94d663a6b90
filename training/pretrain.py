"""Language-model pretraining of the classifier's embedding and encoder (Dai & Le 2015; ULMFiT).

    python -m training.pretrain --config configs/pretrain.toml

Each direction of the encoder learns to predict the next token in its own reading direction:
the forward direction at position t predicts token t+1, the backward direction (which has read
the review from its end back to t) predicts token t-1. The corpus is the training split plus
the 50k unlabelled reviews; the validation split is held out, and its perplexity is reported
several times an epoch. The output layer is an adaptive softmax (Grave et al., 2017): a full
softmax over 20k words would cost about as much as the rest of the network many times over.

Writes into ``--output``: ``lm.pt`` (embedding, encoder, vocabulary and history: what
``training.train --init-from`` reads), ``lm_metrics.jsonl`` and ``lm_curves.png``.
The classifier keeps only the embedding and encoder; the softmax is dropped after pretraining.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from model.config import ModelConfig
from model.network import RecurrentEncoder, make_dropout
from model.tokenizer import Tokenizer
from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import RunConfig, add_arguments, load_run_config
from training.data import DatasetError, bucketed_batches, prepare_data
from training.embeddings import initial_embeddings
from training.loop import make_optimizer, set_seed
from training.plots import plot_lm_curves

LM_KIND = "language_model"
LM_FILE = "lm.pt"


def adaptive_cutoffs(vocab_size: int) -> list[int]:
    """Cluster boundaries of the adaptive softmax: the 2.5 % and 20 % most frequent words.

    Vocabulary ids are in frequency order, so the small head (every token pays for it) holds
    the frequent words that make up most of the text; the rare ones go to cheaper clusters.
    """
    return sorted({c for c in (vocab_size // 40, vocab_size // 5) if 0 < c < vocab_size - 1}) or [1]


class LanguageModel(nn.Module):
    """Embedding and encoder named as in :class:`SentimentClassifier`, one softmax per direction."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.recurrent:
            # self-attention over the whole review sees the very word it is asked to predict
            raise ValueError("a Transformer encoder cannot be pretrained as a language model here")
        if config.bidirectional and config.num_layers > 1:
            # A second layer's forward direction reads the first layer's backward outputs,
            # which have already seen the token it is asked to predict.
            raise ValueError("a stacked bidirectional encoder cannot be pretrained as a language model")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_id)
        self.embed_dropout = make_dropout(config.embed_dropout, config.locked_dropout)
        self.encoder = RecurrentEncoder(config)
        self.output_dropout = make_dropout(config.dropout, config.locked_dropout)
        cutoffs = adaptive_cutoffs(config.vocab_size)
        self.softmax = nn.ModuleList(
            nn.AdaptiveLogSoftmaxWithLoss(config.hidden_size, config.vocab_size, cutoffs, div_value=4.0)
            for _ in range(config.num_directions)
        )

    def forward(self, token_ids: Tensor, lengths: Tensor) -> list[Tensor]:
        """Summed negative log-likelihood of each direction's predictions, and their count.

        Returns ``[nll_forward, nll_backward?, count]``; both directions predict ``count`` tokens
        (every token but the first, or the last, of each review).
        """
        hidden = self.config.hidden_size
        outputs = self.encoder(self.embed_dropout(self.embedding(token_ids)), lengths)
        outputs = self.output_dropout(outputs)  # [B, T, D*H]
        steps = torch.arange(token_ids.shape[1], device=token_ids.device)
        has_previous = steps[1:] < lengths.unsqueeze(1)  # [B, T-1]: position t+1 is a real token
        forward_states = outputs[:, :-1, :hidden][has_previous]  # state at t, predicting t+1
        losses = [self._nll(0, forward_states, token_ids[:, 1:][has_previous])]
        if self.config.bidirectional:
            backward_states = outputs[:, 1:, hidden:][has_previous]  # state at t+1, predicting t
            losses.append(self._nll(1, backward_states, token_ids[:, :-1][has_previous]))
        return [*losses, has_previous.sum()]

    def _nll(self, direction: int, states: Tensor, targets: Tensor) -> Tensor:
        return -self.softmax[direction](states, targets).output.sum()


def lm_batches(sequences: Sequence[Sequence[int]], batch_size: int, seed: int | None, device: str = "cpu"):
    """Length-bucketed batches as tensors (token ids, lengths) on ``device``; one-token reviews
    predict nothing."""
    kept = [s for s in sequences if len(s) > 1]
    for batch in bucketed_batches(kept, [0] * len(kept), batch_size, shuffle_seed=seed):
        yield torch.tensor(batch.token_ids, device=device), torch.tensor(batch.lengths, device=device)


@torch.no_grad()
def perplexity(
    model: LanguageModel, sequences: Sequence[Sequence[int]], batch_size: int, device: str = "cpu"
) -> dict:
    """Per-direction perplexity (exp of the mean token NLL) over ``sequences``."""
    model.eval()
    totals = torch.zeros(model.config.num_directions, dtype=torch.float64)
    count = 0
    for token_ids, lengths in lm_batches(sequences, batch_size * 2, None, device):
        *losses, predicted = model(token_ids, lengths)
        totals += torch.stack(losses).double().cpu()
        count += int(predicted)
    model.train()
    names = ("forward", "backward")
    return {f"{names[d]}_perplexity": round(math.exp(totals[d] / count), 2) for d in range(len(totals))}


def pretrain(config: RunConfig, evaluations_per_epoch: int = 4) -> Path:
    """Pretrain on train + unlabelled reviews; returns the checkpoint path."""
    output = Path(config.train.output)
    output.mkdir(parents=True, exist_ok=True)
    set_seed(config.train.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    tokenizer, splits, _ = prepare_data(config, unlabelled=True, test=False)
    model = LanguageModel(config.model_config(len(tokenizer.vocabulary)))
    vectors, embedding_note = initial_embeddings(config, model.config, tokenizer.vocabulary, splits)
    if vectors is not None:
        model.embedding.weight.data.copy_(torch.from_numpy(vectors))
    device = config.train.device
    model.to(device)
    cap = config.train.max_tokens
    corpus = splits.train[0] + [tokenizer.encode_tokens(t, cap).ids for t in splits.unlabelled_tokens]
    held_out = splits.validation[0]
    batch_size = config.train.batch_size
    steps_per_epoch = math.ceil(sum(len(s) > 1 for s in corpus) / batch_size)
    optimizer, scheduler = make_optimizer(model, config, steps_per_epoch * config.train.epochs)
    evaluate_every = max(1, steps_per_epoch // evaluations_per_epoch)
    history: list[dict] = []
    started, tokens, step = time.perf_counter(), 0, 0
    (output / "lm_metrics.jsonl").write_text("")

    def evaluate(epoch_progress: float, train_loss: float) -> None:
        seconds = time.perf_counter() - started
        record = {
            "epoch": round(epoch_progress, 2),
            "step": step,
            "train_perplexity": round(math.exp(train_loss), 2),
            **perplexity(model, held_out, batch_size, device),
            "seconds": round(seconds, 1),
            "tokens_per_second": round(tokens / seconds),
        }
        history.append(record)
        with (output / "lm_metrics.jsonl").open("a") as log:
            log.write(json.dumps(record) + "\n")
        tqdm.write(json.dumps(record))

    for epoch in range(1, config.train.epochs + 1):
        model.train()
        batches = lm_batches(corpus, batch_size, config.train.seed + epoch, device)
        progress = tqdm(batches, total=steps_per_epoch, desc=f"LM epoch {epoch}", unit="batch")
        for index, (token_ids, lengths) in enumerate(progress, start=1):
            *losses, predicted = model(token_ids, lengths)
            loss = torch.stack(losses).sum() / (predicted * len(losses))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.train.clip_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            tokens += int(lengths.sum())
            progress.set_postfix(train_ppl=f"{math.exp(loss.item()):.1f}")
            # a few times an epoch, but not just before the end-of-epoch evaluation
            if index % evaluate_every == 0 and steps_per_epoch - index >= evaluate_every // 2:
                evaluate(epoch - 1 + index / steps_per_epoch, loss.item())
        evaluate(epoch, loss.item())
    path = output / LM_FILE
    model.cpu()
    save_checkpoint(
        path,
        {
            "kind": LM_KIND,
            "model_state": model.state_dict(),
            "model_config": model.config.to_dict(),
            "vocabulary": list(tokenizer.vocabulary.itos),
            "train_config": asdict(config.train),
            "corpus": {"reviews": len(corpus), "tokens": sum(map(len, corpus)), "held_out": len(held_out)},
            "embeddings": embedding_note,
            "history": history,
        },
        tokenizer.vocabulary,
    )
    plot_lm_curves(history, output / "lm_curves.png")
    return path


def load_pretrained(model: nn.Module, saved: dict, tokenizer: Tokenizer, path: str) -> None:
    """Copy the embedding and encoder of ``saved`` (a language model from ``path``) into ``model``.

    The vocabulary and every encoder hyperparameter must be the same; dropout and pooling may
    differ, since they hold no weights.
    """
    if saved.get("kind") != LM_KIND:
        raise ValueError(f"{path}: not a language-model checkpoint")
    if tuple(saved["vocabulary"]) != tokenizer.vocabulary.itos:
        raise ValueError(f"{path}: its vocabulary differs from this run's (same data, seed, vocab settings?)")
    shape = ("vocab_size", "embed_dim", "hidden_size", "num_layers", "bidirectional", "cell", "pad_id")
    mine = model.config.to_dict()
    different = [k for k in shape if saved["model_config"][k] != mine[k]]
    if different:
        raise ValueError(f"{path}: encoder differs from this run's in {different}")
    state = {k: v for k, v in saved["model_state"].items() if k.startswith(("embedding.", "encoder."))}
    missing, _ = model.load_state_dict(state, strict=False)
    not_loaded = [k for k in missing if k.startswith(("embedding.", "encoder."))]
    if not_loaded:
        raise ValueError(f"{path}: no weights for {not_loaded}")


def pretraining_summary(path: str) -> dict | None:
    """What the model card says of the language model a run started from (None if it did not)."""
    if not path or Path(path).is_dir():  # no start, or a model bundle's (not a language model)
        return None
    saved = load_checkpoint(path)
    if saved.get("kind") != LM_KIND:
        return None
    return {
        "checkpoint": path,
        "corpus": saved["corpus"],
        "embeddings": saved["embeddings"],
        "epochs": saved["train_config"]["epochs"],
        "seconds": saved["history"][-1]["seconds"],
        "final": saved["history"][-1],
        "history": saved["history"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Pretrain the encoder as a language model.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if "." in k}
    try:
        path = pretrain(load_run_config(args.config, overrides))
    except (DatasetError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"language model written to {path}")


if __name__ == "__main__":
    main()
