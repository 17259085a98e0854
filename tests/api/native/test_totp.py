"""TOTP: enrol, confirm, log in with a code (each code once), disable."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pyotp

from bourse.bootstrap import Container
from tests.conftest import FakeClock, bearer, login


def code(secret: str, clock: FakeClock, steps_ahead: int = 0) -> str:
    moment = clock.now() + timedelta(seconds=30 * steps_ahead)
    return pyotp.TOTP(secret).at(int(moment.timestamp()))


async def token_with(client: httpx.AsyncClient, totp: str | None) -> httpx.Response:
    data = {"username": "alice", "password": "alice-pass-1"}
    if totp is not None:
        data["totp"] = totp
    return await client.post("/auth/token", data=data)


async def enrol_and_confirm(client: httpx.AsyncClient, clock: FakeClock, token: str) -> str:
    r = await client.post("/auth/totp/enroll", headers=bearer(token))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await client.post("/auth/totp/confirm", json={"code": code(secret, clock)}, headers=bearer(token))
    assert r.status_code == 204, r.text
    return str(secret)


async def test_enrolment_needs_confirmation_before_it_counts(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    assert (await client.post("/auth/totp/enroll")).status_code == 401

    r = await client.post("/auth/totp/enroll", headers=bearer(token))
    assert r.status_code == 200
    secret = r.json()["secret"]
    uri = r.json()["provisioningUri"]
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri and "issuer=bourse" in uri

    # Not confirmed yet: the password alone still logs in, the profile says TOTP is off.
    assert (await token_with(client, None)).status_code == 200
    assert (await client.get("/auth/me", headers=bearer(token))).json()["totpEnabled"] is False

    bad = "000000" if code(secret, clock) != "000000" else "111111"
    r = await client.post("/auth/totp/confirm", json={"code": bad}, headers=bearer(token))
    assert r.status_code == 400
    r = await client.post("/auth/totp/confirm", json={"code": "12ab56"}, headers=bearer(token))
    assert r.status_code == 400
    r = await client.post("/auth/totp/confirm", json={"code": code(secret, clock)}, headers=bearer(token))
    assert r.status_code == 204
    assert (await client.get("/auth/me", headers=bearer(token))).json()["totpEnabled"] is True

    # Enabled TOTP is not silently replaced by a new enrolment.
    assert (await client.post("/auth/totp/enroll", headers=bearer(token))).status_code == 409


async def test_confirm_without_enrolment_is_refused(client: httpx.AsyncClient, container: Container) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    r = await client.post("/auth/totp/confirm", json={"code": "123456"}, headers=bearer(token))
    assert r.status_code == 409
    r = await client.post("/auth/totp/disable", json={"code": "123456"}, headers=bearer(token))
    assert r.status_code == 409


async def test_login_needs_a_fresh_code_once_enabled(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    secret = await enrol_and_confirm(client, clock, await login(client, "alice", "alice-pass-1"))

    missing = await token_with(client, None)
    assert missing.status_code == 401
    assert missing.json()["message"] == "a valid TOTP code is required"
    wrong = "000000" if code(secret, clock) != "000000" else "111111"
    assert (await token_with(client, wrong)).status_code == 401
    # The code that confirmed the enrolment was used: it does not log in.
    assert (await token_with(client, code(secret, clock))).status_code == 401
    # Two steps ahead is more drift than allowed.
    assert (await token_with(client, code(secret, clock, steps_ahead=2))).status_code == 401

    next_code = code(secret, clock, steps_ahead=1)
    ok = await token_with(client, next_code)
    assert ok.status_code == 200, ok.text
    assert (await client.get("/auth/me", headers=bearer(ok.json()["access_token"]))).status_code == 200
    # Replay: the same code in a second login is refused.
    assert (await token_with(client, next_code)).status_code == 401

    # A valid code does not stand in for the password.
    clock.advance(seconds=60)
    fresh = code(secret, clock)
    r = await client.post(
        "/auth/token", data={"username": "alice", "password": "wrong-pass-1", "totp": fresh}
    )
    assert r.status_code == 401
    # The codes of later steps keep working.
    assert (await token_with(client, fresh)).status_code == 200


async def test_disable_needs_a_code_and_restores_password_login(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    secret = await enrol_and_confirm(client, clock, token)

    # The confirmation code cannot be replayed to disable.
    r = await client.post("/auth/totp/disable", json={"code": code(secret, clock)}, headers=bearer(token))
    assert r.status_code == 400
    assert (
        await client.post("/auth/totp/disable", json={"code": "1234567"}, headers=bearer(token))
    ).status_code == 400
    assert (await client.post("/auth/totp/disable", json={"code": "000000"})).status_code == 401

    clock.advance(seconds=30)
    r = await client.post("/auth/totp/disable", json={"code": code(secret, clock)}, headers=bearer(token))
    assert r.status_code == 204, r.text
    assert (await client.get("/auth/me", headers=bearer(token))).json()["totpEnabled"] is False
    assert (await token_with(client, None)).status_code == 200

    # Re-enrolling gives a new secret.
    r = await client.post("/auth/totp/enroll", headers=bearer(token))
    assert r.status_code == 200 and r.json()["secret"] != secret


async def test_one_code_in_two_concurrent_logins_lets_exactly_one_in(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    import asyncio

    await container.identity.create_user("alice", "alice-pass-1")
    secret = await enrol_and_confirm(client, clock, await login(client, "alice", "alice-pass-1"))
    next_code = code(secret, clock, steps_ahead=1)
    answers = await asyncio.gather(*(token_with(client, next_code) for _ in range(3)))
    assert sorted(r.status_code for r in answers) == [200, 401, 401]
