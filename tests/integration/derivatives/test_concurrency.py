"""Concurrent closes and orders of one account: a position closes once, available never overdraws."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.errors import BourseError
from bourse.domain.orders import OrderStatus
from tests.integration.derivatives.support import D, hedging_trader, make_cfd, money, place, set_price


async def test_two_concurrent_closes_of_one_position_close_it_once(container):
    market = await make_cfd(container, bid="100", ask="100")
    alice = await hedging_trader(container, "alice", usdt="1000")
    opened = await place(container, alice, market, "Buy", "2", leverage=10)
    await set_price(container, market, "105", "105")
    position_id = opened.order.position_id

    results = await asyncio.gather(
        *(
            container.derivatives.close(alice.principal, alice.account_id, position_id, None)
            for _ in range(2)
        ),
        return_exceptions=True,
    )

    done = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(done) == 1 and len(failed) == 1
    assert isinstance(failed[0], BourseError) and failed[0].code == "position_closed"
    # Paid once: PnL 10, fees 0.2 (open) + 0.21 (close), margin 20 back once.
    after = await money(container, alice.account_id)
    assert (after.available, after.margin) == (D(1000) + 10 - D("0.2") - D("0.21"), D(0))
    async with container.uow() as uow:
        conn = uow.connection  # type: ignore[attr-defined]
        closes = (
            await conn.execute(
                select(func.count())
                .select_from(dt.position_executions)
                .where(dt.position_executions.c.closed_lots > 0)
            )
        ).scalar_one()
    assert closes == 1


async def test_concurrent_orders_never_overdraw_available(container):
    market = await make_cfd(container, bid="100", ask="100")
    bob = await hedging_trader(container, "bob", usdt="100")

    # Each order needs margin 30 and fee 0.3: at most three of eight can be paid.
    views = await asyncio.gather(*(place(container, bob, market, "Buy", "3", leverage=10) for _ in range(8)))

    filled = [v for v in views if v.order.status is OrderStatus.FILLED]
    rejected = [v for v in views if v.order.status is OrderStatus.REJECTED]
    assert len(filled) == 3 and len(rejected) == 5
    assert {v.order.reject_reason for v in rejected} == {"InsufficientMargin"}
    after = await money(container, bob.account_id)
    assert (after.available, after.margin) == (D(100) - 90 - D("0.9"), D(90))
