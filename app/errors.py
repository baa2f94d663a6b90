"""Domain errors carry their HTTP status; one set of handlers renders them as JSON, in the error
shape of the protocol whose route the request reached (``{"error": {code, message, request_id}}``
unless the route carries another)."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from app.context import current_request_id
from app.routes import find_route


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


class NoGates(ServiceError):
    """A gate trace asked of a model without recurrent gates (a Transformer encoder)."""

    status_code, code = 409, "no_gates"


class ModelNotFound(ServiceError):
    """An Open Inference Protocol request named a model this server does not serve."""

    status_code, code = 404, "model_not_found"


class Disabled(ServiceError):
    """The endpoint is switched off by a setting."""

    status_code, code = 404, "disabled"


class NoMatchIndex(ServiceError):
    """The inspector's corpus index is not loaded (none was built for this model)."""

    status_code, code = 404, "no_match_index"


class StaleMatchIndex(ServiceError):
    """The corpus index was built for another model than the one served."""

    status_code, code = 409, "match_index_stale"


class BundleError(Exception):
    """The model bundle is missing, corrupt or inconsistent; start-up stops on it."""


ErrorBody = Callable[[str, str], dict]


def error_body(code: str, message: str) -> dict:
    """The JSON shape of an error response: ``{"error": {"code", "message", "request_id"}}``,
    the ID of the request being answered (none outside a request: a refused connection)."""
    request_id = current_request_id()
    if request_id is None:
        return {"error": {"code": code, "message": message}}
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def error_body_of(route: object | None) -> ErrorBody:
    """The error shape of the protocol ``route`` belongs to: a route class may carry its own as
    ``error_body`` (the Open Inference Protocol's does); :func:`error_body` otherwise, and for a
    request that matched no route."""
    return getattr(route, "error_body", error_body)


def _error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = error_body_of(request.scope.get("route"))(code, message)
    return JSONResponse(body, status_code=status, headers=headers)


def service_error_response(request: Request, error: ServiceError) -> JSONResponse:
    """The JSON response of a domain error."""
    headers = {"retry-after": "1"} if error.status_code in (429, 503, 504) else None
    return _error_response(request, error.status_code, error.code, error.message, headers)


async def send_error(
    send: Send, scope: Scope, status: int, code: str, message: str, extra: list | None = None
) -> None:
    """Answer a request outside the app's handlers (a middleware's refusal, a server error) with
    an error in the shape of the route it was for, found here as the router would."""
    body = json.dumps(error_body_of(find_route(scope))(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the JSON error shape of the route
    they happened on."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, error: ServiceError) -> JSONResponse:
        return service_error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', 'invalid')}"
            for item in error.errors()
        )
        return _error_response(request, 422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # the framework could not parse the body (e.g. nested too deep)
            return _error_response(request, 422, "invalid_request", "malformed JSON body")
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            error.status_code, "http_error"
        )
        return _error_response(request, error.status_code, code, str(error.detail))

    # An exception no handler above takes is answered, and logged once, by app.tracking's
    # middleware, which sees it before the framework's own last-resort handler would.
