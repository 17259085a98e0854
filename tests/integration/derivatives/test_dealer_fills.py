"""Dealer fills on a Cfd market and what they do to the ledger, to the last decimal.

The market quotes through a manual source; the default commission rule charges 0.1% of the
notional (the spot taker size as a percent: no cfd settings). USDT has 6 decimals.
"""

from __future__ import annotations

from sqlalchemy import select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.notifications import AdminNotificationType, NotificationQuery
from bourse.domain.orders import OrderStatus
from bourse.domain.positions import CloseReason, PositionSide
from tests.integration.derivatives.support import (
    D,
    fees,
    hedging_trader,
    house,
    make_cfd,
    money,
    netting_trader,
    place,
    set_price,
)
from tests.integration.trading.support import ADMIN


async def _positions(container, account):
    async with container.uow() as uow:
        return await uow.derivatives.open_positions(account)


async def _executions(container):
    async with container.uow() as uow:
        conn = uow.connection  # type: ignore[attr-defined]
        return (
            await conn.execute(select(dt.position_executions).order_by(dt.position_executions.c.execution_id))
        ).all()


async def test_a_market_buy_fills_at_the_ask_plus_markup_and_moves_margin_and_fee(container):
    market = await make_cfd(container, bid="100", ask="101", markup="0.01")
    alice = await hedging_trader(container, "alice", usdt="1000")

    view = await place(container, alice, market, "Buy", "2", leverage=10)

    o = view.order
    assert o.status is OrderStatus.FILLED and o.remaining_lots == 0
    # ask 101 * 1.01 = 102.01 (rounded up to the tick); notional 204.02; margin 20.402; fee 0.20402.
    assert o.executed_quote == D("204.02") and o.commission == D("0.20402")
    assert await money(container, alice.account_id) == type(await money(container, alice.account_id))(
        D("979.39398"), D("20.402")
    )
    assert await fees(container) == D("0.20402")
    assert await house(container) == 0
    (position,) = await _positions(container, alice.account_id)
    assert (position.side, position.lots, position.entry_price, position.margin) == (
        PositionSide.LONG,
        D(2),
        D("102.01"),
        D("20.402"),
    )
    (row,) = await _executions(container)
    assert (row.price, row.raw_price, row.markup, row.fee, row.closed_lots) == (
        D("102.01"),
        D("101"),
        D("2.02"),
        D("0.20402"),
        D(0),
    )


async def test_a_profitable_close_is_paid_by_the_house_and_releases_the_margin(container):
    market = await make_cfd(container, bid="100", ask="101", markup="0.01")
    alice = await hedging_trader(container, "alice", usdt="1000")
    opened = await place(container, alice, market, "Buy", "2", leverage=10)
    await set_price(container, market, "110", "111")

    closed = await container.derivatives.close(
        alice.principal, alice.account_id, opened.order.position_id, None
    )

    # Sold at the bid 110: PnL (110 - 102.01) * 2 = 15.98; fee 0.1% of 220 = 0.22.
    assert closed.order.realized_pnl == D("15.98") and closed.order.commission == D("0.22")
    assert closed.order.reason is CloseReason.TRADER and closed.order.reduce_only
    after = await money(container, alice.account_id)
    assert (after.available, after.margin) == (D("1015.55598"), D(0))
    assert await house(container) == D("-15.98")
    assert await fees(container) == D("0.42402")
    assert await _positions(container, alice.account_id) == []
    rows = await _executions(container)
    assert (rows[-1].closed_lots, rows[-1].realized_pnl, rows[-1].entry_price) == (
        D(2),
        D("15.98"),
        D("102.01"),
    )


async def test_a_losing_short_pays_the_house(container):
    market = await make_cfd(container, bid="100", ask="100")
    bob = await hedging_trader(container, "bob", usdt="500")
    opened = await place(container, bob, market, "Sell", "3", leverage=5)
    # Short 3 at 100: margin 60, fee 0.3.
    assert await money(container, bob.account_id) == type(await money(container, bob.account_id))(
        D("439.7"), D(60)
    )
    await set_price(container, market, "104", "104.5")

    closed = await container.derivatives.close(
        bob.principal, bob.account_id, opened.order.position_id, D("1")
    )

    # Buy back 1 lot at the ask 104.5: PnL (100 - 104.5) * 1 = -4.5; fee 0.1045 -> 0.1045.
    assert closed.order.realized_pnl == D("-4.5") and closed.order.commission == D("0.1045")
    after = await money(container, bob.account_id)
    # One third of the margin (20) comes back; the loss and fee go.
    assert (after.available, after.margin) == (D("439.7") + 20 - D("4.5") - D("0.1045"), D(40))
    assert await house(container) == D("4.5")
    (position,) = await _positions(container, bob.account_id)
    assert (position.lots, position.margin, position.realized_pnl) == (D(2), D(40), D("-4.5"))


async def test_netting_flip_closes_then_opens_the_rest(container):
    market = await make_cfd(container, bid="100", ask="100")
    carol = await netting_trader(container, "carol", usdt="1000")
    await place(container, carol, market, "Buy", "2", leverage=10)
    assert await money(container, carol.account_id) == type(await money(container, carol.account_id))(
        D("979.8"), D(20)
    )
    await set_price(container, market, "90", "90")

    flip = await place(container, carol, market, "Sell", "3", leverage=10)

    # Close 2 at 90: PnL -20, margin 20 back; open short 1 at 90: margin 9; fee 0.1% of 270 = 0.27.
    assert flip.order.status is OrderStatus.FILLED
    assert flip.order.realized_pnl == D(-20) and flip.order.commission == D("0.27")
    after = await money(container, carol.account_id)
    assert (after.available, after.margin) == (D("970.53"), D(9))
    assert await house(container) == D(20)
    (short,) = await _positions(container, carol.account_id)
    assert (short.side, short.lots, short.entry_price, short.margin) == (
        PositionSide.SHORT,
        D(1),
        D(90),
        D(9),
    )
    assert flip.order.position_id == short.position_id
    rows = await _executions(container)
    close_row, open_row = rows[-2], rows[-1]
    assert (close_row.closed_lots, close_row.lots, close_row.fee, close_row.realized_pnl) == (
        D(2),
        D(2),
        D("0.18"),
        D(-20),
    )
    assert (open_row.closed_lots, open_row.lots, open_row.fee, str(open_row.position_id)) == (
        D(0),
        D(1),
        D("0.09"),
        short.position_id,
    )


async def test_netting_same_side_increases_the_one_position(container):
    market = await make_cfd(container, bid="100", ask="100")
    carol = await netting_trader(container, "carol", usdt="1000")
    await place(container, carol, market, "Buy", "1", leverage=10)
    await set_price(container, market, "110", "110")
    await place(container, carol, market, "Buy", "1", leverage=10)
    (position,) = await _positions(container, carol.account_id)
    assert (position.lots, position.entry_price, position.margin) == (D(2), D(105), D(21))

    other = await place(container, carol, market, "Buy", "1", leverage=20)
    assert (other.order.status, other.order.reject_reason) == (OrderStatus.REJECTED, "InvalidLeverage")


async def test_hedging_opens_a_position_per_order_and_closes_one_by_id(container):
    market = await make_cfd(container, bid="100", ask="100")
    dave = await hedging_trader(container, "dave", usdt="1000")
    first = await place(container, dave, market, "Buy", "1", leverage=10)
    second = await place(container, dave, market, "Sell", "1", leverage=10)
    assert first.order.position_id != second.order.position_id
    assert len(await _positions(container, dave.account_id)) == 2

    await container.derivatives.close(dave.principal, dave.account_id, first.order.position_id, None)

    (left,) = await _positions(container, dave.account_id)
    assert left.position_id == second.order.position_id and left.side is PositionSide.SHORT


async def test_an_isolated_loss_beyond_its_margin_is_a_deficit_the_house_absorbs(container):
    market = await make_cfd(container, bid="100", ask="100")
    erin = await hedging_trader(container, "erin", usdt="50")
    opened = await place(container, erin, market, "Buy", "10", leverage=100, margin_type="Isolated")
    # Margin 10, fee 1: 39 left available.
    assert await money(container, erin.account_id) == type(await money(container, erin.account_id))(
        D(39), D(10)
    )
    await set_price(container, market, "98", "98")

    closed = await container.derivatives.close_position(
        erin.account_id, opened.order.position_id, None, CloseReason.STOP_OUT
    )

    # PnL (98 - 100) * 10 = -20; an isolated position pays only from its own released margin (10):
    # 10 is paid, 10 is a deficit. The fee (0.98) is still paid from the account.
    assert closed.order.realized_pnl == D(-20) and closed.order.commission == D("0.98")
    after = await money(container, erin.account_id)
    assert (after.available, after.margin) == (D("38.02"), D(0))
    assert await house(container) == D(10)
    async with container.uow() as uow:
        conn = uow.connection  # type: ignore[attr-defined]
        (deficit,) = (await conn.execute(select(dt.deficits))).all()
        notes = await uow.notifications.list_admin(ADMIN.uid, NotificationQuery())
    assert (deficit.amount, deficit.kind, str(deficit.position_id)) == (
        D(10),
        "Close",
        opened.order.position_id,
    )
    (note,) = [n for n in notes if n.type == AdminNotificationType.POSITION_DEFICIT.value]
    assert note.data["amount"] == "10" and note.data["accountId"] == erin.account_id
    assert closed.order.source.value == "StopOut" and closed.order.reason is CloseReason.STOP_OUT


async def test_a_cross_loss_is_paid_from_everything_available_before_a_deficit(container):
    market = await make_cfd(container, bid="100", ask="100")
    fay = await hedging_trader(container, "fay", usdt="50")
    opened = await place(container, fay, market, "Buy", "10", leverage=100)
    await set_price(container, market, "98", "98")

    closed = await container.derivatives.close_position(
        fay.account_id, opened.order.position_id, None, CloseReason.STOP_OUT
    )

    # Cross: the loss of 20 is paid from available 39 + released margin 10: no deficit.
    assert closed.order.realized_pnl == D(-20)
    after = await money(container, fay.account_id)
    assert (after.available, after.margin) == (D(49) - 20 - D("0.98"), D(0))
    assert await house(container) == D(20)
    async with container.uow() as uow:
        conn = uow.connection  # type: ignore[attr-defined]
        assert (await conn.execute(select(dt.deficits))).all() == []
