"""The service behind the routes: limits, batching, metrics and the Open Inference Protocol,
over a :class:`ModelRuntime`. Routes stay a few lines each and call these methods."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import numpy as np

from app.batcher import DynamicBatcher
from app.errors import (
    BundleError,
    Disabled,
    EmptyText,
    ModelNotFound,
    NotReady,
    PayloadTooLarge,
    ReloadRejected,
    Timeout,
)
from app.metrics import ModelMetrics
from app.runtime import LoadedModel, ModelRuntime, make_prediction
from app.schemas import InferRequest
from app.settings import Settings
from model.bundle import LABELS

INLINE_TOKENIZE_CHARS = 20_000


class SentimentService:
    """What the API can do, independent of HTTP."""

    def __init__(self, settings: Settings, runtime: ModelRuntime, metrics: ModelMetrics) -> None:
        self.settings = settings
        self.runtime = runtime
        self.metrics = metrics
        self.batcher = DynamicBatcher(
            self._timed_infer,
            settings.max_batch_size,
            settings.batch_wait_ms / 1000,
            on_batch=metrics.batch_size.observe,
            workers=settings.inference_workers,
            max_batch_tokens=settings.max_batch_tokens,
        )
        self.draining = False  # SIGTERM received: readiness says 503 while requests are still served

    async def start(self) -> None:
        """Load the model (in a thread: it takes a moment) and start the batcher."""
        if not self.runtime.ready:
            await asyncio.to_thread(self.runtime.load)
        self._publish_info(self.runtime.model)
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

    async def reload(self) -> dict[str, str]:
        """Serve the bundle folder's current contents; :class:`ReloadRejected` keeps the old model."""
        try:
            model = await asyncio.to_thread(self.runtime.reload)
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
        self.runtime.unload()
        self.metrics.ready.set(0)
        await self.batcher.stop()

    @property
    def accepting(self) -> bool:
        """Model loaded and warmed up, and (with batching) the batcher accepting work."""
        return self.runtime.ready and (self.batcher.running or not self.settings.batching)

    @property
    def ready(self) -> bool:
        """What ``/readyz`` reports: accepting work and not draining for a shutdown."""
        return self.accepting and not self.draining

    def model_card(self) -> dict:
        """The served bundle's model card, less the paths on the training machine."""
        return self.runtime.model.public_card

    def _timed_infer(self, sequences: list[list[int]], model: LoadedModel) -> np.ndarray:
        started = time.perf_counter()
        result = model.infer(sequences)
        self.metrics.inference_seconds.observe(time.perf_counter() - started)
        return result

    def _check_text(self, text: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise PayloadTooLarge(
                f"text has {len(text)} characters; the limit is {self.settings.max_text_chars}"
            )

    async def _encode(self, texts: list[str], model: LoadedModel) -> list:
        """Tokenise ``texts``: inline when short, in a worker thread when long.

        A review of a few thousand characters tokenises in well under a millisecond, less than
        a hop to a thread and back costs under load; up to ``max_body_bytes`` of text takes long
        enough to stall every other request, so that goes to a thread.
        """
        if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
            return [model.encode(text) for text in texts]
        return await asyncio.to_thread(lambda: [model.encode(text) for text in texts])

    async def predict(self, texts: list[str]) -> list[dict]:
        """Predictions for ``texts`` in order, batched with concurrent requests when enabled."""
        if not self.accepting:
            raise NotReady("the model is not loaded yet")
        if len(texts) > self.settings.max_batch_texts:
            raise PayloadTooLarge(f"{len(texts)} texts; the limit is {self.settings.max_batch_texts}")
        for text in texts:
            self._check_text(text)
        async with self._deadline():
            model = self.runtime.model  # the whole request uses one model, even across a reload
            encoded = await self._encode(texts, model)
            empty = [index for index, item in enumerate(encoded) if item.total == 0]
            if empty:
                where = f"text {empty[0]} has" if len(texts) > 1 else "the text has"
                raise EmptyText(f"{where} no words to read (empty, blank or control characters only)")
            for item in encoded:
                self.metrics.tokens.observe(len(item.ids))
            sequences = [item.ids for item in encoded]
            if self.settings.batching:
                probabilities = await self.batcher.submit(sequences, model)
            else:
                probabilities = await asyncio.to_thread(self._timed_infer, sequences, model)
                self.metrics.batch_size.observe(len(sequences))
        return [
            {**make_prediction(row, item).as_dict(), "model": model.ref}
            for row, item in zip(probabilities, encoded, strict=True)
        ]

    async def predict_batch(self, texts: list[str]) -> dict:
        """Predictions for ``texts`` and the one model that made them all."""
        predictions = await self.predict(texts)
        return {"predictions": predictions, "model": predictions[0]["model"]}

    @contextlib.asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """:class:`Timeout` when the block takes longer than ``request_timeout_s``.

        Cancelling the wait resolves nothing else: a batched request's queue entry is skipped by
        the batcher (its future is cancelled), and the in-flight slot is released as the 504 goes.
        """
        try:
            async with asyncio.timeout(self.settings.request_timeout_s):
                yield
        except TimeoutError:
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

    async def trace(self, text: str, max_tokens: int | None) -> dict:
        """Prediction and gate activations of ``text``."""
        cap = self._trace_cap(text, max_tokens)
        started = time.perf_counter()
        async with self._deadline():
            result = await asyncio.to_thread(self.runtime.trace, text, cap)
        self.metrics.trace_seconds.observe(time.perf_counter() - started)
        self.metrics.tokens.observe(len(result["token_ids"]))
        return {**result, "prediction": result["prediction"].as_dict()}

    async def saliency(self, text: str, max_tokens: int | None) -> dict:
        """Running sentiment and occlusion saliency per token of ``text``."""
        cap = self._trace_cap(text, max_tokens)
        async with self._deadline():
            return await asyncio.to_thread(self.runtime.saliency, text, cap)

    def check_model_name(self, name: str) -> None:
        """:class:`ModelNotFound` unless ``name`` is the served model's name."""
        if name != self.runtime.model.name:
            raise ModelNotFound(
                f"model {name!r} is not served here; this server serves {self.runtime.model.name!r}"
            )

    def model_metadata(self) -> dict:
        """Open Inference Protocol model metadata."""
        return {
            "name": self.runtime.model.name,
            "versions": [self.runtime.model.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(LABELS)]},
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
            ],
        }

    async def infer_v2(self, name: str, request: InferRequest) -> dict:
        """Open Inference Protocol v2 ``infer``: a BYTES tensor of texts in, probabilities and labels out."""
        self.check_model_name(name)
        texts = request.inputs[0].data
        predictions = await self.predict(texts)
        outputs = {
            "probabilities": {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [len(texts), len(LABELS)],
                "data": [p["probabilities"][label] for p in predictions for label in LABELS],
            },
            "label": {
                "name": "label",
                "datatype": "BYTES",
                "shape": [len(texts)],
                "data": [p["label"] for p in predictions],
            },
        }
        wanted = [o.name for o in request.outputs] if request.outputs else list(outputs)
        return {
            "model_name": name,
            "model_version": self.runtime.model.version,
            "id": request.id,
            "outputs": [outputs[w] for w in dict.fromkeys(wanted)],
        }
