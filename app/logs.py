"""Logging for the service: one handler on stderr, text or JSON lines, each with the ID of the
request it was written for (:mod:`app.context`).

JSON lines come from python-json-logger with orjson: ``time``, ``level``, ``logger``,
``message``, ``request_id``, a traceback as ``exc_info``, and the fields a line carries (the
access line's route, status, latency and prediction figures). The text format, for development,
is one line of time, level, logger, request ID and message.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.orjson import OrjsonFormatter

from app.context import current_request_id

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the current request's, or ``missing`` outside one
    (start-up, a batcher thread answering several requests at once)."""

    def __init__(self, missing: str | None) -> None:
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; only adds the field."""
        record.request_id = current_request_id() or self.missing
        return True


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    if log_format == "json":
        return OrjsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: LogFormat, level: str) -> None:
    """Send every logger's records (uvicorn's too) to one stderr handler in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter(None if log_format == "json" else "-"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # No format here shows a record's process or thread: skip looking them up for every record
    # (an access line a request), as the logging HOWTO's "Optimization" section suggests
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
