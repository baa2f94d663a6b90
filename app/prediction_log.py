"""The prediction log: a sample of the served predictions, one JSON object a line, in files that
rotate by size; what ``python -m app.drift`` compares with the bundle's reference.

A request never waits for it and never fails because of it. The request's event loop only puts
one small entry per text on a bounded queue (``put_nowait``); a full queue drops the entry and
counts the drop (``sentiment_prediction_log_dropped_total``). A writer thread (the standard
library's ``QueueListener``) turns entries into JSON, hashes texts when asked, and hands the
lines to a ``RotatingFileHandler``, which rotates ``prediction_log`` at ``max_bytes`` and keeps
``backups`` older files beside it (``.1`` the newest).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import queue
import random
import time
from collections.abc import Callable
from logging.handlers import QueueListener, RotatingFileHandler
from pathlib import Path
from typing import Literal

import orjson

TextMode = Literal["off", "hash", "full"]


class _Lines(logging.Formatter):
    """A record's entry as one JSON line; made once, though the handler asks twice (its rollover
    check formats the record too)."""

    def format(self, record: logging.LogRecord) -> str:
        line = getattr(record, "line", None)
        if line is None:
            line = record.line = orjson.dumps(record.msg).decode()
        return line


class _Writer(QueueListener):
    """The writer thread: entries (dicts) become records here, off the request's path."""

    def __init__(self, entries: queue.Queue, handler: logging.Handler, text: TextMode) -> None:
        super().__init__(entries, handler)
        self.text = text

    def prepare(self, entry: dict) -> logging.LogRecord:  # type: ignore[override]
        """The entry's record, with its time in ISO 8601 and its text hashed when asked."""
        entry["time"] = dt.datetime.fromtimestamp(entry["time"], dt.UTC).isoformat(timespec="milliseconds")
        if self.text == "hash":
            text = entry.pop("text").encode("utf-8", errors="surrogatepass")  # never raises here
            entry["text_sha256"] = hashlib.sha256(text).hexdigest()
        return logging.makeLogRecord({"msg": entry})

    def enqueue_sentinel(self) -> None:
        """Wait for room for the stop signal: everything queued before a stop is written."""
        self.queue.put(self._sentinel)


class PredictionLog:
    """A sampled, non-blocking JSONL sink of predictions (see the module's docstring).

    ``handler`` is what the writer thread hands the lines to; by default the rotating file
    handler on ``path`` (``max_bytes``, ``backups``). Give another one to write elsewhere, or to
    make the writer slow in a test; it gets this log's line formatter.
    """

    def __init__(
        self,
        path: Path,
        sample: float,
        text: TextMode,
        max_bytes: int,
        backups: int,
        queue_size: int,
        on_drop: Callable[[], None],
        handler: logging.Handler | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if handler is None:
            handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        handler.setFormatter(_Lines())
        self.path = path
        self.sample = sample
        self.text = text
        self._entries: queue.Queue[dict] = queue.Queue(queue_size)
        self._writer = _Writer(self._entries, handler, text)
        self._handler = handler
        self._on_drop = on_drop

    def start(self) -> None:
        """Start the writer thread."""
        self._writer.start()

    def stop(self) -> None:
        """Write what is queued, stop the writer thread and close the file (blocks until then)."""
        self._writer.stop()
        self._handler.close()

    def record(
        self,
        request_id: str | None,
        model: dict[str, str],
        items: list[dict],
        unk_rates: list[float],
        texts: list[str],
        latency_s: float,
    ) -> None:
        """Queue one entry per text of a request, when the request is drawn in the sample."""
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        now = time.time()
        for index, (item, unk_rate, text) in enumerate(zip(items, unk_rates, texts, strict=True)):
            entry = {
                "request_id": request_id,
                "index": index,
                "time": now,
                "model": model["name"],
                "model_version": model["version"],
                "label": item["label"],
                "score": item["score"],
                "tokens": item["tokens"],
                "unk_rate": unk_rate,
                "latency_ms": round(latency_s * 1000, 3),
            }
            if self.text != "off":
                entry["text"] = text
            try:
                self._entries.put_nowait(entry)
            except queue.Full:
                self._on_drop()
