"""Service tokens and merchant app keys: random, shown once, stored hashed or encrypted, revocable."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends
from sqlalchemy import text

from bourse.api.app import create_app
from bourse.api.common.auth import current_service
from bourse.bootstrap import Container, build
from bourse.domain.errors import (
    Conflict,
    InvalidInput,
    InvariantViolation,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from bourse.domain.identity import ServiceCaller
from bourse.service.security_epoch import DEFAULT_INTERVAL_SECONDS as EPOCH_INTERVAL
from tests.conftest import FAST_HASHER, FakeClock, bearer, make_settings


async def rows(container: Container, table: str) -> list[dict[str, Any]]:
    async with container.engine.connect() as conn:
        return [
            dict(r._mapping) for r in await conn.execute(text(f"SELECT * FROM {table} ORDER BY created_at"))
        ]


@pytest.fixture
async def service_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container, dispose_on_shutdown=False)

    @app.get("/_test/ext")
    async def ext(caller: ServiceCaller = Depends(current_service)) -> dict[str, Any]:
        caller.require_scope("ext-orders")
        return {"name": caller.name}

    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_service_token_is_random_and_stored_as_a_digest_only(container: Container) -> None:
    a = await container.credentials.create_service_token("wallet-a")
    b = await container.credentials.create_service_token("wallet-b")
    assert a.name == "wallet-a"
    assert a.token.startswith("bst_") and len(a.token) >= 40
    assert a.token != b.token

    stored = await rows(container, "service_tokens")
    assert [r["name"] for r in stored] == ["wallet-a", "wallet-b"]
    assert bytes(stored[0]["token_hash"]) == hashlib.sha256(a.token.encode()).digest()
    assert a.token not in str(stored) and a.token.removeprefix("bst_") not in str(stored)
    assert stored[0]["scopes"] == ["ext-orders"]


async def test_service_token_authenticates_until_revoked(container: Container) -> None:
    new = await container.credentials.create_service_token("wallet")
    caller = await container.credentials.authenticate_service(new.token)
    assert (caller.name, caller.scopes) == ("wallet", frozenset({"ext-orders"}))
    caller.require_scope("ext-orders")
    with pytest.raises(PermissionDenied):
        caller.require_scope("admin")

    for wrong in (new.token + "x", new.token[:-1], "bst_" + "A" * 43, "not-a-service-token", ""):
        with pytest.raises(NotAuthenticated):
            await container.credentials.authenticate_service(wrong)

    await container.credentials.revoke_service_token("wallet")
    with pytest.raises(NotAuthenticated):
        await container.credentials.authenticate_service(new.token)
    with pytest.raises(NotFound):
        await container.credentials.revoke_service_token("wallet")

    # The name is free again once revoked; the old token stays dead.
    again = await container.credentials.create_service_token("wallet")
    assert again.token != new.token
    assert (await container.credentials.authenticate_service(again.token)).name == "wallet"
    with pytest.raises(NotAuthenticated):
        await container.credentials.authenticate_service(new.token)


async def test_a_revoke_made_elsewhere_acts_within_a_second(container: Container, clock: FakeClock) -> None:
    new = await container.credentials.create_service_token("wallet")
    assert (await container.credentials.authenticate_service(new.token)).name == "wallet"
    # Another process (the CLI, another server) revokes it: this one may serve it until its next
    # read of the security epoch ...
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE service_tokens SET revoked_at = now() WHERE name = 'wallet'"))
    clock.advance(seconds=EPOCH_INTERVAL * 0.9)
    assert (await container.credentials.authenticate_service(new.token)).name == "wallet"
    # ... and not a moment longer.
    clock.advance(seconds=EPOCH_INTERVAL * 0.1)
    with pytest.raises(NotAuthenticated):
        await container.credentials.authenticate_service(new.token)
    # A refusal is never remembered: a token restored in the database is accepted again.
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE service_tokens SET revoked_at = NULL WHERE name = 'wallet'"))
    assert (await container.credentials.authenticate_service(new.token)).name == "wallet"


async def test_service_token_input_is_checked(container: Container) -> None:
    await container.credentials.create_service_token("wallet")
    with pytest.raises(Conflict):
        await container.credentials.create_service_token("wallet")
    for name, scopes in (("", ("ext-orders",)), ("x" * 65, ("ext-orders",)), ("ok", ()), ("ok", ("root",))):
        with pytest.raises(InvalidInput):
            await container.credentials.create_service_token(name, scopes)
    assert len(await rows(container, "service_tokens")) == 1


async def test_service_token_over_http(service_client: httpx.AsyncClient, container: Container) -> None:
    new = await container.credentials.create_service_token("wallet")
    r = await service_client.get("/_test/ext", headers=bearer(new.token))
    assert r.status_code == 200 and r.json() == {"name": "wallet"}
    assert (await service_client.get("/_test/ext")).status_code == 401
    await container.credentials.revoke_service_token("wallet")
    r = await service_client.get("/_test/ext", headers=bearer(new.token))
    assert r.status_code == 401


async def test_app_key_secret_is_stored_encrypted_and_read_back(container: Container) -> None:
    a = await container.credentials.create_app_key("company-1")
    b = await container.credentials.create_app_key("company-1")
    assert a.app_key != b.app_key and a.secret != b.secret
    assert len(a.app_key) == 32 and len(a.secret) == 64

    stored = await rows(container, "app_keys")
    assert [r["company_id"] for r in stored] == ["company-1", "company-1"]
    assert a.secret not in str(stored)
    assert await container.credentials.app_secret(a.app_key) == ("company-1", a.secret)

    await container.credentials.revoke_app_key(a.app_key)
    with pytest.raises(NotAuthenticated):
        await container.credentials.app_secret(a.app_key)
    with pytest.raises(NotFound):
        await container.credentials.revoke_app_key(a.app_key)
    assert await container.credentials.app_secret(b.app_key) == ("company-1", b.secret)
    with pytest.raises(NotAuthenticated):
        await container.credentials.app_secret("0" * 32)
    for company in ("", "c" * 65):
        with pytest.raises(InvalidInput):
            await container.credentials.create_app_key(company)


async def test_app_secret_needs_the_same_master_key(
    container: Container, db_url: str, clock: FakeClock
) -> None:
    key = await container.credentials.create_app_key("company-1")
    other = build(
        make_settings(secret_key="a-different-master-key-0123456789abcdef"),
        db_url,
        hasher=FAST_HASHER,
        clock=clock,
    )
    try:
        with pytest.raises(InvariantViolation, match="BOURSE_SECRET_KEY"):
            await other.credentials.app_secret(key.app_key)
    finally:
        await other.aclose()
