"""Netting accounts on an order book: a reducing order holds only its fee; an order larger than
the position flips it through the book (close, then open the rest), to the last decimal."""

from __future__ import annotations

from sqlalchemy import select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.orders import OrderStatus
from bourse.domain.positions import PositionSide
from tests.integration.derivatives.support import fees, hedging_trader, house, netting_trader, place
from tests.integration.derivatives_orderbook.support import D, F, funds, make_book_cfd, open_positions


async def test_a_netting_flip_through_the_book(container):
    market = await make_book_cfd(container)
    alice = await netting_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    carol = await hedging_trader(container, "carol", usdt="1000")
    await place(container, bob, market, "Sell", "2", "100", leverage=10)
    await place(container, alice, market, "Buy", "2", "100", leverage=10)
    assert await funds(container, alice.account_id) == F("979.8", "0", "20")

    # 5 lots against a long of 2: it may open, so it holds margin for every lot at 105 plus the fee:
    # 500 * (0.105 + 0.00105) = 53.025.
    sell = await place(container, alice, market, "Sell", "5", "105", leverage=10)
    assert sell.order.status is OrderStatus.PLACED and not sell.order.reduce_only
    assert await funds(container, alice.account_id) == F("926.775", "53.025", "20")

    await place(container, carol, market, "Buy", "5", "105", leverage=10)
    # Close 2: margin 20 back, PnL (105 - 100) * 2 = +10 from the house; open 3 short at 105:
    # margin 31.5; fee 525 * 0.001 = 0.525 once for the fill.
    assert await funds(container, alice.account_id) == F("977.775", "0", "31.5")
    (short,) = await open_positions(container, alice.account_id)
    assert (short.side, short.lots, short.entry_price, short.margin) == (
        PositionSide.SHORT,
        3,
        105,
        D("31.5"),
    )
    assert await house(container) == D(-10)
    assert await fees(container) == D("0.2") + D("0.2") + D("0.525") + D("0.525")
    async with container.uow() as uow:
        rows = (
            await uow.connection.execute(  # type: ignore[attr-defined]
                select(dt.position_executions)
                .where(dt.position_executions.c.order_id == sell.order.order_id)
                .order_by(dt.position_executions.c.execution_id)
            )
        ).all()
    assert [(r.lots, r.closed_lots, r.realized_pnl, r.fee) for r in rows] == [
        (2, 2, 10, D("0.21")),
        (3, 0, 0, D("0.315")),
    ]
    view = await container.derivatives.get_order(alice.principal, alice.account_id, str(sell.order.order_id))
    assert view is not None and view.order.position_id == short.position_id and view.order.realized_pnl == 10


async def test_a_reducing_netting_order_holds_only_its_fee(container):
    market = await make_book_cfd(container)
    alice = await netting_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, bob, market, "Sell", "2", "100", leverage=10)
    await place(container, alice, market, "Buy", "2", "100", leverage=10)
    reduce = await place(container, alice, market, "Sell", "1", "110", leverage=10)
    assert reduce.order.reduce_only
    # 100 steps * fee round_up(110 * 0.01 * 0.001) = 0.0011 -> 0.11.
    assert await funds(container, alice.account_id) == F("979.69", "0.11", "20")
    # Another order that could open on that side while a reduce-only one waits would take its lots.
    other = await place(container, alice, market, "Sell", "3", "111", leverage=10)
    assert other.order.status is OrderStatus.REJECTED and other.order.reject_reason == "CloseLotsTaken"
