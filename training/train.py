"""Train the sentiment classifier, export it to ONNX, prove the export and write the bundle.

    python -m training.train --config configs/default.toml --data ../shared/data/aclImdb_v1.tar.gz

Writes into ``--output``: ``checkpoint.pt`` (last epoch, for ``--resume``), ``best.pt``,
``metrics.jsonl`` (one line per epoch) and ``bundle/`` (the folder the service loads).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model.bundle import CARD_FILE, ONNX_FILE, load_card, require_vocabulary
from model.config import ModelConfig
from model.network import SentimentClassifier
from model.tokenizer import Tokenizer, Vocabulary, tokenize
from training import adversarial
from training.config import ADDED_LATER, RunConfig, TrainConfig, add_arguments, load_run_config
from training.data import (
    DatasetError,
    bucketed_batches,
    fetch_if_missing,
    load_imdb,
    resolve_path,
    sha256_of,
    stratified_split,
    take_per_label,
)
from training.distributed import SINGLE, World, close_world, init_world
from training.export import model_from_onnx
from training.pretrain import LM_KIND, load_pretrained, pretraining_summary


@dataclass
class Splits:
    """Token ids and labels of the train, validation and test reviews."""

    train: tuple[list[list[int]], list[float]]  # labels, and soft targets after distillation
    validation: tuple[list[list[int]], list[int]]
    test: tuple[list[list[int]], list[int]]
    unlabelled_tokens: list[list[str]]
    train_tokens: list[list[str]]
    unlabelled_texts: list[str]


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_data(
    config: RunConfig, unlabelled: bool = False, test: bool = True
) -> tuple[Tokenizer, Splits, str]:
    """Read, split and tokenise the dataset; build the vocabulary on the training split only.

    The unlabelled reviews are tokenised when word2vec needs them or ``unlabelled`` asks;
    ``test=False`` leaves the test split empty (language-model pretraining never reads it).
    """
    train_config = config.train
    dataset = load_imdb(train_config.data, expect_full=not train_config.limit_reviews)
    labelled = take_per_label(dataset.train, train_config.limit_reviews)
    test_reviews = take_per_label(dataset.test, train_config.limit_reviews) if test else []
    train, validation = stratified_split(labelled, train_config.validation_fraction, train_config.seed)
    train_tokens = [tokenize(r.text) for r in tqdm(train, desc="tokenise train", leave=False)]
    vocabulary = Vocabulary.build(train_tokens, train_config.vocab_size, train_config.min_count)
    tokenizer = Tokenizer(vocabulary)
    cap = train_config.max_tokens

    def encode(reviews: Sequence) -> tuple[list[list[int]], list[int]]:
        return [tokenizer.encode(r.text, cap) for r in reviews], [r.label for r in reviews]

    unsup = dataset.unsup[: train_config.limit_reviews or None]
    needs_word2vec = train_config.embeddings == "word2vec" and not train_config.init_from
    unlabelled_tokens = (
        [tokenize(r.text) for r in tqdm(unsup, desc="tokenise unlabelled", leave=False)]
        if needs_word2vec or unlabelled
        else []
    )
    splits = Splits(
        train=(
            [tokenizer.encode_tokens(t, cap).ids for t in train_tokens],
            [r.label for r in train],
        ),
        validation=encode(validation),
        test=encode(test_reviews),
        unlabelled_tokens=unlabelled_tokens,
        train_tokens=train_tokens,
        unlabelled_texts=[r.text for r in unsup],
    )
    return tokenizer, splits, str(resolve_path(train_config.data))


def initial_embeddings(
    config: RunConfig, model_config: ModelConfig, tokenizer: Tokenizer, splits: Splits
) -> tuple[np.ndarray | None, str]:
    """Word vectors to start from, and a description for the model card."""
    from training import embeddings

    choice, vocabulary = config.train.embeddings, tokenizer.vocabulary
    if choice == "random":
        return None, "random"
    if choice == "word2vec":
        matrix, covered = embeddings.word2vec_matrix(
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
    matrix, covered = embeddings.glove_matrix(
        Path(choice), vocabulary, model_config.embed_dim, config.train.seed
    )
    return matrix, f"GloVe file {Path(choice).name}, {covered}/{len(vocabulary)} words"


def add_pseudo_labels(config: RunConfig, tokenizer: Tokenizer, splits: Splits) -> str:
    """Add the unlabelled reviews the teachers label to the training split; describe it."""
    if not config.train.pseudo_labels:
        return "none"
    from training.ngram import NGRAM_TEACHER, NgramTeacher
    from training.self_training import pseudo_label

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


def make_optimizer(model: nn.Module, config: RunConfig, total_steps: int):
    """AdamW without decay on biases and embeddings, linear warm-up then cosine decay.

    The embedding, most of the parameters, learns at ``embedding_lr_scale`` times the rate:
    pretrained vectors then move slowly (discriminative learning rates, Howard & Ruder 2018).
    """
    named = list(model.named_parameters())
    embedding = [p for n, p in named if n.startswith("embedding")]
    decay = [p for n, p in named if p.ndim >= 2 and not n.startswith("embedding")]
    no_decay = [p for n, p in named if p.ndim < 2 and not n.startswith("embedding")]
    rate = config.train.learning_rate
    groups = [
        {"params": decay, "weight_decay": config.train.weight_decay, "lr": rate},
        {"params": no_decay, "weight_decay": 0.0, "lr": rate},
    ]
    if config.train.embedding_lr_scale > 0:
        groups.append(
            {"params": embedding, "weight_decay": 0.0, "lr": rate * config.train.embedding_lr_scale}
        )
    else:
        for parameter in embedding:
            parameter.requires_grad_(False)  # frozen
    optimizer = torch.optim.AdamW(groups, lr=rate)
    warmup = max(1, round(total_steps * config.train.warmup_fraction))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def freeze_pretrained(model: nn.Module, config: RunConfig, frozen: bool) -> None:
    """Freeze or thaw the embedding and encoder (gradual unfreezing: the new head learns first,
    so its random gradients do not wreck pretrained weights). A zero embedding rate stays frozen."""
    for name, parameter in model.named_parameters():
        if name.startswith("encoder."):
            parameter.requires_grad_(not frozen)
        elif name.startswith("embedding."):
            parameter.requires_grad_(not frozen and config.train.embedding_lr_scale > 0)


def to_tensors(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A :class:`Batch` as (token ids, lengths, labels) tensors."""
    return (
        torch.tensor(batch.token_ids),
        torch.tensor(batch.lengths),
        torch.tensor(batch.labels),
    )


def summed_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy. Integer targets are labels; a batch holding soft targets (a
    teacher's P(positive), see :mod:`training.self_training`) is a float tensor, in which a
    labelled review's 0/1 gives exactly its label's loss."""
    if targets.is_floating_point():
        return nn.functional.cross_entropy(logits, torch.stack([1.0 - targets, targets], 1), reduction="sum")
    return nn.functional.cross_entropy(logits, targets, reduction="sum")


def hard_labels(targets: torch.Tensor) -> torch.Tensor:
    """Labels of hard or soft targets (P(positive) >= 0.5 is positive)."""
    return (targets >= 0.5).long() if targets.is_floating_point() else targets


def train_epoch(
    model, optimizer, scheduler, data, config: RunConfig, epoch: int, world: World = SINGLE
) -> dict:
    """One pass over the training split; returns mean loss, accuracy and tokens per second.

    Batches are global batches of ``world.size x batch_size`` reviews; each process trains on its
    own slice (see :mod:`training.distributed`). A global batch too small to give every process a
    review is skipped (at most one per epoch, and only with several processes).
    """
    model.train()
    sequences, labels = data
    global_size = config.train.batch_size * world.size
    batches = [
        batch
        for batch in bucketed_batches(sequences, labels, global_size, shuffle_seed=config.train.seed + epoch)
        if len(batch.labels) >= world.size
    ]
    loss_sum, correct, seen, tokens, started = 0.0, 0, 0, 0, time.perf_counter()
    progress = tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not world.is_main)
    epsilon, adversarial_sum = config.train.adversarial_epsilon, 0.0
    vat_epsilon, virtual_sum = config.train.vat_epsilon, 0.0
    for batch in progress:
        token_ids, lengths, targets = to_tensors(world.shard(batch))
        # DDP averages gradients over processes: scaled so the average is the global batch's mean
        scale = world.size / len(batch.labels)
        optimizer.zero_grad(set_to_none=True)
        if config.train.moves_word_vectors:
            logits, summed, adversarial_loss, virtual_loss = adversarial.backward(
                model,
                token_ids,
                lengths,
                partial(summed_loss, targets=targets),
                epsilon,
                scale,
                vat_epsilon,
                config.train.vat_xi,
            )
            adversarial_sum += adversarial_loss.item()
            virtual_sum += virtual_loss.item()
        else:
            logits = model(token_ids, lengths)
            summed = summed_loss(logits, targets)
            (summed * scale).backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.train.clip_norm)
        optimizer.step()
        scheduler.step()
        loss_sum += summed.item()
        correct += (logits.argmax(1) == hard_labels(targets)).sum().item()
        seen += len(targets)
        tokens += int(lengths.sum())
        progress.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
    loss_sum, correct, seen, tokens, adversarial_sum, virtual_sum = world.sum(
        [loss_sum, correct, seen, tokens, adversarial_sum, virtual_sum]
    )
    seconds = time.perf_counter() - started
    adversarial_record = {"adversarial_loss": adversarial_sum / seen} if epsilon > 0 else {}
    if vat_epsilon > 0:
        adversarial_record["virtual_adversarial_kl"] = virtual_sum / seen
    return {
        "train_loss": loss_sum / seen,
        **adversarial_record,
        "train_accuracy": correct / seen,
        "seconds": round(seconds, 1),
        "tokens_per_second": round(tokens / seconds),
    }


@torch.no_grad()
def validate(model, data, batch_size: int) -> dict:
    """Loss and accuracy of the PyTorch model on ``data`` (used to choose the best epoch)."""
    model.eval()
    sequences, labels = data
    loss_sum, correct = 0.0, 0
    for batch in bucketed_batches(sequences, labels, batch_size * 2):
        token_ids, lengths, targets = to_tensors(batch)
        logits = model(token_ids, lengths)
        loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        correct += (logits.argmax(1) == hard_labels(targets)).sum().item()
    return {
        "validation_loss": loss_sum / len(labels),
        "validation_accuracy": correct / len(labels),
    }


def save_checkpoint(path: Path, model, optimizer, scheduler, state: dict, config: RunConfig) -> None:
    """A dict of state_dicts, configs and progress (never a pickled model object)."""
    torch.save(
        {
            "model_state": model.state_dict(),
            "model_config": model.config.to_dict(),
            "train_config": asdict(config.train),
            "model_overrides": config.model,
            "optimizer_state": optimizer.state_dict(),
            "scheduler_state": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            **state,
        },
        path,
    )


def fit(
    model, splits: Splits, config: RunConfig, output: Path, resume: bool, world: World = SINGLE
) -> tuple[list[dict], float]:
    """Train with early stopping on validation accuracy; returns the history and time taken.

    Every process validates on the whole validation split (the same weights give the same
    figures, so all take the same early-stopping decisions); only rank 0 writes files.
    """
    if world.size > 1 and config.train.freeze_epochs:
        raise ValueError(
            "--freeze-epochs is not supported under torchrun (DDP needs fixed trainable parameters)"
        )
    if world.size > 1 and config.train.moves_word_vectors:
        raise ValueError(
            "--adversarial-epsilon and --vat-epsilon are not supported under torchrun: their passes "
            "call the network after its lookup, which the DDP wrapper does not synchronise"
        )
    steps_per_epoch = math.ceil(len(splits.train[1]) / (config.train.batch_size * world.size))
    optimizer, scheduler = make_optimizer(model, config, steps_per_epoch * config.train.epochs)
    state = {
        "epoch": 0,
        "best_accuracy": -1.0,
        "best_epoch": 0,
        "history": [],
        "seconds": 0.0,
    }
    if resume and (output / "checkpoint.pt").exists():
        saved = torch.load(output / "checkpoint.pt", weights_only=False)
        model.load_state_dict(saved["model_state"])
        optimizer.load_state_dict(saved["optimizer_state"])
        scheduler.load_state_dict(saved["scheduler_state"])
        torch.set_rng_state(saved["torch_rng"])
        state = {key: saved[key] for key in state}
        if world.is_main:
            print(f"resumed after epoch {state['epoch']}")
    trained = world.wrap(model)
    while (
        state["epoch"] < config.train.epochs and state["epoch"] - state["best_epoch"] < config.train.patience
    ):
        state["epoch"] += 1
        freeze_pretrained(model, config, frozen=state["epoch"] <= config.train.freeze_epochs)
        record = {
            "epoch": state["epoch"],
            **train_epoch(trained, optimizer, scheduler, splits.train, config, state["epoch"], world),
        }
        record.update(validate(model, splits.validation, config.train.batch_size))
        state["seconds"] += record["seconds"]
        state["history"].append(record)
        better = record["validation_accuracy"] > state["best_accuracy"]
        if better:
            state["best_accuracy"], state["best_epoch"] = record["validation_accuracy"], state["epoch"]
        if world.is_main:
            with (output / "metrics.jsonl").open("a") as log:
                log.write(json.dumps(record) + "\n")
            print(json.dumps(record))
            if better:
                save_checkpoint(output / "best.pt", model, optimizer, scheduler, state, config)
            save_checkpoint(output / "checkpoint.pt", model, optimizer, scheduler, state, config)
    world.barrier()  # best.pt is written
    best = torch.load(output / "best.pt", weights_only=False)
    model.load_state_dict(best["model_state"])
    return state["history"], state["seconds"]


def parity_sample(sequences: Sequence[Sequence[int]], count: int = 48) -> list[Sequence[int]]:
    """Reviews spread over the whole length range (shortest to longest) for the parity check."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    picks = np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))
    chosen = [sequences[order[i]] for i in picks]
    random.Random(0).shuffle(chosen)  # mix long and short neighbours inside the padded batch
    return chosen


def model_from_bundle(folder: Path, model_config: ModelConfig, tokenizer: Tokenizer) -> SentimentClassifier:
    """The network of a bundle's ``model.onnx``, to train on from where it stopped.

    A bundle carries no checkpoint, and a new machine has only the bundles that were committed
    (the shipped model among them); its graph holds every weight and its model config. Its
    vocabulary and network must be this run's: token ids mean nothing to another vocabulary.
    """
    require_vocabulary(folder, tokenizer.vocabulary, "a start needs the same data, vocab_size and min_count")
    model = model_from_onnx(folder / ONNX_FILE)
    if model.config != model_config:
        raise ValueError(
            f"{folder}: its model config differs from this run's ({model.config} vs {model_config})"
        )
    return model.train()


def build_model(
    config: RunConfig, tokenizer: Tokenizer, splits: Splits, world: World = SINGLE
) -> tuple[SentimentClassifier, str]:
    """The network with its starting weights (word vectors, or a checkpoint's), and how it started.

    Under torchrun only rank 0 computes word vectors: DDP gives every rank rank 0's weights.
    """
    model_config = config.model_config(len(tokenizer.vocabulary))
    if config.train.init_from and Path(config.train.init_from).is_dir():
        bundle = Path(config.train.init_from)
        # the version too: a folder such as models/default holds another model once one is shipped
        version = load_card(bundle).get("version", "of no version")
        return model_from_bundle(
            bundle, model_config, tokenizer
        ), f"from the bundle {bundle}, version {version}"
    model = SentimentClassifier(model_config)
    if config.train.init_from:
        start = torch.load(config.train.init_from, weights_only=False)
        if start.get("kind") == LM_KIND:
            load_pretrained(model, start, tokenizer, config.train.init_from)
            return model, f"embedding and encoder from the language model {config.train.init_from}"
        if ModelConfig.from_dict(start["model_config"]) != model_config:  # absent fields: defaults
            raise ValueError(f"{config.train.init_from}: its model config differs from this run's")
        model.load_state_dict(start["model_state"])
        return model, f"from {config.train.init_from}"
    if not world.is_main:
        return model, "from rank 0"
    vectors, embedding_note = initial_embeddings(config, model_config, tokenizer, splits)
    if vectors is not None:
        model.embedding.weight.data.copy_(torch.from_numpy(vectors))
    return model, embedding_note


def fingerprint(config: RunConfig) -> str:
    """What decides a bundle's weights: the configuration and the data's sha256 (not where the
    output goes, nor the thread count). Equal fingerprints let ``--skip-if-current`` skip."""
    path = resolve_path(config.train.data)
    data = sha256_of(path) if path.is_file() else str(path.resolve())
    ignored = {"output", "data", "threads"}
    defaults = {"train": asdict(TrainConfig()), "model": asdict(ModelConfig(vocab_size=1))}

    def counted(table: str, values: dict) -> dict:
        # a field added after bundles existed counts only when it differs from its default: the
        # bundles made before it keep their fingerprint
        later = ADDED_LATER[table]
        return {k: v for k, v in values.items() if not (k in later and v == defaults[table][k])}

    train_values = counted("train", {k: v for k, v in asdict(config.train).items() if k not in ignored})
    described = json.dumps(
        {"model": counted("model", config.model), "train": train_values, "data": data}, sort_keys=True
    )
    return hashlib.sha256(described.encode()).hexdigest()


def current_bundle(config: RunConfig) -> Path | None:
    """The output's bundle if it was made from this very configuration and data, else None."""
    bundle = Path(config.train.output) / "bundle"
    try:
        card = json.loads((bundle / CARD_FILE).read_text())
    except (OSError, ValueError):
        return None
    same = card.get("fingerprint") == fingerprint(config) and (bundle / ONNX_FILE).is_file()
    return bundle if same else None


def run(config: RunConfig, resume: bool = False, command: str = "") -> Path | None:
    """The whole pipeline; returns the bundle folder (None on the ranks other than 0 under torchrun)."""
    from training.bundle import write_bundle

    world = init_world()
    try:
        output = Path(config.train.output)
        output.mkdir(parents=True, exist_ok=True)
        set_seed(config.train.seed)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        tokenizer, splits, source = prepare_data(config)
        model, embedding_note = build_model(config, tokenizer, splits, world)
        pseudo_note = add_pseudo_labels(config, tokenizer, splits)
        pretraining = pretraining_summary(config.train.init_from)
        if world.size > 1:
            set_seed(config.train.seed + world.rank)  # different dropout masks on each rank
        history, seconds = fit(model, splits, config, output, resume, world)
        if not world.is_main:
            return None
        return write_bundle(
            output / "bundle",
            model,
            tokenizer,
            splits,
            config,
            history,
            {
                "train_seconds": round(seconds, 1),
                "command": command,
                "embeddings": embedding_note,
                "data_path": source,
                "train_size": len(splits.train[1]),
                "parity_sample": parity_sample(splits.validation[0]),
                "self_training": pseudo_note,
                "pretraining": pretraining,
                "fingerprint": fingerprint(config),
                "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads"
                + (f", {world.size} processes (torchrun)" if world.size > 1 else ""),
            },
        )
    finally:
        close_world(world)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Train, export and bundle the IMDB sentiment LSTM.")
    add_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    parser.add_argument(
        "--skip-if-current",
        action="store_true",
        help="exit at once if OUTPUT/bundle was made from this configuration and data",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="download the official archive to --data's path if no file is there",
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if "." in k}
    try:
        config = load_run_config(args.config, overrides)
        if args.download:
            fetch_if_missing(config.train.data)
        if args.skip_if_current and (bundle := current_bundle(config)):
            print(f"{bundle} was made from this configuration and data: nothing to do")
            return
        bundle = run(
            config,
            resume=args.resume,
            command=shlex.join(["python", "-m", "training.train", *(sys.argv[1:] if argv is None else argv)]),
        )
    except (DatasetError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    if bundle is not None:
        print(f"bundle written to {bundle}")


if __name__ == "__main__":
    main()
