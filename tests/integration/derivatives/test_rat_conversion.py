"""Derivative amounts in RAT use the platform's one conversion (the history server's): the latest
trade price of a market to the root asset, directly or through one intermediate market."""

from __future__ import annotations

from sqlalchemy import select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.orders import OrderStatus
from bourse.domain.positions import MarginType
from tests.integration.derivatives.support import D, make_cfd, place
from tests.integration.trading.support import make_market, make_trader
from tests.integration.trading.support import place as spot


async def test_a_settlement_asset_priced_through_an_intermediate_market(container):
    # ETH has no market to USDT: ETH/BTC trades at 0.05 and BTC/USDT at 100, so 1 ETH = 5 USDT.
    await make_market(container)
    await make_market(container, baseAssetId="ETH", quoteAssetId="BTC", priceScale=4, tickSize="0.0001")
    maker = await make_trader(container, "maker", btc="10", usdt="10000", eth="100")
    taker = await make_trader(container, "taker", btc="10", usdt="10000", eth="100")
    await spot(container, maker, "BTCUSDT", "Sell", "0.1", "100")
    await spot(container, taker, "BTCUSDT", "Buy", "0.1", "100")
    await spot(container, maker, "ETHBTC", "Sell", "1", "0.05")
    await spot(container, taker, "ETHBTC", "Buy", "1", "0.05")
    # A Cfd on BTC quoted (and settled) in ETH: 2 lots at 20 ETH, leverage 10: margin 4 ETH.
    market = await make_cfd(container, "BTCETH", quoteAssetId="ETH", bid="20", ask="20")
    alice = await make_trader(container, "alice", eth="100")

    view = await place(container, alice, market, "Buy", "2", leverage=10)

    assert view.order.status is OrderStatus.FILLED
    assert view.realized_pnl_in_rat == 0  # known (not None): ETH has a rate
    async with container.uow() as uow:
        (execution,) = (await uow.connection.execute(select(dt.position_executions))).all()  # type: ignore[attr-defined]
    assert execution.rate_to_rat == D(5)
    (position,) = await container.derivatives.positions(alice.principal, alice.account_id)
    assert position.position.margin_type is MarginType.CROSS
    assert (position.position.margin, position.rate_to_rat) == (D(4), D(5))
    # The account's collateral is its RAT balance only (nothing selected but the root): no USDT,
    # so the margin level is 0 over 4 ETH = 20 USDT of used margin.
    assert position.margin_level == 0
