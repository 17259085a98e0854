"""GET/PUT /back-api/backoffice/v2/markets/{marketId}/price-source and
GET /marketdata/api/v4/instruments/{marketSymbol}/funding: shapes, errors, permissions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bourse.domain.identity import Role
from bourse.domain.pricing import FundingRate
from tests.conftest import bearer, login
from tests.integration.pricing.support import make_perpetual, use_fake_feed
from tests.integration.trading.support import make_market

BO = "/back-api/backoffice/v2"
MD = "/marketdata/api/v4"
D = Decimal
T0 = datetime(2025, 9, 9, 0, 0, tzinfo=UTC)


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
    await container.identity.create_user("alice", "alice-pass-1")
    return bearer(await login(client, "alice", "alice-pass-1"))


@pytest.fixture
async def feed(container):
    return use_fake_feed(container)


@pytest.fixture
async def perp(container, feed):
    return await make_perpetual(container)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def test_put_and_get_a_manual_dealer_source(client, container, staff, perp, clock):
    body = {
        "executionMode": "Dealer",
        "sourceKind": "Manual",
        "bid": "100",
        "ask": "100.01",
        "markupRate": "0.001",
    }
    r = await client.put(f"{BO}/markets/{perp}/price-source", headers=staff, json=body)
    assert r.status_code == 200, r.text
    expected = {
        "marketId": perp,
        "marketType": "Perpetual",
        "status": "Active",
        "settings": {
            "executionMode": "Dealer",
            "sourceKind": "Manual",
            "sourceMarketId": None,
            "exchange": None,
            "symbol": None,
            "bid": "100",
            "ask": "100.01",
            "markupRate": "0.001",
            "staleAfterSeconds": 30,
        },
        "updatedAt": stamp(clock.now()),
        "isStale": False,
        "rawBid": None,
        "rawAsk": None,
        "quotedAt": None,
        # 100.01 * 1.001 = 100.11001 -> 100.12 up; 100 * 0.999 = 99.9
        "bid": "99.9",
        "ask": "100.12",
        "mark": None,
        "index": None,
        "markedAt": None,
        "lastError": None,
        "lastErrorAt": None,
    }
    assert r.json() == expected
    got = await client.get(f"{BO}/markets/{perp}/price-source", headers=staff)
    assert got.status_code == 200 and got.json() == expected
    await container.pricing.tick()
    after = (await client.get(f"{BO}/markets/{perp}/price-source", headers=staff)).json()
    assert (after["rawBid"], after["rawAsk"], after["quotedAt"]) == ("100", "100.01", stamp(clock.now()))
    assert (after["mark"], after["index"], after["markedAt"]) == ("100", "100.005", stamp(clock.now()))


async def test_a_ccxt_source_shows_its_quote_and_its_last_error(client, container, staff, feed, perp, clock):
    feed.set("binance", "BTC/USDT", "65000.1", "65000.3")
    body = {"executionMode": "Dealer", "sourceKind": "Ccxt", "exchange": "binance", "symbol": "BTC/USDT"}
    r = await client.put(f"{BO}/markets/{perp}/price-source", headers=staff, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["bid"] is None and r.json()["isStale"] is False  # not read yet
    await container.pricing.tick()
    feed.fail("binance", "BTC/USDT", "timed out")
    clock.advance(seconds=2)
    await container.pricing.tick()
    view = (await client.get(f"{BO}/markets/{perp}/price-source", headers=staff)).json()
    assert (view["bid"], view["ask"], view["rawBid"]) == ("65000.1", "65000.3", "65000.1")
    assert view["lastError"] == "binance BTC/USDT: timed out"
    assert view["lastErrorAt"] == stamp(clock.now())
    assert view["settings"]["exchange"] == "binance" and view["settings"]["symbol"] == "BTC/USDT"
    clock.advance(seconds=29)
    view = (await client.get(f"{BO}/markets/{perp}/price-source", headers=staff)).json()
    assert view["isStale"] is True and view["bid"] is None


async def test_a_market_with_no_settings_shows_none(client, staff, perp):
    r = await client.get(f"{BO}/markets/{perp}/price-source", headers=staff)
    assert r.status_code == 200
    assert r.json()["settings"] is None and r.json()["updatedAt"] is None and r.json()["isStale"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"executionMode": "Dealer"}, "sourceKind"),
        ({"executionMode": "Dealer", "sourceKind": "Manual", "bid": "2", "ask": "1"}, "ask"),
        ({"executionMode": "Dealer", "sourceKind": "Market", "sourceMarketId": "NOPE"}, "sourceMarketId"),
        (
            {"executionMode": "Dealer", "sourceKind": "Ccxt", "exchange": "nosuchx", "symbol": "A/B"},
            "exchange",
        ),
        ({"executionMode": "OrderBook", "markupRate": "0.5"}, "markupRate"),
        ({"executionMode": "OrderBook", "staleAfterSeconds": 0}, "staleAfterSeconds"),
        ({"executionMode": "OrderBook", "extra": 1}, "extra"),
    ],
)
async def test_put_errors_name_the_field_and_change_nothing(client, staff, perp, body, field):
    ok = {"executionMode": "Dealer", "sourceKind": "Manual", "bid": "1", "ask": "2"}
    assert (await client.put(f"{BO}/markets/{perp}/price-source", headers=staff, json=ok)).status_code == 200
    before = (await client.get(f"{BO}/markets/{perp}/price-source", headers=staff)).json()
    r = await client.put(f"{BO}/markets/{perp}/price-source", headers=staff, json=body)
    assert r.status_code == 400, r.text
    error = r.json()
    assert error["code"] == "invalid_input" and error["details"]["field"] == field
    assert isinstance(error["message"], str) and "requestId" in error
    assert (await client.get(f"{BO}/markets/{perp}/price-source", headers=staff)).json() == before


async def test_spot_markets_unknown_markets_and_bodies_that_are_not_objects(client, container, staff, feed):
    spot = await make_market(container)
    r = await client.put(
        f"{BO}/markets/{spot}/price-source", headers=staff, json={"executionMode": "OrderBook"}
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "marketId"
    for method, body in (("GET", None), ("PUT", {"executionMode": "OrderBook"})):
        r = await client.request(method, f"{BO}/markets/NOPE/price-source", headers=staff, json=body)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "not_found" and r.json()["details"]["field"] == "marketId"
    await make_perpetual(container)
    r = await client.put(f"{BO}/markets/BTCPERP/price-source", headers=staff, json=["Dealer"])
    assert r.status_code == 400


async def test_changes_are_audited(client, container, staff, perp):
    body = {"executionMode": "Dealer", "sourceKind": "Manual", "bid": "1", "ask": "2"}
    await client.put(f"{BO}/markets/{perp}/price-source", headers=staff, json=body)
    async with container.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT actor, action, details->'fields', details->'priceSource'->>'sourceKind'"
                f" FROM audit_log WHERE subject = 'market:{perp}' AND action = 'market.updated'"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("ops", "market.updated", ["priceSource"], "Manual")]


async def test_permissions(client, staff, support, trader, perp):
    path = f"{BO}/markets/{perp}/price-source"
    body = {"executionMode": "OrderBook"}
    assert (await client.get(path)).status_code == 401
    assert (await client.put(path, json=body)).status_code == 401
    assert (await client.get(path, headers=trader)).status_code == 403
    r = await client.put(path, headers=trader, json=body)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert (await client.get(path, headers=support)).status_code == 200  # view-common reads
    assert (await client.put(path, headers=support, json=body)).status_code == 403  # not manage-markets
    assert (await client.put(path, headers=staff, json=body)).status_code == 200


# --- funding ---------------------------------------------------------------------------------------


async def add_rates(container, market: str, count: int) -> list[datetime]:
    times = [T0 + timedelta(hours=8 * i) for i in range(count)]
    async with container.uow() as uow:
        for i, moment in enumerate(times):
            rate = D("0.0001") * (i + 1) * (-1 if i % 2 else 1)
            await uow.pricing.add_funding_rate(FundingRate(market, moment, 8, rate, D("100.5"), D("100.4")))
        await uow.commit()
    return times


async def test_funding_shape_and_paging(client, container, trader, perp):
    times = await add_rates(container, perp, 5)
    r = await client.get(f"{MD}/instruments/{perp}/funding", headers=trader)
    assert r.status_code == 200
    assert r.json() == {
        "fundingData": [
            {"appliedAt": stamp(times[4]), "interval": 8, "rate": "0.0005"},
            {"appliedAt": stamp(times[3]), "interval": 8, "rate": "-0.0004"},
            {"appliedAt": stamp(times[2]), "interval": 8, "rate": "0.0003"},
            {"appliedAt": stamp(times[1]), "interval": 8, "rate": "-0.0002"},
            {"appliedAt": stamp(times[0]), "interval": 8, "rate": "0.0001"},
        ],
        "hasMore": False,
    }
    first = (await client.get(f"{MD}/instruments/{perp}/funding?limit=2", headers=trader)).json()
    assert [d["appliedAt"] for d in first["fundingData"]] == [stamp(times[4]), stamp(times[3])]
    assert first["hasMore"] is True
    cursor = first["fundingData"][-1]["appliedAt"]
    second = (
        await client.get(
            f"{MD}/instruments/{perp}/funding", headers=trader, params={"limit": 2, "before": cursor}
        )
    ).json()
    assert [d["appliedAt"] for d in second["fundingData"]] == [stamp(times[2]), stamp(times[1])]
    assert second["hasMore"] is True
    cursor = second["fundingData"][-1]["appliedAt"]
    last = (
        await client.get(
            f"{MD}/instruments/{perp}/funding", headers=trader, params={"limit": 2, "before": cursor}
        )
    ).json()
    assert [d["appliedAt"] for d in last["fundingData"]] == [stamp(times[0])] and last["hasMore"] is False
    # epoch milliseconds work as well as ISO for `before`
    millis = int(times[1].timestamp() * 1000)
    by_millis = (await client.get(f"{MD}/instruments/{perp}/funding?before={millis}", headers=trader)).json()
    assert [d["appliedAt"] for d in by_millis["fundingData"]] == [stamp(times[0])]


async def test_funding_of_a_market_without_rates_and_of_an_unknown_market(client, container, trader, perp):
    assert (await client.get(f"{MD}/instruments/{perp}/funding", headers=trader)).json() == {
        "fundingData": [],
        "hasMore": False,
    }
    r = await client.get(f"{MD}/instruments/NOPE/funding", headers=trader)
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "not_found" and body["details"] == {"field": "marketSymbol"}
    assert body["message"] == "market NOPE not found" and "requestId" in body


@pytest.mark.parametrize(
    ("query", "field"), [("limit=0", "limit"), ("limit=1001", "limit"), ("before=yesterday", "before")]
)
async def test_funding_query_errors(client, trader, perp, query, field):
    r = await client.get(f"{MD}/instruments/{perp}/funding?{query}", headers=trader)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_input" and r.json()["details"]["field"] == field


async def test_funding_limit_bounds(client, container, trader, perp):
    await add_rates(container, perp, 3)
    r = await client.get(f"{MD}/instruments/{perp}/funding?limit=1000", headers=trader)
    assert r.status_code == 200 and len(r.json()["fundingData"]) == 3
    r = await client.get(f"{MD}/instruments/{perp}/funding?limit=1", headers=trader)
    assert len(r.json()["fundingData"]) == 1 and r.json()["hasMore"] is True


async def test_funding_needs_trading_ui(client, support, perp):
    path = f"{MD}/instruments/{perp}/funding"
    assert (await client.get(path)).status_code == 401
    r = await client.get(path, headers=support)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
