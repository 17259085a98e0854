"""Placing, matching and cancelling move exactly the right money: holds, fills, fees, releases."""

from __future__ import annotations

import asyncio

from bourse.domain.fees import FeeType, RuleFees
from bourse.domain.orders import OrderStatus
from bourse.domain.values import AccountId
from bourse.service.context import RequestMeta
from tests.integration.trading.support import (
    ADMIN,
    BTC,
    USDT,
    D,
    balances,
    fees,
    make_market,
    make_trader,
    place,
    request,
)


async def test_a_resting_buy_holds_its_cost_and_the_larger_fee(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    view = await place(container, alice, market, "Buy", "0.5", "100.00")
    assert view.order.status is OrderStatus.PLACED
    # 0.5 * 100 = 50, plus 0.1% = 0.05
    assert await balances(container, alice.account_id) == {
        BTC: (D(0), D(0)),
        USDT: (D("9949.95"), D("50.05")),
    }


async def test_a_fill_settles_both_sides_and_both_fees_in_one_go(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", btc="1")
    buy = await place(container, alice, market, "Buy", "0.5", "100.00")
    sell = await place(container, bob, market, "Sell", "0.2", "99.00")
    assert sell.order.status is OrderStatus.FILLED
    # The trade is at the maker's price: 0.2 * 100 = 20, 0.02 fee each side.
    assert sell.order.executed_quote == D(20) and sell.order.commission == D("0.02")
    assert await balances(container, alice.account_id) == {
        BTC: (D("0.2"), D(0)),
        USDT: (D("9949.95"), D("30.03")),
    }
    assert await balances(container, bob.account_id) == {BTC: (D("0.8"), D(0)), USDT: (D("19.98"), D(0))}
    assert await fees(container) == D("0.04")

    cancelled = await container.trading.cancel(alice.principal, alice.account_id, str(buy.order.order_id))
    assert cancelled.order.status is OrderStatus.CANCELLED
    assert cancelled.order.remaining == D("0.3")
    assert await balances(container, alice.account_id) == {BTC: (D("0.2"), D(0)), USDT: (D("9979.98"), D(0))}


async def test_a_taker_buy_pays_the_resting_price_and_gets_the_unused_hold_back(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    bob = await make_trader(container, "bob", btc="1")
    await place(container, bob, market, "Sell", "0.3", "100.00")
    buy = await place(container, alice, market, "Buy", "0.3", "101.00")
    assert buy.order.status is OrderStatus.FILLED
    # Held 30.3 + 0.0303 -> 0.030300 fee; paid 30 + 0.03 fee; the rest was released with the fill.
    assert buy.order.executed_quote == D(30) and buy.order.commission == D("0.03")
    assert buy.order.locked_remaining == 0
    assert await balances(container, alice.account_id) == {BTC: (D("0.3"), D(0)), USDT: (D("969.97"), D(0))}
    assert await balances(container, bob.account_id) == {BTC: (D("0.7"), D(0)), USDT: (D("29.97"), D(0))}
    assert await fees(container) == D("0.06")


async def test_a_market_buy_holds_the_band_bound_and_walks_the_book(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    bob = await make_trader(container, "bob", btc="2")
    await place(container, bob, market, "Sell", "0.1", "100.00")
    await place(container, alice, market, "Buy", "0.1", "100.00")  # last price 100
    await place(container, bob, market, "Sell", "0.2", "101.00")
    await place(container, bob, market, "Sell", "0.2", "104.00")
    await place(container, bob, market, "Sell", "0.2", "106.00")  # beyond 100 * 1.05
    before = await balances(container, alice.account_id)
    buy = await place(container, alice, market, "Buy", "0.5")
    # 0.2 at 101 and 0.2 at 104; 106 is outside the 5 % band: the rest is cancelled.
    assert buy.order.status is OrderStatus.CANCELLED and buy.order.cancel_reason == "PriceBand"
    assert buy.order.remaining == D("0.1") and buy.order.executed_quote == D("41.00")
    fee = D("0.0202") + D("0.0208")
    assert await balances(container, alice.account_id) == {
        BTC: (before[BTC][0] + D("0.4"), D(0)),
        USDT: (before[USDT][0] - D("41") - fee, D(0)),
    }


async def test_a_market_sell_holds_its_amount_and_releases_what_does_not_fill(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    bob = await make_trader(container, "bob", btc="1")
    await place(container, alice, market, "Buy", "0.2", "100.00")
    sell = await place(container, bob, market, "Sell", "0.5")
    assert sell.order.status is OrderStatus.CANCELLED and sell.order.cancel_reason == "NoLiquidity"
    assert await balances(container, bob.account_id) == {BTC: (D("0.8"), D(0)), USDT: (D("19.98"), D(0))}


async def test_each_batch_that_moves_money_leaves_one_audit_entry(container):
    from sqlalchemy import text

    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "0.1", "100.00")
    async with container.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT actor, details FROM audit_log WHERE action = 'money.moved' AND subject = :s"),
                {"s": f"market:{market}"},
            )
        ).all()
    assert len(rows) == 1 and rows[0].actor == f"engine:{market}"
    assert rows[0].details["kind"] == "trading.batch" and rows[0].details["count"] == 1


async def test_each_account_holds_by_its_own_commission_profile_when_placed_together(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="10000")
    bob = await make_trader(container, "bob", usdt="10000")
    await container.fees.create_profile(
        ADMIN, "vip", "VIP", RuleFees(FeeType.PERCENT, D("0.05"), D("0.05")), RequestMeta()
    )
    await container.fees.assign_profile(ADMIN, bob.account_id, "vip", RequestMeta())
    async with container.uow() as uow:
        each = await uow.commissions.rules_for_accounts(
            [alice.account_id, bob.account_id, AccountId("Anone")]
        )
        assert each == {
            alice.account_id: await uow.commissions.rules_for_account(alice.account_id),
            bob.account_id: await uow.commissions.rules_for_account(bob.account_id),
        }
        assert [r.profile_id for r in each[bob.account_id]] == ["vip"]
    # Placed together, so the runner reads both accounts' fee terms for one batch.
    await asyncio.gather(
        *(
            container.trading.place(t.principal, t.account_id, request(market, "Buy", "0.5", "100.00"))
            for t in (alice, bob)
        )
    )
    # 0.5 * 100 = 50, plus the larger fee: 0.1% (default) = 0.05, 0.05% (vip) = 0.025.
    assert (await balances(container, alice.account_id))[USDT] == (D("9949.95"), D("50.05"))
    assert (await balances(container, bob.account_id))[USDT] == (D("9949.975"), D("50.025"))
