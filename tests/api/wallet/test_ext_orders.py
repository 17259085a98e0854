"""The ext-orders seamless wallet over HTTP, starting from the spec's own examples."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from bourse.adapters.db import wallet_repos
from bourse.adapters.ratelimit import LimitsRateLimiter
from bourse.api.app import create_app
from bourse.api.wallet import envelope
from bourse.domain.errors import PermissionDenied
from bourse.domain.identity import ServiceCaller
from bourse.domain.wallet import ExtRequestType, parse_request
from bourse.service.credentials import digest
from bourse.service.ports import ExtRequestRecord
from tests.api.wallet.helpers import (
    assert_ledger_clean,
    balances,
    create_asset,
    create_user,
    deposit,
    service_token,
)
from tests.conftest import bearer, login

# The spec's request bodies, byte for byte but for its // comments.
SPEC_CREATE = """{
  "extRequestId": "unique-id-of-requests-from-caller",
  "username": "abc@def",
  "currency": "USDT",
  "amount": "100.0",
  "bonusAmount": "0",
  "extRefId": "external extra ref id"
}"""
SPEC_CANCEL = """{
  "extRequestId": "unique-id-of-requests-from-caller",
  "username": "abc@def",
  "currency": "USDT",
  "amount": "100.0",
  "bonusAmount": "0",
  "extRefId": "external extra ref id"
}"""
SPEC_SETTLEMENT = """{
  "extRequestId": "unique-id-of-requests-from-caller",
  "username": "abc@def",
  "currency": "USDT",
  "totalOrderAmount": "123.00",
  "totalOrderBonusAmount": "0.0",
  "pnlAmount": "-100.0",
  "pnlBonusAmount": "0.0",
  "extRefId": "external extra ref id"
}"""
SPEC_ID = "unique-id-of-requests-from-caller"
JSON = {"Content-Type": "application/json"}
ENVELOPE_KEYS = ["code", "msg", "time", "data", "success"]


def create_body(ext_id: str, amount: str = "100.0", **extra: str) -> dict[str, str]:
    return {
        "extRequestId": ext_id,
        "username": "abc@def",
        "currency": "USDT",
        "amount": amount,
        "bonusAmount": "0",
        **extra,
    }


def settlement_body(ext_id: str, total: str, pnl: str, **extra: str) -> dict[str, str]:
    return {
        "extRequestId": ext_id,
        "username": "abc@def",
        "currency": "USDT",
        "totalOrderAmount": total,
        "totalOrderBonusAmount": "0",
        "pnlAmount": pnl,
        "pnlBonusAmount": "0",
        **extra,
    }


def assert_success(r: httpx.Response, data=None) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ENVELOPE_KEYS
    assert body["code"] == 1 and body["msg"] == "Success" and body["success"] is True
    assert body["data"] == data
    assert isinstance(body["time"], int) and abs(body["time"] - time.time() * 1000) < 60_000
    return body


def assert_error(r: httpx.Response, status: int, code: int, msg: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ENVELOPE_KEYS
    assert body["code"] == code and body["success"] is False and body["data"] is None
    assert isinstance(body["time"], int) and abs(body["time"] - time.time() * 1000) < 60_000
    if msg is not None:
        assert body["msg"] == msg
    return body


@pytest.fixture
async def wallet(container):
    """USDT (8 decimals), user abc@def with 1000 USDT available; returns the account id."""
    await create_asset(container)
    account_id = await create_user(container)
    await deposit(container, account_id, "1000")
    return account_id


@pytest.fixture
async def game(container):
    return await service_token(container, "game-a")


# --- the spec's examples -----------------------------------------------------------------------


async def test_spec_examples_create_query_cancel_settle(client, container, wallet):
    # extRequestId is unique per caller, and every spec example uses the same one: one caller each.
    game_a, game_b, game_c, game_d = [await service_token(container, f"game-{n}") for n in "abcd"]

    assert_success(await client.put("/ext-orders/create", content=SPEC_CREATE, headers={**game_a, **JSON}))
    assert await balances(container, wallet) == {
        "available": Decimal(900),
        "locked": 0,
        "stake": Decimal(100),
        "bonus": 0,
        "bonus_stake": 0,
        "house": 0,
        "house_bonus": 0,
    }
    query = await client.get(f"/ext-orders/{SPEC_ID}", headers=game_a)
    assert_success(query, {**json.loads(SPEC_CREATE), "type": "create"})
    assert list(query.json()["data"]) == [*json.loads(SPEC_CREATE), "type"]

    assert_success(await client.put("/ext-orders/cancel", content=SPEC_CANCEL, headers={**game_b, **JSON}))
    assert (await balances(container, wallet))["available"] == Decimal(1000)
    assert (await balances(container, wallet))["stake"] == 0
    assert_success(
        await client.get(f"/ext-orders/{SPEC_ID}", headers=game_b),
        {**json.loads(SPEC_CANCEL), "type": "cancel"},
    )

    assert_success(
        await client.put("/ext-orders/create", json=create_body("stake-123", "123"), headers=game_c)
    )
    assert_success(
        await client.post("/ext-orders/settlement", content=SPEC_SETTLEMENT, headers={**game_d, **JSON})
    )
    after = await balances(container, wallet)
    assert after["available"] == Decimal(1000) - 123 + 23
    assert after["stake"] == 0
    assert after["house"] == Decimal(100)
    assert_success(
        await client.get(f"/ext-orders/{SPEC_ID}", headers=game_d),
        {**json.loads(SPEC_SETTLEMENT), "type": "settlement"},
    )
    await assert_ledger_clean(container)


async def test_every_money_movement_is_audited(client, container, wallet, game):
    assert_success(await client.put("/ext-orders/create", json=create_body("a-1"), headers=game))
    assert_success(await client.put("/ext-orders/cancel", json=create_body("a-2", "40"), headers=game))
    assert_success(
        await client.post("/ext-orders/settlement", json=settlement_body("a-3", "60", "5"), headers=game)
    )
    async with container.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT actor, details->>'kind' AS kind, details->>'business_key' AS key FROM audit_log "
                    "WHERE action = 'money.moved' AND details->>'business_key' LIKE 'ext:%' ORDER BY id"
                )
            )
        ).all()
    assert [(r.actor, r.kind, r.key.rsplit(":", 1)[1]) for r in rows] == [
        ("service:game-a", "ext_order.create", "a-1"),
        ("service:game-a", "ext_order.cancel", "a-2"),
        ("service:game-a", "ext_order.settlement", "a-3"),
    ]
    after = await balances(container, wallet)
    assert after["available"] == Decimal(1005) and after["stake"] == 0 and after["house"] == Decimal(-5)
    # Each entry names its own ledger transaction and postings, whether it was written with the
    # ledger write (accounts already known) or after it (the first use of an account).
    async with container.engine.connect() as conn:
        entries = (
            await conn.execute(
                text(
                    "SELECT a.details, a.request_id, t.business_key, "
                    "(SELECT count(*) FROM ledger_postings p WHERE p.tx_id = t.id) AS postings "
                    "FROM audit_log a JOIN ledger_transactions t ON t.id = CAST(a.details->>'tx_id' AS bigint) "
                    "WHERE a.action = 'money.moved' AND a.details->>'business_key' LIKE 'ext:%' ORDER BY a.id"
                )
            )
        ).all()
    assert len(entries) == 3
    for entry in entries:
        assert entry.business_key == entry.details["business_key"]
        assert entry.postings == len(entry.details["postings"]) >= 2
        assert entry.request_id


async def test_a_conflict_that_outlasts_the_runs_is_11000008_and_applies_nothing(
    client, container, wallet, game, monkeypatch
):
    from bourse.adapters.db.ledger_repos import SqlLedgerRepository
    from bourse.domain.errors import Conflict
    from bourse.service.wallet import ATTEMPTS

    runs = []

    async def deadlocked(self, tx, entry):
        runs.append(tx.business_key)
        raise Conflict("concurrent ledger update, retry", retryable=True)

    monkeypatch.setattr(SqlLedgerRepository, "post_audited", deadlocked)
    r = await client.put("/ext-orders/create", json=create_body("d-1", "10"), headers=game)
    assert_error(r, 409, 11000008)
    assert len(runs) == ATTEMPTS
    assert (await balances(container, wallet))["stake"] == 0
    assert_error(await client.get("/ext-orders/d-1", headers=game), 404, 11000004)
    monkeypatch.undo()
    assert_success(await client.put("/ext-orders/create", json=create_body("d-1", "10"), headers=game))
    assert (await balances(container, wallet))["stake"] == Decimal(10)
    # A conflict nobody asked to retry keeps its own code.
    assert envelope.code_of(Conflict("business key used")) is envelope.CONFLICT
    assert envelope.code_of(Conflict("deadlock", retryable=True)) is envelope.IN_PROGRESS


async def test_a_remembered_ledger_account_that_is_gone_runs_the_request_again(
    client, container, wallet, game
):
    from bourse.adapters.db import ledger_repos
    from bourse.domain.ledger import account_owner

    assert_success(await client.put("/ext-orders/create", json=create_body("k-1", "10"), headers=game))
    known = ledger_repos._KNOWN[container.engine.sync_engine]
    key = (account_owner(wallet), "USDT", "stake")
    real = known.ids[key]
    known.ids[key] = 10**15  # as if the account's creation had been rolled back after it was learnt
    assert_success(await client.put("/ext-orders/create", json=create_body("k-2", "15"), headers=game))
    assert known.ids[key] == real
    after = await balances(container, wallet)
    assert after["stake"] == Decimal(25) and after["available"] == Decimal(975)
    async with container.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM ext_requests"))).scalar_one()
        moved = (
            await conn.execute(
                text("SELECT count(*) FROM ledger_transactions WHERE business_key LIKE 'ext:%'")
            )
        ).scalar_one()
    assert (stored, moved) == (2, 2)
    await assert_ledger_clean(container)


async def test_settlement_win_and_bonus_legs(client, container, wallet, game):
    await deposit(container, wallet, "10", bucket="bonus")
    assert_success(
        await client.put("/ext-orders/create", json=create_body("s-1", "50", bonusAmount="10"), headers=game)
    )
    assert (await balances(container, wallet))["bonus_stake"] == Decimal(10)
    body = settlement_body("s-2", "50", "25.5", totalOrderBonusAmount="10", pnlBonusAmount="-4")
    assert_success(await client.post("/ext-orders/settlement", json=body, headers=game))
    after = await balances(container, wallet)
    assert after["available"] == Decimal("1025.5") and after["stake"] == 0
    assert after["bonus"] == Decimal(6) and after["bonus_stake"] == 0
    assert after["house"] == Decimal("-25.5") and after["house_bonus"] == Decimal(4)
    await assert_ledger_clean(container)


# --- insufficient balance ----------------------------------------------------------------------


async def test_insufficient_balance_is_11000013_and_moves_nothing(client, container, wallet, game):
    before = await balances(container, wallet)
    r = await client.put("/ext-orders/create", json=create_body("big", "1000.00000001"), headers=game)
    assert_error(r, 400, 11000013, "Insufficient Balance in Wallet")
    r = await client.put(
        "/ext-orders/create", json=create_body("bonus", "1", bonusAmount="0.5"), headers=game
    )
    assert_error(r, 400, 11000013, "Insufficient Balance in Wallet")
    assert await balances(container, wallet) == before
    # A refusal is not stored: nothing to look up, and the same id works once the money is there.
    assert_error(await client.get("/ext-orders/big", headers=game), 404, 11000004)
    await deposit(container, wallet, "0.00000001")
    assert_success(
        await client.put("/ext-orders/create", json=create_body("big", "1000.00000001"), headers=game)
    )
    assert (await balances(container, wallet))["available"] == 0


# --- idempotency and ownership -----------------------------------------------------------------


async def test_replay_returns_the_stored_response_and_moves_nothing(client, container, clock, wallet, game):
    first = await client.put(
        "/ext-orders/create", json=create_body("r-1", "100.0", extRefId="x"), headers=game
    )
    assert_success(first)
    clock.advance(seconds=30)
    again = await client.put(
        "/ext-orders/create", json=create_body("r-1", "100.0", extRefId="x"), headers=game
    )
    assert again.status_code == 200 and again.content == first.content
    # The same amount written differently is the same request.
    same = await client.put("/ext-orders/create", json=create_body("r-1", "100", extRefId="x"), headers=game)
    assert same.status_code == 200 and same.content == first.content
    assert (await balances(container, wallet))["stake"] == Decimal(100)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/ext-orders/create", create_body("r-1", "100.00000001", extRefId="x")),
        ("PUT", "/ext-orders/create", create_body("r-1", "100.0", extRefId="y")),
        ("PUT", "/ext-orders/create", create_body("r-1", "100.0")),
        ("PUT", "/ext-orders/cancel", create_body("r-1", "100.0", extRefId="x")),
        ("POST", "/ext-orders/settlement", settlement_body("r-1", "100", "0", extRefId="x")),
    ],
)
async def test_same_id_different_request_is_a_conflict(client, container, wallet, game, method, path, body):
    assert_success(
        await client.put("/ext-orders/create", json=create_body("r-1", "100.0", extRefId="x"), headers=game)
    )
    before = await balances(container, wallet)
    r = await client.request(method, path, json=body, headers=game)
    assert_error(r, 409, 11000007)
    assert await balances(container, wallet) == before
    stored = await client.get("/ext-orders/r-1", headers=game)
    assert stored.json()["data"]["extRefId"] == "x" and stored.json()["data"]["type"] == "create"


async def test_ids_belong_to_their_caller(client, container, wallet, game):
    other = await service_token(container, "game-b")
    assert_success(await client.put("/ext-orders/create", json=create_body("mine"), headers=game))
    assert_error(await client.get("/ext-orders/mine", headers=other), 404, 11000004, "Request not found")
    assert_error(await client.get("/ext-orders/never-sent", headers=game), 404, 11000004)
    # The other caller's namespace is its own: the same id is a new request there.
    assert_success(await client.put("/ext-orders/create", json=create_body("mine", "5"), headers=other))
    assert (await balances(container, wallet))["stake"] == Decimal(105)
    mine = await client.get("/ext-orders/mine", headers=game)
    assert mine.json()["data"]["amount"] == "100.0"


async def test_a_duplicate_of_a_request_still_running_waits_then_answers_in_progress(
    client, container, wallet, game, monkeypatch
):
    monkeypatch.setattr(wallet_repos, "DUPLICATE_WAIT_MS", 300)
    caller = await container.credentials.authenticate_service(game["Authorization"].removeprefix("Bearer "))
    request = parse_request(ExtRequestType.CREATE, create_body("slow"))
    async with container.uow() as uow:
        user = await uow.users.get_by_username("abc@def")
        await uow.ext_requests.reserve(
            ExtRequestRecord(
                caller.token_id,
                "slow",
                ExtRequestType.CREATE,
                user.uid,
                wallet,
                request.currency,
                dict(request.sent),
                request.fingerprint(),
                {"code": 1},
                container.clock.now(),
            )
        )
        r = await client.put("/ext-orders/create", json=create_body("slow"), headers=game)
        assert_error(r, 409, 11000008)
        # Leaving without commit: the first attempt failed, so the retry is the real one.
    assert_success(await client.put("/ext-orders/create", json=create_body("slow"), headers=game))
    assert (await balances(container, wallet))["stake"] == Decimal(100)


# --- releases ----------------------------------------------------------------------------------


async def test_cancel_and_settlement_never_release_more_than_staked(client, container, wallet, game):
    assert_success(await client.put("/ext-orders/create", json=create_body("c-1", "30"), headers=game))
    other_user = await create_user(container, "someone-else")
    await deposit(container, other_user, "500")
    before = await balances(container, wallet)
    r = await client.put("/ext-orders/cancel", json=create_body("c-2", "30.00000001"), headers=game)
    assert_error(r, 400, 11000014, "Release exceeds staked amount")
    r = await client.post("/ext-orders/settlement", json=settlement_body("c-3", "31", "-31"), headers=game)
    assert_error(r, 400, 11000014)
    r = await client.put("/ext-orders/cancel", json=create_body("c-4", "1", bonusAmount="1"), headers=game)
    assert_error(r, 400, 11000014)
    assert await balances(container, wallet) == before
    assert_success(await client.put("/ext-orders/cancel", json=create_body("c-5", "30"), headers=game))
    r = await client.put("/ext-orders/cancel", json=create_body("c-6", "0.00000001"), headers=game)
    assert_error(r, 400, 11000014)


async def test_negative_settlement_is_refused(client, container, wallet, game):
    assert_success(await client.put("/ext-orders/create", json=create_body("n-1", "100"), headers=game))
    r = await client.post(
        "/ext-orders/settlement", json=settlement_body("n-2", "100", "-100.00000001"), headers=game
    )
    assert_error(r, 400, 11000015, "Negative settlement")
    body = settlement_body("n-3", "100", "0", totalOrderBonusAmount="0", pnlBonusAmount="-1")
    assert_error(await client.post("/ext-orders/settlement", json=body, headers=game), 400, 11000015)
    assert (await balances(container, wallet))["stake"] == Decimal(100)
    # Losing everything is allowed: the whole stake goes to the house.
    assert_success(
        await client.post("/ext-orders/settlement", json=settlement_body("n-4", "100", "-100"), headers=game)
    )
    after = await balances(container, wallet)
    assert after["stake"] == 0 and after["available"] == Decimal(900) and after["house"] == Decimal(100)


# --- invalid requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 100},
        {"amount": 100.5},
        {"amount": "1e2"},
        {"amount": "0"},
        {"amount": "-5"},
        {"amount": "0.000000001"},
        {"amount": "100000000000000"},
        {"amount": " 1"},
        {"bonusAmount": "-1"},
        {"extRequestId": ""},
        {"extRequestId": "with space"},
        {"extRequestId": "x" * 129},
        {"username": 7},
        {"currency": None},
        {"extRefId": 5},
    ],
)
async def test_invalid_parameters(client, container, wallet, game, change):
    r = await client.put("/ext-orders/create", json={**create_body("v-1"), **change}, headers=game)
    body = assert_error(r, 400, 11000001)
    assert body["msg"].startswith("Invalid parameter: ")
    assert (await balances(container, wallet))["stake"] == 0


@pytest.mark.parametrize("missing", ["extRequestId", "username", "currency", "amount"])
async def test_missing_fields_are_invalid(client, wallet, game, missing):
    body = {k: v for k, v in create_body("v-2").items() if k != missing}
    r = assert_error(await client.put("/ext-orders/create", json=body, headers=game), 400, 11000001)
    assert missing in r["msg"]


async def test_optional_fields_default(client, container, wallet, game):
    body = {"extRequestId": "o-1", "username": "abc@def", "currency": "USDT", "amount": "1"}
    assert_success(await client.put("/ext-orders/create", json=body, headers=game))
    data = (await client.get("/ext-orders/o-1", headers=game)).json()["data"]
    assert data == {**body, "bonusAmount": "0", "extRefId": None, "type": "create"}


async def test_malformed_json_and_wrong_methods_keep_the_envelope(client, wallet, game):
    r = await client.put("/ext-orders/create", content=b"{not json", headers={**game, **JSON})
    assert_error(r, 400, 11000001)
    assert_error(
        await client.post("/ext-orders/create", json=create_body("m-1"), headers=game), 405, 11000001
    )
    assert_error(await client.get("/ext-orders/a/b", headers=game), 404, 11000004)


async def test_amount_finer_than_the_currency_is_invalid(client, container, wallet, game):
    await create_asset(container, "CENTS", scale=2)
    await deposit(container, wallet, "10", asset="CENTS")
    body = {**create_body("f-1", "1.001"), "currency": "CENTS"}
    assert_error(await client.put("/ext-orders/create", json=body, headers=game), 400, 11000001)
    assert_success(await client.put("/ext-orders/create", json={**body, "amount": "1.01"}, headers=game))


async def test_unknown_user_and_currency(client, wallet, game):
    r = await client.put(
        "/ext-orders/create", json={**create_body("u-1"), "username": "nobody"}, headers=game
    )
    assert_error(r, 400, 11000005, "User not found")
    r = await client.put("/ext-orders/create", json={**create_body("u-2"), "currency": "XXX"}, headers=game)
    assert_error(r, 400, 11000006, "Currency not found")
    r = await client.post(
        "/ext-orders/settlement",
        json={**settlement_body("u-3", "1", "0"), "username": "nobody"},
        headers=game,
    )
    assert_error(r, 400, 11000005)


async def test_a_disabled_user_stakes_nothing_more_but_gets_stakes_back(client, container, wallet, game):
    assert_success(await client.put("/ext-orders/create", json=create_body("x-1", "40"), headers=game))
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE users SET is_active = false WHERE username = 'abc@def'"))
    r = await client.put("/ext-orders/create", json=create_body("x-2", "1"), headers=game)
    assert_error(r, 400, 11000005)
    assert_success(await client.put("/ext-orders/cancel", json=create_body("x-3", "10"), headers=game))
    assert_success(
        await client.post("/ext-orders/settlement", json=settlement_body("x-4", "30", "-5"), headers=game)
    )
    after = await balances(container, wallet)
    assert after["stake"] == 0 and after["available"] == Decimal(995)


# --- authentication ----------------------------------------------------------------------------


async def _assert_every_route_refuses(client, headers, status, code):
    for method, path, body in (
        ("PUT", "/ext-orders/create", create_body("auth-1")),
        ("PUT", "/ext-orders/cancel", create_body("auth-2")),
        ("POST", "/ext-orders/settlement", settlement_body("auth-3", "1", "0")),
        ("GET", "/ext-orders/auth-1", None),
    ):
        r = await client.request(method, path, json=body, headers=headers)
        assert_error(r, status, code)


async def test_callers_without_a_valid_service_token_are_unauthorised(client, container, wallet):
    await _assert_every_route_refuses(client, {}, 401, 11000002)
    await _assert_every_route_refuses(client, {"Authorization": "Bearer bst_not-a-token"}, 401, 11000002)
    await _assert_every_route_refuses(client, {"Authorization": "Basic Zm9vOmJhcg=="}, 401, 11000002)
    # A person's JWT is not a service token, even an admin's.
    await container.identity.create_user("boss", "boss-pass-123", roles=())
    jwt = bearer(await login(client, "boss", "boss-pass-123"))
    await _assert_every_route_refuses(client, jwt, 401, 11000002)
    revoked = await service_token(container, "old-game")
    await container.credentials.revoke_service_token("old-game")
    await _assert_every_route_refuses(client, revoked, 401, 11000002)
    r = await client.put("/ext-orders/create", json=create_body("auth-1"))
    assert r.headers["www-authenticate"] == "Bearer"
    assert (await balances(container, wallet))["stake"] == 0


async def test_a_token_without_the_ext_orders_scope_is_forbidden(client, container, wallet):
    async with container.uow() as uow:
        await uow.service_tokens.add("other-scope", digest("bst_scopeless-token"), frozenset({"reports"}))
        await uow.commit()
    await _assert_every_route_refuses(client, {"Authorization": "Bearer bst_scopeless-token"}, 403, 11000003)
    scopeless = ServiceCaller(1, "x", frozenset())
    with pytest.raises(PermissionDenied, match="scope"):
        await container.wallet.get(scopeless, "anything")


async def test_auth_is_checked_before_the_body(client, wallet):
    r = await client.put("/ext-orders/create", content=b"{not json", headers=JSON)
    assert_error(r, 401, 11000002)


# --- rate limit and internal errors ------------------------------------------------------------


async def test_rate_limited_and_internal_errors_use_the_envelope(container, wallet, game, monkeypatch):
    monkeypatch.setattr(container, "rate_limiter", LimitsRateLimiter(1, 1, None))
    app = create_app(container, dispose_on_shutdown=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await c.get("/ext-orders/x", headers=game)
        r = await c.get("/ext-orders/x", headers=game)
        assert_error(r, 429, 11000009, "Too many requests")
        assert int(r.headers["retry-after"]) >= 1

    async def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(container, "rate_limiter", None)
    monkeypatch.setattr(container.wallet, "create", broken)
    app = create_app(container, dispose_on_shutdown=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.put("/ext-orders/create", json=create_body("boom"), headers=game)
        body = assert_error(r, 500, 11000099, "Internal error")
        assert "fire" not in r.text and body["msg"] == "Internal error"
