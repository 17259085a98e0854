"""The rule's minimum fee (minFeeRAT) on Dealer derivative fills: fixed in the settlement asset when
the order is placed, each fill pays ``max(rule fee, minimum)``, the margin check and the order-data
preview include it. USDT is the test container's root asset (a minFeeRAT of 5 is 5 USDT)."""

from __future__ import annotations

from bourse.domain.fees import FeeType, RuleFees
from bourse.domain.markets import MarketType
from bourse.domain.orders import OrderStatus, OrderType, Side
from bourse.service.context import RequestMeta
from bourse.service.derivatives import PreviewRequest
from tests.integration.derivatives.support import D, Money, fees, hedging_trader, make_cfd, money, place
from tests.integration.trading.support import ADMIN, Trader


async def minimum_profile(container, trader: Trader) -> None:
    """The default 0.1 % (no cfd settings: the taker size as a percent of the notional), at least 5."""
    await container.fees.create_profile(
        ADMIN, "mini", "Minimum", RuleFees(FeeType.PERCENT, D("0.1"), D("0.1"), D(5)), RequestMeta()
    )
    await container.fees.assign_profile(ADMIN, trader.account_id, "mini", RequestMeta())


async def stored_min_fee(container, order_id: str):
    async with container.uow() as uow:
        order = await uow.derivatives.get_order(int(order_id))
    assert order is not None
    return order.min_fee


async def test_a_small_dealer_fill_pays_the_minimum(container):
    market = await make_cfd(container, bid="100", ask="100")
    alice = await hedging_trader(container, "alice", usdt="1000")
    await minimum_profile(container, alice)
    view = await place(container, alice, market, "Buy", "2", leverage=10)
    # notional 200: margin 20, the rule's fee 0.2, the minimum 5 wins
    assert view.order.status is OrderStatus.FILLED and view.order.commission == D(5)
    assert await stored_min_fee(container, view.order.order_id) == D(5)
    assert await money(container, alice.account_id) == Money(D(975), D(20))
    assert await fees(container) == D(5)


async def test_a_big_dealer_fill_pays_the_percentage(container):
    market = await make_cfd(container, bid="100", ask="100")
    alice = await hedging_trader(container, "alice", usdt="2000")
    await minimum_profile(container, alice)
    view = await place(container, alice, market, "Buy", "100", leverage=10)
    # notional 10000: 0.1 % is 10, more than the minimum
    assert view.order.commission == D(10)
    assert await money(container, alice.account_id) == Money(D(990), D(1000))


async def test_the_margin_check_counts_the_minimum(container):
    market = await make_cfd(container, bid="100", ask="100")
    alice = await hedging_trader(container, "alice", usdt="24")
    await minimum_profile(container, alice)
    # margin 20 + fee 0.2 would fit in 24; margin 20 + the minimum 5 does not
    view = await place(container, alice, market, "Buy", "2", leverage=10)
    assert view.order.status is OrderStatus.REJECTED
    assert await money(container, alice.account_id) == Money(D(24), D(0))
    assert await fees(container) == 0


async def test_the_order_data_preview_shows_the_minimum(container):
    market = await make_cfd(container, bid="100", ask="100")
    alice = await hedging_trader(container, "alice", usdt="1000")
    await minimum_profile(container, alice)
    preview = await container.derivatives.preview(
        alice.principal,
        alice.account_id,
        MarketType.CFD,
        PreviewRequest(market, Side.BUY, OrderType.MARKET, D(2), leverage=10),
    )
    assert preview.commission_in_rat == D(5) and preview.required_margin_in_rat == D(20)


async def test_a_close_pays_the_minimum_too(container):
    market = await make_cfd(container, bid="100", ask="100")
    alice = await hedging_trader(container, "alice", usdt="1000")
    await minimum_profile(container, alice)
    opened = await place(container, alice, market, "Buy", "2", leverage=10)
    async with container.uow() as uow:
        (position,) = await uow.derivatives.open_positions(alice.account_id)
    assert opened.order.commission == D(5)
    closed = await container.derivatives.close(alice.principal, alice.account_id, position.position_id, None)
    assert closed.order.status is OrderStatus.FILLED and closed.order.commission == D(5)
    assert await money(container, alice.account_id) == Money(D(990), D(0))
    assert await fees(container) == D(10)
