"""Merchants in the back office: /back-api/backoffice/v2/merchants (manage-accounts)."""

from __future__ import annotations

import pytest

from bourse.domain.identity import Role
from tests.conftest import bearer, login
from tests.integration.trading.support import make_market

BO = "/back-api/backoffice/v2"
ACME = {
    "companyId": 1411,
    "name": "Acme OTC",
    "incomeDivideRate": "0.2",
    "volumeDivideRate": "0.0004",
    "maxDivideRate": "0.001",
    "rateSymbol": "BTC",
}


@pytest.fixture
async def staff(client, container):
    await make_market(container)  # BTC, ETH, USDT
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


def view(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("createdAt", "updatedAt")}


async def test_create_get_list_and_update_a_merchant(client, staff):
    r = await client.post(f"{BO}/merchants", headers=staff, json=ACME)
    assert r.status_code == 201, r.text
    assert view(r.json()) == ACME and isinstance(r.json()["createdAt"], int)
    r = await client.get(f"{BO}/merchants/1411", headers=staff)
    assert view(r.json()) == {**ACME, "users": [], "feePool": []}
    r = await client.put(
        f"{BO}/merchants/1411", headers=staff, json={"maxDivideRate": "0.002", "rateSymbol": "USDT"}
    )
    assert view(r.json()) == {**ACME, "maxDivideRate": "0.002", "rateSymbol": "USDT"}
    await client.post(f"{BO}/merchants", headers=staff, json={**ACME, "companyId": 7, "name": "Seven"})
    listed = (await client.get(f"{BO}/merchants", headers=staff)).json()
    assert [m["companyId"] for m in listed] == [7, 1411]


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"companyId": 0}, "companyId", 400),
        ({"companyId": "acme"}, "companyId", 400),
        ({"incomeDivideRate": "1.5"}, "incomeDivideRate", 400),
        ({"volumeDivideRate": 0.1}, "volumeDivideRate", 400),  # a JSON float is refused: amounts are strings
        ({"maxDivideRate": "-0.001"}, "maxDivideRate", 400),
        ({"rateSymbol": "DOGE"}, "rateSymbol", 400),
        ({"name": ""}, "name", 400),
        ({"colour": "red"}, "colour", 400),
    ],
)
async def test_invalid_merchants_are_refused_by_field(client, staff, change, field, status):
    r = await client.post(f"{BO}/merchants", headers=staff, json={**ACME, **change})
    assert r.status_code == status, r.text
    assert r.json()["details"]["field"] == field


async def test_a_company_id_is_used_once_and_cannot_change(client, staff):
    assert (await client.post(f"{BO}/merchants", headers=staff, json=ACME)).status_code == 201
    assert (await client.post(f"{BO}/merchants", headers=staff, json=ACME)).status_code == 409
    r = await client.put(f"{BO}/merchants/1411", headers=staff, json={"companyId": 1412})
    assert r.status_code == 400
    assert (await client.get(f"{BO}/merchants/1412", headers=staff)).status_code == 404


async def test_assign_and_unassign_users_one_merchant_per_user(client, container, staff):
    await client.post(f"{BO}/merchants", headers=staff, json=ACME)
    await client.post(f"{BO}/merchants", headers=staff, json={**ACME, "companyId": 7, "name": "Seven"})
    alice = (await container.identity.create_user("alice", "alice-pass-1")).user.uid

    assert (await client.put(f"{BO}/merchants/1411/users/{alice}", headers=staff)).status_code == 204
    assert (
        await client.put(f"{BO}/merchants/1411/users/{alice}", headers=staff)
    ).status_code == 204  # again: no-op
    r = await client.put(f"{BO}/merchants/7/users/{alice}", headers=staff)
    assert r.status_code == 409 and r.json()["details"]["field"] == "userId"
    users = (await client.get(f"{BO}/merchants/1411/users", headers=staff)).json()
    assert [(u["userId"], u["username"]) for u in users] == [(alice, "alice")]
    assert (await client.get(f"{BO}/merchants/7/users", headers=staff)).json() == []

    assert (await client.delete(f"{BO}/merchants/7/users/{alice}", headers=staff)).status_code == 404
    assert (await client.delete(f"{BO}/merchants/1411/users/{alice}", headers=staff)).status_code == 204
    assert (await client.put(f"{BO}/merchants/7/users/{alice}", headers=staff)).status_code == 204
    assert (await client.put(f"{BO}/merchants/7/users/999999", headers=staff)).status_code == 404
    assert (await client.put(f"{BO}/merchants/8/users/{alice}", headers=staff)).status_code == 404


async def test_merchant_routes_need_manage_accounts(client, container, staff):
    await container.identity.create_user("sup", "support-pass-1", roles=(Role.SUPPORT,))
    support = bearer(await login(client, "sup", "support-pass-1"))
    assert (await client.get(f"{BO}/merchants", headers=support)).status_code == 403
    assert (await client.post(f"{BO}/merchants", headers=support, json=ACME)).status_code == 403
    assert (await client.get(f"{BO}/merchants")).status_code == 401
