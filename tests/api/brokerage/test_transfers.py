"""Back-office transfers: /back-api/backoffice/transfers/..."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from bourse.bootstrap import Container
from bourse.domain.identity import Role
from bourse.domain.ledger import EXTERNAL, account_owner
from bourse.domain.values import AssetId
from tests.conftest import bearer, login

BASE = "/back-api/backoffice/transfers"
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TRANSFER_KEYS = {
    "transferId",
    "deduplicationId",
    "assetId",
    "type",
    "status",
    "amount",
    "createdAt",
    "updatedAt",
}


async def _user(container: Container, client: httpx.AsyncClient, name: str, *roles: Role) -> dict[str, str]:
    await container.identity.create_user(name, f"{name}-pass-123", roles=roles or (Role.TRADER,))
    return bearer(await login(client, name, f"{name}-pass-123"))


@pytest.fixture
async def ops(container: Container, client: httpx.AsyncClient) -> dict[str, str]:
    return await _user(container, client, "ops", Role.ADMIN)


@pytest.fixture
async def account(container: Container) -> str:
    await container.ledger.create_asset("USDT", "Tether", 2, "Crypto")
    await container.ledger.create_asset("BTC", "Bitcoin", 8, "Crypto")
    created = await container.identity.create_user("alice", "alice-pass-123")
    return str(created.account.account_id)


async def _balance(
    container: Container, owner: str, bucket: str = "available", asset: str = "USDT"
) -> Decimal:
    async with container.uow() as uow:
        return await uow.ledger.balance(owner, AssetId(asset), bucket)


def _body(
    account: str, dedup: str = "d-1", amount: str = "100.50", asset: str = "USDT", **extra: object
) -> dict:
    return {"deduplicationId": dedup, "accountId": account, "amount": amount, "assetId": asset, **extra}


async def test_deposit_credits_at_once(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    r = await client.post(f"{BASE}/deposit", json=_body(account), headers=ops)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == TRANSFER_KEYS
    assert body["deduplicationId"] == "d-1"
    assert body["assetId"] == "USDT"
    assert (body["type"], body["status"], body["amount"]) == ("Deposit", "Completed", "100.5")
    assert ISO_MILLIS.match(body["createdAt"]) and ISO_MILLIS.match(body["updatedAt"])
    assert await _balance(container, account_owner(account)) == Decimal("100.5")
    assert await _balance(container, EXTERNAL) == Decimal("-100.5")

    got = await client.get(f"{BASE}/{body['transferId']}", headers=ops)
    assert got.status_code == 200
    assert got.json() == body

    async with container.engine.connect() as conn:
        audited = (
            await conn.execute(
                text("SELECT count(*) FROM audit_log WHERE action = 'money.moved' AND subject = :s"),
                {"s": f"transfer:{body['transferId']}"},
            )
        ).scalar_one()
    assert audited == 1


async def test_api_version_content_type_is_accepted(
    client: httpx.AsyncClient, ops: dict[str, str], account: str
) -> None:
    r = await client.post(
        f"{BASE}/deposit",
        content=b'{"deduplicationId":"v","accountId":"%s","amount":"1","assetId":"USDT"}' % account.encode(),
        headers={**ops, "Content-Type": "application/json; x-api-version=1.0"},
    )
    assert r.status_code == 201, r.text


async def test_repeated_deduplication_id_returns_the_first_transfer(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    first = await client.post(f"{BASE}/deposit", json=_body(account), headers=ops)
    again = await client.post(f"{BASE}/deposit", json=_body(account, amount="100.500"), headers=ops)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert await _balance(container, account_owner(account)) == Decimal("100.5")

    for changed in (_body(account, amount="100.51"), _body(account, asset="BTC")):
        r = await client.post(f"{BASE}/deposit", json=changed, headers=ops)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "idempotency_conflict"
    # Unique per account across types: a withdrawal may not reuse a deposit's id.
    r = await client.post(f"{BASE}/withdrawal", json=_body(account, amount="1"), headers=ops)
    assert r.status_code == 409
    assert await _balance(container, account_owner(account)) == Decimal("100.5")

    listed = await client.get(f"{BASE}/accounts/{account}", headers=ops)
    assert [t["transferId"] for t in listed.json()] == [first.json()["transferId"]]


async def test_deduplication_id_is_per_account(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    other = str((await container.identity.create_user("bob", "bob-pass-123")).account.account_id)
    a = await client.post(f"{BASE}/deposit", json=_body(account, amount="5"), headers=ops)
    b = await client.post(f"{BASE}/deposit", json=_body(other, amount="7"), headers=ops)
    assert a.status_code == b.status_code == 201
    assert a.json()["transferId"] != b.json()["transferId"]
    assert await _balance(container, account_owner(other)) == Decimal("7")


async def test_withdrawal_holds_then_confirm_pays_out(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    await client.post(f"{BASE}/deposit", json=_body(account, "dep", "100"), headers=ops)
    r = await client.post(f"{BASE}/withdrawal", json=_body(account, "wd", "30.25"), headers=ops)
    assert r.status_code == 201, r.text
    wd = r.json()
    assert set(wd) == TRANSFER_KEYS
    assert (wd["type"], wd["status"], wd["amount"]) == ("Withdrawal", "Pending", "30.25")
    owner = account_owner(account)
    assert await _balance(container, owner) == Decimal("69.75")
    assert await _balance(container, owner, "locked") == Decimal("30.25")

    settle = {"accountId": account, "transferId": wd["transferId"]}
    r = await client.post(f"{BASE}/withdrawal-confirm", json=settle, headers=ops)
    assert r.status_code == 204
    assert r.content == b""
    got = (await client.get(f"{BASE}/{wd['transferId']}", headers=ops)).json()
    assert got["status"] == "Completed"
    assert got["createdAt"] == wd["createdAt"]
    assert await _balance(container, owner) == Decimal("69.75")
    assert await _balance(container, owner, "locked") == 0
    assert await _balance(container, EXTERNAL) == Decimal("-69.75")

    # Repeating the final action is idempotent; the opposite one is a conflict.
    assert (await client.post(f"{BASE}/withdrawal-confirm", json=settle, headers=ops)).status_code == 204
    r = await client.post(f"{BASE}/withdrawal-cancel", json=settle, headers=ops)
    assert r.status_code == 409
    assert await _balance(container, owner) == Decimal("69.75")
    assert await _balance(container, EXTERNAL) == Decimal("-69.75")


async def test_withdrawal_cancel_releases_the_hold(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    await client.post(f"{BASE}/deposit", json=_body(account, "dep", "10"), headers=ops)
    wd = (await client.post(f"{BASE}/withdrawal", json=_body(account, "wd", "4"), headers=ops)).json()
    settle = {"accountId": account, "transferId": wd["transferId"]}
    assert (await client.post(f"{BASE}/withdrawal-cancel", json=settle, headers=ops)).status_code == 204
    owner = account_owner(account)
    assert await _balance(container, owner) == Decimal("10")
    assert await _balance(container, owner, "locked") == 0
    assert (await client.get(f"{BASE}/{wd['transferId']}", headers=ops)).json()["status"] == "Cancelled"
    assert (await client.post(f"{BASE}/withdrawal-cancel", json=settle, headers=ops)).status_code == 204
    assert (await client.post(f"{BASE}/withdrawal-confirm", json=settle, headers=ops)).status_code == 409
    assert await _balance(container, owner) == Decimal("10")


async def test_withdrawal_beyond_available_is_refused_and_not_stored(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    await client.post(f"{BASE}/deposit", json=_body(account, "dep", "10"), headers=ops)
    await client.post(f"{BASE}/withdrawal", json=_body(account, "wd1", "8"), headers=ops)
    r = await client.post(f"{BASE}/withdrawal", json=_body(account, "wd2", "2.01"), headers=ops)
    assert r.status_code == 400
    assert r.json()["code"] == "insufficient_funds"
    listed = (await client.get(f"{BASE}/accounts/{account}", headers=ops)).json()
    assert [t["deduplicationId"] for t in listed] == ["wd1", "dep"]  # newest first
    # The refused id is free: once funds are there, the same request succeeds.
    await client.post(f"{BASE}/deposit", json=_body(account, "dep2", "1"), headers=ops)
    r = await client.post(f"{BASE}/withdrawal", json=_body(account, "wd2", "2.01"), headers=ops)
    assert r.status_code == 201


async def test_confirm_and_cancel_refuse_what_is_not_a_pending_withdrawal_of_the_account(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    dep = (await client.post(f"{BASE}/deposit", json=_body(account, "dep", "10"), headers=ops)).json()
    wd = (await client.post(f"{BASE}/withdrawal", json=_body(account, "wd", "1"), headers=ops)).json()
    other = str((await container.identity.create_user("bob", "bob-pass-123")).account.account_id)
    for path in ("withdrawal-confirm", "withdrawal-cancel"):
        r = await client.post(
            f"{BASE}/{path}", json={"accountId": account, "transferId": dep["transferId"]}, headers=ops
        )
        assert r.status_code == 409, r.text
        r = await client.post(
            f"{BASE}/{path}", json={"accountId": other, "transferId": wd["transferId"]}, headers=ops
        )
        assert r.status_code == 404
        r = await client.post(
            f"{BASE}/{path}", json={"accountId": account, "transferId": "nope"}, headers=ops
        )
        assert r.status_code == 404
        r = await client.post(
            f"{BASE}/{path}", json={"accountId": "nope", "transferId": wd["transferId"]}, headers=ops
        )
        assert r.status_code == 404
        r = await client.post(f"{BASE}/{path}", json={"accountId": account}, headers=ops)
        assert r.status_code == 400
    assert (await client.get(f"{BASE}/{wd['transferId']}", headers=ops)).json()["status"] == "Pending"


async def test_unknown_objects_are_404(client: httpx.AsyncClient, ops: dict[str, str], account: str) -> None:
    assert (await client.get(f"{BASE}/no-such-transfer", headers=ops)).status_code == 404
    assert (await client.get(f"{BASE}/accounts/no-such-account", headers=ops)).status_code == 404
    assert (await client.get(f"{BASE}/accounts/{account}", headers=ops)).json() == []
    r = await client.post(f"{BASE}/deposit", json=_body("no-such-account"), headers=ops)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    r = await client.post(f"{BASE}/deposit", json=_body(account, asset="NOPE"), headers=ops)
    assert r.status_code == 404
    r = await client.post(f"{BASE}/withdrawal", json=_body(account, asset="NOPE"), headers=ops)
    assert r.status_code == 404


@pytest.mark.parametrize("amount", ["0", "-1", "0.00", "abc", "", "1.001", "NaN", "Infinity", "1e-3"])
async def test_bad_amounts_are_refused_never_rounded(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str, amount: str
) -> None:
    for path in ("deposit", "withdrawal"):
        r = await client.post(f"{BASE}/{path}", json=_body(account, amount=amount), headers=ops)
        assert r.status_code == 400, (path, amount, r.text)
    assert await _balance(container, account_owner(account)) == 0
    assert (await client.get(f"{BASE}/accounts/{account}", headers=ops)).json() == []


async def test_amount_scale_follows_the_asset(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    r = await client.post(f"{BASE}/deposit", json=_body(account, "b", "0.00000001", "BTC"), headers=ops)
    assert r.status_code == 201
    r = await client.post(f"{BASE}/deposit", json=_body(account, "c", "0.000000001", "BTC"), headers=ops)
    assert r.status_code == 400
    assert r.json()["details"]["field"] == "amount"
    r = await client.post(f"{BASE}/deposit", json=_body(account, "u", "1.10"), headers=ops)
    assert r.status_code == 201
    assert r.json()["amount"] == "1.1"


async def test_json_number_amount_is_refused(
    client: httpx.AsyncClient, ops: dict[str, str], account: str
) -> None:
    body = _body(account)
    body["amount"] = 100.5
    assert (await client.post(f"{BASE}/deposit", json=body, headers=ops)).status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cb",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://10.0.0.1/",
        "ftp://example.com/",
        "http://localhost:8080/",
    ],
)
async def test_unsafe_callback_urls_are_refused_at_registration(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str, url: str
) -> None:
    r = await client.post(f"{BASE}/deposit", json=_body(account, callbackUrl=url), headers=ops)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == "callbackUrl"
    assert await _balance(container, account_owner(account)) == 0

    await client.post(f"{BASE}/deposit", json=_body(account, "dep", "5"), headers=ops)
    wd = (await client.post(f"{BASE}/withdrawal", json=_body(account, "wd", "1"), headers=ops)).json()
    r = await client.post(
        f"{BASE}/withdrawal-confirm",
        json={"accountId": account, "transferId": wd["transferId"], "callbackUrl": url},
        headers=ops,
    )
    assert r.status_code == 400
    assert (await client.get(f"{BASE}/{wd['transferId']}", headers=ops)).json()["status"] == "Pending"


async def test_public_callback_url_is_accepted(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    r = await client.post(
        f"{BASE}/deposit", json=_body(account, callbackUrl="https://hooks.example.com/transfers"), headers=ops
    )
    assert r.status_code == 201
    deliveries = await container.callbacks.deliveries(r.json()["transferId"])
    assert [(d.url, d.state.value) for d in deliveries] == [
        ("https://hooks.example.com/transfers", "pending")
    ]


async def test_permissions(
    client: httpx.AsyncClient, container: Container, ops: dict[str, str], account: str
) -> None:
    dep = (await client.post(f"{BASE}/deposit", json=_body(account, "dep", "5"), headers=ops)).json()
    trader = await _user(container, client, "trader1")
    support = await _user(container, client, "helper", Role.SUPPORT)
    operator = await _user(container, client, "oper", Role.OPERATOR)

    for headers, post_status, get_status in ((trader, 403, 403), (support, 403, 200), ({}, 401, 401)):
        r = await client.post(f"{BASE}/deposit", json=_body(account, "x", "1"), headers=headers)
        assert r.status_code == post_status
        r = await client.post(f"{BASE}/withdrawal", json=_body(account, "y", "1"), headers=headers)
        assert r.status_code == post_status
        r = await client.post(
            f"{BASE}/withdrawal-cancel", json={"accountId": account, "transferId": "t"}, headers=headers
        )
        assert r.status_code == post_status
        assert (await client.get(f"{BASE}/{dep['transferId']}", headers=headers)).status_code == get_status
        assert (await client.get(f"{BASE}/accounts/{account}", headers=headers)).status_code == get_status
    assert await _balance(container, account_owner(account)) == Decimal("5")

    r = await client.post(f"{BASE}/deposit", json=_body(account, "op", "1"), headers=operator)
    assert r.status_code == 201
