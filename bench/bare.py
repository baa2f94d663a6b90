"""A bare ASGI server around :meth:`ModelRuntime.predict`: the least a Python HTTP service can do.

    python -m bench.bare --port 8001 [--mode inline|thread|echo]

Not the service, and not for use: it has no validation, no limits, no metrics, no batcher and no
error handling. ``bench.floor`` serves the same reviews through it and through ``python -m app``
to find the floor under the service's HTTP overhead on this machine: what uvicorn (with uvloop
and httptools, as the service runs), the loopback and the client cost with no app at all.

Modes:

* ``inline``: ``POST /v1/predict`` tokenises and runs onnxruntime on the event loop itself;
* ``thread``: the same call in a worker thread (one hop there and back, as a non-blocking
  server needs);
* ``echo``: answers a fixed prediction without running the model (the HTTP path alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

import uvicorn

from app.runtime import ModelRuntime
from app.settings import Settings

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
MODES = ("inline", "thread", "echo")
JSON_HEADERS = [(b"content-type", b"application/json")]
ECHO = {
    "label": "positive",
    "score": 0.5,
    "probabilities": {"negative": 0.5, "positive": 0.5},
    "tokens": 1,
    "truncated": False,
    "model": {"name": "echo", "version": "0"},
}


def make_app(runtime: ModelRuntime, mode: str) -> Callable[[dict, Receive, Send], Awaitable[None]]:
    """The ASGI app: ``GET /readyz`` answers 200, ``POST /v1/predict`` takes ``{"text": ...}``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")

    def predict(text: str) -> dict:
        # the service's response fields, so both servers write and send the same amount
        return {**runtime.predict([text])[0].as_dict(), "model": runtime.model.ref}

    async def app(scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: nothing to start or stop
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/v1/predict":
            text = json.loads(body)["text"]
            if mode == "inline":
                answer = predict(text)
            elif mode == "thread":
                answer = await asyncio.to_thread(predict, text)
            else:
                answer = ECHO
        else:
            answer = {"status": "ready"}
        payload = json.dumps(answer).encode()
        # with a length uvicorn sends the body as is, as for the service's responses (not chunked)
        headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: the bundle comes from ``SENTIMENT_MODEL_DIR`` and the threads from ``SENTIMENT_THREADS``,
    as for ``python -m app``."""
    parser = argparse.ArgumentParser(description="A bare ASGI server around ModelRuntime.predict.")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--mode", choices=MODES, default="inline")
    args = parser.parse_args(argv)
    runtime = ModelRuntime(Settings())
    runtime.load()
    uvicorn.run(make_app(runtime, args.mode), host="127.0.0.1", port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
