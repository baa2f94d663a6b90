"""Bounded pools: a quick, reported refusal when full, a slot held until the job really ends, deadlines."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.errors import Overloaded
from app.workpool import Abandoned, Deadline, WorkPool


def test_a_deadline_expires_in_time_or_when_abandoned() -> None:
    deadline = Deadline(60)
    deadline.check()
    deadline.abandon()
    with pytest.raises(Abandoned):
        deadline.check()
    assert Deadline(0).expired


def test_a_full_pool_refuses_at_once_and_frees_a_slot_only_when_the_job_ends() -> None:
    release = threading.Event()
    steps: list[int] = []

    def job(deadline: Deadline) -> str:
        while not release.is_set():
            deadline.check()
            steps.append(1)
            time.sleep(0.01)
        return "done"

    async def scenario() -> None:
        refusals: list[int] = []
        pool = WorkPool("test", workers=1, queue=1, on_reject=lambda: refusals.append(1))
        running = asyncio.ensure_future(pool.run(job, Deadline(60)))
        queued = asyncio.ensure_future(pool.run(job, Deadline(60)))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(Overloaded):
            await pool.run(job, Deadline(60))
        assert time.perf_counter() - started < 0.05  # refused, not queued
        assert refusals == [1]  # and reported
        # the caller stops waiting (a 504): the job stops at its next check...
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await asyncio.sleep(0.1)
        count = len(steps)
        await asyncio.sleep(0.1)
        assert len(steps) > count  # ...the queued job now runs in its place
        release.set()
        assert await queued == "done"
        assert await pool.run(lambda _: 42, Deadline(60)) == 42  # every slot is free again
        pool.shutdown()

    asyncio.run(scenario())


def test_a_job_whose_deadline_passed_while_queued_never_starts() -> None:
    ran = []

    async def scenario() -> None:
        pool = WorkPool("test", workers=1, queue=1)
        blocker = asyncio.ensure_future(pool.run(lambda _: time.sleep(0.2), Deadline(60)))
        await asyncio.sleep(0.01)  # the blocker holds the one thread
        with pytest.raises(Abandoned):
            await pool.run(lambda _: ran.append(1), Deadline(0.05))
        await blocker
        pool.shutdown()

    asyncio.run(scenario())
    assert ran == []
