"""Serve the API: ``python -m app [--host H] [--port P]`` (settings from ``SENTIMENT_*``).

The bundle is loaded and checked before the server starts, so a missing, corrupt or
mismatched bundle ends the process with one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from app.errors import BundleError
from app.main import create_app
from app.runtime import ModelRuntime
from app.settings import Settings


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="Serve the IMDB LSTM sentiment API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in containers)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    parser.add_argument("--loop", default="auto", help="event loop: auto (uvloop if installed), asyncio")
    parser.add_argument("--http", default="auto", help="HTTP parser: auto (httptools if installed), h11")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
        runtime = ModelRuntime(settings)
        runtime.load()
    except ValidationError as error:
        problems = "; ".join(
            f"SENTIMENT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        logging.getLogger("app").error("bad settings: %s", problems)
        sys.exit(2)
    except BundleError as error:
        logging.getLogger("app").error("cannot load the model bundle: %s", error)
        sys.exit(1)
    uvicorn.run(
        create_app(settings, runtime),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        loop=args.loop,
        http=args.http,
    )


if __name__ == "__main__":
    main()
