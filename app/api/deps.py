"""Dependencies shared by the routes.

They are coroutines although none of them awaits: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread hop per dependency per request (see docs/levers.md), and these are a
few attribute reads.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import Disabled, Unauthorized
from app.service import SentimentService


async def get_service(request: Request) -> SentimentService:
    """The service created in the app's lifespan (tests may put a fake in ``app.state``)."""
    return request.app.state.service


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


async def require_api_key(service: Service, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """When an API key is configured, the request must carry it in ``X-API-Key``."""
    check_api_key(service, x_api_key)


ApiKey = Annotated[None, Depends(require_api_key)]


async def require_prediction_key(service: Service, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """With ``protect_predictions`` set, prediction endpoints need the API key as traces do."""
    if service.settings.protect_predictions:
        check_api_key(service, x_api_key)


PredictionKey = Annotated[None, Depends(require_prediction_key)]


async def require_admin_key(service: Service, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Operator endpoints exist only when an API key is configured, and need it."""
    if service.settings.api_key is None:
        raise Disabled("set SENTIMENT_API_KEY to use operator endpoints (or send the process SIGHUP)")
    check_api_key(service, x_api_key)


AdminKey = Annotated[None, Depends(require_admin_key)]
