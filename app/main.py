"""The FastAPI application: wiring only. ``create_app()`` builds it; ``python -m app`` serves it."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from app.api import admin, health, inspect, lm, pages, v1, v2
from app.errors import BundleError, install_handlers
from app.headers import SecurityHeaders
from app.limits import BodySizeLimit, InFlightLimit, RateLimit
from app.lm_service import LMService
from app.metrics import HttpMetrics, ModelMetrics
from app.service import SentimentService
from app.settings import Settings
from app.store import ModelStore
from app.tracing import RequestSpans
from app.tracking import RequestTracking

logger = logging.getLogger("app")


def create_app(settings: Settings | None = None, store: ModelStore | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment); ``store`` may be pre-loaded."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    service = SentimentService(settings, store or ModelStore(settings), ModelMetrics(registry))
    language_model = LMService(settings, service, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await service.start()
            await asyncio.to_thread(language_model.load)
        except BundleError as error:
            logger.error("cannot load the model bundle: %s", error)
            raise
        _reload_on_sighup(service)
        yield
        await service.stop()
        language_model.stop()

    app = FastAPI(
        title="IMDB LSTM sentiment",
        version="0.1.0",
        summary="Sentiment of movie reviews from an LSTM, with per-gate activation traces.",
        lifespan=lifespan,
        # app.api.pages serves Swagger UI from local assets (FastAPI's pages load from a CDN);
        # ReDoc needs inline styles, which the pages' Content-Security-Policy refuses
        docs_url=None,
        redoc_url=None,
        # None: FastAPI's defaults, which look up the OpenTelemetry providers on every request
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    app.state.lm = language_model
    app.state.registry = registry
    install_handlers(app)
    app.include_router(v1.router)
    app.include_router(v2.router)
    app.include_router(lm.router)
    app.include_router(inspect.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.mount(pages.DOCS_ASSETS, pages.docs_assets(), name="docs-static")
    # Middleware runs outermost-last-added. Cheapest refusals first: CORS preflights, the
    # per-client rate limit, the body size (which reads the body); then the in-flight cap, so a
    # request holds a slot only once its body is read and a slow upload cannot lock others out.
    # All are added before the HTTP metrics, so their 4xx answers are counted there, and before
    # the security headers, so those answers carry them too. Request tracking is the outermost:
    # every answer, a refusal or a server error too, carries the request's ID.
    app.add_middleware(
        InFlightLimit,
        max_in_flight=settings.max_in_flight,
        on_reject=service.metrics.rejected.labels("in_flight").inc,
        gauge=service.metrics.saturation.in_flight,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.rate_limit:
        app.add_middleware(
            RateLimit,
            limit=settings.rate_limit,
            storage=settings.rate_limit_storage,
            store_timeout_s=settings.rate_limit_store_timeout_s,
            on_reject=service.metrics.rejected.labels("rate_limit").inc,
            on_store_error=service.metrics.rate_limit_store_errors.inc,
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-api-key"],
        )
    app.add_middleware(SecurityHeaders, policy=pages.content_security_policy())
    app.add_middleware(HttpMetrics, registry=registry)
    app.add_middleware(
        RequestTracking,
        on_stages=service.metrics.observe_stages,
        access_log=settings.access_log,
        spans=RequestSpans() if settings.opentelemetry else None,
    )
    return app


def _reload_on_sighup(service: SentimentService) -> None:
    """SIGHUP reloads the bundle folder (an operator's atomic switch); only in the main thread."""

    def reload() -> None:
        task = asyncio.ensure_future(service.reload())
        # a rejected bundle is already logged by the store; the old model keeps serving
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    with suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread (tests)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
