"""Limits enforced before a request reaches the app: body size, requests in flight, rate."""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import send_error as _answer  # answered before routing, in the route's shape


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
MODEL_ROUTES = ("/v1/predict", "/v1/trace", "/v2/models/")


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
    """Pure ASGI middleware: per-client-address limits on the model routes, with ``limits``.

    ``limits`` (the engine under slowapi) does the counting, in a moving window in memory. slowapi's
    own middleware finds routes by walking ``app.routes``, which in this FastAPI version no longer
    lists the routes of included routers, so it would exempt every route.
    """

    def __init__(self, app: ASGIApp, limit: str, on_reject: Callable[[], None] | None = None) -> None:
        self.app = app
        self.items = parse_many(limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self._on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _runs_the_model(scope):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        for item in self.items:
            if not self.limiter.hit(item, client):
                if self._on_reject:
                    self._on_reject()
                retry = max(1, int(self.limiter.get_window_stats(item, client).reset_time - time.time()))
                message = f"rate limit {item} exceeded for {client}"
                await _answer(
                    send, scope, 429, "rate_limited", message, [(b"retry-after", str(retry).encode())]
                )
                return
        await self.app(scope, receive, send)
