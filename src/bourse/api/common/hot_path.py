"""A few hot routes served without FastAPI's routing and dependency machinery.

FastAPI spends far more per request than a hot endpoint's own work: it scans the app's
routes (about 140), builds a Request, resolves the dependency tree, validates, and runs
two more middlewares. For the exact ``(method, path)`` of a route registered here, this
middleware (inside ``EdgeMiddleware``, so request ids, access log, metrics and the rate
limit apply as before) does the same steps directly, with the same pieces: the body
parsed by ``orjson.loads`` and validated by the route's own pydantic model, the caller
resolved by ``scope_principal`` and checked for the route's operation, the route's own
endpoint function called, and its errors rendered by ``error_response`` as the app's
exception handlers render them.

Only the happy path is taken here: when anything before the endpoint would fail (a
content type other than JSON, malformed JSON, no or a bad token, a missing permission, a
body the model refuses), the request, its body replayed, goes to FastAPI, which answers
exactly as it always does (its order of checks, its messages). Nothing has happened by
then that the FastAPI route does not do again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bourse.api.common.auth import scope_header, scope_principal
from bourse.api.common.errors import error_response
from bourse.bootstrap import Container
from bourse.domain.errors import BourseError
from bourse.domain.identity import Operation, Principal

# The endpoint as FastAPI calls it: (body, principal, services, accountId header).
Endpoint = Callable[[Any, Principal, Container, str | None], Awaitable[Response]]


@dataclass(frozen=True)
class HotRoute:
    """A JSON-body route with an ``accountId`` header, requiring ``operation``.

    ``path`` is also what the edge middleware labels its metrics with (``scope["route"].path``),
    the same label as the FastAPI route it stands in for.
    """

    method: str
    path: str
    model: type[BaseModel]
    operation: Operation
    endpoint: Endpoint


class HotPathMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes: Mapping[tuple[str, str], HotRoute] = {(r.method, r.path): r for r in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.routes.get((scope["method"], scope["path"]))
            if route is not None:
                await self._serve(route, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, route: HotRoute, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:  # the client went away before sending its body
            return
        replay = _replaying(body, receive)
        parsed = await self._happy(route, scope, body)
        if parsed is None:
            await self.app(scope, replay, send)
            return
        model, principal, services = parsed
        scope["route"] = route
        try:
            response = await route.endpoint(model, principal, services, scope_header(scope, b"accountid"))
        except Exception as exc:
            response = error_response(scope["path"], exc, scope["state"].get("request_id"))
        await response(scope, replay, send)

    async def _happy(
        self, route: HotRoute, scope: Scope, body: bytes
    ) -> tuple[BaseModel, Principal, Container] | None:
        """Body, caller and permission when all are fine; None sends the request to FastAPI."""
        content_type = scope_header(scope, b"content-type")
        if (
            not body
            or content_type is None
            or content_type.partition(";")[0].strip().lower() != "application/json"
        ):
            return None
        try:
            # orjson (~4x json.loads here) is stricter (lone surrogates, integers beyond 64 bits):
            # a body it refuses goes to FastAPI, which reads it its own way, as for any refusal.
            data = orjson.loads(body)
        except Exception:  # whatever FastAPI makes of a body it cannot read, it says itself
            return None
        services: Container = scope["app"].state.container
        try:
            principal = await scope_principal(scope, services)
            principal.require(route.operation)
        except BourseError:
            return None
        try:
            return route.model.model_validate(data), principal, services
        except ValidationError:
            return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body read already given again first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
