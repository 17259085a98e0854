"""The rule's minimum fee (minFeeRAT) on an OrderBook derivative market: the hold covers one
minimum (the first fill), each later fill pays the minimum from the account's free balance as far
as it goes, and the house forgoes the rest. USDT is the root asset: a minFeeRAT of 5 is 5 USDT.
A hold per lot step (0.01 lot) at 100 and leverage 10: margin 0.1 + fee 0.001 (0.1 %)."""

from __future__ import annotations

from bourse.domain.fees import FeeType, RuleFees
from bourse.domain.orders import OrderStatus
from bourse.service.context import RequestMeta
from tests.integration.derivatives.support import hedging_trader, place
from tests.integration.derivatives_orderbook.support import D, F, funds, make_book_cfd
from tests.integration.trading.support import ADMIN


async def test_book_fills_pay_the_minimum_from_the_hold_then_from_what_is_free(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="40.3")
    bob = await hedging_trader(container, "bob", usdt="1000")
    await container.fees.create_profile(
        ADMIN, "mini", "Minimum", RuleFees(FeeType.PERCENT, D("0.1"), D("0.1"), D(5)), RequestMeta()
    )
    await container.fees.assign_profile(ADMIN, alice.account_id, "mini", RequestMeta())

    sell = await place(container, alice, market, "Sell", "3", "100", leverage=10)
    assert sell.order.min_fee == D(5)
    # 300 steps * 0.101 = 30.3, plus one minimum: 35.3
    assert await funds(container, alice.account_id) == F("5", "35.3")

    await place(container, bob, market, "Buy", "1", "100", leverage=10)
    # the first fill's share 10.1 + 5 pays margin 10 and the minimum 5 (the rule: 0.1)
    assert await funds(container, alice.account_id) == F("5.1", "20.2", "10")

    await place(container, bob, market, "Buy", "1", "100", leverage=10)
    # share 10.1: margin 10, and the minimum 5 = 0.1 from the share + 4.9 of what is free
    assert await funds(container, alice.account_id) == F("0.2", "10.1", "20")

    await place(container, bob, market, "Buy", "1", "100", leverage=10)
    # share 10.1: margin 10, the rule's 0.1 and the 0.2 free; the house forgoes the other 4.7
    assert await funds(container, alice.account_id) == F("0", "0", "30")
    view = await container.derivatives.get_order(alice.principal, alice.account_id, str(sell.order.order_id))
    assert view is not None and view.order.status is OrderStatus.FILLED
    assert view.order.commission == D("10.3")


async def test_a_book_order_without_a_minimum_holds_as_before(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    sell = await place(container, alice, market, "Sell", "2", "100", leverage=10)
    assert sell.order.min_fee is None
    assert await funds(container, alice.account_id) == F("979.8", "20.2")
