"""The outermost middleware: each request's ID and context (:mod:`app.context`), its
``X-Request-ID`` and ``Server-Timing`` headers, the serialise stage, its OpenTelemetry stage
spans (:mod:`app.tracing`), one access line, and the answer to a server error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context import HEADER, RequestContext, request_id_of, start
from app.errors import send_error
from app.metrics import StageTimes
from app.routes import find_route
from app.tracing import RequestSpans

access_logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.error")


class RequestTracking:
    """Pure ASGI middleware, the outermost: the request's ID and context, the ``X-Request-ID``
    and ``Server-Timing`` headers, the serialise stage, one access line, and server errors.

    An exception that escapes the app is logged here once, with its traceback and the request's
    ID, and answered with a 500 in the route's error shape that says nothing about it; the
    framework's own handler (which the server would log again) never sees it.
    """

    def __init__(
        self,
        app: ASGIApp,
        on_stages: Callable[[StageTimes], None],
        access_log: bool = True,
        spans: RequestSpans | None = None,
    ) -> None:
        self.app = app
        self.on_stages = on_stages
        self.access_log = access_log
        self.spans = spans  # OpenTelemetry, when on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id_of(scope["headers"]))
        start(context)
        if self.spans is not None:
            self.spans.tag(context)
        started = time.perf_counter()
        status: int | None = None

        async def send_tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": self._headers(context, message.get("headers") or ())}
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            error_logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if status is not None:  # the response has started: nothing else can be sent
                raise
            status = 500
            await send_error(send_tracked, scope, 500, "internal_error", "internal server error")
        finally:
            if self.access_log:
                self._log(scope, context, status, time.perf_counter() - started)

    def _headers(self, context: RequestContext, headers) -> list[tuple[bytes, bytes]]:
        """The response's headers plus its ID and, after a prediction, its stages' times."""
        headers = [*headers, (HEADER, context.id.encode("ascii"))]
        times = context.times
        if times is not None:
            times.serialise = time.perf_counter() - (times.started + times.total)
            self.on_stages(times)
            if self.spans is not None:
                self.spans.record(context)
            headers.append((b"server-timing", times.server_timing().encode("ascii")))
        return headers

    @staticmethod
    def _log(scope: Scope, context: RequestContext, status: int | None, seconds: float) -> None:
        """One line per request; ``status`` None: the client went away before an answer."""
        route = getattr(scope.get("route") or find_route(scope), "path", None)
        fields = {
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
        }
        if context.times is not None:
            fields |= {
                "texts": context.texts,
                "tokens": context.tokens,
                "batch_size": context.times.batch,
                "model_version": context.model_version,
            }
        access_logger.info(
            "%s %s %s %.2f ms", scope["method"], scope["path"], status or "-", seconds * 1000, extra=fields
        )
