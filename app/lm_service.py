"""The language model's service: settings' caps, the request's deadline, its own work pool,
metrics, and sentiment-steered generation through the classifier's service.

Each request's cost is bounded: a prompt or text is read to at most ``lm_max_tokens`` tokens, a
continuation to ``lm_max_new_tokens``, and a steered one samples at most ``lm_max_candidates``
continuations at once (one batch, so a step costs one call whatever their number). Every step
is a job on the ``lm`` pool (one worker, ``lm_queue`` waiting), so a streamed continuation
interleaves with other requests, and stops at the request's deadline.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

from app.errors import BundleError, InvalidRequest, ServiceError
from app.lm import Generation, LanguageModel, Sampling
from app.service import SentimentService
from app.settings import Settings
from app.workpool import Deadline

logger = logging.getLogger("app.lm")


class LanguageModelMissing(ServiceError):
    """No language-model bundle is loaded on this server."""

    status_code, code = 404, "lm_not_loaded"


@dataclass(frozen=True)
class GenerateRequest:
    """What a continuation asks for (checked against the server's caps by :meth:`LMService.check`)."""

    prompt: str
    max_new_tokens: int
    sampling: Sampling
    seed: int | None = None
    sentiment: str | None = None  # "positive" | "negative": keep the candidate scored highest for it
    candidates: int = 4


@dataclass(frozen=True)
class Continuation:
    """A generation under way: its sampler, its seed, and its request's one deadline."""

    generation: Generation
    seed: int
    deadline: Deadline


class LMMetrics:
    """Tokens the LM read and wrote, and the time of each kind of LM work."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.tokens = Counter(
            "sentiment_lm_tokens",
            "Tokens the language model read (prompt, scored) or generated.",
            ["kind"],
            registry=registry,
        )
        self.seconds = Histogram(
            "sentiment_lm_seconds",
            "Time of one language-model job: next, score, prompt (reading it), step.",
            ["operation"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
        )


class LMService:
    """The LM routes' entry point, independent of HTTP."""

    def __init__(self, settings: Settings, sentiment: SentimentService, registry: CollectorRegistry) -> None:
        self.settings, self.sentiment = settings, sentiment
        self.model: LanguageModel | None = None
        self.absent_reason = "not loaded yet"
        self.pool = sentiment.pool("lm", 1, queue=settings.lm_queue)
        self.metrics = LMMetrics(registry)

    def load(self) -> None:
        """Load the configured bundle. At the default path, a missing or unusable bundle leaves the
        LM off, logged, and the routes say why; a path set explicitly must hold a good bundle
        (a :class:`BundleError` stops start-up)."""
        folder = self.settings.lm_bundle
        if folder is None:
            self.absent_reason = "the language model is switched off (SENTIMENT_LM_BUNDLE is empty)"
            return
        explicit = "lm_bundle" in self.settings.model_fields_set
        try:
            if not Path(folder).is_dir():
                raise BundleError(f"no language-model bundle at {folder} (set SENTIMENT_LM_BUNDLE)")
            self.model = LanguageModel.load(Path(folder), self.sentiment.store.model.tokenizer.vocabulary)
        except BundleError as error:
            if explicit:
                raise
            self.absent_reason = str(error)
            logger.warning("language model off: %s", error)

    def stop(self) -> None:
        """Stop the LM's thread once its current step ends."""
        self.pool.shutdown()

    def status(self) -> dict:
        """Whether the LM is loaded, and what it is."""
        if self.model is None:
            return {"loaded": False, "reason": self.absent_reason}
        metrics = self.model.card.get("metrics", {})
        return {
            "loaded": True,
            "model": self.model.ref,
            "perplexity": {"test": metrics.get("test_perplexity")},
            "max_new_tokens": self.settings.lm_max_new_tokens,
            "max_tokens": self.settings.lm_max_tokens,
            "max_candidates": self.settings.lm_max_candidates,
        }

    def _model(self, text: str) -> LanguageModel:
        if self.model is None:
            raise LanguageModelMissing(self.absent_reason)
        self.sentiment.check_text(text)
        return self.model

    async def _job(self, operation: str, work, deadline: Deadline | None = None):
        """``work()`` on the LM pool within the request's deadline (``deadline``, when the
        request runs several jobs: a generation's steps share one), timed."""
        started = time.perf_counter()

        def job(deadline):
            deadline.check()
            return work()

        async with self.sentiment.deadline(deadline) as deadline:
            result = await self.pool.run(job, deadline)
        self.metrics.seconds.labels(operation).observe(time.perf_counter() - started)
        return result

    async def next_words(self, text: str, k: int) -> dict:
        """The ``k`` most likely next words after ``text``."""
        model = self._model(text)
        result = await self._job("next", lambda: model.next_words(text, k, self.settings.lm_max_tokens))
        self.metrics.tokens.labels("prompt").inc(len(result["tokens"]))
        return {**result, "model": model.ref}

    async def score(self, text: str, top_k: int) -> dict:
        """Each token's log-probability and the text's perplexity."""
        model = self._model(text)
        result = await self._job("score", lambda: model.score(text, top_k, self.settings.lm_max_tokens))
        self.metrics.tokens.labels("scored").inc(len(result["tokens"]))
        return {**result, "model": model.ref}

    def check(self, request: GenerateRequest) -> LanguageModel:
        """The model, once ``request`` is within the server's caps; else a 4xx naming the cap."""
        model = self._model(request.prompt)
        if request.max_new_tokens > self.settings.lm_max_new_tokens:
            raise InvalidRequest(
                f"max_new_tokens is {request.max_new_tokens}; "
                f"this server's cap is {self.settings.lm_max_new_tokens}"
            )
        if request.sentiment and request.candidates > self.settings.lm_max_candidates:
            raise InvalidRequest(
                f"candidates is {request.candidates}; this server's cap is {self.settings.lm_max_candidates}"
            )
        return model

    async def start(self, request: GenerateRequest) -> Continuation:
        """Read the prompt for the continuations ``request`` asks; the request's deadline
        starts here and covers every step after."""
        model = self.check(request)
        seed = request.seed if request.seed is not None else secrets.randbits(31)
        rows = request.candidates if request.sentiment else 1
        cap = self.settings.lm_max_tokens
        deadline = Deadline(self.settings.request_timeout_s)
        generation = await self._job(
            "prompt", lambda: model.start(request.prompt, rows, request.sampling, seed, cap), deadline
        )
        self.metrics.tokens.labels("prompt").inc(len(generation.prompt_tokens))
        return Continuation(generation, seed, deadline)

    async def tokens(self, continuation: Continuation, count: int) -> AsyncIterator[int]:
        """Sample ``count`` tokens, one pool job each; yields row 0's id after each step."""
        for _ in range(count):
            chosen = await self._job("step", continuation.generation.step, continuation.deadline)
            self.metrics.tokens.labels("generated").inc(len(chosen))
            yield int(chosen[0])

    async def generate(self, request: GenerateRequest) -> dict:
        """A continuation of the prompt (the one the classifier prefers, when steered)."""
        continuation = await self.start(request)
        async for _ in self.tokens(continuation, request.max_new_tokens):
            pass
        return await self.finish(request, continuation)

    async def finish(self, request: GenerateRequest, continuation: Continuation) -> dict:
        """The response body of a finished generation: steered, the classifier picks the row."""
        generation, seed = continuation.generation, continuation.seed
        row, sentiment = 0, None
        if request.sentiment:
            texts = [request.prompt + generation.text(r) for r in range(len(generation.generated))]
            predictions = await self.sentiment.predict(texts)
            scores = [
                p["score"] if request.sentiment == "positive" else 1 - p["score"] for p in predictions.items
            ]
            row = max(range(len(scores)), key=scores.__getitem__)
            sentiment = {
                "label": request.sentiment,
                "score": scores[row],
                "candidates": len(scores),
                "scores": scores,
            }
        return {
            "prompt": request.prompt,
            "text": generation.text(row),
            "tokens": generation.model.tokens(generation.generated[row]),
            "seed": seed,
            "finish_reason": "length",
            "sentiment": sentiment,
            "model": generation.model.ref,
        }
