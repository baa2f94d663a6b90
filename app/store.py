"""The model store: reads a bundle, checks it, and holds the model being served.

:meth:`ModelStore.load` reads ``settings.model_dir`` once at start-up; :meth:`ModelStore.reload`
reads it again and swaps the new model in only once it has loaded and answered a warm-up.
Every problem with a bundle is one :class:`BundleError` line naming the file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import onnxruntime

from app.errors import BundleError, NotReady
from app.runtime import LoadedModel
from app.settings import Settings
from model.bundle import (
    CARD_FILE,
    LABELS,
    ONNX_FILE,
    TOKENIZER_FILE,
    load_card,
    onnx_session,
    public_card,
    read_onnx,
)
from model.config import ModelConfig
from model.reference import REFERENCE_FILE, load_reference
from model.tokenizer import Tokenizer

logger = logging.getLogger("app.store")
T = TypeVar("T")


class ModelStore:
    """Loads the bundle and holds the current model; thread-safe for concurrent readers.

    :meth:`reload` reads the bundle folder again and swaps the model in one assignment once the
    new one has loaded and answered a warm-up; a request keeps the model it started with (its
    token ids only mean something to that model's vocabulary), so a swap loses nothing.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._model: LoadedModel | None = None
        self._ready = threading.Event()
        self._reload_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Loaded and warmed up."""
        return self._ready.is_set()

    @property
    def model(self) -> LoadedModel:
        """The current model; :class:`NotReady` before :meth:`load`."""
        if self._model is None:
            raise NotReady("the model is not loaded yet")
        return self._model

    def unload(self) -> None:
        """Mark the store not ready (at shutdown)."""
        self._ready.clear()

    def _load_checked(self) -> LoadedModel:
        """Read, check and warm up the bundle at ``settings.model_dir``; raises BundleError."""
        model = _read_bundle(self.settings)
        try:
            model.infer([model.encode("A warm-up review. It was fine!").ids])
            if model.config.recurrent:  # a Transformer has no gates to trace
                model.trace("Warm-up.", max_tokens=4)
        except Exception as error:
            raise BundleError(f"{self.settings.model_dir}: warm-up inference failed ({error})") from error
        return model

    def load(self) -> None:
        """Read and check the bundle, then warm up with one inference; raises BundleError."""
        started = time.perf_counter()
        self._model = self._load_checked()
        self._ready.set()
        logger.info(
            "model %s %s loaded from %s in %.2f s",
            self._model.name,
            self._model.version,
            self.settings.model_dir,
            time.perf_counter() - started,
        )

    def reload(self) -> LoadedModel:
        """Load the bundle folder again and serve it; on any problem keep the current model.

        Raises BundleError (after logging it) when the new bundle is rejected.
        """
        with self._reload_lock:
            old = self.model
            try:
                new = self._load_checked()
            except BundleError as error:
                logger.error("reload rejected, still serving %s %s: %s", old.name, old.version, error)
                raise
            self._model = new
        logger.info("model reloaded: %s %s -> %s %s", old.name, old.version, new.name, new.version)
        return new


def _read_bundle(settings: Settings) -> LoadedModel:
    """Load and cross-check a bundle; every problem is one :class:`BundleError` line that names
    the file and says what is wrong with it."""
    folder = settings.model_dir
    for name in (ONNX_FILE, TOKENIZER_FILE, CARD_FILE):
        if not (folder / name).is_file():
            raise BundleError(f"{folder / name}: missing (is {folder} a model bundle?)")
        if (folder / name).stat().st_size == 0:
            raise BundleError(f"{folder / name}: empty file (0 bytes; a copy or an export cut short?)")
    card = _read_file(folder / CARD_FILE, lambda path: load_card(path.parent))
    tokenizer = _read_file(folder / TOKENIZER_FILE, Tokenizer.load)
    proto, config, weights = _read_file(folder / ONNX_FILE, read_onnx)
    _check_consistency(folder, tokenizer, card, config, weights)
    try:
        serialized = proto.SerializeToString()
        session = onnx_session(serialized, settings.threads, settings.memory_arena, settings.spin_wait)
        trace_session = onnx_session(serialized, settings.trace_threads, settings.memory_arena, False)
    except Exception as error:
        raise BundleError(f"{folder / ONNX_FILE}: onnxruntime cannot load it ({error})") from error
    _check_graph(folder, session, config)
    return LoadedModel(
        session,
        trace_session,
        tokenizer,
        card,
        public_card(card),
        config,
        weights,
        settings.model_name or card.get("name", "imdb-lstm"),
        str(card.get("version", "1")),
        settings.max_tokens or card["max_tokens"],
        _read_file(folder / REFERENCE_FILE, lambda path: load_reference(path.parent)),
    )


def _read_file(path: Path, read: Callable[[Path], T]) -> T:
    """``read(path)``, any failure a :class:`BundleError` that starts with ``path``.

    The readers name the file in their own errors; the rest (an unreadable file, a vocabulary
    the tokenizer refuses, an error deep in a library) get the path put in front here.
    """
    try:
        return read(path)
    except UnicodeDecodeError as error:
        raise BundleError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from error
    except OSError as error:
        raise BundleError(f"{path}: cannot read it ({error.strerror or error})") from error
    except Exception as error:
        message = str(error)
        if not message.startswith(str(path)):
            message = f"{path}: {message or type(error).__name__}"
        raise BundleError(message) from error


def _check_consistency(
    folder: Path, tokenizer: Tokenizer, card: dict, config: ModelConfig, weights: dict
) -> None:
    """The vocabulary, the card and the graph's weights must describe one model."""
    embedding = weights.get("embedding")
    expected = (config.vocab_size, config.embed_dim)
    if embedding is None or embedding.shape != expected:
        found = "no 'embedding' weight" if embedding is None else f"an embedding of shape {embedding.shape}"
        raise BundleError(f"{folder / ONNX_FILE}: {found}; its model config says {expected}")
    if len(tokenizer.vocabulary) != config.vocab_size:
        raise BundleError(
            f"{folder / TOKENIZER_FILE}: the tokenizer has {len(tokenizer.vocabulary)} words, "
            f"the ONNX model {config.vocab_size} (files from different models?)"
        )
    if config.num_classes != len(LABELS):
        raise BundleError(f"{folder / ONNX_FILE}: {config.num_classes} classes; this service serves {LABELS}")
    kinds = {"peephole": "WRBP", "transformer": ""}.get(config.cell, "WRB")  # the weights traces read
    missing = [
        f"{k}_{layer}" for layer in range(config.num_layers) for k in kinds if f"{k}_{layer}" not in weights
    ]
    if missing:
        raise BundleError(f"{folder / ONNX_FILE}: recurrent weights {missing} missing")
    if card.get("model_config") is None:
        return
    try:  # compared as configs: a card written before a field existed lacks it, meaning its default
        described = ModelConfig.from_dict(card["model_config"])
    except (ValueError, TypeError) as error:
        raise BundleError(f"{folder / CARD_FILE}: model_config is not a model config ({error})") from error
    if described != config:
        differing = sorted(k for k, v in described.to_dict().items() if getattr(config, k) != v)
        raise BundleError(
            f"{folder / CARD_FILE}: model_config differs from the one inside model.onnx in {differing}"
        )


def _check_graph(folder: Path, session: onnxruntime.InferenceSession, config: ModelConfig) -> None:
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    traced = range(config.num_layers if config.recurrent else 0)  # a Transformer has no states to trace
    wanted = {"probabilities"} | {f"hidden_{layer}" for layer in traced}
    if inputs != {"token_ids", "lengths"} or not wanted <= outputs:
        raise BundleError(
            f"{folder / ONNX_FILE}: graph inputs {sorted(inputs)} / outputs {sorted(outputs)} "
            f"are not this service's (token_ids, lengths -> {sorted(wanted)})"
        )
