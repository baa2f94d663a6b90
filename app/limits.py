"""Limits enforced before a request reaches the app: body size, requests in flight, rate."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, WindowStats
from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import send_error as _answer  # answered before routing, in the route's shape

logger = logging.getLogger("app.limits")


class BodySizeLimit:
    """Pure ASGI middleware: a body over ``max_bytes`` gets a 413 and never reaches the app.

    A declared ``Content-Length`` over the limit is refused before anything is read. Otherwise
    the body (chunked or not) is read here, at most ``max_bytes`` of it, and replayed to the app;
    reading it here rather than failing inside the app's own read keeps the answer a 413 (the
    framework turns any error while it reads a body into a 400).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await _answer(send, scope, 400, "invalid_request", "Content-Length is not a number")
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(send, scope)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send, scope)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, scope: Scope) -> None:
        await _answer(send, scope, 413, "payload_too_large", f"request body over {self.max_bytes} bytes")


# Routes that run the model; health, metrics, docs and pages stay answerable under overload.
MODEL_ROUTES = ("/v1/predict", "/v1/trace", "/v2/models/", "/v1/lm/")


def _runs_the_model(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["path"].startswith(MODEL_ROUTES)


class InFlightLimit:
    """Pure ASGI middleware: at most ``max_in_flight`` model requests at once; beyond, a quick 429.

    Queueing without bound only turns overload into timeouts for everyone; refusing at the door
    costs microseconds and tells the client (and a load balancer) to retry elsewhere or later.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_in_flight: int,
        on_reject: Callable[[], None] | None = None,
        gauge: Gauge | None = None,
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._on_reject = on_reject
        # read at each scrape (sentiment_in_flight_requests): nothing more per request
        if gauge is not None:
            gauge.set_function(lambda: self.in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _runs_the_model(scope):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            if self._on_reject:
                self._on_reject()
            message = f"{self.max_in_flight} requests are in flight; retry shortly"
            await _answer(send, scope, 429, "overloaded", message, [(b"retry-after", b"1")])
            return
        self.in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class RateLimit:
    """Pure ASGI middleware: per-client limits on the model routes, counted by ``limits``.

    The client is the connection's peer address, or the one uvicorn's proxy-headers middleware
    took from ``X-Forwarded-For`` when the peer is a trusted proxy (``forwarded_allow_ips``).
    ``limits`` (the engine under slowapi) counts in a moving window, in this process's memory or
    in a store that every replica shares (Redis), so N replicas allow a client the limit once,
    not N times. slowapi's own middleware finds routes by walking ``app.routes``, which in this
    FastAPI version no longer lists the routes of included routers, so it would exempt every route.

    A shared store is asked through limits' asyncio storage (the event loop never waits on a
    socket) and within ``store_timeout_s``. A store that fails or is late lets the request
    through and calls ``on_store_error``: the limit guards the service, and an outage of Redis
    must not become an outage of the service (nor cost a client its whole deadline).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: str,
        storage: str = "memory://",
        store_timeout_s: float = 0.02,
        on_reject: Callable[[], None] | None = None,
        on_store_error: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.items = parse_many(limit)
        self.limiter = _moving_window(storage)
        self.store_timeout_s = store_timeout_s
        self._on_reject = on_reject
        self._on_store_error = on_store_error
        self._store_failing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _runs_the_model(scope):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        try:
            async with asyncio.timeout(self.store_timeout_s):
                exceeded = await self._exceeded(client)
            self._store_answered()
        except (StorageError, TimeoutError, OSError) as error:
            self._store_failed(error)
            exceeded = None  # fail open
        if exceeded is not None:
            item, reset_time = exceeded
            if self._on_reject:
                self._on_reject()
            retry = max(1, int(reset_time - time.time()))
            message = f"rate limit {item} exceeded for {client}"
            await _answer(send, scope, 429, "rate_limited", message, [(b"retry-after", str(retry).encode())])
            return
        await self.app(scope, receive, send)

    async def _exceeded(self, client: str) -> tuple[RateLimitItem, float] | None:
        """Count a hit on every limit; the first one over, and when its window resets, if any."""
        for item in self.items:
            if not await self.limiter.hit(item, client):
                return item, (await self.limiter.get_window_stats(item, client)).reset_time
        return None

    def _store_failed(self, error: BaseException) -> None:
        if self._on_store_error:
            self._on_store_error()
        if not self._store_failing:  # one line per outage, not one per request
            self._store_failing = True
            logger.warning("rate-limit store unavailable, requests pass unlimited: %r", error)

    def _store_answered(self) -> None:
        if self._store_failing:
            self._store_failing = False
            logger.warning("rate-limit store answers again")


class _InProcess:
    """limits' moving window in this process's memory, behind the asyncio limiter's interface.

    The synchronous memory storage is plain dictionary work that never waits, so it is called
    directly; limits' asyncio memory storage would hand its expiry scan to a thread per key.
    """

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, item: RateLimitItem, client: str) -> bool:
        return self._limiter.hit(item, client)

    async def get_window_stats(self, item: RateLimitItem, client: str) -> WindowStats:
        return self._limiter.get_window_stats(item, client)


def _moving_window(storage: str) -> _InProcess | AsyncMovingWindowRateLimiter:
    """A moving-window limiter on ``storage`` (``memory://`` or a ``redis://`` URI)."""
    if storage.startswith("memory://"):
        return _InProcess()
    # redis-py's asyncio client; the errors of any client come wrapped as limits' StorageError
    store = storage_from_string(f"async+{storage}", wrap_exceptions=True, implementation="redispy")
    return AsyncMovingWindowRateLimiter(store)
