"""OrderBook Cfd markets over HTTP: order-data previews priced from the book."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.derivatives.support import CFD, make_trader
from tests.integration.derivatives.support import hedging_trader, place
from tests.integration.derivatives_orderbook.support import make_book_cfd

MARKET = "BTCBOOK"


@pytest.fixture
async def market(container):
    return await make_book_cfd(container, MARKET)


@pytest.fixture
async def alice(client, container, market):
    return await make_trader(client, container, "alice")


def preview_body(**fields: Any) -> dict[str, Any]:
    body = {
        "marketId": MARKET,
        "orderType": "Market",
        "side": "Buy",
        "requestedLotAmount": "2",
        "leverage": 10,
    }
    body.update(fields)
    return {"order": body}


async def preview(client: Any, who: Any, **fields: Any) -> Any:
    return await client.post(f"{CFD}/order-data", headers=who.headers, json=preview_body(**fields))


async def test_order_data_of_a_limit_order_uses_its_limit_price(client, container, alice):
    # A book at 99 / 101 gives the market its mark (the book mid, 100) for the level after.
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, bob, MARKET, "Buy", "1", "99", leverage=10)
    await place(container, bob, MARKET, "Sell", "1", "101", leverage=10)
    await container.pricing.tick()
    r = await preview(client, alice, orderType="Limit", requestedPrice="100")
    assert r.status_code == 200, r.text
    # Notional 200, margin 20 (leverage 10), fee 0.2; level after = (1000 - 0.2) / 20.
    assert r.json()["order"] == {
        "requiredMarginInRAT": "20",
        "quoteAmount": "200",
        "commissionAmountInRAT": "0.2",
        "marginLevel": "49.99",
        "takeProfit": None,
        "stopLoss": None,
    }


async def test_order_data_of_a_market_order_uses_the_best_opposite_price_then_the_last_trade(
    client, container, alice
):
    # An empty book that never traded has no price for a market order.
    r = await preview(client, alice)
    assert r.status_code == 400 and r.json()["code"] == "price_unavailable", r.text
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, bob, MARKET, "Sell", "1", "101", leverage=10)
    await place(container, bob, MARKET, "Buy", "1", "99", leverage=10)
    r = await preview(client, alice, takeProfit={"triggerType": "Price", "triggerSize": "110"})
    assert r.status_code == 200, r.text
    # A buy meets the best ask 101: notional 202, margin 20.2, fee 0.202.
    o = r.json()["order"]
    assert (o["quoteAmount"], o["requiredMarginInRAT"], o["commissionAmountInRAT"]) == (
        "202",
        "20.2",
        "0.202",
    )
    assert o["takeProfit"] == {"price": "110", "rate": "0.08910891", "points": 900, "pnl": "18"}
    r = await preview(client, alice, side="Sell")
    assert r.json()["order"]["quoteAmount"] == "198"  # a sell meets the best bid 99
    # Carol takes the ask: no ask left, so a buy is priced at the last trade (101).
    carol = await hedging_trader(container, "carol", usdt="1000")
    await place(container, carol, MARKET, "Buy", "1", "101", leverage=10)
    r = await preview(client, alice, requestedLotAmount="1")
    assert r.json()["order"]["quoteAmount"] == "101"
