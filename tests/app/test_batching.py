"""Dynamic batching: coalescing happens, and never changes a result."""

from __future__ import annotations

import asyncio

import numpy as np
from prometheus_client import CollectorRegistry

from app.batcher import DynamicBatcher
from app.metrics import ModelMetrics, StageTimes
from app.service import Predictions, SentimentService
from app.settings import Settings
from app.store import ModelStore
from model.inputs import length_groups

TEXTS = [
    "great",
    "awful , boring mess",
    "i loved it ! " * 10,
    "a wonderful , moving film with great acting",
    "dull",
    "terrible plot , dull characters ; i hated every minute",
    "brilliant and funny",
]


def test_length_groups_keep_short_texts_apart_from_long_ones() -> None:
    groups = length_groups([3, 400, 4, 5, 390, 3], max_batch_size=8)
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert [sorted(g) for g in groups] == [[0, 2, 3, 5], [1, 4]]
    assert all(len(g) <= 2 for g in length_groups([5] * 6, max_batch_size=2))
    # the token budget: padded size (count x longest) stays within it; one text always fits
    budgeted = length_groups([100, 100, 100, 100, 900], max_batch_size=8, max_tokens=250)
    assert sorted(map(sorted, budgeted)) == [[0, 1], [2, 3], [4]]


def test_concurrent_requests_are_coalesced_and_equal_to_alone(bundle_dir) -> None:
    settings = Settings(model_dir=bundle_dir, batch_wait_ms=50, max_batch_size=64)
    store = ModelStore(settings)
    store.load()
    alone = {text: store.model.infer([store.model.encode(text).ids])[0, 1] for text in TEXTS}
    registry = CollectorRegistry()

    async def scenario() -> list[Predictions]:
        service = SentimentService(settings, store, ModelMetrics(registry))
        await service.start()
        try:
            return await asyncio.gather(*(service.predict([text]) for text in TEXTS * 3))
        finally:
            await service.stop()

    results = asyncio.run(scenario())
    for text, result in zip(TEXTS * 3, results, strict=True):
        assert abs(result.items[0]["score"] - alone[text]) <= 1e-6
    # the batch-size histogram counts onnxruntime calls and sums the texts they held
    calls = registry.get_sample_value("sentiment_batch_size_count")
    texts = registry.get_sample_value("sentiment_batch_size_sum")
    assert texts == len(TEXTS) * 3
    assert calls < len(TEXTS) * 3  # fewer onnxruntime calls than requests


def test_a_failing_inference_fails_only_its_requests() -> None:
    def infer(sequences, model=None):
        if any(0 in s for s in sequences):
            raise RuntimeError("boom")
        return np.array([[0.5, 0.5]] * len(sequences))

    async def scenario():
        batcher = DynamicBatcher(infer, max_batch_size=1, max_wait_s=0)
        await batcher.start()
        results = await asyncio.gather(batcher.submit([[0]]), batcher.submit([[5]]), return_exceptions=True)
        await batcher.stop()
        return results

    failed, ok = asyncio.run(scenario())
    assert isinstance(failed, RuntimeError) and ok.shape == (1, 2)


def test_stop_answers_queued_work_and_then_refuses() -> None:
    from app.errors import NotReady

    def infer(sequences, model=None):
        return np.array([[0.5, 0.5]] * len(sequences))

    async def scenario():
        batcher = DynamicBatcher(infer, max_batch_size=4, max_wait_s=0.05)
        await batcher.start()
        waiting = asyncio.ensure_future(batcher.submit([[1], [1] * 50, [2]]))
        await asyncio.sleep(0.01)
        await batcher.stop()
        # the workers are gone: only an answer they posted before stopping can resolve it
        assert (await asyncio.wait_for(waiting, 1)).shape == (3, 2)
        try:
            await batcher.submit([[1]])
        except NotReady:
            return "refused"
        return "accepted"

    assert asyncio.run(scenario()) == "refused"


def test_worker_survives_a_failing_metrics_callback() -> None:
    def infer(sequences, model=None):
        return np.array([[0.25, 0.75]] * len(sequences))

    async def scenario():
        batcher = DynamicBatcher(infer, max_batch_size=4, max_wait_s=0, on_batch=lambda size, seconds: 1 / 0)
        await batcher.start()
        first = await batcher.submit([[1]])
        second = await batcher.submit([[2]])
        running = batcher.running
        await batcher.stop()
        return first, second, running

    first, second, running = asyncio.run(scenario())
    assert first[0, 1] == second[0, 1] == 0.75 and running


def test_stop_interrupts_a_long_batching_window_and_answers_it() -> None:
    """With two workers waiting out a 30 s window, stop() answers what they hold at once."""

    def infer(sequences, model=None):
        return np.array([[0.5, 0.5]] * len(sequences))

    async def scenario():
        batcher = DynamicBatcher(infer, max_batch_size=8, max_wait_s=30, workers=2)
        await batcher.start()
        waiting = [asyncio.ensure_future(batcher.submit([[1], [2, 3]])) for _ in range(3)]
        await asyncio.sleep(0.05)  # the workers are inside their windows now
        assert not any(w.done() for w in waiting)
        await asyncio.wait_for(batcher.stop(), 10)  # the windows alone would take 30 s
        return [(await asyncio.wait_for(w, 1)).shape for w in waiting]

    assert asyncio.run(scenario()) == [(2, 2)] * 3


def test_a_second_start_is_refused() -> None:
    async def scenario():
        batcher = DynamicBatcher(lambda sequences, model=None: np.zeros((len(sequences), 2)), 4, 0)
        await batcher.start()
        try:
            await batcher.start()
        except RuntimeError:
            return "refused"
        finally:
            await batcher.stop()
        return "started twice"

    assert asyncio.run(scenario()) == "refused"


def test_a_timed_out_single_text_is_skipped_and_the_next_is_answered() -> None:
    """One text awaits its future directly (no gather): cancelling the request must still cancel
    the future, so the worker skips it instead of running it for nobody."""
    import threading

    release = threading.Event()
    seen: list[list[int]] = []

    def infer(sequences, model=None):
        seen.extend(sequences)
        release.wait(5)  # the first batch holds the worker while the second request times out
        return np.array([[0.25, 0.75]] * len(sequences))

    async def scenario():
        batcher = DynamicBatcher(infer, max_batch_size=1, max_wait_s=0)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit([[1]]))
        await asyncio.sleep(0.05)  # the worker is inside infer with [1]
        try:
            await asyncio.wait_for(batcher.submit([[2]]), 0.05)
        except TimeoutError:
            timed_out = True
        release.set()
        answers = await first, await batcher.submit([[3]])
        await batcher.stop()
        return timed_out, answers

    timed_out, (first, third) = asyncio.run(scenario())
    assert timed_out and first.shape == third.shape == (1, 2)
    assert seen == [[1], [3]]  # [2] was never run


def test_a_request_learns_its_wait_and_the_time_of_each_call_that_answered_it() -> None:
    """Three texts in three calls of 20 ms each on one worker: ``infer`` is their sum, ``queue``
    the wait until the first started."""
    import time

    def infer(sequences, model=None):
        time.sleep(0.02)
        return np.array([[0.5, 0.5]] * len(sequences))

    async def scenario():
        batcher = DynamicBatcher(infer, max_batch_size=1, max_wait_s=0)
        await batcher.start()
        times = StageTimes()
        started = time.perf_counter()
        await batcher.submit([[1], [2], [3]], times=times)
        waited = time.perf_counter() - started
        await batcher.stop()
        return times, waited

    times, waited = asyncio.run(scenario())
    assert 0.06 <= times.infer <= waited
    assert 0 <= times.queue <= waited - times.infer
