"""Dynamic batching: concurrent requests share one onnxruntime call.

Requests queue their token-id sequences; a single worker takes what arrived within
``max_wait`` (up to ``max_batch_size`` sequences), sorts them by length and cuts the sorted run
wherever one more sequence would make the batch's padded size more than ``waste`` times its
real tokens, so a short text never pays for a long one. Every sequence carries its own length
into the graph (``sequence_lens``), so batching never changes a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import NotReady

logger = logging.getLogger("app.batcher")

# infer(sequences, model): ``model`` is whatever the caller submitted with the sequences (the
# service passes the loaded model its token ids belong to); only equal ones share a call
Infer = Callable[[list[list[int]], Any], np.ndarray]


@dataclass
class _Pending:
    sequence: list[int]
    future: asyncio.Future
    model: Any


def length_groups(
    lengths: list[int], max_batch_size: int, waste: float = 1.5, max_tokens: int | None = None
) -> list[list[int]]:
    """Indices grouped for inference: sorted by length, each group's padded size at most
    ``waste`` times its real tokens and at most ``max_tokens``, and at most ``max_batch_size`` long.

    1.5 lets up to a third of a batch's steps be padding: enough to coalesce reviews of similar
    length, while a 10-token text is never padded to the length of a 500-token neighbour. The
    token budget bounds the memory of one call (its activations grow with batch x length).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    for index in order:
        group = groups[-1] if groups else None
        if group is not None and len(group) < max_batch_size:
            real = sum(lengths[i] for i in group) + lengths[index]
            padded = lengths[index] * (len(group) + 1)  # sorted: this one is the longest
            if padded <= waste * real and (max_tokens is None or padded <= max_tokens):
                group.append(index)
                continue
        groups.append([index])
    return groups


class DynamicBatcher:
    """Coalesces concurrent :meth:`submit` calls into few inference calls."""

    def __init__(
        self,
        infer: Infer,
        max_batch_size: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None = None,
        workers: int = 1,
        max_batch_tokens: int | None = None,
    ) -> None:
        self._infer = infer
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._workers: list[asyncio.Task] = []
        self._worker_count = workers
        self._max_batch_tokens = max_batch_tokens
        self._closing = False

    @property
    def running(self) -> bool:
        """Accepting work: started, not stopping, worker alive."""
        return bool(self._workers) and not any(w.done() for w in self._workers) and not self._closing

    async def start(self) -> None:
        """Start the worker tasks (inside the running event loop)."""
        self._closing = False
        self._workers = [
            asyncio.create_task(self._run(), name=f"dynamic-batcher-{i}") for i in range(self._worker_count)
        ]

    async def stop(self) -> None:
        """Refuse new work, answer everything already queued, then stop the worker."""
        self._closing = True
        alive = [w for w in self._workers if not w.done()]
        if alive:
            await self._queue.join()
            for worker in alive:
                worker.cancel()
            for worker in alive:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        while not self._queue.empty():  # only if the worker was never started
            self._queue.get_nowait().future.cancel()

    async def submit(self, sequences: list[list[int]], model: Any = None) -> np.ndarray:
        """Probabilities ``[len(sequences), classes]`` for ``sequences`` (run by ``model``), in order."""
        if not self.running:
            raise NotReady("the server is not accepting predictions (starting or shutting down)")
        loop = asyncio.get_running_loop()
        pending = [_Pending(sequence, loop.create_future(), model) for sequence in sequences]
        for item in pending:
            self._queue.put_nowait(item)
        return np.stack(await asyncio.gather(*(item.future for item in pending)))

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while len(batch) < self._max_batch_size:
            timeout = deadline - asyncio.get_running_loop().time()
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
            elif timeout <= 0:
                break
            else:
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            try:
                by_model: dict[int, list[_Pending]] = {}
                for item in batch:  # a model swap mid-batch: each item runs on its own model
                    by_model.setdefault(id(item.model), []).append(item)
                for items in by_model.values():
                    lengths = [len(item.sequence) for item in items]
                    for group in length_groups(
                        lengths, self._max_batch_size, max_tokens=self._max_batch_tokens
                    ):
                        # a waiter that gave up (client gone, timed out) is not worth an inference
                        await self._answer([items[i] for i in group if not items[i].future.done()])
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _answer(self, items: list[_Pending]) -> None:
        """Run one inference for ``items`` and resolve their futures; never raises, so the worker lives."""
        if not items:
            return
        try:
            rows = await asyncio.to_thread(self._infer, [item.sequence for item in items], items[0].model)
            if len(rows) != len(items):
                raise RuntimeError(f"inference returned {len(rows)} rows for {len(items)} texts")
            for item, row in zip(items, rows, strict=True):
                if not item.future.done():
                    item.future.set_result(row)
            if self._on_batch:
                self._on_batch(len(items))
        except Exception as error:
            logger.exception("inference failed for a batch of %d", len(items))
            for item in items:
                if not item.future.done():
                    item.future.set_exception(error)
