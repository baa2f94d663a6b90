"""Each request's context: its ID, and what its prediction did, for its log lines, its error body
and its access line.

The outermost middleware (:class:`app.tracking.RequestTracking`) gives every HTTP request an
ID: the client's ``X-Request-ID`` when it is a safe token, else a new one. The ID goes back in the response's
``X-Request-ID`` header (refusals of the other middleware and server errors included), into
every log line written while the request runs (:class:`app.logs.RequestIdFilter` reads it from
here), into the ``{"error": {...}}`` bodies of the service's own routes, and onto the request's
OpenTelemetry span. The service fills in the prediction's figures (texts, tokens, batch size,
model version, stage times); the middleware writes one access line per request from them.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

from app.metrics import StageTimes

HEADER = b"x-request-id"
# A client's ID is kept when it is 1-128 characters of letters, digits and ``-_.:+=/``: enough
# for UUIDs, W3C trace IDs, ULIDs and base64 tokens, and nothing that could break a log line or
# a header (no spaces, quotes, control characters or non-ASCII).
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:+=/-]{1,128}")


@dataclass(slots=True)
class RequestContext:
    """One request's ID, and the figures of its prediction once the service has them."""

    id: str
    times: StageTimes | None = None  # set by a prediction; its serialising stage ends at the response
    texts: int = 0
    tokens: int = 0
    model_version: str | None = None

    def record(self, times: StageTimes, texts: int, tokens: int, model_version: str) -> None:
        """The figures of the request's prediction."""
        self.times, self.texts, self.tokens, self.model_version = times, texts, tokens, model_version


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def current() -> RequestContext | None:
    """The context of the request being handled in this task; None outside a request."""
    return _current.get()


def current_request_id() -> str | None:
    """The ID of the request being handled in this task; None outside a request."""
    context = _current.get()
    return context.id if context is not None else None


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` when it is safe to repeat, else a new random one."""
    for name, value in headers:
        if name == HEADER:
            if _SAFE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


def start(context: RequestContext) -> None:
    """Make ``context`` the current request's in this task.

    Set and deliberately never reset: each request runs in a task of its own, so the value dies
    with the task, and it is still there for whatever runs after the app returns or raises.
    """
    _current.set(context)
