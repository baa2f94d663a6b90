"""The service behind the routes, protocol-neutral: limits, deadlines, work pools, batching and
the model's metrics, over the :class:`ModelStore`'s current model. Routes (and the protocol
codecs) stay a few lines each and call these methods."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import orjson

from app.batcher import DynamicBatcher
from app.context import current, current_request_id
from app.errors import (
    BundleError,
    Disabled,
    NoMatchIndex,
    NotReady,
    PayloadTooLarge,
    ReloadRejected,
    StaleMatchIndex,
    Timeout,
)
from app.gates import DIRECTIONS
from app.match_index import MatchIndex, Unit, model_identity, open_configured
from app.metrics import ModelMetrics, StageTimes
from app.prediction_log import PredictionLog
from app.runtime import LoadedModel, TraceView, make_prediction, require_words
from app.settings import Settings
from app.store import ModelStore
from app.workpool import Abandoned, Deadline, WorkPool
from model.tokenizer import Encoded, normalized_length_bound, unk_rate

# Texts whose normalised form may exceed this many characters are tokenised on a thread: a
# review of a few thousand characters tokenises in well under a millisecond, less than a hop
# to a thread and back costs under load.
INLINE_TOKENIZE_CHARS = 20_000


@dataclass(frozen=True)
class Predictions:
    """The answer to one prediction request: one body per text, in order, and the model that
    made them all (a request runs on one model, even across a reload)."""

    items: list[dict]
    model: dict[str, str]
    times: StageTimes


class SentimentService:
    """What the API can do, independent of HTTP."""

    def __init__(self, settings: Settings, store: ModelStore, metrics: ModelMetrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.batcher = DynamicBatcher(
            lambda sequences, model: model.infer(sequences),
            settings.max_batch_size,
            settings.batch_wait_ms / 1000,
            on_batch=self._observe_batch,
            workers=settings.inference_workers,
            max_batch_tokens=settings.max_batch_tokens,
        )
        # Each kind of blocking work has its own threads, so traces cannot hold up the tokenising
        # of a prediction. Tokenising is bounded by the in-flight cap, traces by their own. A
        # full pool's 429 counts among the refusals, with the pool's name as the reason.
        self.tokenize_pool = self.pool("tokenize", 1, queue=settings.max_in_flight)
        self.inference_pool = self.pool("inference", settings.inference_workers, queue=settings.max_in_flight)
        self.trace_pool = self.pool("trace", settings.trace_workers, queue=settings.trace_queue)
        self.match_index: MatchIndex | None = None  # the inspector's corpus index, loaded at start
        self.draining = False  # SIGTERM received: readiness says 503 while requests are still served
        saturation = metrics.saturation  # read at each scrape, nothing per request
        saturation.queued_texts.set_function(lambda: self.batcher.queued_texts)
        saturation.queued_tokens.set_function(lambda: self.batcher.queued_tokens)
        saturation.oldest_wait.set_function(lambda: self.batcher.oldest_wait)
        self.prediction_log = (
            PredictionLog(
                settings.prediction_log,
                settings.prediction_log_sample,
                settings.prediction_log_text,
                settings.prediction_log_max_bytes,
                settings.prediction_log_backups,
                settings.prediction_log_queue,
                on_drop=metrics.drift.log_dropped.inc,
            )
            if settings.prediction_log
            else None
        )

    def pool(self, name: str, workers: int, queue: int) -> WorkPool:
        """A :class:`WorkPool` whose refusals count in ``sentiment_rejected_total{reason=name}``,
        beside the in-flight cap's and the rate limit's: the 429 alert sees every refusal."""
        return WorkPool(name, workers, queue, on_reject=self.metrics.rejected.labels(name).inc)

    async def start(self) -> None:
        """Load the model (in a thread: it takes a moment) and start the batcher."""
        if not self.store.ready:
            await asyncio.to_thread(self.store.load)
        self.match_index = await asyncio.to_thread(open_configured, self.settings)
        self._publish_info(self.store.model)
        if self.prediction_log is not None:
            self.prediction_log.start()
        self.metrics.ready.set(1)
        await self.batcher.start()

    def _publish_info(self, model: LoadedModel) -> None:
        self.metrics.info.info(
            {
                "name": model.name,
                "version": model.version,
                "cell": model.config.cell,
                "architecture": str(model.card.get("architecture", "")),
            }
        )
        reference = model.reference["near_half"] if model.reference else float("nan")
        self.metrics.drift.reference_near_half.set(reference)

    async def reload(self) -> dict[str, str]:
        """Serve the bundle folder's current contents; :class:`ReloadRejected` keeps the old model."""
        try:
            model = await asyncio.to_thread(self.store.reload)
        except BundleError as error:
            raise ReloadRejected(
                f"the new bundle was rejected, the old model still serves: {error}"
            ) from None
        self._publish_info(model)
        return model.ref

    def drain(self) -> None:
        """Report not-ready from now on, and keep serving: load balancers stop sending first."""
        self.draining = True
        self.metrics.ready.set(0)

    async def stop(self) -> None:
        """Turn not-ready first, then finish queued work and stop."""
        self.store.unload()
        self.metrics.ready.set(0)
        await self.batcher.stop()
        for pool in (self.tokenize_pool, self.inference_pool, self.trace_pool):
            pool.shutdown()
        if self.prediction_log is not None:  # after the batcher: every answered request is queued
            await asyncio.to_thread(self.prediction_log.stop)

    @property
    def accepting(self) -> bool:
        """Model loaded and warmed up, and (with batching) the batcher accepting work."""
        return self.store.ready and (self.batcher.running or not self.settings.batching)

    @property
    def ready(self) -> bool:
        """What ``/readyz`` reports: accepting work and not draining for a shutdown."""
        return self.accepting and not self.draining

    @property
    def model(self) -> LoadedModel:
        """The model served now; :class:`NotReady` before it is loaded."""
        return self.store.model

    def model_card(self) -> dict:
        """The served bundle's model card, less the paths on the training machine."""
        return self.store.model.public_card

    def _observe_batch(self, size: int, seconds: float) -> None:
        """Count one onnxruntime call of ``size`` texts that took ``seconds``."""
        self.metrics.batch_size.observe(size)
        self.metrics.inference_seconds.observe(seconds)

    def check_text(self, text: str) -> None:
        """:class:`PayloadTooLarge` for a text over ``max_text_chars`` (the LM routes' check too)."""
        self._check_text(text)

    def deadline(self, deadline: Deadline | None = None) -> contextlib.AbstractAsyncContextManager[Deadline]:
        """The request's deadline, for work outside this service (the LM's): see :meth:`_deadline`."""
        return self._deadline(deadline)

    def _check_text(self, text: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise PayloadTooLarge(
                f"text has {len(text)} characters; the limit is {self.settings.max_text_chars}"
            )

    async def _encode(self, texts: list[str], model: LoadedModel, deadline: Deadline) -> list[Encoded]:
        """Tokenise ``texts``: inline when their normalised length is surely short, else on the
        tokenising thread; :class:`EmptyText` when one has no words to read."""
        if sum(map(normalized_length_bound, texts)) <= INLINE_TOKENIZE_CHARS:
            encoded = [model.encode(text) for text in texts]
        else:
            encoded = await self.tokenize_pool.run(lambda _: [model.encode(text) for text in texts], deadline)
        require_words(encoded)
        return encoded

    async def predict(self, texts: list[str]) -> Predictions:
        """Predictions for ``texts`` (one or many) in order, batched with concurrent requests when
        enabled, and where the request's time went (the request's context gets it, and
        :class:`app.tracking.RequestTracking` counts it in ``sentiment_stage_seconds``)."""
        times = StageTimes()
        if not self.accepting:
            raise NotReady("the model is not loaded yet")
        if len(texts) > self.settings.max_batch_texts:
            raise PayloadTooLarge(f"{len(texts)} texts; the limit is {self.settings.max_batch_texts}")
        for text in texts:
            self._check_text(text)
        async with self._deadline() as deadline:
            model = self.store.model  # the whole request uses one model, even across a reload
            started = time.perf_counter()
            encoded = await self._encode(texts, model, deadline)
            times.tokenize = time.perf_counter() - started
            for item in encoded:
                self.metrics.tokens.observe(len(item.ids))
            probabilities = await self._infer([item.ids for item in encoded], model, deadline, times)
        items = [
            {**make_prediction(row, item).as_dict(), "model": model.ref}
            for row, item in zip(probabilities, encoded, strict=True)
        ]
        times.total = time.perf_counter() - times.started
        self._observe_predictions(texts, items, encoded, model, times)
        if (context := current()) is not None:  # the request's access line and headers
            context.record(times, len(encoded), sum(len(item.ids) for item in encoded), model.version)
        return Predictions(items, model.ref, times)

    def _observe_predictions(
        self,
        texts: list[str],
        items: list[dict],
        encoded: list[Encoded],
        model: LoadedModel,
        times: StageTimes,
    ) -> None:
        """The drift metrics of each prediction, and the prediction log's entries."""
        unk_rates = [unk_rate(item.ids) for item in encoded]
        for item, rate in zip(items, unk_rates, strict=True):
            self.metrics.drift.observe(item["score"], rate)
        if self.prediction_log is not None:
            self.prediction_log.record(current_request_id(), model.ref, items, unk_rates, texts, times.total)

    async def _infer(
        self, sequences: list[list[int]], model: LoadedModel, deadline: Deadline, times: StageTimes
    ) -> np.ndarray:
        """``probabilities`` of ``sequences``: through the batcher, or without batching in one
        call on the inference pool; ``times`` gets the wait and the call's time."""
        if self.settings.batching:
            return await self.batcher.submit(sequences, model, times)
        handed = time.perf_counter()

        def job(_: Deadline) -> np.ndarray:
            started = time.perf_counter()
            probabilities = model.infer(sequences)
            times.queue, times.infer = started - handed, time.perf_counter() - started
            times.batch = len(sequences)
            self._observe_batch(len(sequences), times.infer)
            return probabilities

        return await self.inference_pool.run(job, deadline)

    @contextlib.asynccontextmanager
    async def _deadline(self, deadline: Deadline | None = None) -> AsyncIterator[Deadline]:
        """A :class:`Deadline` for the block's blocking work; :class:`Timeout` when the block
        takes longer than ``request_timeout_s``, or than what is left of ``deadline`` (a request
        whose work spans several blocks, as a generation's steps do, keeps one deadline).

        Cancelling the wait resolves nothing else: a batched request's queue entry is skipped by
        the batcher (its future is cancelled), a pool's job stops at its next check, and the
        in-flight slot is released as the 504 goes.
        """
        deadline = deadline or Deadline(self.settings.request_timeout_s)
        try:
            async with asyncio.timeout(deadline.remaining):
                yield deadline
        except (TimeoutError, Abandoned):  # Abandoned: a job saw the deadline pass first
            deadline.abandon()
            self.metrics.timeouts.inc()
            raise Timeout(f"not answered within {self.settings.request_timeout_s:g} s; retry later") from None

    def _trace_cap(self, text: str, max_tokens: int | None) -> int:
        """Check a trace request may run; the number of tokens it may cover."""
        if not self.settings.trace_enabled:
            raise Disabled("tracing is disabled on this server")
        if not self.accepting:
            raise NotReady("the model is not loaded yet")
        self._check_text(text)
        return min(max_tokens or self.settings.trace_max_tokens, self.settings.trace_max_tokens)

    async def trace(self, text: str, max_tokens: int | None, view: TraceView | None = None) -> bytes:
        """Prediction and gate activations of ``text`` (those ``view`` selects), as JSON.

        Encoded on the trace thread: a full trace of 400 tokens is some 600,000 numbers, whose
        validation and encoding on the event loop would stall every other request.
        """
        cap = self._trace_cap(text, max_tokens)
        model = self.store.model
        view = view or TraceView()
        view.check(model.config)

        def job(deadline: Deadline) -> tuple[bytes, int]:
            result = model.trace(text, cap, deadline, view)
            result["prediction"] = result["prediction"].as_dict()
            return orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY), len(result["token_ids"])

        started = time.perf_counter()
        async with self._deadline() as deadline:
            body, tokens = await self.trace_pool.run(job, deadline)
        self.metrics.trace_seconds.observe(time.perf_counter() - started)
        self.metrics.tokens.observe(tokens)
        return body

    async def saliency(self, text: str, max_tokens: int | None) -> dict:
        """Running sentiment and occlusion saliency per token of ``text``."""
        cap = self._trace_cap(text, max_tokens)
        model = self.store.model
        max_batch_tokens = self.settings.max_batch_tokens  # the budget of predictions' batches too
        async with self._deadline() as deadline:
            return await self.trace_pool.run(
                lambda d: model.saliency(text, cap, max_batch_tokens, d), deadline
            )

    def _current_index(self) -> MatchIndex:
        """The corpus index, when one is loaded and was built for the model served now."""
        index = self.match_index
        if index is None:
            raise NoMatchIndex(
                "no match index is loaded; build one with python -m app.match_index (see the inspector guide)"
            )
        model = self.store.model
        served = model_identity(model)
        if index.meta["model"] != served:
            built = index.meta["model"]
            raise StaleMatchIndex(
                f"the match index was built for {built['name']} {built['version']}, "
                f"not the served {served['name']} {served['version']}; rebuild it"
            )
        return index

    def match_index_info(self) -> dict:
        """What the corpus index covers."""
        return self._current_index().describe()

    async def match(self, units: list[Unit], length: int, k: int) -> dict:
        """The corpus spans where all of ``units`` turn on (:meth:`MatchIndex.match`)."""
        index = self._current_index()
        async with self._deadline() as deadline:
            result = await self.trace_pool.run(lambda _: index.match(units, length, k), deadline)
        return {**result, "model": self.store.model.ref}

    async def unit_contexts(self, unit: Unit, k: int) -> dict:
        """The corpus contexts where ``unit`` is highest and lowest (:meth:`MatchIndex.top_contexts`)."""
        index = self._current_index()
        async with self._deadline() as deadline:
            result = await self.trace_pool.run(lambda _: index.top_contexts(unit, k), deadline)
        named = {"layer": unit.layer, "direction": DIRECTIONS[unit.direction], "unit": unit.unit}
        return {"unit": named, **result, "model": self.store.model.ref}
