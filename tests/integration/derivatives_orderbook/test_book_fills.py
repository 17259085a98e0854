"""Two traders trade a Cfd market's order book against each other: holds, fills, closes, to the
last decimal. The default commission rule charges 0.1% of the notional; USDT has 6 decimals.
A hold is, per lot step (0.01 lot): margin round_up(reserve * 0.01 / leverage) + fee
round_up(reserve * 0.01 * 0.001), times the order's steps."""

from __future__ import annotations

from bourse.domain.orders import OrderStatus
from bourse.domain.positions import CloseReason, PositionSide
from tests.integration.derivatives.support import fees, hedging_trader, house, place
from tests.integration.derivatives_orderbook.support import D, F, funds, make_book_cfd, open_positions


async def test_two_traders_open_long_and_short_against_each_other_then_close(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")

    sell = await place(container, alice, market, "Sell", "2", "100", leverage=10)
    assert sell.order.status is OrderStatus.PLACED and sell.order.in_book
    # 200 steps * (0.1 margin + 0.001 fee) = 20.2 held.
    assert await funds(container, alice.account_id) == F("979.8", "20.2")

    buy = await place(container, bob, market, "Buy", "2", "100", leverage=10)
    assert buy.order.status is OrderStatus.FILLED
    assert buy.order.executed_quote == D(200) and buy.order.commission == D("0.2")
    # Each: margin 100 * 2 / 10 = 20, fee 0.2; the hold's rest (0) back.
    assert await funds(container, alice.account_id) == F("979.8", "0", "20")
    assert await funds(container, bob.account_id) == F("979.8", "0", "20")
    assert await fees(container) == D("0.4")
    assert await house(container) == 0
    (short,) = await open_positions(container, alice.account_id)
    (long,) = await open_positions(container, bob.account_id)
    assert (short.side, short.lots, short.entry_price, short.margin) == (PositionSide.SHORT, 2, 100, 20)
    assert (long.side, long.lots, long.entry_price, long.margin) == (PositionSide.LONG, 2, 100, 20)
    assert buy.order.position_id == long.position_id

    # Alice rests a limit close of her short at 110 (the fee alone is held: 200 * 0.0011 = 0.22);
    # Bob's market close of his long takes it.
    close = await container.derivatives.close_position(
        alice.account_id, short.position_id, None, CloseReason.TRADER, limit_price=D("110")
    )
    assert close.order.status is OrderStatus.PLACED and close.order.reduce_only
    assert await funds(container, alice.account_id) == F("979.58", "0.22", "20")
    closed = await container.derivatives.close(bob.principal, bob.account_id, long.position_id, None)
    assert closed.order.status is OrderStatus.FILLED and closed.order.realized_pnl == D(20)
    # Bob: +20 PnL from the house, margin 20 back, fee 0.22. Alice: -20 to the house, margin back, fee 0.22.
    assert await funds(container, bob.account_id) == F("1019.58")
    assert await funds(container, alice.account_id) == F("979.58")
    assert await house(container) == 0
    assert await fees(container) == D("0.84")
    assert await open_positions(container, alice.account_id) == []
    assert await open_positions(container, bob.account_id) == []
    view = await container.derivatives.get_order(alice.principal, alice.account_id, str(close.order.order_id))
    assert view is not None and view.order.status is OrderStatus.FILLED
    assert view.order.realized_pnl == D(-20) and view.order.position_id == short.position_id


async def test_a_partial_fill_then_a_cancel_releases_the_rest_of_the_hold(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")

    sell = await place(container, alice, market, "Sell", "3", "100", leverage=10)
    assert await funds(container, alice.account_id) == F("969.7", "30.3")  # 300 * 0.101
    await place(container, bob, market, "Buy", "1", "100", leverage=10)
    # The fill's share of the hold (30.3 / 3 = 10.1) pays margin 10 and fee 0.1.
    assert await funds(container, alice.account_id) == F("969.7", "20.2", "10")

    cancelled = await container.derivatives.cancel(
        alice.principal, alice.account_id, str(sell.order.order_id)
    )
    assert cancelled is not None
    assert cancelled.order.status is OrderStatus.CANCELLED and cancelled.order.remaining_lots == 2
    assert await funds(container, alice.account_id) == F("989.9", "0", "10")
    (short,) = await open_positions(container, alice.account_id)
    assert (short.side, short.lots, short.margin) == (PositionSide.SHORT, 1, 10)
    # An order that never filled leaves no trace in the ledger once cancelled.
    rest = await place(container, alice, market, "Sell", "1", "120", leverage=10)
    await container.derivatives.cancel(alice.principal, alice.account_id, str(rest.order.order_id))
    assert await funds(container, alice.account_id) == F("989.9", "0", "10")


async def test_an_order_beyond_the_available_margin_is_rejected_and_holds_nothing(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="10")
    view = await place(container, alice, market, "Sell", "1", "100", leverage=10)  # needs 10.1
    assert view.order.status is OrderStatus.REJECTED and view.order.reject_reason == "InsufficientMargin"
    assert await funds(container, alice.account_id) == F("10")


async def test_post_only_that_would_cross_is_rejected_and_fok_not_fillable_is_rejected(container):
    market = await make_book_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, alice, market, "Sell", "1", "100", leverage=10)
    post_only = await container.derivatives.place(
        bob.principal,
        bob.account_id,
        __import__("bourse.domain.markets", fromlist=["MarketType"]).MarketType.CFD,
        __import__("dataclasses").replace(
            __import__("tests.integration.derivatives.support", fromlist=["order"]).order(
                market, "Buy", "1", "100", leverage=10
            ),
            post_only=True,
        ),
    )
    assert (
        post_only.order.status is OrderStatus.REJECTED
        and post_only.order.reject_reason == "PostOnlyWouldCross"
    )
    fok = await place(container, bob, market, "Buy", "2", "100", leverage=10, tif="Fok")
    assert fok.order.status is OrderStatus.REJECTED and fok.order.reject_reason == "FokNotFillable"
    assert await funds(container, bob.account_id) == F("1000")
