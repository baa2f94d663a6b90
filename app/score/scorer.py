"""Scoring rows on the service's runtime: what each worker process (or Ray actor) runs.

A :class:`Scorer` loads the bundle with :class:`app.store.ModelStore`, as the service does, and
scores a list of row values the way the service's batcher does: each text encoded by
:meth:`LoadedModel.encode`, the texts grouped by length under the same batch size and token budget
(:func:`model.inputs.length_groups`), one :meth:`LoadedModel.infer` call per group. So a row gets
the answer ``/v1/predict/batch`` gives for its text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.errors import EmptyText
from app.runtime import make_prediction, require_words
from app.settings import Settings
from app.store import ModelStore
from model.inputs import length_groups
from model.tokenizer import Encoded

# the columns each scored row gets, in this order; ``error`` is null on a scored row
RESULT_COLUMNS = ("label", "score", "tokens", "truncated", "model_version", "error")


@dataclass(frozen=True)
class Invalid:
    """A row without a text to score; ``reason`` becomes its ``error`` column."""

    reason: str


def check_text(value: object, field: str) -> str | Invalid:
    """``value`` when it is a text to score, else :class:`Invalid` saying why not.

    Bytes are decoded as UTF-8; a text read with ``surrogateescape`` (CSV, plain text) carries
    the bytes that were not UTF-8 as lone surrogates, found here by encoding it again.
    """
    if value is None:
        return Invalid(f"'{field}' is missing (null)")
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            return Invalid(f"'{field}' is not UTF-8 (byte {error.start}: {error.reason})")
    if not isinstance(value, str):
        return Invalid(f"'{field}' is not a string but {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return Invalid(f"'{field}' is not UTF-8 (undecodable byte at character {error.start})")
    return value


# the summary counts errors by kind: a phrase each kind's messages hold, and the kind's name
ERROR_KINDS = {
    "missing": "missing",
    "not a string": "not a string",
    "not UTF-8": "not UTF-8",
    "no words": "empty",
    "JSON": "not a JSON object",
}


def error_kind(reason: str) -> str:
    """The kind of an ``error`` column's text, for the summary's counts."""
    return next((kind for phrase, kind in ERROR_KINDS.items() if phrase in reason), "other")


class Scorer:
    """One bundle loaded as the service loads it, scoring lists of row values."""

    def __init__(self, settings: Settings) -> None:
        store = ModelStore(settings)
        store.load()  # reads, checks and warms up the bundle: a bad one fails here, not on row 1
        self.model = store.model
        self.settings = settings

    @property
    def version(self) -> str:
        """The bundle's model version (the ``model_version`` column)."""
        return self.model.version

    def score(self, values: Sequence[str | Invalid]) -> list[dict]:
        """One result per value, in order: the :data:`RESULT_COLUMNS` of each."""
        results: list[dict] = [self._failed(v.reason) if isinstance(v, Invalid) else {} for v in values]
        encoded: dict[int, Encoded] = {}
        for index, value in enumerate(values):
            if isinstance(value, Invalid):
                continue
            item = self.model.encode(value)
            try:
                require_words([item])
            except EmptyText as error:
                results[index] = self._failed(error.message)
                continue
            encoded[index] = item
        rows = list(encoded)
        lengths = [len(encoded[row].ids) for row in rows]
        groups = length_groups(
            lengths, self.settings.max_batch_size, max_tokens=self.settings.max_batch_tokens
        )
        for group in groups:
            members = [rows[i] for i in group]
            probabilities = self.model.infer([encoded[row].ids for row in members])
            for row, line in zip(members, probabilities, strict=True):
                prediction = make_prediction(line, encoded[row])
                results[row] = {
                    "label": prediction.label,
                    "score": prediction.score,
                    "tokens": prediction.tokens,
                    "truncated": prediction.truncated,
                    "model_version": self.version,
                    "error": None,
                }
        return results

    def _failed(self, reason: str) -> dict:
        return {**dict.fromkeys(RESULT_COLUMNS), "model_version": self.version, "error": reason}


# One scorer per worker process, made by the pool's initializer: a session cannot be pickled,
# so each process loads the bundle itself, once.
_worker: Scorer | None = None


def start_worker(settings: dict) -> None:
    """A pool initializer: load the bundle in this process with ``settings`` (Settings fields)."""
    global _worker
    _worker = Scorer(Settings(**settings))


def worker_score(values: Sequence[str | Invalid]) -> list[dict]:
    """Score ``values`` on this worker process's :class:`Scorer`."""
    assert _worker is not None, "start_worker runs first (the pool's initializer)"
    return _worker.score(values)


def worker_version() -> str:
    """This worker's model version."""
    assert _worker is not None, "start_worker runs first (the pool's initializer)"
    return _worker.version
