"""Where a request's time goes, as the server itself reports it in its ``Server-Timing`` header.

The service answers ``/v1/predict``, ``/v1/predict/batch`` and ``/v2/models/{name}/infer`` with
the W3C Server-Timing header (https://www.w3.org/TR/server-timing/) naming its stages in
milliseconds::

    Server-Timing: tokenize;dur=0.21, queue;dur=0.05, infer;dur=2.30, serialise;dur=0.08, total;dur=2.71

``total`` is the service's whole handling of the request and ``serialise`` what follows it in the
app (the response's encoding; servers older than it send none); the client's latency beyond
both is the client, the loopback and the HTTP server outside the app.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterator, Sequence

STAGES = ("tokenize", "queue", "infer", "total")


def _split(text: str, separator: str) -> Iterator[str]:
    """``text`` split at ``separator``, except inside double-quoted strings (a ``desc`` may hold
    commas and semicolons); a backslash escapes the next character in a quoted string."""
    part: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            yield "".join(part)
            part = []
            continue
        part.append(char)
    yield "".join(part)


def parse(header: str) -> dict[str, float]:
    """Each metric's ``dur`` in milliseconds by name, from one or more comma-joined header values.

    Metrics without a ``dur`` (or with one that is not a number) are left out; names are
    compared case-insensitively (lower-cased here), as the spec's parameter names are; the
    first ``dur`` of a metric counts, and the first metric of a name.
    """
    durations: dict[str, float] = {}
    for entry in _split(header, ","):
        name, *params = (piece.strip() for piece in _split(entry, ";"))
        if not name or name.lower() in durations:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "dur":
                with contextlib.suppress(ValueError):
                    durations[name.lower()] = float(value.strip().strip('"'))
                break
    return durations


def breakdown(requests: Sequence[tuple[float, dict[str, float]]]) -> dict | None:
    """Median and mean milliseconds of each stage over ``requests`` (the client's latency in ms,
    the parsed header), with the service's time beyond its named stages (``total`` - the others),
    ``serialise`` when the server sends it, and the time outside the app (client latency -
    ``total`` - ``serialise``); None when no request had every stage.
    """
    complete = [(latency, stages) for latency, stages in requests if all(s in stages for s in STAGES)]
    if not complete:
        return None
    columns = {name: [stages[name] for _, stages in complete] for name in STAGES}
    columns["rest of the app"] = [
        stages["total"] - sum(stages[s] for s in STAGES if s != "total") for _, stages in complete
    ]
    serialised = [stages.get("serialise", 0.0) for _, stages in complete]
    if any(serialised):
        columns["serialise"] = serialised
    columns["outside the app"] = [
        latency - stages["total"] - serialise
        for (latency, stages), serialise in zip(complete, serialised, strict=True)
    ]
    columns["client"] = [latency for latency, _ in complete]
    return {
        "requests": len(complete),
        "stages": [
            {"stage": name, "p50_ms": statistics.median(values), "mean_ms": statistics.mean(values)}
            for name, values in columns.items()
        ],
    }
