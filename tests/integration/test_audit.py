"""The audit log: who did what, when, from where and in which request; the database keeps it append-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bourse.bootstrap import Container
from bourse.service.context import RequestMeta
from tests.conftest import FakeClock, bearer, login

IP = "203.0.113.7"  # the conftest client's address


async def audit_rows(container: Container, action: str | None = None) -> list[dict[str, Any]]:
    query = "SELECT * FROM audit_log" + (" WHERE action = :a" if action else "") + " ORDER BY id"
    async with container.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(text(query), {"a": action})]


async def test_login_and_logout_are_audited_with_request_id_and_ip(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = await container.identity.create_user("alice", "alice-pass-1")
    before = datetime.now(UTC)
    r = await client.post(
        "/auth/token",
        data={"username": "alice", "password": "alice-pass-1"},
        headers={"X-Request-ID": "req-login"},
    )
    assert r.status_code == 200
    token = r.json()["access_token"]
    await client.post("/auth/logout", headers={**bearer(token), "X-Request-ID": "req-logout"})

    [row] = await audit_rows(container, "login")
    assert row["actor"] == "alice"
    assert row["subject"] == f"user:{created.user.uid}"
    assert row["request_id"] == "req-login"
    assert row["ip"] == IP
    assert before - timedelta(seconds=5) <= row["at"] <= datetime.now(UTC) + timedelta(seconds=5)
    jti = row["details"]["jti"]
    assert token not in str(row)

    [out] = await audit_rows(container, "logout")
    assert (out["actor"], out["request_id"], out["ip"]) == ("alice", "req-logout", IP)
    assert out["details"]["jti"] == jti


async def test_failed_and_throttled_logins_are_audited(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    await client.post(
        "/auth/token",
        data={"username": "alice", "password": "wrong-pass"},
        headers={"X-Request-ID": "req-bad"},
    )
    await client.post("/auth/token", data={"username": "mallory", "password": "wrong-pass"})
    for _ in range(4):
        await client.post("/auth/token", data={"username": "alice", "password": "wrong-pass"})
    r = await client.post(
        "/auth/token",
        data={"username": "alice", "password": "alice-pass-1"},
        headers={"X-Request-ID": "req-throttled"},
    )
    assert r.status_code == 429

    rows = await audit_rows(container, "login.failed")
    assert len(rows) == 7
    first, unknown, *_, throttled = rows
    assert (first["actor"], first["subject"], first["request_id"], first["ip"]) == (
        "alice",
        "username:alice",
        "req-bad",
        IP,
    )
    assert first["details"] == {"reason": "bad password"}
    assert unknown["actor"] == "mallory" and unknown["details"] == {"reason": "unknown user"}
    assert throttled["request_id"] == "req-throttled"
    assert throttled["details"] == {"reason": "throttled"}
    # The attempted password is never written down.
    assert all("wrong-pass" not in str(row) and "alice-pass-1" not in str(row) for row in rows)


async def test_user_creation_and_role_changes_are_audited(container: Container) -> None:
    meta = RequestMeta(request_id="req-admin", ip="192.0.2.1")
    created = await container.identity.create_user("alice", "alice-pass-1", meta=meta, actor="root")
    await container.identity.grant("alice", "operator", meta=meta, actor="root")
    await container.identity.grant("alice", "operator", meta=meta, actor="root")  # no change, no row
    await container.identity.revoke_role("alice", "operator", actor="cli")

    [made] = await audit_rows(container, "user.created")
    assert (made["actor"], made["subject"], made["request_id"], made["ip"]) == (
        "root",
        f"user:{created.user.uid}",
        "req-admin",
        "192.0.2.1",
    )
    assert made["details"]["accountId"] == created.account.account_id
    assert "alice-pass-1" not in str(made)

    [granted] = await audit_rows(container, "role.granted")
    assert (granted["actor"], granted["details"], granted["request_id"]) == (
        "root",
        {"role": "operator"},
        "req-admin",
    )
    [revoked] = await audit_rows(container, "role.revoked")
    assert (revoked["actor"], revoked["details"], revoked["ip"], revoked["request_id"]) == (
        "cli",
        {"role": "operator"},
        "cli",
        None,
    )


async def test_totp_changes_are_audited(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    import pyotp

    await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    secret = (await client.post("/auth/totp/enroll", headers=bearer(token))).json()["secret"]
    code = pyotp.TOTP(secret).at(int(clock.now().timestamp()))
    assert (
        await client.post("/auth/totp/confirm", json={"code": code}, headers=bearer(token))
    ).status_code == 204
    clock.advance(seconds=30)
    code = pyotp.TOTP(secret).at(int(clock.now().timestamp()))
    assert (
        await client.post("/auth/totp/disable", json={"code": code}, headers=bearer(token))
    ).status_code == 204
    actions = [r["action"] for r in await audit_rows(container) if r["action"].startswith("totp.")]
    assert actions == ["totp.enrolled", "totp.enabled", "totp.disabled"]
    assert all(secret not in str(r) for r in await audit_rows(container))


async def test_credentials_are_audited_without_their_secrets(container: Container) -> None:
    meta = RequestMeta(request_id="req-cred", ip="192.0.2.2")
    token = await container.credentials.create_service_token(
        "wallet", ("ext-orders",), meta=meta, actor="root"
    )
    await container.credentials.revoke_service_token("wallet", meta=meta)
    key = await container.credentials.create_app_key("company-1", meta=meta)
    await container.credentials.revoke_app_key(key.app_key)

    rows = {r["action"]: r for r in await audit_rows(container)}
    created = rows["service_token.created"]
    assert (created["subject"], created["request_id"], created["ip"]) == (
        "service_token:wallet",
        "req-cred",
        "192.0.2.2",
    )
    assert created["details"] == {"scopes": ["ext-orders"]}
    assert created["actor"] == "root"
    assert rows["service_token.revoked"]["actor"] == "admin"  # the default for the CLI
    assert rows["service_token.revoked"]["subject"] == "service_token:wallet"
    assert rows["app_key.created"]["subject"] == f"app_key:{key.app_key}"
    assert rows["app_key.created"]["details"] == {"companyId": "company-1"}
    assert rows["app_key.revoked"]["ip"] == "cli"
    everything = str(await audit_rows(container))
    assert token.token not in everything and key.secret not in everything


async def test_the_database_refuses_to_change_the_audit_log(container: Container) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    await container.credentials.create_service_token("wallet")
    before = await audit_rows(container)
    assert len(before) == 2
    for statement in (
        "UPDATE audit_log SET actor = 'someone-else'",
        "UPDATE audit_log SET details = '{}' WHERE action = 'user.created'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE action = 'service_token.created'",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with container.engine.begin() as conn:
                await conn.execute(text(statement))
    assert await audit_rows(container) == before
