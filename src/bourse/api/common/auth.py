"""Authentication and authorisation dependencies shared by every dialect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

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
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("missing bearer token")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    # The request's state dict itself (what ``request.state`` wraps): a missing attribute on
    # ``request.state`` costs a raised AttributeError, on every request.
    state = request.scope.setdefault("state", {})
    cached: Principal | None = state.get("principal")
    if cached is not None:
        return cached
    principal = await container(request).identity.authenticate(bearer_token(request))
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
