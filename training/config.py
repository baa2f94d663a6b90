"""Training configuration: a TOML file with ``[model]`` and ``[train]`` tables, plus CLI flags.

Every field carries its help text, so the command-line flags are generated from these
dataclasses and stay in step with them.
"""

from __future__ import annotations

import argparse
import operator
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from model.config import CELLS, POOLINGS, ModelConfig


def _opt(default: Any, help: str, **bounds: float) -> Any:
    """A field with its help text and optional bounds ``ge``, ``gt``, ``le``, ``lt`` (checked on creation)."""
    return field(default=default, metadata={"help": help, "bounds": bounds})


_BOUNDS = {
    "ge": (">=", operator.ge),
    "gt": (">", operator.gt),
    "le": ("<=", operator.le),
    "lt": ("<", operator.lt),
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data, split, vocabulary, optimisation and output."""

    data: str | None = _opt(None, "IMDB archive (.tar.gz) or extracted folder; default $IMDB_DATA")
    output: str = _opt("runs/default", "folder for checkpoints, metrics and the model bundle")
    seed: int = _opt(1234, "seed for the split, initialisation, dropout and batch order")
    validation_fraction: float = _opt(0.1, "fraction of the 25k training reviews held out", gt=0, lt=1)
    vocab_size: int = _opt(20000, "vocabulary size including <pad> and <unk>", ge=3)
    min_count: int = _opt(2, "minimum count in the training split for a word to get an id", ge=1)
    max_tokens: int = _opt(1000, "tokens kept per review (the first ones); also the service's cap", ge=1)
    batch_size: int = _opt(64, "reviews per batch", ge=1)
    epochs: int = _opt(6, "maximum number of epochs", ge=1)
    minutes: float = _opt(
        0.0,
        "training-time budget (0: none): the learning-rate schedule then runs over the time, not "
        "the steps, and training stops when it is spent, mid-epoch if need be; validation does not "
        "count, --epochs stays a cap, --patience does not apply",
        ge=0,
    )
    learning_rate: float = _opt(2e-3, "peak AdamW learning rate", gt=0)
    weight_decay: float = _opt(0.01, "AdamW weight decay (not applied to biases or embeddings)", ge=0)
    warmup_fraction: float = _opt(0.1, "fraction of steps of linear warm-up before cosine decay", ge=0, le=1)
    clip_norm: float = _opt(1.0, "gradient-norm clipping threshold", gt=0)
    embedding_lr_scale: float = _opt(
        1.0, "embedding learning rate / learning rate (0: frozen embeddings)", ge=0
    )
    freeze_epochs: int = _opt(
        0, "first epochs that train only the classifier head, the pretrained layers frozen (ULMFiT)", ge=0
    )
    patience: int = _opt(2, "epochs without a better validation accuracy before stopping", ge=1)
    embeddings: str = _opt("word2vec", "embedding init: 'random', 'word2vec' or a GloVe text file path")
    word2vec_epochs: int = _opt(5, "word2vec epochs over the training split plus unlabelled reviews", ge=1)
    init_from: str = _opt(
        "",
        "checkpoint (.pt) to start from: a classifier's (same model config) or a language model's "
        "from training.pretrain (its embedding and encoder); or a model bundle folder (same "
        "vocabulary and model config), such as models/default, whose ONNX graph holds the weights",
    )
    pseudo_labels: str = _opt(
        "",
        "teacher bundle(s) that label the unlabelled reviews, comma-separated (several are averaged); "
        "'ngram' among them is an n-gram model fitted on the training split (training.ngram); '' = none",
    )
    pseudo_threshold: float = _opt(
        0.95, "P(label) a pseudo-labelled review needs to join training", ge=0.5, le=1
    )
    pseudo_soft: bool = _opt(
        False, "train on the teachers' P(positive) as a soft target (distillation) instead of a hard label"
    )
    adversarial_epsilon: float = _opt(
        0.0,
        "adversarial training: L2 norm of each review's worst-case word-vector perturbation "
        "(Miyato et al., 2017; training.adversarial), in the word vectors' units; 0: off. "
        "Clipping then applies to the clean and adversarial gradients summed",
        ge=0,
    )
    vat_epsilon: float = _opt(
        0.0,
        "virtual adversarial training: L2 norm of each review's word-vector step that changes the "
        "network's own prediction most (one power iteration); its KL divergence from the clean "
        "prediction is added to the loss, and clipping applies to all gradients summed; 0: off",
        ge=0,
    )
    vat_xi: float = _opt(
        0.1, "virtual adversarial training: norm of the random probe step of the power iteration", gt=0
    )
    limit_reviews: int = _opt(
        0, "use only this many reviews per part and label (0: all); for smoke runs", ge=0
    )
    threads: int = _opt(0, "torch threads (0: torch's default)", ge=0)
    device: str = _opt("cpu", "torch device to train on: 'cpu' or 'cuda' (a GPU); export runs on the CPU")
    name: str = _opt("imdb-lstm", "model name written into the model card")

    def __post_init__(self) -> None:
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"[train] device must be 'cpu' or 'cuda', got {self.device!r}")
        for spec in fields(self):
            value = getattr(self, spec.name)
            for key, bound in spec.metadata.get("bounds", {}).items():
                symbol, holds = _BOUNDS[key]
                if not holds(value, bound):
                    raise ValueError(f"[train] {spec.name} must be {symbol} {bound:g}, got {value!r}")

    @property
    def moves_word_vectors(self) -> bool:
        """Adversarial or virtual adversarial training is on: each batch takes extra passes."""
        return self.adversarial_epsilon > 0 or self.vat_epsilon > 0


# Fields added after bundles were made: a fingerprint counts them only when they differ from their
# default (training.train.fingerprint), so the bundles made before them stay current, and spelling
# such a default out (``--word-dropout 0``) changes nothing.
ADDED_LATER = {
    "train": ("pseudo_soft", "adversarial_epsilon", "vat_epsilon", "vat_xi", "minutes"),
    "model": ("word_dropout", "locked_dropout", "num_heads"),
}


@dataclass(frozen=True)
class RunConfig:
    """A model configuration (without its vocabulary size) and a training configuration."""

    model: dict[str, Any]
    train: TrainConfig

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The network's hyperparameters once the vocabulary is known."""
        return ModelConfig(vocab_size=vocab_size, **self.model)


_MODEL_HELP = {
    "embed_dim": "embedding width",
    "hidden_size": "hidden units per direction and layer (a transformer's feed-forward width)",
    "num_layers": "stacked recurrent (or transformer) layers",
    "bidirectional": "read the review in both directions",
    "cell": f"encoder cell: {', '.join(CELLS)}",
    "pooling": f"pooling over time: {', '.join(POOLINGS)}",
    "embed_dropout": "dropout on the embeddings",
    "dropout": "dropout between layers and before the classifier",
    "word_dropout": "drop whole words: each vocabulary row zeroed with this probability per batch (AWD-LSTM)",
    "locked_dropout": "one dropout mask per review for all its time steps (variational dropout), "
    "wherever dropout acts on a sequence: the embeddings, between layers, a language model's outputs",
    "num_heads": "attention heads of a transformer (cell = transformer)",
}


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _flag_type(annotation: Any) -> Any:
    base = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    return {bool: _parse_bool, int: int, float: float}.get(base, str)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per model and training field (all default to 'not given')."""
    parser.add_argument("--config", type=Path, help="TOML file with [model] and [train] tables")
    hints = typing.get_type_hints(ModelConfig)
    for name, help_text in _MODEL_HELP.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"model.{name}",
            metavar=name.upper(),
            type=_flag_type(hints[name]),
            help=help_text,
        )
    train_hints = typing.get_type_hints(TrainConfig)
    for spec in fields(TrainConfig):
        parser.add_argument(
            f"--{spec.name.replace('_', '-')}",
            dest=f"train.{spec.name}",
            metavar=spec.name.upper(),
            type=_flag_type(train_hints[spec.name]),
            help=spec.metadata["help"],
        )


def load_run_config(path: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Defaults, then the TOML file, then CLI overrides (``{"train.epochs": 3, ...}``)."""
    data: dict[str, Any] = tomllib.loads(path.read_text()) if path else {}
    unknown_tables = set(data) - {"model", "train"}
    if unknown_tables:
        raise ValueError(f"{path}: unknown tables {sorted(unknown_tables)}")
    model = dict(data.get("model", {}))
    train_values = dict(data.get("train", {}))
    for key, value in overrides.items():
        if value is not None:
            table, name = key.split(".", 1)
            (model if table == "model" else train_values)[name] = value
    unknown = (set(model) - set(_MODEL_HELP)) | (set(train_values) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
    _check_types(model, typing.get_type_hints(ModelConfig), "model")
    _check_types(train_values, typing.get_type_hints(TrainConfig), "train")
    ModelConfig(vocab_size=1, **model)  # fail now, not after an hour of training
    return RunConfig(model=model, train=replace(TrainConfig(), **train_values))


def _check_types(values: dict[str, Any], hints: dict[str, Any], table: str) -> None:
    """TOML and flags give typed values; refuse a string where a number or bool belongs."""
    for name, value in values.items():
        hint = hints[name]
        if typing.get_origin(hint) is typing.Literal:
            allowed: tuple[type, ...] = (str,)  # the value itself is checked by ModelConfig
        else:
            allowed = tuple(a for a in typing.get_args(hint) if a is not type(None)) or (hint,)
        if float in allowed:
            allowed = (*allowed, int)  # 1 is a fine learning-rate multiplier; bool is not
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            names = "/".join(a.__name__ for a in allowed)
            raise ValueError(f"[{table}] {name} must be {names}, got {value!r}")
