"""Dynamic batching: concurrent requests share one onnxruntime call.

Requests queue their token-id sequences; a worker thread takes what arrived within
``max_wait`` (up to ``max_batch_size`` sequences), sorts them by length and cuts the sorted run
wherever one more sequence would make the batch's padded size more than ``waste`` times its
real tokens, so a short text never pays for a long one. Every sequence carries its own length
into the graph (``sequence_lens``), so batching never changes a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import NotReady
from app.metrics import StageTimes
from model.inputs import length_groups

logger = logging.getLogger("app.batcher")

# infer(sequences, model): ``model`` is whatever the caller submitted with the sequences (the
# service passes the loaded model its token ids belong to); only equal ones share a call
Infer = Callable[[list[list[int]], Any], np.ndarray]


@dataclass
class _Pending:
    sequence: list[int]
    future: asyncio.Future
    model: Any
    call: tuple[float, float, int] | None = None  # (start, seconds, texts) of the call that answered it


class DynamicBatcher:
    """Coalesces concurrent :meth:`submit` calls into few inference calls.

    Each worker is a thread that blocks on a thread-safe queue, runs the batch itself and posts
    the results back to the event loop in one callback: three hand-overs per request (the queue
    wakes the worker, the callback wakes the loop, the loop resumes the request). An asyncio
    worker task handing each batch to ``asyncio.to_thread`` takes four, and each hand-over is a
    thread wake-up on every request's path.
    """

    def __init__(
        self,
        infer: Infer,
        max_batch_size: int,
        max_wait_s: float,
        on_batch: Callable[[int, float], None] | None = None,
        workers: int = 1,
        max_batch_tokens: int | None = None,
    ) -> None:
        self._infer = infer
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        # None is a worker's signal to stop, queued behind all the work it must still answer
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        # (time queued, tokens) of each queued sequence, oldest first: what the saturation gauges
        # read. Appended before its item is queued and popped once a worker took one, so it never
        # runs short; deque's append and popleft are atomic, so neither side takes a lock.
        self._waiting: deque[tuple[float, int]] = deque()
        self._threads: list[threading.Thread] = []
        self._worker_count = workers
        self._max_batch_tokens = max_batch_tokens
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    @property
    def queued_texts(self) -> int:
        """Sequences waiting for a worker."""
        return len(self._waiting)

    @property
    def queued_tokens(self) -> int:
        """Tokens of the sequences waiting for a worker."""
        return sum(tokens for _, tokens in tuple(self._waiting))  # a copy: workers pop meanwhile

    @property
    def oldest_wait(self) -> float:
        """Seconds the oldest waiting sequence has waited; 0 when none waits."""
        with contextlib.suppress(IndexError):  # a worker took the last one meanwhile
            return time.perf_counter() - self._waiting[0][0]
        return 0.0

    def _took(self) -> None:
        """A worker took a sequence off the queue."""
        with contextlib.suppress(IndexError):  # never short (see __init__); stop() drains both
            self._waiting.popleft()

    @property
    def running(self) -> bool:
        """Accepting work: started, not stopping, every worker alive."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads) and not self._closing

    async def start(self) -> None:
        """Start the worker threads; results go back to the running event loop."""
        if any(t.is_alive() for t in self._threads):
            # their stop signals would be shared with the new threads, and stop() would wait forever
            raise RuntimeError("the batcher is already running; stop() it first")
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._run, name=f"dynamic-batcher-{i}", daemon=True)
            for i in range(self._worker_count)
        ]
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        """Refuse new work, answer everything already queued, then stop the workers."""
        self._closing = True
        alive = [t for t in self._threads if t.is_alive()]
        for _ in alive:
            self._queue.put(None)
        await asyncio.to_thread(lambda: [t.join() for t in alive])
        while not self._queue.empty():  # only if no worker was alive to take it
            item = self._queue.get_nowait()
            if item is not None:
                self._took()
                item.future.cancel()

    async def submit(
        self, sequences: list[list[int]], model: Any = None, times: StageTimes | None = None
    ) -> np.ndarray:
        """Probabilities ``[len(sequences), classes]`` for ``sequences`` (run by ``model``), in order.

        ``times``, when given, gets the wait (``queue``: until the first inference answering them
        started) and the inference time (``infer``: of every call that answered them).
        """
        if not self.running:
            raise NotReady("the server is not accepting predictions (starting or shutting down)")
        loop = asyncio.get_running_loop()
        submitted = time.perf_counter()
        pending = [_Pending(sequence, loop.create_future(), model) for sequence in sequences]
        for item in pending:
            self._waiting.append((submitted, len(item.sequence)))
            self._queue.put(item)
        if len(pending) == 1:  # the common case: one text, no gather task around its future
            # a view of its batch's row, where np.stack below copies: callers only read it
            rows = (await pending[0].future)[np.newaxis]
        else:
            rows = np.stack(await asyncio.gather(*(item.future for item in pending)))
        if times is not None:
            calls = {id(item.call): item.call for item in pending}.values()  # items of one call share it
            times.queue = min(start for start, _, _ in calls) - submitted
            times.infer = sum(seconds for _, seconds, _ in calls)
            times.batch = max(size for _, _, size in calls)
        return rows

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """``first`` and what else arrives within ``max_wait_s``; True when a stop signal came."""
        batch = [first]
        deadline = time.monotonic() + self._max_wait_s
        while len(batch) < self._max_batch_size:
            timeout = deadline - time.monotonic()
            try:
                # what is already queued is taken even after the deadline (or with no wait at all)
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            self._took()
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        """A worker thread: take a batch, answer it, until a stop signal."""
        while (first := self._queue.get()) is not None:
            self._took()
            batch, stopping = self._collect(first)
            try:
                self._answer_batch(batch)
            except Exception as error:  # a bug here must not leave the batch waiting for its timeout
                logger.exception("a batch of %d could not be run", len(batch))
                self._post(self._resolve, batch, None, error)
            if stopping:
                return

    def _answer_batch(self, batch: list[_Pending]) -> None:
        """Answer ``batch``: one inference per model and length group."""
        by_model: dict[int, list[_Pending]] = {}
        for item in batch:  # a model swap mid-batch: each item runs on its own model
            by_model.setdefault(id(item.model), []).append(item)
        for items in by_model.values():
            lengths = [len(item.sequence) for item in items]
            for group in length_groups(lengths, self._max_batch_size, max_tokens=self._max_batch_tokens):
                # a waiter that gave up (client gone, timed out) is not worth an inference;
                # done() only reads a flag, so asking from this thread is safe
                self._answer([items[i] for i in group if not items[i].future.done()])

    def _answer(self, items: list[_Pending]) -> None:
        """Run one inference for ``items`` and post the outcome to the loop; never raises."""
        if not items:
            return
        try:
            started = time.perf_counter()
            rows = self._infer([item.sequence for item in items], items[0].model)
            call = (started, time.perf_counter() - started, len(items))
            if len(rows) != len(items):
                raise RuntimeError(f"inference returned {len(rows)} rows for {len(items)} texts")
        except Exception as error:
            logger.exception("inference failed for a batch of %d", len(items))
            self._post(self._resolve, items, None, error)
            return
        if self._on_batch:  # before the answer, so a scrape after a response counts its batch
            try:
                self._on_batch(len(items), call[1])  # in this thread: prometheus_client is thread-safe
            except Exception:
                logger.exception("the batch callback failed")
        for item in items:  # read by the request once its future resolves on the loop
            item.call = call
        self._post(self._resolve, items, rows, None)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the event loop (futures are not thread-safe)."""
        with contextlib.suppress(RuntimeError):  # the loop closed without stop(): nobody waits
            self._loop.call_soon_threadsafe(callback, *args)

    def _resolve(self, items: list[_Pending], rows: np.ndarray | None, error: Exception | None) -> None:
        """On the loop: give each still-waiting request its row, or the batch's error."""
        for index, item in enumerate(items):
            if item.future.done():
                continue
            if error is None:
                item.future.set_result(rows[index])
            else:
                item.future.set_exception(error)
