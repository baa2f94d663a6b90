"""Serve the API: ``python -m app [--host H] [--port P]`` (settings from ``SENTIMENT_*``).

The bundle is loaded and checked before the server starts, so a missing, corrupt or
mismatched bundle ends the process with one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading

import uvicorn
from pydantic import ValidationError

from app.connections import guarded_protocol
from app.errors import BundleError
from app.logs import configure_logging
from app.main import create_app
from app.settings import Settings
from app.store import ModelStore


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Serve the IMDB LSTM sentiment API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in containers)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument("--log-level", default=None, help="log level (default: SENTIMENT_LOG_LEVEL)")
    parser.add_argument("--loop", default="auto", help="event loop: auto (uvloop if installed), asyncio")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        configure_logging("text", args.log_level or "info")
        problems = "; ".join(
            f"SENTIMENT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        logging.getLogger("app").error("bad settings: %s", problems)
        sys.exit(2)
    log_level = args.log_level or settings.log_level
    configure_logging(settings.log_format, log_level)
    try:
        store = ModelStore(settings)
        store.load()
    except BundleError as error:
        logging.getLogger("app").error("cannot load the model bundle: %s", error)
        sys.exit(1)
    app = create_app(settings, store)
    protocol = guarded_protocol(
        settings.max_connections,
        settings.max_header_bytes,
        settings.header_timeout_s,
        settings.body_timeout_s,
        on_refuse=lambda reason: app.state.service.metrics.connections_closed.labels(reason).inc(),
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=log_level,
        log_config=None,  # configure_logging's handler and format, for uvicorn's lines too
        access_log=False,  # app.tracking writes the access line, with the request's ID
        loop=args.loop,
        http=protocol,
        # uvicorn wraps the app in its ProxyHeadersMiddleware, whatever the protocol class: from
        # these peers X-Forwarded-For names the client that the rate limit counts
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=settings.request_timeout_s + 5,
    )
    # What is loaded by now (FastAPI, pydantic, numpy, the model) lives as long as the process:
    # frozen, the cyclic garbage collector stops walking it on every full collection, which a
    # profile at saturation showed costing about 5 % of the event loop's time
    gc.freeze()
    DrainingServer(config, app.state.service.drain, settings.drain_s).run()


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain period before a graceful shutdown.

    On the first SIGTERM/SIGINT readiness turns 503 at once while every request is still served,
    so a load balancer stops sending new ones; after ``drain_s`` uvicorn's own graceful shutdown
    runs: the listener closes (new connections are refused), requests in flight finish, then the
    app's shutdown answers whatever is queued. A second signal skips the rest of the drain.
    """

    def __init__(self, config: uvicorn.Config, drain, drain_s: float) -> None:
        super().__init__(config)
        self._drain = drain
        self._drain_s = drain_s
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame) -> None:
        """Start draining on the first signal; stop now on the second."""
        if self._timer is not None or self._drain_s <= 0:
            super().handle_exit(sig, frame)
            return
        logging.getLogger("app").info(
            "signal %d: draining for %.1f s, then shutting down", sig, self._drain_s
        )
        self._drain()
        self._timer = threading.Timer(self._drain_s, super().handle_exit, (sig, frame))
        self._timer.daemon = True
        self._timer.start()


if __name__ == "__main__":
    main()
