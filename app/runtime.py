"""The model runtime: loads a bundle, checks it, and runs inference and gate traces.

It holds the onnxruntime session, the tokenizer and the recurrent layers' weights read from
the same ``model.onnx``; no torch. The service calls :meth:`ModelRuntime.encode` and
:meth:`ModelRuntime.infer` (through the batcher) and :meth:`ModelRuntime.trace`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime

from app.errors import BundleError, EmptyText, InvalidRequest, NotReady
from app.gates import GATE_NAMES, direction_gates
from app.settings import Settings
from app.workpool import Deadline
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
from model.inputs import length_groups, pad_batch
from model.tokenizer import Encoded, Tokenizer

logger = logging.getLogger("app.runtime")
T = TypeVar("T")


@dataclass(frozen=True)
class PredictionResult:
    """One text's prediction."""

    label: str
    score: float
    probabilities: dict[str, float]
    tokens: int
    truncated: bool

    def as_dict(self) -> dict:
        """The fields as a dict (a response's body). ``dataclasses.asdict`` gives the same but
        deep-copies each value on the way, which costs a request tens of microseconds."""
        return {
            "label": self.label,
            "score": self.score,
            "probabilities": dict(self.probabilities),
            "tokens": self.tokens,
            "truncated": self.truncated,
        }


def make_prediction(probabilities: np.ndarray, encoded: Encoded) -> PredictionResult:
    """A :class:`PredictionResult` from one row of the graph's ``probabilities`` output."""
    values = {label: float(p) for label, p in zip(LABELS, probabilities, strict=True)}
    label = LABELS[int(np.argmax(probabilities))]
    return PredictionResult(label, values["positive"], values, len(encoded.ids), encoded.truncated)


def require_words(encoded: list[Encoded]) -> None:
    """:class:`EmptyText` naming the first text with nothing to read; every route applies it."""
    empty = [index for index, item in enumerate(encoded) if item.empty]
    if empty:
        where = f"text {empty[0]} has" if len(encoded) > 1 else "the text has"
        raise EmptyText(f"{where} no words to read (empty, blank or control characters only)")


@dataclass(frozen=True)
class TraceView:
    """The part of a trace to return, and its precision; all of it, unrounded, by default.

    A full trace of 400 tokens through the shipped model is about 12 MB of JSON; one gate of
    one direction, rounded to 4 decimals, is under 1 MB.
    """

    layers: tuple[int, ...] | None = None
    gates: tuple[str, ...] | None = None
    units: tuple[int, ...] | None = None
    decimals: int | None = None

    def check(self, config: ModelConfig) -> None:
        """:class:`InvalidRequest` naming what the model does not have."""
        names = GATE_NAMES[config.cell]
        if self.layers and max(self.layers) >= config.num_layers:
            raise InvalidRequest(f"layers: the model has {config.num_layers} (0 to {config.num_layers - 1})")
        if self.gates and not set(self.gates) <= set(names):
            raise InvalidRequest(f"gates: a {config.cell} cell has {', '.join(names)}")
        if self.units and max(self.units) >= config.hidden_size:
            raise InvalidRequest(
                f"units: each layer has {config.hidden_size} (0 to {config.hidden_size - 1})"
            )

    def wants_layer(self, layer: int) -> bool:
        """Whether ``layer``'s gates are returned."""
        return self.layers is None or layer in self.layers

    def select(self, gates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The chosen gates' chosen units, rounded when asked."""
        chosen = {name: values for name, values in gates.items() if self.gates is None or name in self.gates}
        if self.units is not None:
            chosen = {name: values[:, list(self.units)] for name, values in chosen.items()}
        if self.decimals is not None:
            chosen = {name: np.round(values, self.decimals) for name, values in chosen.items()}
        # contiguous, as the JSON encoder reads arrays directly (the reverse direction's are views)
        return {name: np.ascontiguousarray(values) for name, values in chosen.items()}


@dataclass(frozen=True)
class LoadedModel:
    """Everything read from one bundle."""

    session: onnxruntime.InferenceSession
    # traces and saliency run on a session of their own, with few threads: an expensive trace
    # cannot take the cores or the intra-op pool that predictions use
    trace_session: onnxruntime.InferenceSession
    tokenizer: Tokenizer
    card: dict
    public_card: dict  # the card without local paths, as /v1/model shows it
    config: ModelConfig
    weights: dict[str, np.ndarray]
    name: str
    version: str
    max_tokens: int

    @property
    def ref(self) -> dict[str, str]:
        """Name and version, as responses report which model answered."""
        return {"name": self.name, "version": self.version}

    def encode(self, text: str) -> Encoded:
        """Tokens and ids of ``text`` under this model's token cap."""
        return self.tokenizer.encode_text(text, self.max_tokens)

    def encode_capped(self, text: str, max_tokens: int) -> Encoded:
        """Tokens and ids of ``text`` under ``max_tokens`` or this model's cap, the lower."""
        return self.tokenizer.encode_text(text, min(max_tokens, self.max_tokens))

    def infer(self, sequences: list[list[int]]) -> np.ndarray:
        """``probabilities`` ``[len(sequences), 2]`` from one onnxruntime call."""
        ids, lengths = pad_batch(sequences)
        return self.session.run(["probabilities"], {"token_ids": ids, "lengths": lengths})[0]

    def infer_chunked(self, sequences: list[list[int]], max_tokens: int, deadline: Deadline) -> np.ndarray:
        """P(positive) of each of ``sequences`` on the trace session, in calls of at most
        ``max_tokens`` padded tokens; ``deadline`` is checked between calls."""
        positive = np.empty(len(sequences), dtype=np.float32)
        lengths = [len(sequence) for sequence in sequences]
        for group in length_groups(lengths, len(sequences), waste=float("inf"), max_tokens=max_tokens):
            deadline.check()
            ids, group_lengths = pad_batch([sequences[i] for i in group])
            probabilities = self.trace_session.run(
                ["probabilities"], {"token_ids": ids, "lengths": group_lengths}
            )[0]
            positive[group] = probabilities[:, 1]
        return positive


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
    kinds = "WRBP" if config.cell == "peephole" else "WRB"
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
    wanted = {"probabilities"} | {f"hidden_{layer}" for layer in range(config.num_layers)}
    if inputs != {"token_ids", "lengths"} or not wanted <= outputs:
        raise BundleError(
            f"{folder / ONNX_FILE}: graph inputs {sorted(inputs)} / outputs {sorted(outputs)} "
            f"are not this service's (token_ids, lengths -> {sorted(wanted)})"
        )


class ModelRuntime:
    """Loads a bundle and answers predictions and traces; thread-safe for concurrent calls.

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
        """Mark the runtime not ready (at shutdown)."""
        self._ready.clear()

    def _load_checked(self) -> LoadedModel:
        """Read, check and warm up the bundle at ``settings.model_dir``; raises BundleError."""
        model = _read_bundle(self.settings)
        try:
            model.infer([model.encode("A warm-up review. It was fine!").ids])
            self.trace("Warm-up.", max_tokens=4, model=model)
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

    def predict(self, texts: list[str]) -> list[PredictionResult]:
        """Predictions for ``texts`` in one call (the batcher uses :meth:`LoadedModel.infer` directly)."""
        model = self.model
        encoded = [model.encode(text) for text in texts]
        probabilities = model.infer([e.ids for e in encoded])
        return [make_prediction(row, e) for row, e in zip(probabilities, encoded, strict=True)]

    def trace(
        self,
        text: str,
        max_tokens: int,
        model: LoadedModel | None = None,
        deadline: Deadline | None = None,
        view: TraceView | None = None,
    ) -> dict:
        """Prediction plus the gates of every layer and direction (or those ``view`` selects),
        per token, for ``text``, as ``[tokens, units]`` arrays; ``deadline`` is checked between
        directions."""
        model = model or self.model
        deadline = deadline or Deadline(float("inf"))
        view = view or TraceView()
        encoded = model.encode_capped(text, max_tokens)
        require_words([encoded])
        config = model.config
        layer_names = [f"hidden_{layer}" for layer in range(config.num_layers)]
        ids, lengths = pad_batch([encoded.ids])
        probabilities, *hidden = model.trace_session.run(
            ["probabilities", *layer_names], {"token_ids": ids, "lengths": lengths}
        )
        x = model.weights["embedding"][ids[0]].astype(np.float64)  # [T, E]
        layers = []
        for layer, served in enumerate(hidden):
            served = served[:, :, 0, :]  # [T, D, H]
            # a layer left out keeps its place, empty, so the list still indexes layers
            wanted = view.wants_layer(layer)
            layers.append(self._layer_gates(model, layer, x, served, deadline, view) if wanted else {})
            x = served.reshape(len(served), -1).astype(np.float64)  # the next layer reads these
        return {
            "prediction": make_prediction(probabilities[0], encoded),
            "tokens": encoded.tokens,
            "token_ids": encoded.ids,
            "cell": config.cell,
            "layers": layers,
            "model": model.ref,
        }

    @staticmethod
    def _layer_gates(
        model: LoadedModel, layer: int, x: np.ndarray, served: np.ndarray, deadline: Deadline, view: TraceView
    ) -> dict:
        """``{direction: {"gates": {name: [T, units]}}}`` of one layer, from its input ``x``."""
        config = model.config
        w, r, b = (model.weights[f"{kind}_{layer}"].astype(np.float64) for kind in "WRB")
        p = model.weights[f"P_{layer}"].astype(np.float64) if config.cell == "peephole" else None
        directions = {}
        for d, name in enumerate(("forward", "backward")[: config.num_directions]):
            deadline.check()
            gates = direction_gates(config.cell, x, w[d], r[d], b[d], None if p is None else p[d], d == 1)
            gates["hidden"] = served[:, d, :]  # the states the classifier actually used
            directions[name] = {"gates": view.select(gates)}
        return directions

    def saliency(self, text: str, max_tokens: int, deadline: Deadline | None = None) -> dict:
        """How the prediction builds up and which tokens move it, through the served model.

        ``running[t]``: P(positive) of the model reading only tokens ``0..t`` (for a bidirectional
        model the backward direction then also starts at token t). ``occlusion[t]``: P(positive)
        of the whole text minus P(positive) with token t replaced by ``<unk>`` — positive when
        the token pushes towards "positive" (Zeiler & Fergus, 2014).

        That is 2·T sequences of up to T tokens: they run in calls of at most
        ``max_batch_tokens`` padded tokens, as predictions do, so memory stays bounded, and
        ``deadline`` is checked between calls, so a request that timed out stops its work.
        """
        model = self.model
        deadline = deadline or Deadline(float("inf"))
        encoded = model.encode_capped(text, max_tokens)
        require_words([encoded])
        ids = encoded.ids
        unk = model.tokenizer.vocabulary.unk_id
        prefixes = [ids[: t + 1] for t in range(len(ids))]  # the last one is the whole text
        occluded = [[*ids[:t], unk, *ids[t + 1 :]] for t in range(len(ids))]
        positive = model.infer_chunked(prefixes + occluded, self.settings.max_batch_tokens, deadline)
        running, without = positive[: len(ids)], positive[len(ids) :]
        full = float(running[-1])
        return {
            "tokens": encoded.tokens,
            "score": full,
            "running": running.tolist(),
            "occlusion": (full - without).tolist(),
            "truncated": encoded.truncated,
            "model": model.ref,
        }
