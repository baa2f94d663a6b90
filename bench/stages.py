"""Where one client's ``/v1/predict`` time goes, stage by stage, over loopback.

    python -m bench.stages --data ../shared/data/aclImdb_v1.tar.gz --bundle models/default

It serves the real app (``python -m app``'s server, batching on) with timestamps taken at each
hand-over of a request: the ASGI entry, the route's call into the service, tokenisation, the
batcher's worker thread, onnxruntime, the way back and the response. One client
(aiohttp, as in ``bench.service``) sends real test reviews one at a time and stamps each send
and each answer. ``time.perf_counter`` is ``CLOCK_MONOTONIC`` on Linux, one clock for both
processes, so a request's stamps line up across them. The same texts go through an in-process
``ModelRuntime.predict`` in blocks alternating with the HTTP ones, the reference of
``bench.service``'s HTTP ratio. Each stage's median and mean over the requests are printed.

The stamps wrap methods of the app's classes (``SentimentService``, ``DynamicBatcher``,
``LoadedModel``); a test runs this module, so a change there that breaks a stamp fails it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench import cli
from bench.service import InProcess, send_each, serving

# (from, to, what happens in between), in a request's order
STAGES = (
    ("send", "asgi_in", "client sends; loopback; uvicorn parses"),
    ("asgi_in", "predict_in", "middleware, routing, body parsing and validation, dependencies"),
    ("predict_in", "encoded", "tokenise"),
    ("encoded", "answer_in", "queue to the batcher's worker thread; collect and group"),
    ("answer_in", "infer_in", "into the inference call"),
    ("infer_in", "infer_out", "onnxruntime"),
    ("infer_out", "resolved", "hop back to the event loop"),
    ("resolved", "submitted", "result back to the request"),
    ("submitted", "predict_out", "prediction to a dict"),
    ("predict_out", "body_send", "response validation, JSON, middleware"),
    # one stage: the client may read the answer before uvicorn's send() has returned
    ("body_send", "recv", "uvicorn writes; loopback; client reads"),
)
STAMPS_PATH = "/__stamps"
Message = dict[str, Any]  # an ASGI message
Send = Callable[[Message], Awaitable[None]]
BLOCKS = 4


def _install_stamps() -> dict[str, list[float]]:
    """Wrap the app's hand-over points so each appends its ``perf_counter`` to a list."""
    import app.__main__ as entry
    from app.batcher import DynamicBatcher
    from app.runtime import LoadedModel
    from app.service import SentimentService

    stamps: dict[str, list[float]] = {}

    def stamp(name: str) -> None:
        if name == "asgi_in" or "asgi_in" in stamps:  # not the start-up warm-up's inference
            stamps.setdefault(name, []).append(time.perf_counter())

    def around(cls: type, name: str, before: str | None, after: str | None) -> None:
        """Stamp ``before`` on entering ``cls.name`` and ``after`` on its return (each if given)."""
        original = getattr(cls, name)
        if inspect.iscoroutinefunction(original):

            async def wrapped(*args: Any, **kwargs: Any) -> Any:
                if before:
                    stamp(before)
                result = await original(*args, **kwargs)
                if after:
                    stamp(after)
                return result
        else:

            def wrapped(*args: Any, **kwargs: Any) -> Any:
                if before:
                    stamp(before)
                result = original(*args, **kwargs)
                if after:
                    stamp(after)
                return result

        setattr(cls, name, wrapped)

    around(SentimentService, "predict", "predict_in", "predict_out")
    around(SentimentService, "_encode", None, "encoded")
    around(DynamicBatcher, "_answer", "answer_in", None)
    around(DynamicBatcher, "_resolve", None, "resolved")
    around(DynamicBatcher, "submit", None, "submitted")
    around(LoadedModel, "infer", "infer_in", "infer_out")

    create_app = entry.create_app

    def stamped_app(settings: Any, runtime: Any) -> Callable[..., Awaitable[None]]:
        """The real app inside an ASGI wrapper that stamps ``/v1/predict`` and serves the stamps."""
        inner = create_app(settings, runtime)

        async def outer(scope: Message, receive: Callable[[], Awaitable[Message]], send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == STAMPS_PATH:
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": json.dumps(stamps).encode()})
                return
            if scope["type"] != "http" or scope["path"] != "/v1/predict":
                await inner(scope, receive, send)
                return
            stamp("asgi_in")

            async def stamped_send(message: Message) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    stamp("body_send")
                await send(message)

            await inner(scope, receive, stamped_send)

        outer.state = inner.state  # python -m app reads app.state.service
        return outer

    entry.create_app = stamped_app
    return stamps


async def _one_client(base: str, texts: Sequence[str], spans: list[tuple[float, float]]) -> None:
    async with aiohttp.ClientSession() as session:
        await send_each(session, base, texts, spans)


def measure(bundle: Path, texts: list[str], threads: int = 2, warmup: int = 20) -> dict:
    """Per stage, the median and mean milliseconds of one client's requests for ``texts``; the
    whole request's; and the in-process ``ModelRuntime.predict`` of the same texts."""
    if len(texts) < BLOCKS or warmup > len(texts):
        raise ValueError(f"need at least {BLOCKS} texts and no more warm-up requests than texts")
    reference = InProcess(bundle, threads)
    env = {"SENTIMENT_THREADS": str(threads), "SENTIMENT_BATCHING": "true"}
    spans: list[tuple[float, float]] = []
    in_process: list[float] = []
    with serving(bundle, env, flags=["--serve"], module="bench.stages") as (_, base, _):
        asyncio.run(_one_client(base, texts[:warmup], []))
        for block in (texts[i::BLOCKS] for i in range(BLOCKS)):
            in_process += reference.milliseconds(block)
            asyncio.run(_one_client(base, block, spans))
        stamps = json.loads(urllib.request.urlopen(base + STAMPS_PATH, timeout=10).read())
    stamps = {name: times[warmup:] for name, times in stamps.items()}
    stamps["send"], stamps["recv"] = (list(times) for times in zip(*spans, strict=True))
    counts = {name: len(times) for name, times in stamps.items()}
    if set(counts.values()) != {len(texts)}:
        raise RuntimeError(f"stamps do not line up with the {len(texts)} requests: {counts}")

    def summary(start: str, end: str) -> dict[str, float]:
        spans = [1000 * (b - a) for a, b in zip(stamps[start], stamps[end], strict=True)]
        return {
            "p50_ms": statistics.median(spans),
            "mean_ms": statistics.fmean(spans),
            "min_ms": min(spans),
        }

    return {
        "bundle": str(bundle),
        "requests": len(texts),
        "threads": threads,
        "stages": [{"from": a, "to": b, "what": what, **summary(a, b)} for a, b, what in STAGES],
        "request": summary("send", "recv"),
        "in_process": {"p50_ms": statistics.median(in_process), "mean_ms": statistics.fmean(in_process)},
    }


def print_stages(figures: dict) -> None:
    """One line per stage (p50 and mean ms), then the whole request and the in-process call."""
    print(f"one client, {figures['requests']} requests, {figures['threads']} onnxruntime threads")
    for row in figures["stages"]:
        print(f"  {row['what']:<64} p50 {row['p50_ms']:6.3f} ms  mean {row['mean_ms']:6.3f} ms")
    request, in_process = figures["request"], figures["in_process"]
    print(f"  {'whole request':<64} p50 {request['p50_ms']:6.3f} ms  mean {request['mean_ms']:6.3f} ms")
    print(
        f"  {'in process (tokenise + onnxruntime), alternated':<64} p50 {in_process['p50_ms']:6.3f} ms"
        f"  mean {in_process['mean_ms']:6.3f} ms"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: measure (default), or ``--serve`` (the stamped server; ``python -m app``'s flags)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--serve" in argv:
        import app.__main__ as entry

        argv.remove("--serve")
        _install_stamps()
        entry.main(argv)
        return
    parser = cli.parser("One client's /v1/predict time, stage by stage, over loopback.")
    parser.add_argument("--requests", type=int, default=400, help="timed requests")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads (server and reference)")
    args = parser.parse_args(argv)
    texts = cli.review_texts(args.data, args.requests)
    figures = measure(args.bundle, texts, args.threads)
    cli.publish(figures, print_stages, args.json)


if __name__ == "__main__":
    main()
