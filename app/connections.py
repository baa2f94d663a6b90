"""The HTTP connection guard: bounds on what a client may hold open, below the ASGI app.

uvicorn's httptools protocol, as shipped, lets a client keep a connection for as long as it
likes while it sends a request's headers or body a byte at a time (slowloris), buffers a header
of any size (httptools grows it by concatenation: a 64 MB header froze the server for 8 s), and
accepts connections without a bound. The app cannot help: it sees a request only once its
headers are complete. :func:`guarded_protocol` returns the protocol with four bounds:

- a connection beyond ``max_connections`` is closed as soon as it is accepted;
- headers over ``max_header_bytes`` get a 431 and the connection is closed;
- a request (from its first byte, or from the connection's start) whose headers are not
  complete within ``header_timeout_s`` gets a 408 and is closed; so does a connection that
  sends nothing, and an HTTP/0.9 line that the parser waits on forever;
- a body (declared or chunked) not complete within ``body_timeout_s`` of its headers gets a
  408 and is closed; the app, if it was reading it, sees the client disconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import error_body

logger = logging.getLogger("app.connections")


def _response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps(error_body(code, message)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(
    max_connections: int,
    max_header_bytes: int,
    header_timeout_s: float,
    body_timeout_s: float,
    on_refuse=None,
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the module's bounds; ``on_refuse(reason)`` counts refusals."""
    too_large = _response(
        431, "Request Header Fields Too Large", "headers_too_large", f"headers over {max_header_bytes} bytes"
    )
    header_late = _response(
        408, "Request Timeout", "request_timeout", f"headers not received within {header_timeout_s:g} s"
    )
    body_late = _response(
        408, "Request Timeout", "request_timeout", f"body not received within {body_timeout_s:g} s"
    )

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """HttpToolsProtocol with a connection cap, a header size limit and read deadlines."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._header_bytes = 0  # bytes received while headers were incomplete
            self._parsed_bytes = 0  # bytes of the headers parsed so far
            self._in_headers = False
            self._refused = False
            self._read_timer: asyncio.TimerHandle | None = None
            if len(self.connections) > max_connections:
                self._refuse("connections", None)
                return
            # a connection that never sends a byte is held no longer than one that sends too slowly
            self._arm(header_timeout_s, header_late, "header_timeout")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:  # the rest of a refused request is not parsed
                return
            super().data_received(data)
            # counted after parsing: a chunk that completed the headers is not header bytes only
            if self._in_headers and not self.transport.is_closing():
                self._header_bytes += len(data)
                if self._header_bytes > max_header_bytes:
                    self._refuse("header_size", too_large)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers, self._header_bytes, self._parsed_bytes = True, 0, 0
            if self._read_timer is None:  # else: armed since the connection opened
                self._arm(header_timeout_s, header_late, "header_timeout")

        def on_url(self, url: bytes) -> None:
            self._parsed_bytes += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._parsed_bytes += len(name) + len(value) + 4  # ": " and CRLF
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm()
            if self._parsed_bytes > max_header_bytes:  # headers that arrived whole, in one read
                self._refuse("header_size", too_large)
                return
            super().on_headers_complete()
            if not self.transport.is_closing():
                self._arm(body_timeout_s, body_late, "body_timeout")

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self._disarm()
            if not self._refused:
                super().on_message_complete()

        def _arm(self, seconds: float, answer: bytes, reason: str) -> None:
            self._disarm()
            self._read_timer = self.loop.call_later(seconds, self._refuse, reason, answer)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _refuse(self, reason: str, answer: bytes | None) -> None:
            """Answer ``answer`` (unless a response has begun) and close the connection."""
            self._disarm()
            self._refused = True
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if answer is not None and (
                cycle is None or cycle.response_complete or not cycle.response_started
            ):
                if cycle is not None and not cycle.response_complete:
                    cycle.disconnected = True  # the app's later sends are dropped, its reads end
                    cycle.message_event.set()
                self.transport.write(answer)
            self.transport.close()
            if on_refuse is not None:
                on_refuse(reason)
            logger.debug("closed a connection from %s: %s", self.client, reason)

    return GuardedHttpToolsProtocol
