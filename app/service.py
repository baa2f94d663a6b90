"""The service behind the routes: limits, batching, metrics and the Open Inference Protocol,
over a :class:`ModelRuntime`. Routes stay a few lines each and call these methods."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

import numpy as np

from app.batcher import DynamicBatcher
from app.errors import Disabled, ModelNotFound, NotReady, PayloadTooLarge
from app.metrics import ModelMetrics
from app.runtime import ModelRuntime, make_prediction
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
        )

    async def start(self) -> None:
        """Load the model (in a thread: it takes a moment) and start the batcher."""
        if not self.runtime.ready:
            await asyncio.to_thread(self.runtime.load)
        model = self.runtime.model
        self.metrics.info.info(
            {
                "name": model.name,
                "version": model.version,
                "cell": model.config.cell,
                "architecture": str(model.card.get("architecture", "")),
            }
        )
        self.metrics.ready.set(1)
        await self.batcher.start()

    async def stop(self) -> None:
        """Turn not-ready first, then finish queued work and stop."""
        self.runtime.unload()
        self.metrics.ready.set(0)
        await self.batcher.stop()

    @property
    def ready(self) -> bool:
        """Model loaded and warmed up, and (with batching) the batcher accepting work."""
        return self.runtime.ready and (self.batcher.running or not self.settings.batching)

    def model_card(self) -> dict:
        """The served bundle's model card."""
        return self.runtime.model.card

    @property
    def model_ref(self) -> dict[str, str]:
        """Name and version of the served model."""
        return {"name": self.runtime.model.name, "version": self.runtime.model.version}

    def _timed_infer(self, sequences: list[list[int]]) -> np.ndarray:
        started = time.perf_counter()
        result = self.runtime.infer(sequences)
        self.metrics.inference_seconds.observe(time.perf_counter() - started)
        return result

    def _check_text(self, text: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise PayloadTooLarge(
                f"text has {len(text)} characters; the limit is {self.settings.max_text_chars}"
            )

    async def _encode(self, texts: list[str]) -> list:
        """Tokenise ``texts``: inline when short, in a worker thread when long.

        A review of a few thousand characters tokenises in well under a millisecond, less than
        a hop to a thread and back costs under load; up to ``max_body_bytes`` of text takes long
        enough to stall every other request, so that goes to a thread.
        """
        if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
            return [self.runtime.encode(text) for text in texts]
        return await asyncio.to_thread(lambda: [self.runtime.encode(text) for text in texts])

    async def predict(self, texts: list[str]) -> list[dict]:
        """Predictions for ``texts`` in order, batched with concurrent requests when enabled."""
        if not self.ready:
            raise NotReady("the model is not loaded yet")
        if len(texts) > self.settings.max_batch_texts:
            raise PayloadTooLarge(f"{len(texts)} texts; the limit is {self.settings.max_batch_texts}")
        for text in texts:
            self._check_text(text)
        encoded = await self._encode(texts)
        for item in encoded:
            self.metrics.tokens.observe(len(item.ids))
        sequences = [item.ids for item in encoded]
        if self.settings.batching:
            probabilities = await self.batcher.submit(sequences)
        else:
            probabilities = await asyncio.to_thread(self._timed_infer, sequences)
            self.metrics.batch_size.observe(len(sequences))
        model = self.model_ref
        return [
            {**asdict(make_prediction(row, item)), "model": model}
            for row, item in zip(probabilities, encoded, strict=True)
        ]

    def _trace_cap(self, text: str, max_tokens: int | None) -> int:
        """Check a trace request may run; the number of tokens it may cover."""
        if not self.settings.trace_enabled:
            raise Disabled("tracing is disabled on this server")
        if not self.ready:
            raise NotReady("the model is not loaded yet")
        self._check_text(text)
        return min(max_tokens or self.settings.trace_max_tokens, self.settings.trace_max_tokens)

    async def trace(self, text: str, max_tokens: int | None) -> dict:
        """Prediction and gate activations of ``text``."""
        cap = self._trace_cap(text, max_tokens)
        started = time.perf_counter()
        result = await asyncio.to_thread(self.runtime.trace, text, cap)
        self.metrics.trace_seconds.observe(time.perf_counter() - started)
        self.metrics.tokens.observe(len(result["token_ids"]))
        return {**result, "prediction": asdict(result["prediction"]), "model": self.model_ref}

    async def saliency(self, text: str, max_tokens: int | None) -> dict:
        """Running sentiment and occlusion saliency per token of ``text``."""
        cap = self._trace_cap(text, max_tokens)
        return {**await asyncio.to_thread(self.runtime.saliency, text, cap), "model": self.model_ref}

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
