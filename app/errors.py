"""Domain errors carry their HTTP status; one set of handlers renders ``{"error": {code, message}}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ServiceError(Exception):
    """Base of the errors a client can be told about."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    """A request that is well-formed JSON but asks for something the model does not have."""

    status_code, code = 422, "invalid_request"


class Overloaded(ServiceError):
    """A bounded pool or queue is full; the client should retry shortly."""

    status_code, code = 429, "overloaded"


class PayloadTooLarge(ServiceError):
    """A body, text or batch over the configured limits."""

    status_code, code = 413, "payload_too_large"


class Unauthorized(ServiceError):
    """A missing or wrong API key."""

    status_code, code = 401, "unauthorized"


class NotReady(ServiceError):
    """The model is not loaded (or not warmed up) yet."""

    status_code, code = 503, "not_ready"


class EmptyText(ServiceError):
    """A text with nothing the tokenizer can read (empty, whitespace, only control characters)."""

    status_code, code = 422, "empty_text"


class Timeout(ServiceError):
    """The request was not answered within the configured time."""

    status_code, code = 504, "timeout"


class ReloadRejected(ServiceError):
    """A reload found a bad bundle; the model already served stays."""

    status_code, code = 409, "reload_rejected"


class ModelNotFound(ServiceError):
    """An Open Inference Protocol request named a model this server does not serve."""

    status_code, code = 404, "model_not_found"


class Disabled(ServiceError):
    """The endpoint is switched off by a setting."""

    status_code, code = 404, "disabled"


class BundleError(Exception):
    """The model bundle is missing, corrupt or inconsistent; start-up stops on it."""


def error_body(code: str, message: str, path: str = "") -> dict:
    """The JSON shape of every error response: ``{"error": {"code", "message"}}``, except on the
    Open Inference Protocol routes, whose specification says ``{"error": "message"}``."""
    if path == "/v2" or path.startswith("/v2/"):
        return {"error": f"{code}: {message}"}
    return {"error": {"code": code, "message": message}}


def service_error_response(request: Request, error: ServiceError) -> JSONResponse:
    """The JSON response of a domain error."""
    headers = {"retry-after": "1"} if error.status_code in (429, 503, 504) else None
    body = error_body(error.code, error.message, request.url.path)
    return JSONResponse(body, status_code=error.status_code, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the JSON error shape."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, error: ServiceError) -> JSONResponse:
        return service_error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', 'invalid')}"
            for item in error.errors()
        )
        body = error_body("invalid_request", problems or "invalid request", request.url.path)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # the framework could not parse the body (e.g. nested too deep)
            return JSONResponse(error_body("invalid_request", "malformed JSON body", request.url.path), 422)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            error.status_code, "http_error"
        )
        body = error_body(code, str(error.detail), request.url.path)
        return JSONResponse(body, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # no logging here: Starlette re-raises after this handler and the server logs it once
        body = error_body("internal_error", "internal server error", request.url.path)
        return JSONResponse(body, status_code=500)
