"""Authentication and authorisation dependencies shared by every dialect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from bourse.bootstrap import Container
from bourse.domain.errors import NotAuthenticated
from bourse.domain.identity import Operation, Principal, ServiceCaller
from bourse.service.context import RequestMeta


def container(request: Request) -> Container:
    return request.app.state.container


# FastAPI runs plain-``def`` dependencies in its thread pool: a hop per request per
# dependency. These two are trivial, so they are ``async`` and run on the loop.
async def _container_dependency(request: Request) -> Container:
    return request.app.state.container


async def request_meta(request: Request) -> RequestMeta:
    return RequestMeta(
        getattr(request.state, "request_id", None), request.client.host if request.client else None
    )


def bearer_token(request: Request) -> str:
    return _token(request.headers.get("authorization", ""))


def _token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("missing bearer token")
    return token.strip()


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first header ``name`` (lower case) of an ASGI request, as Starlette's ``headers.get``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def current_principal(request: Request) -> Principal:
    return await scope_principal(request.scope, container(request))


async def scope_principal(scope: Scope, services: Container) -> Principal:
    """The caller of an ASGI request, resolved once per request (routes without FastAPI's
    dependencies, ``api/common/hot_path.py``, use it directly)."""
    # The request's state dict itself (what ``request.state`` wraps): a missing attribute on
    # ``request.state`` costs a raised AttributeError, on every request.
    state = scope.setdefault("state", {})
    cached: Principal | None = state.get("principal")
    if cached is not None:
        return cached
    principal = await services.identity.authenticate(_token(scope_header(scope, b"authorization") or ""))
    state["principal"] = principal
    return principal


def require(operation: Operation) -> Callable[[Request], Awaitable[Principal]]:
    """The one authorisation dependency: authenticated, and ``operation`` granted."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        principal.require(operation)
        return principal

    dependency.__name__ = f"require_{operation.name.lower()}"
    return dependency


async def current_service(request: Request) -> ServiceCaller:
    return await container(request).credentials.authenticate_service(bearer_token(request))


AuthenticatedPrincipal = Annotated[Principal, Depends(current_principal)]
Meta = Annotated[RequestMeta, Depends(request_meta)]
Services = Annotated[Container, Depends(_container_dependency)]
