"""The FastAPI application: wiring only. ``create_app()`` builds it; ``python -m app`` serves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from app.api import health, pages, v1, v2
from app.errors import BundleError, install_handlers
from app.limits import BodySizeLimit
from app.metrics import ModelMetrics
from app.runtime import ModelRuntime
from app.service import SentimentService
from app.settings import Settings

logger = logging.getLogger("app")


def create_app(settings: Settings | None = None, runtime: ModelRuntime | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment); ``runtime`` may be pre-loaded."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    service = SentimentService(settings, runtime or ModelRuntime(settings), ModelMetrics(registry))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await service.start()
        except BundleError as error:
            logger.error("cannot load the model bundle: %s", error)
            raise
        yield
        await service.stop()

    app = FastAPI(
        title="IMDB LSTM sentiment",
        version="0.1.0",
        summary="Sentiment of movie reviews from an LSTM, with per-gate activation traces.",
        lifespan=lifespan,
    )
    app.state.service = service
    install_handlers(app)
    app.include_router(v1.router)
    app.include_router(v2.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    # added before the instrumentator, so its 413s are counted in the request metrics too
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    Instrumentator(registry=registry, excluded_handlers=["/metrics"]).instrument(app).expose(
        app, include_in_schema=False
    )
    return app
