"""The edge middleware every request passes: request id, access log, metrics, rate limit.

Pure ASGI (no BaseHTTPMiddleware) to keep the per-request cost small.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bourse.api.common.errors import render
from bourse.domain.errors import TooManyRequests

log = structlog.get_logger("bourse.http")

REQUESTS = Counter("bourse_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "bourse_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RATE_LIMITED = Counter("bourse_http_rate_limited_total", "Requests refused by the rate limiter")

_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def caller_key(scope: Scope, genuine: Callable[[str], bool] | None = None) -> str:
    """A bearer token we issued (hashed, never logged), or else the client address.

    A token counts only once ``genuine`` accepts it: were any Authorization header a key,
    a new made-up token per request would get a new allowance every time.
    """
    auth = _header(scope, b"authorization")
    if auth and genuine is not None:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip() and genuine(token.strip()):
            return "t:" + hashlib.sha256(auth.encode()).hexdigest()[:24]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, limiter: Any | None, genuine: Callable[[str], bool] | None = None
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.genuine = genuine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = [500]
        header_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", header_id)]
            await send(message)

        try:
            retry_after = await self.limiter.hit(caller_key(scope, self.genuine)) if self.limiter else None
            if retry_after is not None:
                RATE_LIMITED.inc()
                response = render(
                    scope["path"], TooManyRequests("rate limit exceeded", retry_after), request_id
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_name = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            REQUESTS.labels(method, route_name, str(status_holder[0])).inc()
            LATENCY.labels(method, route_name).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status_holder[0],
                ms=round(elapsed * 1000, 2),
            )
