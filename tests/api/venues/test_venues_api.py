"""Back-office venues and hedge settings (our extension), /api/external-orders over real hedge
orders, and the ExternalOrderTimeout admin notification: shapes, errors, permissions."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from bourse.adapters.db import venue_tables as vt
from bourse.domain.identity import Role
from tests.api.derivatives.support import make_trader, post_order
from tests.conftest import bearer, login
from tests.integration.derivatives.support import make_cfd
from tests.integration.trading.support import make_market

BO = "/back-api/backoffice/v2"
ADMIN_N = "/notification/api/v1/admin-notifications"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
D = Decimal
PAPER = {
    "venueId": "paper",
    "kind": "Paper",
    "name": "Paper venue",
    "paper": {"mode": "Fill", "feeRate": "0.001"},
}
BINANCE = {
    "venueId": "binance-main",
    "kind": "Ccxt",
    "name": "Binance",
    "exchange": "binance",
    "sandbox": True,
    "credentials": {"apiKey": "AbCdEfGh12345678", "secret": "very-secret-value-42"},
}


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


@pytest.fixture
async def support(client, container):
    await container.identity.create_user("sup", "support-pass-1", roles=(Role.SUPPORT,))
    return bearer(await login(client, "sup", "support-pass-1"))


@pytest.fixture
async def trader(client, container):
    await container.identity.create_user("bob", "bob-pass-123")
    return bearer(await login(client, "bob", "bob-pass-123"))


async def test_venues_crud_with_write_only_keys(client, container, staff):
    r = await client.post(f"{BO}/venues", headers=staff, json=PAPER)
    assert r.status_code == 201, r.text
    paper = r.json()
    assert paper == {
        "venueId": "paper",
        "kind": "Paper",
        "name": "Paper venue",
        "enabled": True,
        "createdAt": paper["createdAt"],
        "updatedAt": paper["createdAt"],
        "paper": {"mode": "Fill", "latencyMs": 0, "feeRate": "0.001"},
    }
    assert ISO.match(paper["createdAt"])
    r = await client.post(f"{BO}/venues", headers=staff, json=BINANCE)
    assert r.status_code == 201, r.text
    ccxt = r.json()
    assert (ccxt["exchange"], ccxt["sandbox"]) == ("binance", True)
    assert ccxt["credentials"] == {"apiKey": "AbCd************", "hasSecret": True, "hasPassword": False}
    assert "very-secret" not in r.text

    # stored encrypted: the database holds neither key nor secret
    async with container.uow() as uow:
        stored = (await uow.connection.execute(select(vt.venues.c.credentials_enc))).scalars().all()
    assert [s for s in stored if s] and not any("very-secret" in s or "AbCdEfGh" in s for s in stored if s)

    r = await client.get(f"{BO}/venues", headers=staff)
    assert [v["venueId"] for v in r.json()["data"]] == ["binance-main", "paper"]
    assert (await client.get(f"{BO}/venues/paper", headers=staff)).json() == paper

    # a whole PUT; omitted credentials keep the stored keys
    r = await client.put(
        f"{BO}/venues/binance-main",
        headers=staff,
        json={"name": "Binance 2", "exchange": "binance", "enabled": False},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["enabled"], r.json()["sandbox"]) == ("Binance 2", False, False)
    assert r.json()["credentials"]["apiKey"] == "AbCd************"

    assert (await client.delete(f"{BO}/venues/binance-main", headers=staff)).status_code == 204
    assert (await client.get(f"{BO}/venues/binance-main", headers=staff)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**PAPER, "venueId": "Bad Id"}, 400, "invalid_input", "venueId"),
        ({**BINANCE, "exchange": "nosuchexchange"}, 400, "invalid_input", "exchange"),
        ({**BINANCE, "credentials": None}, 400, "invalid_input", "credentials"),
        ({**PAPER, "paper": {"mode": "Maybe"}}, 400, "invalid_input", "paper.mode"),
        ("not an object", 400, "invalid_input", "body"),
    ],
)
async def test_venue_refusals(client, staff, body, status, code, field):
    r = await client.post(f"{BO}/venues", headers=staff, json=body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["details"]["field"] == field


async def test_a_venue_id_is_taken_once_and_a_venue_in_use_is_not_deleted(client, container, staff):
    assert (await client.post(f"{BO}/venues", headers=staff, json=PAPER)).status_code == 201
    r = await client.post(f"{BO}/venues", headers=staff, json=PAPER)
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    market = await make_cfd(container)
    body = {"venueId": "paper", "venueSymbol": market, "hedgeRatio": "1"}
    assert (await client.put(f"{BO}/markets/{market}/hedging", headers=staff, json=body)).status_code == 200
    r = await client.delete(f"{BO}/venues/paper", headers=staff)
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    assert (await client.put(f"{BO}/venues/nope", headers=staff, json=PAPER)).status_code == 404
    assert (await client.delete(f"{BO}/venues/nope", headers=staff)).status_code == 404


async def test_hedge_settings(client, container, staff):
    market = await make_cfd(container)
    path = f"{BO}/markets/{market}/hedging"
    assert (await client.get(path, headers=staff)).json() == {
        "marketId": market,
        "enabled": False,
        "venueId": None,
        "venueSymbol": None,
        "hedgeRatio": None,
        "timeoutSeconds": None,
        "updatedAt": None,
    }
    await client.post(f"{BO}/venues", headers=staff, json=PAPER)
    body = {"venueId": "paper", "venueSymbol": market, "hedgeRatio": "0.75", "timeoutSeconds": 20}
    r = await client.put(path, headers=staff, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got == {
        "marketId": market,
        "enabled": True,
        "venueId": "paper",
        "venueSymbol": market,
        "hedgeRatio": "0.75",
        "timeoutSeconds": 20,
        "updatedAt": got["updatedAt"],
    }
    assert (await client.get(path, headers=staff)).json() == got

    for bad, field in (
        ({**body, "venueId": "nope"}, "venueId"),
        ({**body, "hedgeRatio": "2"}, "hedgeRatio"),
        ({**body, "timeoutSeconds": 0}, "timeoutSeconds"),
    ):
        r = await client.put(path, headers=staff, json=bad)
        assert r.status_code == 400 and r.json()["details"]["field"] == field, r.text
    spot = await make_market(container, marketId="BTCUSDT")
    r = await client.put(f"{BO}/markets/{spot}/hedging", headers=staff, json=body)
    assert r.status_code == 400 and r.json()["details"]["field"] == "marketId"
    assert (await client.get(f"{BO}/markets/NOPE/hedging", headers=staff)).status_code == 404


async def test_permissions(client, container, staff, support, trader):
    market = await make_cfd(container)
    await client.post(f"{BO}/venues", headers=staff, json=PAPER)
    hedging = {"venueId": "paper", "venueSymbol": market, "hedgeRatio": "1"}
    reads = [
        ("GET", f"{BO}/venues", None),
        ("GET", f"{BO}/venues/paper", None),
        ("GET", f"{BO}/markets/{market}/hedging", None),
    ]
    writes = [
        ("POST", f"{BO}/venues", {**PAPER, "venueId": "paper-2"}),
        ("PUT", f"{BO}/venues/paper", PAPER),
        ("DELETE", f"{BO}/venues/paper", None),
        ("PUT", f"{BO}/markets/{market}/hedging", hedging),
    ]
    for method, path, body in reads + writes:
        assert (await client.request(method, path, json=body)).status_code == 401, path
        r = await client.request(method, path, headers=trader, json=body)
        assert (r.status_code, r.json()["code"]) == (403, "permission_denied"), path
    for method, path, body in reads:
        assert (await client.request(method, path, headers=support, json=body)).status_code == 200, (
            path
        )  # view-common
    for method, path, body in writes:
        assert (await client.request(method, path, headers=support, json=body)).status_code == 403, (
            path
        )  # not manage-markets
    r = await client.post("/api/external-orders", headers=trader, json={})
    assert r.status_code == 403  # view-orders


async def _filled_and_timed_out(client, container, clock, staff):
    """Two hedged fills: one filled at the paper venue, one that times out at a silent one."""
    market = await make_cfd(container, bid="100", ask="101", markup="0.01")
    await client.post(f"{BO}/venues", headers=staff, json=PAPER)
    await client.post(
        f"{BO}/venues",
        headers=staff,
        json={"venueId": "silent", "kind": "Paper", "name": "S", "paper": {"mode": "Silent"}},
    )
    path = f"{BO}/markets/{market}/hedging"
    await client.put(
        path, headers=staff, json={"venueId": "paper", "venueSymbol": market, "hedgeRatio": "0.5"}
    )
    alice = await make_trader(client, container, "alice")
    first = await post_order(client, alice, requestedLotAmount="2")
    await container.hedging.run_external_orders()
    await client.put(
        path,
        headers=staff,
        json={"venueId": "silent", "venueSymbol": market, "hedgeRatio": "1", "timeoutSeconds": 10},
    )
    clock.advance(seconds=1)
    second = await post_order(client, alice, side="Sell", requestedLotAmount="1")
    await container.hedging.run_external_orders()
    clock.advance(seconds=10)
    await container.hedging.run_external_orders()
    return market, alice, first, second


async def test_external_orders_history_lists_the_hedges_with_filters(client, container, clock, staff):
    market, alice, first, second = await _filled_and_timed_out(client, container, clock, staff)

    r = await client.post("/api/external-orders", headers=staff, json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["limit"] == {"isExceeded": False}
    timed, filled = body["data"]  # newest first
    assert filled == {
        "externalOrderId": f"H{first['orderId']}",
        "lpOrderId": "paper-1",
        "orderId": str(first["orderId"]),
        "userId": filled["userId"],
        "userEmail": None,
        "accountId": alice.account_id,
        "accountName": filled["accountName"],
        "marketId": market,
        "marketDisplayName": filled["marketDisplayName"],
        "side": "Buy",
        "orderType": "Market",
        "timeInForce": "Ioc",
        "orderStatus": "Filled",
        "baseAmount": 1,
        "quoteAmount": 101,
        "avgExecutionPrice": 101,
        "limitPrice": None,
        "filledAmount": 1,
        "remainingAmount": 0,
        "commissionAmount": 0.101,
        "commissionAssetId": "USDT",
        "commissionAssetName": "USDT",
        "commissionInRAT": 0.101,
        "createdAt": filled["createdAt"],
        "updatedAt": filled["updatedAt"],
    }
    assert ISO.match(filled["createdAt"]) and ISO.match(filled["updatedAt"])
    assert (timed["externalOrderId"], timed["side"], timed["orderStatus"]) == (
        f"H{second['orderId']}",
        "Sell",
        "TimedOut",
    )
    assert (
        timed["lpOrderId"],
        timed["filledAmount"],
        timed["commissionAssetId"],
        timed["commissionInRAT"],
    ) == (
        None,
        0,
        None,
        None,
    )

    async def ids(filters, **extra):
        r = await client.post("/api/external-orders", headers=staff, json={"filters": filters, **extra})
        assert r.status_code == 200, r.text
        return [row["externalOrderId"] for row in r.json()["data"]]

    f1, f2 = f"H{first['orderId']}", f"H{second['orderId']}"
    assert await ids([{"entryType": "Equals", "field": "orderStatus", "value": "TimedOut"}]) == [f2]
    assert await ids([{"entryType": "In", "field": "orderStatus", "value": ["Filled", "Rejected"]}]) == [f1]
    assert await ids([{"entryType": "Equals", "field": "lpOrderId", "value": "paper-1"}]) == [f1]
    assert await ids([{"entryType": "Equals", "field": "orderId", "value": str(second["orderId"])}]) == [f2]
    assert await ids([{"entryType": "Equals", "field": "marketId", "value": market}]) == [f2, f1]
    assert await ids([{"entryType": "GreaterThan", "field": "filledAmount", "value": "0"}]) == [f1]
    assert await ids([], sort={"field": "createdAt", "direction": "Asc"}, limit=1) == [f1]
    r = await client.post("/api/external-orders", headers=staff, json={"limit": 1})
    assert r.json()["limit"] == {"isExceeded": True}
    bad = {"filters": [{"entryType": "Equals", "field": "orderStatus", "value": "Placed"}]}
    r = await client.post("/api/external-orders", headers=staff, json=bad)
    assert r.status_code == 400 and r.json()["details"]["field"] == "filters[0].value", r.text


async def test_the_timeout_is_an_admin_notification(client, container, clock, staff):
    market, alice, _, second = await _filled_and_timed_out(client, container, clock, staff)
    r = await client.post(ADMIN_N, headers=staff, json={"types": ["ExternalOrderTimeout"]})
    assert r.status_code == 200, r.text
    (note,) = r.json()["notifications"]
    assert (note["type"], note["title"], note["isRead"]) == (
        "ExternalOrderTimeout",
        "External order timed out",
        False,
    )
    data = note["data"]
    assert (
        data["externalOrderId"],
        data["orderId"],
        data["venueId"],
        data["marketId"],
        data["accountId"],
    ) == (
        f"H{second['orderId']}",
        str(second["orderId"]),
        "silent",
        market,
        alice.account_id,
    )
    assert f"venue silent, market {market}" in note["body"]
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=staff)).json() == {"count": 1}


async def test_the_external_orders_report_lists_the_hedges(client, container, clock, staff):
    _, _, first, second = await _filled_and_timed_out(client, container, clock, staff)
    r = await client.post(
        "/api/reports",
        headers=staff,
        json={"reportName": "Hedges", "source": "ExternalOrders", "format": "Csv"},
    )
    assert r.status_code == 200, r.text
    report_id = r.json()["id"]
    while await container.reports.work_once():
        pass
    r = await client.get(f"/api/reports/{report_id}/download", headers=staff)
    assert r.status_code == 200, r.text
    header, *rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    assert header[:3] == ["externalOrderId", "lpOrderId", "orderId"]
    got = [(row[0], row[header.index("orderStatus")], row[header.index("filledAmount")]) for row in rows]
    assert got == [(f"H{second['orderId']}", "TimedOut", "0"), (f"H{first['orderId']}", "Filled", "1")]
