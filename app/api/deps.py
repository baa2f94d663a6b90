"""Dependencies shared by the routes: the service, and the service behind an API-key check.

Each route takes one of these: a guarded route's check and its service are one dependency,
because FastAPI resolves every dependency node on every request and a prediction's budget is
a few milliseconds. They are coroutines although none of them awaits: FastAPI
runs a plain ``def`` dependency in its thread pool, a thread hop per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import Disabled, Unauthorized
from app.service import SentimentService

KeyHeader = Annotated[str | None, Header()]


def _service(request: Request) -> SentimentService:
    return request.app.state.service


async def get_service(request: Request) -> SentimentService:
    """The service created in the app's lifespan (tests may put a fake in ``app.state``).

    The guarded routes' dependencies below read it themselves, not through this one, so a
    ``dependency_overrides[get_service]`` reaches only the unguarded routes.
    """
    return _service(request)


Service = Annotated[SentimentService, Depends(get_service)]


def check_api_key(service: SentimentService, sent_key: str | None) -> None:
    """Raise :class:`Unauthorized` unless no API key is configured or ``sent_key`` is it."""
    expected = service.settings.api_key
    if expected is None:
        return
    # compare_digest takes the same time wherever the two differ; Starlette decodes header bytes
    # as latin-1, so encoding back with it gives exactly the bytes the client sent
    sent = (sent_key or "").encode("latin-1")
    if sent_key is None or not hmac.compare_digest(sent, expected.get_secret_value().encode()):
        raise Unauthorized("a valid X-API-Key header is required")


async def keyed_service(request: Request, x_api_key: KeyHeader = None) -> SentimentService:
    """The service, when no API key is configured or the request carries it in ``X-API-Key``."""
    service = _service(request)
    check_api_key(service, x_api_key)
    return service


KeyedService = Annotated[SentimentService, Depends(keyed_service)]


async def prediction_service(request: Request, x_api_key: KeyHeader = None) -> SentimentService:
    """The service; with ``protect_predictions`` set, prediction endpoints need the key as traces do."""
    service = _service(request)
    if service.settings.protect_predictions:
        check_api_key(service, x_api_key)
    return service


PredictionService = Annotated[SentimentService, Depends(prediction_service)]


async def admin_service(request: Request, x_api_key: KeyHeader = None) -> SentimentService:
    """Operator endpoints exist only when an API key is configured, and need it."""
    service = _service(request)
    if service.settings.api_key is None:
        raise Disabled("set SENTIMENT_API_KEY to use operator endpoints (or send the process SIGHUP)")
    check_api_key(service, x_api_key)
    return service


AdminService = Annotated[SentimentService, Depends(admin_service)]
