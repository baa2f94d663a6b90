"""The model runtime: runs one loaded bundle (encode, infer, trace, saliency); no torch.

A :class:`LoadedModel` holds the onnxruntime sessions, the tokenizer and the recurrent layers'
weights read from the same ``model.onnx`` (:mod:`app.store` reads and checks the bundle). The
service calls :meth:`LoadedModel.encode` and :meth:`LoadedModel.infer` (through the batcher),
:meth:`LoadedModel.trace` and :meth:`LoadedModel.saliency`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime

from app.errors import EmptyText, InvalidRequest, NoGates
from app.gates import DIRECTIONS, GATE_NAMES, direction_gates
from app.workpool import Deadline
from model.bundle import LABELS
from model.config import ModelConfig
from model.inputs import length_groups, pad_batch
from model.tokenizer import Encoded, Tokenizer


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
        """:class:`InvalidRequest` naming what the model does not have; :class:`NoGates` for a
        model with no gates at all."""
        if not config.recurrent:
            raise NoGates(
                f"the served model is a {config.cell} encoder: it has no recurrent gates to trace "
                "(a gate trace needs an RNN, GRU or LSTM model); /v1/trace/saliency works for every model"
            )
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
    """One bundle's model, ready to run: everything read from it, and the calls that use it.

    Immutable and thread-safe: concurrent requests share it, and a reload makes a new one.
    """

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
    reference: dict | None = None  # the bundle's drift reference (model.reference), when it has one

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

    def hidden_states(self, sequences: list[list[int]]) -> list[np.ndarray]:
        """The hidden states the classifier used, one ``[len(sequence), columns]`` array per
        sequence, from one call on the trace session; column ``(layer * D + direction) * H +
        unit`` (D directions, H units), the layout :mod:`app.match_index` indexes."""
        ids, lengths = pad_batch(sequences)
        names = [f"hidden_{layer}" for layer in range(self.config.num_layers)]
        hidden = self.trace_session.run(names, {"token_ids": ids, "lengths": lengths})
        # each output is [T, D, B, H]; to [B, T, layers * D * H]
        batch, steps = ids.shape
        stacked = np.concatenate([np.moveaxis(h, 2, 0).reshape(batch, steps, -1) for h in hidden], axis=2)
        return [stacked[row, :length] for row, length in enumerate(lengths)]

    def trace(
        self, text: str, max_tokens: int, deadline: Deadline | None = None, view: TraceView | None = None
    ) -> dict:
        """Prediction plus the gates of every layer and direction (or those ``view`` selects),
        per token, for ``text``, as ``[tokens, units]`` arrays; ``deadline`` is checked between
        directions."""
        deadline = deadline or Deadline(float("inf"))
        view = view or TraceView()
        encoded = self.encode_capped(text, max_tokens)
        require_words([encoded])
        config = self.config
        layer_names = [f"hidden_{layer}" for layer in range(config.num_layers)]
        ids, lengths = pad_batch([encoded.ids])
        probabilities, *hidden = self.trace_session.run(
            ["probabilities", *layer_names], {"token_ids": ids, "lengths": lengths}
        )
        x = self.weights["embedding"][ids[0]].astype(np.float64)  # [T, E]
        layers = []
        for layer, served in enumerate(hidden):
            served = served[:, :, 0, :]  # [T, D, H]
            # a layer left out keeps its place, empty, so the list still indexes layers
            wanted = view.wants_layer(layer)
            layers.append(self._layer_gates(layer, x, served, deadline, view) if wanted else {})
            x = served.reshape(len(served), -1).astype(np.float64)  # the next layer reads these
        return {
            "prediction": make_prediction(probabilities[0], encoded),
            "tokens": encoded.tokens,
            "token_ids": encoded.ids,
            "cell": config.cell,
            "layers": layers,
            "model": self.ref,
        }

    def _layer_gates(
        self, layer: int, x: np.ndarray, served: np.ndarray, deadline: Deadline, view: TraceView
    ) -> dict:
        """``{direction: {"gates": {name: [T, units]}}}`` of one layer, from its input ``x``."""
        config = self.config
        w, r, b = (self.weights[f"{kind}_{layer}"].astype(np.float64) for kind in "WRB")
        p = self.weights[f"P_{layer}"].astype(np.float64) if config.cell == "peephole" else None
        directions = {}
        for d, name in enumerate(DIRECTIONS[: config.num_directions]):
            deadline.check()
            gates = direction_gates(config.cell, x, w[d], r[d], b[d], None if p is None else p[d], d == 1)
            gates["hidden"] = served[:, d, :]  # the states the classifier actually used
            directions[name] = {"gates": view.select(gates)}
        return directions

    def saliency(
        self, text: str, max_tokens: int, max_batch_tokens: int, deadline: Deadline | None = None
    ) -> dict:
        """How the prediction builds up and which tokens move it, through the served model.

        ``running[t]``: P(positive) of the model reading only tokens ``0..t`` (for a bidirectional
        model the backward direction then also starts at token t). ``occlusion[t]``: P(positive)
        of the whole text minus P(positive) with token t replaced by ``<unk>`` — positive when
        the token pushes towards "positive" (Zeiler & Fergus, 2014).

        That is 2·T sequences of up to T tokens: they run in calls of at most
        ``max_batch_tokens`` padded tokens, as predictions do, so memory stays bounded, and
        ``deadline`` is checked between calls, so a request that timed out stops its work.
        """
        deadline = deadline or Deadline(float("inf"))
        encoded = self.encode_capped(text, max_tokens)
        require_words([encoded])
        ids = encoded.ids
        unk = self.tokenizer.vocabulary.unk_id
        prefixes = [ids[: t + 1] for t in range(len(ids))]  # the last one is the whole text
        occluded = [[*ids[:t], unk, *ids[t + 1 :]] for t in range(len(ids))]
        positive = self.infer_chunked(prefixes + occluded, max_batch_tokens, deadline)
        running, without = positive[: len(ids)], positive[len(ids) :]
        full = float(running[-1])
        return {
            "tokens": encoded.tokens,
            "score": full,
            "running": running.tolist(),
            "occlusion": (full - without).tolist(),
            "truncated": encoded.truncated,
            "model": self.ref,
        }
