"""The model bundle's layout, card and ONNX graph, readable without torch (evaluation, service)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from model.config import ModelConfig
from model.tokenizer import Tokenizer, Vocabulary

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"
LABELS = ("negative", "positive")
CONFIG_PROPERTY = "model_config"  # the ONNX metadata key holding the ModelConfig as JSON

# The JSON type of each card field that readers of a card rely on, when the field is there
CARD_FIELD_TYPES: dict[str, tuple[type, str]] = {
    "name": (str, "a string"),
    "version": (str, "a string"),
    "architecture": (str, "a string"),
    "model_config": (dict, "an object"),
    "train_config": (dict, "an object"),
    "metrics": (dict, "an object"),
}
# Card fields whose values are paths on the training machine (TrainConfig's file options, the
# command line, a language model's checkpoint): left out of the card the service shows
LOCAL_PATH_FIELDS: tuple[tuple[str, ...], ...] = (
    ("train_config", "data"),
    ("train_config", "output"),
    ("train_config", "init_from"),
    ("train_config", "pseudo_labels"),
    ("training", "command"),
    ("training", "pretraining", "checkpoint"),
)
# A path inside any string: rooted (/x, ./x, ../x, ~/x, C:\x) or folder/file (runs/round3/best.pt).
# Free-text fields (e.g. training.embeddings, "from runs/round3/best.pt") can hold one.
_LOOKS_LIKE_PATH = re.compile(r"""(?:^|[\s=,;('"])[~.]{0,2}[/\\]\S|[\w.-][/\\][\w.-]|^[A-Za-z]:[/\\]""")


def load_card(bundle: str | Path) -> dict:
    """Read ``model_card.json``; a missing or malformed card is a ValueError naming the file."""
    path = Path(bundle) / CARD_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no model card (is {bundle} a model bundle?)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(card, dict):
        raise ValueError(f"{path}: not a model card (a JSON object expected, not {type(card).__name__})")
    max_tokens = card.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:  # bool is an int subclass: refuse it too
        raise ValueError(f"{path}: not a model card ('max_tokens' must be a positive integer)")
    for field, (kind, described) in CARD_FIELD_TYPES.items():
        if field in card and not isinstance(card[field], kind):
            raise ValueError(f"{path}: '{field}' must be {described}, not {json.dumps(card[field])[:40]}")
    return card


def looks_like_path(text: str) -> bool:
    """Whether ``text`` holds something that reads as a filesystem path."""
    return _LOOKS_LIKE_PATH.search(text) is not None


def public_card(card: dict) -> dict:
    """The card without local paths: :data:`LOCAL_PATH_FIELDS` and any string that looks like a
    path are left out (model_card.json on disk keeps them, as a record of how the model was made)."""
    public = _without_paths(card)
    for *parents, field in LOCAL_PATH_FIELDS:
        holder: Any = public
        for parent in parents:
            holder = holder.get(parent) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            holder.pop(field, None)
    return public


def _without_paths(value: Any) -> Any:
    """A deep copy of a JSON value with every path-like string left out."""
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items() if not _is_path(v)}
    if isinstance(value, list):
        return [_without_paths(v) for v in value if not _is_path(v)]
    return value


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and looks_like_path(value)


def require_vocabulary(bundle: str | Path, vocabulary: Vocabulary, remedy: str) -> None:
    """Raise ``ValueError`` unless the bundle's tokenizer has ``vocabulary``: a network's token ids
    mean nothing under another one. ``remedy`` ends the message."""
    if Tokenizer.load(Path(bundle) / TOKENIZER_FILE).vocabulary != vocabulary:
        raise ValueError(f"{bundle}: its vocabulary differs from this run's; {remedy}")


def read_onnx(path: str | Path) -> tuple[onnx.ModelProto, ModelConfig, dict[str, np.ndarray]]:
    """The graph, the :class:`ModelConfig` stored in its metadata, and its initializers by name.

    A file that is not such a graph is a ValueError naming it and saying what is wrong.
    """
    try:
        proto = onnx.load(str(path))
    except DecodeError as error:
        raise ValueError(f"{path}: not an ONNX model, or cut short (protobuf: {error})") from error
    if not proto.graph.node:  # an empty file parses as an empty model
        raise ValueError(f"{path}: holds no ONNX graph (an empty or truncated file?)")
    properties = {p.key: p.value for p in proto.metadata_props}
    if CONFIG_PROPERTY not in properties:
        raise ValueError(
            f"{path}: the ONNX graph has no '{CONFIG_PROPERTY}' metadata, so it is not a graph "
            "exported by training.export"
        )
    try:
        config = ModelConfig.from_dict(json.loads(properties[CONFIG_PROPERTY]))
    except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(
            f"{path}: its '{CONFIG_PROPERTY}' metadata is not a model config ({error})"
        ) from error
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    return proto, config, weights


# onnxruntime's graph optimisation levels by name; sessions default to "all" (bench.quantized
# measures the others)
GRAPH_OPTIMIZATION = {
    "off": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def onnx_session(
    model: str | Path | bytes,
    threads: int = 1,
    memory_arena: bool = True,
    spin_wait: bool = True,
    graph_optimization: str = "all",
) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session for a ``model.onnx`` path or its serialized bytes.

    Without the memory arena, buffers go back to the allocator after each call instead of
    staying reserved at the largest batch ever seen (lower peak RSS; see docs/design.md).
    Without spin-waiting, idle intra-op threads sleep at once instead of busy-waiting for the
    next call, leaving the cores to other work (onnxruntime's ``allow_spinning``).
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = memory_arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    options.graph_optimization_level = GRAPH_OPTIMIZATION[graph_optimization]
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
