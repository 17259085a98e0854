"""The rule's minimum fee (minFeeRAT) through the engine: fixed in the quote asset when an order is
placed, paid by each fill, held by buys, capped by the hold (buys) and the fill's value (sells).

The test container's root asset is USDT, so on BTC/USDT a minFeeRAT of 1 is 1 USDT."""

from __future__ import annotations

from decimal import Decimal

from bourse.domain.fees import FeeType, RuleFees
from bourse.domain.orders import OrderStatus
from bourse.service.context import RequestMeta
from tests.integration.trading.support import (
    ADMIN,
    BTC,
    ETH,
    USDT,
    D,
    Trader,
    balance,
    balances,
    fees,
    make_market,
    make_trader,
    place,
)


async def minimum_profile(container, *traders: Trader, min_fee_rat: str = "1") -> None:
    """0.1 % maker and taker, at least ``min_fee_rat`` RAT a fill, for ``traders``."""
    await container.fees.create_profile(
        ADMIN,
        "mini",
        "Minimum",
        RuleFees(FeeType.PERCENT, D("0.1"), D("0.1"), D(min_fee_rat)),
        RequestMeta(),
    )
    for trader in traders:
        await container.fees.assign_profile(ADMIN, trader.account_id, "mini", RequestMeta())


async def stored_min_fee(container, order_id: int) -> Decimal | None:
    async with container.uow() as uow:
        order = await uow.trading.get_order(order_id)
    assert order is not None and order.fee is not None
    return order.fee.min_fee


async def test_a_small_fill_pays_the_minimum_on_both_sides(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="1")
    await minimum_profile(container, alice, bob)
    buy = await place(container, alice, market, "Buy", "0.5", "100.00")
    # 0.5 * 100 = 50; the fee would be 0.05, the hold covers the 1 USDT minimum instead
    assert (await balances(container, alice.account_id))[USDT] == (D(9949), D(51))
    assert await stored_min_fee(container, buy.order.order_id) == D(1)
    sell = await place(container, bob, market, "Sell", "0.5", "100.00")
    assert sell.order.status is OrderStatus.FILLED and sell.order.commission == D(1)
    assert await balances(container, alice.account_id) == {BTC: (D("0.5"), D(0)), USDT: (D(9949), D(0))}
    assert await balances(container, bob.account_id) == {BTC: (D("0.5"), D(0)), USDT: (D(49), D(0))}
    assert await fees(container) == D(2)


async def test_a_big_fill_pays_the_percentage(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="30")
    await minimum_profile(container, alice, bob)
    await place(container, alice, market, "Buy", "20", "100.00")
    sell = await place(container, bob, market, "Sell", "20", "100.00")
    # 20 * 100 = 2000: 0.1 % is 2 USDT, more than the minimum
    assert sell.order.commission == D(2)
    assert (await balances(container, alice.account_id))[USDT] == (D(7998), D(0))
    assert (await balances(container, bob.account_id))[USDT] == (D(1998), D(0))
    assert await fees(container) == D(4)


async def test_partial_fills_pay_the_minimum_each_until_the_buyers_hold_cap_wins(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="5")
    await minimum_profile(container, alice, bob)
    buy = await place(container, alice, market, "Buy", "2", "100.00")  # holds 200 + 1
    sells = [await place(container, bob, market, "Sell", qty, "100.00") for qty in ("0.5", "0.5", "1")]
    # bob pays the minimum on every fill (0.05, 0.05, 0.1 by the rule)
    assert [s.order.commission for s in sells] == [D(1), D(1), D(1)]
    async with container.uow() as uow:
        done = await uow.trading.get_order(buy.order.order_id)
    assert done is not None and done.status is OrderStatus.FILLED
    # alice's first fill pays the 1 USDT her hold covered; nothing is spare for the later two
    # (the house forgoes their minimum rather than overdraw the hold)
    assert done.commission == D(1)
    executions, _ = await container.trading.executions(
        alice.principal, alice.account_id, order_id=str(done.order_id)
    )
    assert [e.execution.commission for e in executions] == [D(1), D(0), D(0)]
    assert await balances(container, alice.account_id) == {BTC: (D(2), D(0)), USDT: (D(9799), D(0))}
    assert (await balances(container, bob.account_id))[USDT] == (D(197), D(0))
    assert await fees(container) == D(4)


async def test_a_sell_worth_less_than_the_minimum_pays_at_most_its_quote_amount(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="100")
    bob = await make_trader(container, "bob", btc="1")
    await minimum_profile(container, alice, bob)
    await place(container, alice, market, "Buy", "0.005", "100.00")  # 0.5 + the 1 minimum
    sell = await place(container, bob, market, "Sell", "0.005", "100.00")
    assert sell.order.executed_quote == D("0.5") and sell.order.commission == D("0.5")
    assert await balances(container, bob.account_id) == {BTC: (D("0.995"), D(0)), USDT: (D(0), D(0))}
    assert (await balances(container, alice.account_id))[USDT] == (D("98.5"), D(0))
    assert await fees(container) == D("1.5")


async def test_a_rule_without_a_minimum_charges_exactly_as_before(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="1")
    buy = await place(container, alice, market, "Buy", "0.5", "100.00")
    assert await stored_min_fee(container, buy.order.order_id) is None
    sell = await place(container, bob, market, "Sell", "0.5", "100.00")
    assert sell.order.commission == D("0.05")
    assert (await balances(container, alice.account_id))[USDT] == (D("9949.95"), D(0))
    assert await fees(container) == D("0.1")


async def test_the_minimum_is_converted_into_the_quote_asset_at_placement(container):
    btcusdt = await make_market(container)
    carol = await make_trader(container, "carol", usdt="1000")
    dave = await make_trader(container, "dave", btc="1")
    await place(container, carol, btcusdt, "Buy", "0.1", "250.00")
    await place(container, dave, btcusdt, "Sell", "0.1", "250.00")  # BTC is worth 250 USDT now
    ethbtc = await make_market(
        container, baseAssetId="ETH", quoteAssetId="BTC", priceScale=4, tickSize="0.0001"
    )
    alice = await make_trader(container, "alice", btc="1")
    bob = await make_trader(container, "bob", eth="10")
    await minimum_profile(container, alice, bob)
    buy = await place(container, alice, ethbtc, "Buy", "1", "0.0500")
    # 1 USDT / 250 = 0.004 BTC, more than the 0.00005 BTC the rule's 0.1 % would take
    assert await stored_min_fee(container, buy.order.order_id) == D("0.004")
    assert (await balances(container, alice.account_id))[BTC] == (D("0.946"), D("0.054"))
    await place(container, bob, ethbtc, "Sell", "1", "0.0500")
    assert await fees(container, BTC) == D("0.008")
    assert await balance(container, bob.account_id, BTC) == D("0.046")


async def test_a_quote_asset_without_a_rate_pays_no_minimum(container):
    # BTC/ETH has not traded and nothing else prices ETH in USDT: no rate, so no minimum
    market = await make_market(container, baseAssetId="BTC", quoteAssetId="ETH")
    alice = await make_trader(container, "alice", eth="100")
    bob = await make_trader(container, "bob", btc="1")
    await minimum_profile(container, alice, bob)
    buy = await place(container, alice, market, "Buy", "0.5", "10.00")
    assert buy.order.status is OrderStatus.PLACED  # not refused
    assert await stored_min_fee(container, buy.order.order_id) is None
    sell = await place(container, bob, market, "Sell", "0.5", "10.00")
    assert sell.order.commission == D("0.005")  # 0.1 % of 5 ETH
    assert await fees(container, ETH) == D("0.01")


async def test_the_order_data_preview_shows_the_minimum(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="100")
    await minimum_profile(container, alice)

    async def preview(side: str, amount: str):
        return await container.trading.preview(
            alice.principal,
            alice.account_id,
            market_id=market,
            order_type="Limit",
            side=side,
            price="100",
            base_amount=amount,
            quote_amount=None,
        )

    small = await preview("Buy", "0.5")
    assert (small.commission, small.total) == (D(1), D(51))
    big = await preview("Buy", "20")
    assert (big.commission, big.total) == (D(2), D(2002))
    tiny_sell = await preview("Sell", "0.005")  # a sell pays at most what it brings
    assert (tiny_sell.commission, tiny_sell.total) == (D("0.5"), D(0))
