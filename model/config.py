"""Model hyperparameters: one frozen dataclass, stored in checkpoints and model cards."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_type_hints

Cell = Literal["lstm", "peephole", "gru", "rnn", "transformer"]
Pooling = Literal["last", "max", "mean", "concat"]

CELLS: tuple[str, ...] = ("lstm", "peephole", "gru", "rnn", "transformer")
RECURRENT_CELLS: tuple[str, ...] = ("lstm", "peephole", "gru", "rnn")  # the cells with gates to trace
POOLINGS: tuple[str, ...] = ("last", "max", "mean", "concat")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network (and its ONNX graph) from its weights.

    For ``cell = "transformer"`` (:mod:`model.transformer`) the layers are self-attention
    encoder layers of width ``embed_dim`` with ``num_heads`` heads, ``hidden_size`` is the width
    of their feed-forward block, and ``bidirectional`` must be false: attention already reads
    both ways.
    """

    vocab_size: int
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    cell: Cell = "lstm"
    pooling: Pooling = "concat"
    num_classes: int = 2
    pad_id: int = 0
    embed_dropout: float = 0.3
    dropout: float = 0.3
    word_dropout: float = 0.0
    locked_dropout: bool = False
    num_heads: int = 4

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in (
            "vocab_size",
            "embed_dim",
            "hidden_size",
            "num_layers",
            "num_classes",
            "num_heads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("embed_dropout", "dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.cell == "transformer":
            self._check_transformer()

    def _check_transformer(self) -> None:
        if self.bidirectional:
            raise ValueError("a transformer attends both ways already: set bidirectional = false")
        if self.embed_dim % (2 * self.num_heads):
            # heads split embed_dim evenly; the sinusoidal positions pair its dimensions (sin, cos)
            raise ValueError(
                f"a transformer needs embed_dim divisible by 2 * num_heads, got {self.embed_dim} "
                f"and {self.num_heads} heads"
            )

    @property
    def recurrent(self) -> bool:
        """Whether the encoder is recurrent (has gates a trace can show), not a transformer."""
        return self.cell in RECURRENT_CELLS

    @property
    def num_directions(self) -> int:
        """2 for a bidirectional encoder, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def direction_dim(self) -> int:
        """Width of one direction's output at one time step (a transformer's is ``embed_dim``)."""
        return self.hidden_size if self.recurrent else self.embed_dim

    @property
    def encoder_dim(self) -> int:
        """Width of one time step of the encoder's output (all directions)."""
        return self.direction_dim * self.num_directions

    @property
    def pooled_dim(self) -> int:
        """Width of the pooled review representation fed to the classifier head."""
        return self.encoder_dim * (3 if self.pooling == "concat" else 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in checkpoints and model cards."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys and values of the wrong JSON type
        (read from a file, e.g. ``"hidden_size": "128"``) are an error, not ignored."""
        if not isinstance(data, dict):
            raise TypeError(f"a model config is a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        hints = get_type_hints(cls)
        for key, value in data.items():
            wanted = hints[key] if hints[key] in (int, float, bool) else str  # the Literals are str
            # bool is an int subclass, and a float field takes a JSON integer such as 0
            allowed = (int, float) if wanted is float else (wanted,)
            if type(value) not in allowed:
                raise TypeError(f"{key} must be {wanted.__name__}, got {value!r}")
        return cls(**data)
