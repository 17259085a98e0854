"""Who may call what on the history server: each route's operation (401 without a token, 403
without the operation), and history/orders only ever shows the caller's own orders."""

from __future__ import annotations

import pytest

from bourse.domain.identity import Role
from tests.api.history.support import person, world

STAFF_ROUTES = [
    ("POST", "/api/active-accounts", "view-active-accounts"),
    ("GET", "/api/users/{uid}/balances", "view-balances"),
    ("POST", "/api/users/balances", "view-balances"),
    ("POST", "/api/accounts/balances", "view-balances"),
    ("POST", "/api/billing/billing-info", "view-billing-info"),
    ("POST", "/api/commissions/accounts-assets", "view-commissions"),
    ("POST", "/api/commissions/users-assets", "view-commissions"),
    ("POST", "/api/commissions/users", "view-commissions"),
    ("POST", "/api/commissions/accounts", "view-commissions"),
    ("POST", "/api/commissions/assets", "view-commissions"),
    ("POST", "/api/v1/markups/revenue", "view-markup-revenue"),
    ("POST", "/api/open-orders", "view-orders"),
    ("POST", "/api/orders", "view-orders"),
    ("POST", "/api/external-orders", "view-orders"),
    ("POST", "/api/trades", "view-trades"),
    ("POST", "/api/unsolicited-trades", "view-trades"),
    ("POST", "/api/transfers", "view-transfers"),
]
TRADER_ROUTES = [
    ("GET", "/api/history/orders/1", "trading-ui"),
    ("POST", "/api/history/orders/list", "trading-ui"),
]
# support lacks the money views; accountant lacks trading.
SUPPORT_DENIED = {"view-billing-info", "view-commissions", "view-markup-revenue", "trading-ui"}
ACCOUNTANT_DENIED = {"trading-ui"}


async def call(client, method, path, headers, uid):
    url = path.format(uid=uid)
    if method == "GET":
        return await client.get(url, headers=headers)
    return await client.post(url, headers=headers, json={})


@pytest.fixture
async def people(client, container):
    return {
        "trader": await person(client, container, "tina"),
        "support": await person(client, container, "sam", (Role.SUPPORT,)),
        "accountant": await person(client, container, "acc", (Role.ACCOUNTANT,)),
        "admin": await person(client, container, "ada", (Role.ADMIN,)),
    }


async def test_every_route_needs_a_token(client, people):
    for method, path, _ in STAFF_ROUTES + TRADER_ROUTES:
        r = await call(client, method, path, {}, people["trader"].uid)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("who", "denied"),
    [
        ("trader", {op for _, _, op in STAFF_ROUTES}),
        ("support", SUPPORT_DENIED),
        ("accountant", ACCOUNTANT_DENIED),
        ("admin", set()),
    ],
)
async def test_each_route_requires_its_operation(client, people, who, denied):
    caller = people[who]
    for method, path, operation in STAFF_ROUTES + TRADER_ROUTES:
        r = await call(client, method, path, caller.headers, people["trader"].uid)
        if operation in denied:
            assert r.status_code == 403, (who, path, r.text)
            assert r.json()["code"] == "permission_denied"
        else:
            # Allowed: the answer, or "no such order" for an order nobody placed.
            assert r.status_code in (200, 404), (who, path, r.text)
            assert r.status_code == 200 or path.startswith("/api/history/orders/1")


async def test_history_orders_shows_only_the_callers_own_orders(client, container, clock):
    w = await world(client, container, clock)
    alices = w.orders["a1"]
    assert (await client.get(f"/api/history/orders/{alices}", headers=w.alice.headers)).status_code == 200
    # Another trader, and even staff (it is the trader's own history), get "not found".
    for headers in (w.bob.headers, w.carol.headers, w.staff):
        r = await client.get(f"/api/history/orders/{alices}", headers=headers)
        assert r.status_code == 404, r.text
    listed = await client.post("/api/history/orders/list", headers=w.bob.headers, json={})
    assert {o["orderId"] for o in listed.json()} == {w.orders[k] for k in ("b1", "b2", "b3")}
    assert (await client.post("/api/history/orders/list", headers=w.carol.headers, json={})).json() == []
    # Naming someone else's account is "not found", not their orders.
    r = await client.post(
        "/api/history/orders/list", headers={**w.bob.headers, "accountId": w.alice.account_id}, json={}
    )
    assert r.status_code == 404
    assert (await client.get("/api/history/orders/abc", headers=w.alice.headers)).status_code == 404
