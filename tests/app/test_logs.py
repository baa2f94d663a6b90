"""The log formats: text for development, JSON lines for collectors; both carry the request's ID."""

from __future__ import annotations

import contextvars
import json
import logging

from app.context import RequestContext, start
from app.logs import RequestIdFilter, formatter


def _filtered(message: str, request_id: str | None, missing: str | None, **fields) -> logging.LogRecord:
    """A record as the handler's filter leaves it, written in a request ``request_id`` (None: outside
    any), in a context of its own so that no test sees another's request."""

    def write() -> logging.LogRecord:
        if request_id is not None:
            start(RequestContext(request_id))
        record = logging.makeLogRecord({"name": "app.test", "levelname": "INFO", "msg": message, **fields})
        RequestIdFilter(missing).filter(record)
        return record

    return contextvars.Context().run(write)


def test_json_lines_hold_the_fields_and_the_request_id() -> None:
    record = _filtered("hello %s", "req-9", None, args=("world",), route="/v1/predict", status=200)
    line = json.loads(formatter("json").format(record))
    assert line["message"] == "hello world" and line["level"] == "INFO" and line["logger"] == "app.test"
    assert line["request_id"] == "req-9" and line["route"] == "/v1/predict" and line["status"] == 200
    assert "time" in line
    assert json.loads(formatter("json").format(_filtered("outside", None, None)))["request_id"] is None


def test_text_lines_show_the_id_or_a_dash_outside_a_request() -> None:
    assert "[req-10] inside" in formatter("text").format(_filtered("inside", "req-10", "-"))
    assert "[-] outside" in formatter("text").format(_filtered("outside", None, "-"))
