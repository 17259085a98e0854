"""/auth: password login, logout, profile, JWT checks, permissions and ownership."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import Depends
from sqlalchemy import text

from bourse.adapters.crypto import Argon2PasswordHasher
from bourse.api.app import create_app
from bourse.api.common.auth import require
from bourse.bootstrap import Container, build
from bourse.domain.identity import Operation, Principal, Role
from bourse.service.principal_cache import DEFAULT_TTL_SECONDS
from bourse.service.security_epoch import DEFAULT_INTERVAL_SECONDS as EPOCH_INTERVAL
from tests.conftest import FAST_HASHER, FakeClock, bearer, login, make_settings

SECRET = make_settings().jwt_secret.get_secret_value()


def app_client(container: Container, ip: str = "203.0.113.7") -> httpx.AsyncClient:
    app = create_app(container, dispose_on_shutdown=False)

    @app.get("/_test/manage-accounts")
    async def guarded(principal: Principal = Depends(require(Operation.MANAGE_ACCOUNTS))) -> dict[str, Any]:
        return {"uid": principal.uid}

    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def guarded_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(container) as c:
        yield c


async def test_login_profile_and_logout(client: httpx.AsyncClient, container: Container) -> None:
    created = await container.identity.create_user(
        "alice", "alice-pass-1", email="alice@example.com", phone="+4915100000001"
    )
    r = await client.post(
        "/auth/token", data={"username": "alice", "password": "alice-pass-1", "grant_type": "password"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    token = body["access_token"]

    me = await client.get("/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "uid": created.user.uid,
        "userId": str(created.user.uid),
        "username": "alice",
        "email": "alice@example.com",
        "phone": "+4915100000001",
        "group": "default",
        "roles": ["trader"],
        "operations": ["trading-ui"],
        "accountId": created.account.account_id,
        "totpEnabled": False,
    }
    assert isinstance(me.json()["uid"], int)

    assert (await client.post("/auth/logout", headers=bearer(token))).status_code == 204
    after = await client.get("/auth/me", headers=bearer(token))
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"
    assert (await client.post("/auth/logout", headers=bearer(token))).status_code == 401

    # Logging out ends one session, not the account.
    fresh = await login(client, "alice", "alice-pass-1")
    assert (await client.get("/auth/me", headers=bearer(fresh))).status_code == 200


async def test_logout_revokes_only_that_token(client: httpx.AsyncClient, container: Container) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    first = await login(client, "alice", "alice-pass-1")
    second = await login(client, "alice", "alice-pass-1")
    assert (await client.post("/auth/logout", headers=bearer(first))).status_code == 204
    assert (await client.get("/auth/me", headers=bearer(first))).status_code == 401
    assert (await client.get("/auth/me", headers=bearer(second))).status_code == 200


async def test_bad_credentials_do_not_tell_which_part_was_wrong(
    client: httpx.AsyncClient, container: Container
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    wrong_pw = await client.post("/auth/token", data={"username": "alice", "password": "nope-nope"})
    unknown = await client.post("/auth/token", data={"username": "mallory", "password": "nope-nope"})
    assert wrong_pw.status_code == unknown.status_code == 401
    assert wrong_pw.json()["message"] == unknown.json()["message"] == "bad username or password"
    assert wrong_pw.json()["code"] == "not_authenticated"


async def test_malformed_login_requests_are_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/token", data={"username": "alice"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_input"
    r = await client.post(
        "/auth/token", data={"username": "a", "password": "b", "grant_type": "client_credentials"}
    )
    assert r.status_code == 400


async def test_missing_or_malformed_authorization_is_401(client: httpx.AsyncClient) -> None:
    for header in (None, "", "Bearer", "Bearer    ", "Basic YWxpY2U6cHc=", "Bearer not.a.jwt"):
        headers = {} if header is None else {"Authorization": header}
        r = await client.get("/auth/me", headers=headers)
        assert r.status_code == 401, header
        assert r.json()["code"] == "not_authenticated"


# --- hand-made tokens ------------------------------------------------------------------------


def _claims(uid: int, clock: FakeClock, **changes: Any) -> dict[str, Any]:
    iat = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "sub": str(uid),
        "iat": iat,
        "exp": iat + 600,
        "iss": "bourse",
        "aud": "bourse-api",
        "jti": uuid.uuid4().hex,
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged(uid: int, clock: FakeClock, case: str) -> str:
    now = int(clock.now().timestamp())
    if case == "alg none":
        return jwt.encode(_claims(uid, clock), None, algorithm="none")  # type: ignore[arg-type]
    if case == "alg none, signature kept":
        good = jwt.encode(_claims(uid, clock), SECRET, algorithm="HS256")
        return ".".join([_b64({"alg": "none", "typ": "JWT"}), *good.split(".")[1:]])
    if case == "HS512 with the real secret":
        return jwt.encode(_claims(uid, clock), SECRET, algorithm="HS512")
    if case == "another key":
        return jwt.encode(
            _claims(uid, clock), "another-secret-of-sufficient-length-0123456789", algorithm="HS256"
        )
    if case == "tampered payload":
        good = jwt.encode(_claims(uid, clock), SECRET, algorithm="HS256")
        header, _, signature = good.split(".")
        return ".".join([header, _b64(_claims(uid + 1, clock)), signature])
    if case == "expired":
        return jwt.encode(_claims(uid, clock, iat=now - 7200, exp=now - 3600), SECRET, algorithm="HS256")
    if case == "expires now":
        return jwt.encode(_claims(uid, clock, exp=now), SECRET, algorithm="HS256")
    if case == "issued in the future":
        return jwt.encode(_claims(uid, clock, iat=now + 3600, exp=now + 7200), SECRET, algorithm="HS256")
    if case == "wrong aud":
        return jwt.encode(_claims(uid, clock, aud="other-api"), SECRET, algorithm="HS256")
    if case == "wrong iss":
        return jwt.encode(_claims(uid, clock, iss="evil"), SECRET, algorithm="HS256")
    if case.startswith("missing "):
        return jwt.encode(
            _claims(uid, clock, **{case.removeprefix("missing "): None}), SECRET, algorithm="HS256"
        )
    if case == "string exp":
        return jwt.encode(_claims(uid, clock, exp="9999999999"), SECRET, algorithm="HS256")
    if case == "unknown user":
        return jwt.encode(_claims(999_999_999, clock), SECRET, algorithm="HS256")
    if case == "non-numeric sub":
        return jwt.encode(_claims(uid, clock, sub="alice"), SECRET, algorithm="HS256")
    raise AssertionError(case)


ATTACKS = [
    "alg none",
    "alg none, signature kept",
    "HS512 with the real secret",
    "another key",
    "tampered payload",
    "expired",
    "expires now",
    "issued in the future",
    "wrong aud",
    "wrong iss",
    "missing jti",
    "missing exp",
    "missing iat",
    "missing sub",
    "missing aud",
    "missing iss",
    "string exp",
    "unknown user",
    "non-numeric sub",
]


async def test_hand_made_token_with_the_right_key_and_claims_is_accepted(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    # The control for the attacks below: the same recipe, nothing wrong, works.
    created = await container.identity.create_user("alice", "alice-pass-1")
    token = jwt.encode(_claims(created.user.uid, clock), SECRET, algorithm="HS256")
    r = await client.get("/auth/me", headers=bearer(token))
    assert r.status_code == 200, r.text


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_forged_or_stale_tokens_get_401(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    created = await container.identity.create_user("alice", "alice-pass-1")
    await container.identity.create_user("bob-admin", "bob-pass-12", roles=(Role.ADMIN,))
    answers = {}
    for case in ATTACKS:
        r = await client.get("/auth/me", headers=bearer(forged(created.user.uid, clock, case)))
        answers[case] = (r.status_code, r.json()["code"])
    assert {case: a for case, a in answers.items() if a != (401, "not_authenticated")} == {}


async def test_token_expires_by_the_clock(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    clock.advance(seconds=3599)
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
    clock.advance(seconds=1)
    r = await client.get("/auth/me", headers=bearer(token))
    assert r.status_code == 401
    assert r.json()["message"] == "token expired"


async def test_disabled_user_token_stops_working(client: httpx.AsyncClient, container: Container) -> None:
    created = await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE users SET is_active = false WHERE uid = :u"), {"u": created.user.uid})
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 401
    r = await client.post("/auth/token", data={"username": "alice", "password": "alice-pass-1"})
    assert r.status_code == 401


async def test_a_change_made_by_another_process_applies_within_the_cache_bound(
    client: httpx.AsyncClient, container: Container, clock: FakeClock
) -> None:
    # A resolved token is remembered until the security epoch moves, read at most once a second
    # (ADR 0003): SQL here stands for the CLI or another server process, whose changes this
    # process cannot see being made.
    created = await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE users SET is_active = false WHERE uid = :u"), {"u": created.user.uid})
    clock.advance(seconds=EPOCH_INTERVAL * 0.9)
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
    clock.advance(seconds=EPOCH_INTERVAL * 0.1)
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 401


async def test_a_kept_token_is_not_looked_up_again_while_nothing_changes(
    client: httpx.AsyncClient, container: Container, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bourse.adapters.db.identity_repos import SqlUserRepository

    await container.identity.create_user("alice", "alice-pass-1")
    await container.identity.create_user("bob", "bob-pass-123")
    token = await login(client, "alice", "alice-pass-1")
    lookups = []
    real = SqlUserRepository.token_owner

    async def counted(self, uid, jti):
        lookups.append(uid)
        return await real(self, uid, jti)

    monkeypatch.setattr(SqlUserRepository, "token_owner", counted)
    # Requests over half the TTL (an entry lives between ttl / 2 and ttl), the epoch read each time:
    # one lookup in all.
    for _ in range(3):
        assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
        clock.advance(seconds=DEFAULT_TTL_SECONDS / 2 / 3 - 0.01)
    assert len(lookups) == 1
    # Another user's change moves the epoch too: everything kept is looked up again once.
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE users SET is_active = false WHERE username = 'bob'"))
    clock.advance(seconds=EPOCH_INTERVAL)
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
    assert len(lookups) == 2
    # The entry's own TTL ends it too, with nothing changed.
    clock.advance(seconds=DEFAULT_TTL_SECONDS)
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
    assert len(lookups) == 3


async def test_a_cached_token_is_refused_at_once_after_logout_or_a_revoked_role(
    guarded_client: httpx.AsyncClient, container: Container
) -> None:
    await container.identity.create_user("oper", "oper-pass-12", roles=(Role.OPERATOR,))
    first = await login(guarded_client, "oper", "oper-pass-12")
    second = await login(guarded_client, "oper", "oper-pass-12")
    for token in (first, second):
        assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(token))).status_code == 200
    assert (await guarded_client.post("/auth/logout", headers=bearer(first))).status_code == 204
    assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(first))).status_code == 401
    assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(second))).status_code == 200
    await container.identity.revoke_role("oper", "operator")
    assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(second))).status_code == 403


# --- passwords ----------------------------------------------------------------------------------


async def _stored_hash(container: Container, username: str) -> str:
    async with container.engine.connect() as conn:
        return str(
            (
                await conn.execute(
                    text("SELECT password_hash FROM users WHERE username = :u"), {"u": username}
                )
            ).scalar_one()
        )


async def test_login_rehashes_a_weaker_hash_with_production_parameters(
    container: Container, db_url: str, clock: FakeClock
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")  # FAST_HASHER: m=1024, t=1
    weak = await _stored_hash(container, "alice")
    assert weak.startswith("$argon2id$v=19$m=1024,t=1,p=1$")

    production = build(make_settings(), db_url, hasher=Argon2PasswordHasher(), clock=clock)
    try:
        async with app_client(production) as prod_client:
            r = await prod_client.post("/auth/token", data={"username": "alice", "password": "wrong-pass-1"})
            assert r.status_code == 401
            assert await _stored_hash(container, "alice") == weak  # a failed login changes nothing

            token = await login(prod_client, "alice", "alice-pass-1")
            strong = await _stored_hash(container, "alice")
            assert strong != weak
            m, t, p = (int(part.split("=")[1]) for part in strong.split("$")[3].split(","))
            assert m >= 19456 and t >= 2 and p == 1, strong
            assert strong.startswith("$argon2id$")
            assert (await prod_client.get("/auth/me", headers=bearer(token))).status_code == 200

            # The new hash is stable: the next login does not rehash again.
            await login(prod_client, "alice", "alice-pass-1")
            assert await _stored_hash(container, "alice") == strong
    finally:
        await production.aclose()
    assert FAST_HASHER.verify(strong, "alice-pass-1")


# --- users ----------------------------------------------------------------------------------------


async def test_user_gets_an_integer_uid_and_a_default_account(container: Container) -> None:
    a = await container.identity.create_user("alice", "alice-pass-1")
    b = await container.identity.create_user("bob", "bob-pass-12")
    assert isinstance(a.user.uid, int) and b.user.uid > a.user.uid
    assert a.account.uid == a.user.uid and a.account.is_default
    assert a.user.default_account_id == a.account.account_id
    assert a.account.account_id != b.account.account_id
    assert a.user.group == "default"


async def test_username_email_and_phone_are_unique(container: Container) -> None:
    from bourse.domain.errors import Conflict

    await container.identity.create_user(
        "alice", "alice-pass-1", email="a@example.com", phone="+4915100000001"
    )
    for second, field in (
        ({"username": "alice"}, "username"),
        ({"username": "bob", "email": "a@example.com"}, "email"),
        ({"username": "bob", "phone": "+4915100000001"}, "phone"),
    ):
        with pytest.raises(Conflict) as info:
            await container.identity.create_user(password="other-pass-1", **second)  # type: ignore[arg-type]
        assert info.value.details["field"] == field
    async with container.engine.connect() as conn:
        users = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
        accounts = (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one()
    assert (users, accounts) == (1, 1)  # nothing half-created


# --- permissions and ownership ---------------------------------------------------------------------


async def test_require_operation(guarded_client: httpx.AsyncClient, container: Container) -> None:
    await container.identity.create_user("trader", "trader-pass-1")
    await container.identity.create_user("oper", "oper-pass-12", roles=(Role.OPERATOR,))
    await container.identity.create_user("acct", "acct-pass-12", roles=(Role.ACCOUNTANT,))
    trader = await login(guarded_client, "trader", "trader-pass-1")
    operator = await login(guarded_client, "oper", "oper-pass-12")
    accountant = await login(guarded_client, "acct", "acct-pass-12")

    assert (await guarded_client.get("/_test/manage-accounts")).status_code == 401
    denied = await guarded_client.get("/_test/manage-accounts", headers=bearer(trader))
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    assert denied.json()["details"] == {"operation": "manage-accounts"}
    assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(accountant))).status_code == 403
    assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(operator))).status_code == 200

    # Roles are read per request: a grant or revoke applies to tokens already issued.
    await container.identity.grant("trader", "operator")
    assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(trader))).status_code == 200
    await container.identity.revoke_role("oper", "operator")
    assert (await guarded_client.get("/_test/manage-accounts", headers=bearer(operator))).status_code == 403


async def test_grant_and_revoke_validate_their_input(container: Container) -> None:
    from bourse.domain.errors import InvalidInput, NotFound

    await container.identity.create_user("alice", "alice-pass-1")
    with pytest.raises(InvalidInput):
        await container.identity.grant("alice", "root")
    with pytest.raises(NotFound):
        await container.identity.grant("nobody", "admin")
    assert await container.identity.grant("alice", "admin") is True
    assert await container.identity.grant("alice", "admin") is False
    assert await container.identity.revoke_role("alice", "admin") is True
    assert await container.identity.revoke_role("alice", "admin") is False


async def test_profiles_are_private_unless_you_manage_accounts(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await container.identity.create_user("alice", "alice-pass-1")
    bob = await container.identity.create_user("bob", "bob-pass-12")
    await container.identity.create_user("help", "help-pass-12", roles=(Role.SUPPORT,))
    await container.identity.create_user("oper", "oper-pass-12", roles=(Role.OPERATOR,))
    await container.identity.create_user("root", "root-pass-12", roles=(Role.ADMIN,))
    alice_t = await login(client, "alice", "alice-pass-1")

    own = await client.get(f"/auth/users/{alice.user.uid}", headers=bearer(alice_t))
    assert own.status_code == 200 and own.json()["username"] == "alice"

    # Someone else's profile looks exactly like a profile that does not exist.
    other = await client.get(f"/auth/users/{bob.user.uid}", headers=bearer(alice_t))
    missing = await client.get("/auth/users/99999999", headers=bearer(alice_t))
    assert other.status_code == missing.status_code == 404
    assert other.json()["code"] == missing.json()["code"] == "not_found"

    support_t = await login(client, "help", "help-pass-12")
    assert (await client.get(f"/auth/users/{bob.user.uid}", headers=bearer(support_t))).status_code == 404
    for username, password in (("oper", "oper-pass-12"), ("root", "root-pass-12")):
        t = await login(client, username, password)
        r = await client.get(f"/auth/users/{bob.user.uid}", headers=bearer(t))
        assert r.status_code == 200 and r.json()["username"] == "bob"
        assert (await client.get("/auth/users/99999999", headers=bearer(t))).status_code == 404

    assert (await client.get(f"/auth/users/{bob.user.uid}")).status_code == 401


async def test_concurrent_sign_ups_for_one_username_create_one_user(container: Container) -> None:
    import asyncio

    from bourse.domain.errors import Conflict

    results = await asyncio.gather(
        *(container.identity.create_user("alice", f"alice-pass-{i}") for i in range(3)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException)), results
    async with container.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one() == 1
