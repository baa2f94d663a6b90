"""Bounded thread pools for blocking work, and the deadline that stops it.

``asyncio.to_thread`` runs on one shared, unbounded-queue pool, and cancelling its await does
not stop the thread: work whose request already got a 504 went on for seconds, and traces
queued there starved the tokenising of long predictions. A :class:`WorkPool` is one kind of
work's own threads, with a cap on the jobs it holds (running or waiting) and a quick
:class:`Overloaded` beyond it. Each job gets a :class:`Deadline` it checks between steps; the
deadline expires at the request's timeout, or at once when the request stops waiting (a 504,
a client gone), so a job ends within one step of that.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from app.errors import Overloaded

T = TypeVar("T")


class Abandoned(Exception):
    """The request a job works for has timed out or gone away; the job stops."""


class Deadline:
    """When a job's request stops waiting: at ``seconds`` from now, or when :meth:`abandon` is called."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds
        self._abandoned = threading.Event()

    @property
    def remaining(self) -> float:
        """Seconds left until the deadline (0 once it passed)."""
        return max(0.0, self._at - time.monotonic())

    def abandon(self) -> None:
        """Nobody waits for the result any more."""
        self._abandoned.set()

    @property
    def expired(self) -> bool:
        """Past the deadline, or abandoned."""
        return self._abandoned.is_set() or time.monotonic() >= self._at

    def check(self) -> None:
        """Raise :class:`Abandoned` when expired; jobs call it between steps."""
        if self.expired:
            raise Abandoned


class WorkPool:
    """``workers`` threads for one kind of work, holding at most ``workers + queue`` jobs;
    ``on_reject`` is called for each job refused because the pool is full (a metric)."""

    def __init__(
        self, name: str, workers: int, queue: int = 0, on_reject: Callable[[], object] | None = None
    ) -> None:
        self.name = name
        self.capacity = workers + queue
        self._on_reject = on_reject
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, job: Callable[[Deadline], T], deadline: Deadline) -> T:
        """``job(deadline)`` on a pool thread; :class:`Overloaded` at once when the pool is full.

        The job's slot is freed when the job ends, not when its caller stops waiting, so a
        caller that times out cannot let more jobs pile up than the pool holds.
        """
        if not self._slots.acquire(blocking=False):
            if self._on_reject is not None:
                self._on_reject()
            raise Overloaded(f"the {self.name} pool is busy ({self.capacity} jobs); retry shortly")
        try:
            future = self._executor.submit(self._call, job, deadline)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())  # in the pool's thread: thread-safe
        try:
            return await asyncio.wrap_future(future)
        except BaseException:
            deadline.abandon()  # a 504 or a client gone: stop the job at its next check
            raise

    @staticmethod
    def _call(job: Callable[[Deadline], T], deadline: Deadline) -> T:
        deadline.check()  # waited in the queue past its request's deadline: not worth starting
        return job(deadline)

    def shutdown(self) -> None:
        """Stop the threads once their current jobs end; queued jobs are dropped."""
        self._executor.shutdown(wait=False, cancel_futures=True)
