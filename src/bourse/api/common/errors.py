"""From the core's exception tree to HTTP: status codes, and a renderer per dialect.

Each dialect registers how its error body looks for its path prefixes; anything
else gets the native body ``{"code", "message", "details", "requestId"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bourse.domain import errors as e

log = structlog.get_logger("bourse.api")

STATUS: list[tuple[type[e.BourseError], int]] = [
    (e.InvalidInput, 400),
    (e.NotAuthenticated, 401),
    (e.PermissionDenied, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.InProgress, 409),
    (e.TooManyRequests, 429),
    (e.BusinessRejection, 400),
    (e.InvariantViolation, 500),
]

HTTP_CODES = {
    400: e.InvalidInput,
    401: e.NotAuthenticated,
    403: e.PermissionDenied,
    404: e.NotFound,
    405: e.InvalidInput,
    409: e.Conflict,
    429: e.TooManyRequests,
}


def status_of(error: e.BourseError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


Renderer = Callable[[e.BourseError, int, str | None], JSONResponse]


def native_body(error: e.BourseError, status: int, request_id: str | None) -> JSONResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message, "requestId": request_id}
    if error.details:
        body["details"] = error.details
    return JSONResponse(body, status_code=status)


_renderers: list[tuple[str, Renderer]] = []


def register_renderer(prefix: str, renderer: Renderer) -> None:
    _renderers.append((prefix, renderer))
    _renderers.sort(key=lambda item: -len(item[0]))


def render(path: str, error: e.BourseError, request_id: str | None) -> JSONResponse:
    status = status_of(error)
    renderer = next((r for prefix, r in _renderers if path.startswith(prefix)), native_body)
    response = renderer(error, status, request_id)
    if isinstance(error, e.TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, e.NotAuthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def error_response(path: str, exc: Exception, request_id: str | None) -> JSONResponse:
    """The answer to an exception an endpoint raised: its kind in the dialect's format, or an
    internal error (logged with its traceback: call it from the ``except`` block)."""
    if isinstance(exc, e.BourseError):
        if isinstance(exc, e.InvariantViolation):
            log.error("invariant violated", error=exc.message, path=path)
        return render(path, exc, request_id)
    log.exception("unhandled error", path=path)
    return render(path, e.InvariantViolation("internal error"), request_id)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header", "form")]
    field = ".".join(loc) or None
    msg = first.get("msg", "invalid request")
    return (f"{field}: {msg}" if field else msg), field


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.BourseError)
    async def _bourse_error(request: Request, exc: e.BourseError) -> JSONResponse:
        return error_response(request.url.path, exc, _request_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = validation_message(exc)
        error = e.InvalidInput(message, **({"field": field} if field else {}))
        return render(request.url.path, error, _request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = HTTP_CODES.get(exc.status_code, e.BourseError)
        error = (
            kind("too many requests", retry_after=1) if kind is e.TooManyRequests else kind(str(exc.detail))
        )
        response = render(request.url.path, error, _request_id(request))
        response.status_code = exc.status_code
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request.url.path, exc, _request_id(request))
