"""Security headers on every response, and a Content-Security-Policy on the HTML pages."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Every response: no MIME sniffing (a JSON body is never run as a script or page), no framing
# (clickjacking); X-Frame-Options for browsers that predate CSP's frame-ancestors.
ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"))


class SecurityHeaders:
    """Pure ASGI middleware: adds :data:`ALWAYS` to every response, and ``policy`` as the
    Content-Security-Policy of HTML responses (the pages; an API client never reads it).

    The header lists are built once; a request costs a look at its response's content type.
    """

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.plain = list(ALWAYS)
        self.html = [*ALWAYS, (b"content-security-policy", policy.encode("ascii"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                headers += self.html if _is_html(headers) else self.plain
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"content-type" and value.startswith(b"text/html") for name, value in headers)
