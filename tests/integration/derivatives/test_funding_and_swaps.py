"""Funding (Perpetual) and daily swaps (Cfd) paid to open positions: exact amounts, once per
interval or day, a charge beyond the account's available a deficit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.notifications import NotificationQuery
from bourse.domain.pricing import FundingRate
from tests.integration.derivatives.support import D, Money, hedging_trader, house, make_cfd, money, place
from tests.integration.trading.support import ADMIN


async def _rows(container, table):
    async with container.uow() as uow:
        return (await uow.connection.execute(select(table).order_by(table.c.id))).all()  # type: ignore[attr-defined]


async def test_funding_longs_pay_shorts_receive_once_per_interval(container, clock):
    market = await make_cfd(
        container, "BTCPERP", type="Perpetual", fundingStartTime="00:00:00", fundingIntervalInHours=8
    )
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, alice, market, "Buy", "2", leverage=10, product="Perpetual")
    await place(container, bob, market, "Sell", "1", leverage=10, product="Perpetual")
    before_alice, before_bob = (
        await money(container, alice.account_id),
        await money(container, bob.account_id),
    )
    applied = clock.now() + timedelta(minutes=1)
    rate = FundingRate(market, applied, 8, D("0.001"), D("101"), D("100.9"))

    assert await container.derivatives.pay_funding(rate) == 2
    assert await container.derivatives.pay_funding(rate) == 0  # a re-run pays nothing twice

    # base * mark * rate: the long pays 2 * 101 * 0.001 = 0.202, the short receives 0.101.
    assert (await money(container, alice.account_id)).available == before_alice.available - D("0.202")
    assert (await money(container, bob.account_id)).available == before_bob.available + D("0.101")
    assert await house(container) == D("0.101")
    rows = await _rows(container, dt.funding_payments)
    assert sorted(r.amount for r in rows) == [D("-0.202"), D("0.101")]
    assert {r.applied_at for r in rows} == {applied}

    later = FundingRate(market, applied - timedelta(days=1), 8, D("0.001"), D("101"), D("100.9"))
    assert await container.derivatives.pay_funding(later) == 0  # before the positions were opened


async def test_a_funding_charge_beyond_available_is_paid_from_the_positions_margin(container, clock):
    market = await make_cfd(
        container, "BTCPERP", type="Perpetual", fundingStartTime="00:00:00", fundingIntervalInHours=8
    )
    carol = await hedging_trader(container, "carol", usdt="20.2")
    opened = await place(container, carol, market, "Buy", "2", leverage=10, product="Perpetual")
    assert await money(container, carol.account_id) == Money(D(0), D(20))

    for k in range(3):
        rate = FundingRate(market, clock.now() + timedelta(minutes=1 + k), 8, D("0.0075"), D("100"), D("99"))
        assert await container.derivatives.pay_funding(rate) == 1

    # Owed 2 * 100 * 0.0075 = 1.5 three times with nothing available: the position's margin pays
    # (20 -> 15.5, bucket and position alike); nothing is a deficit.
    assert await money(container, carol.account_id) == Money(D(0), D("15.5"))
    (view,) = await container.derivatives.positions(carol.principal, carol.account_id)
    assert view.position.margin == D("15.5")
    rows = await _rows(container, dt.funding_payments)
    assert [(r.amount, r.deficit) for r in rows] == [(D("-1.5"), D(0))] * 3
    assert all(r.ledger_tx_id is not None for r in rows)
    assert await _rows(container, dt.deficits) == []
    assert await house(container) == D("4.5")

    # Closing at 100 (no PnL, fee 0.2) gives back what is left: 20.2 - 0.2 - 0.2 - 4.5.
    await container.derivatives.close(carol.principal, carol.account_id, opened.order.position_id, None)
    assert await money(container, carol.account_id) == Money(D("15.3"), D(0))


async def test_a_funding_charge_beyond_available_and_margin_is_a_deficit(container, clock):
    market = await make_cfd(
        container, "BTCPERP", type="Perpetual", fundingStartTime="00:00:00", fundingIntervalInHours=8
    )
    carol = await hedging_trader(container, "carol", usdt="1.1")
    await place(container, carol, market, "Buy", "1", leverage=100, product="Perpetual")  # margin 1
    assert await money(container, carol.account_id) == Money(D(0), D(1))

    rate = FundingRate(market, clock.now() + timedelta(minutes=1), 8, D("0.015"), D("100"), D("99"))
    # the clamp is 0.0075, but the job pays the stored rate: 1 * 100 * 0.015 = 1.5 owed, 1 in margin
    assert await container.derivatives.pay_funding(rate) == 1
    assert await money(container, carol.account_id) == Money(D(0), D(0))
    (row,) = await _rows(container, dt.funding_payments)
    assert (row.amount, row.deficit) == (D("-1.5"), D("0.5"))
    (deficit,) = await _rows(container, dt.deficits)
    assert (deficit.kind, deficit.amount) == ("Funding", D("0.5"))
    async with container.uow() as uow:
        notes = await uow.notifications.list_admin(ADMIN.uid, NotificationQuery())
    assert [n.data["kind"] for n in notes if n.type == "PositionDeficit"] == ["Funding"]


async def test_daily_swaps_by_percent_and_fixed(container, clock):
    percent = await make_cfd(
        container,
        "BTCCFD",
        swapSettings={
            "type": "Percent",
            "longPositionSettings": {"swapSize": "-0.01", "assetId": "USDT"},
            "shortPositionSettings": {"swapSize": "0.005", "assetId": "USDT"},
        },
    )
    fixed = await make_cfd(
        container,
        "ETHCFD",
        swapSettings={"type": "Fixed", "longPositionSettings": {"swapSize": "-0.3", "assetId": "USDT"}},
    )
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, percent, "Buy", "2", leverage=10)
    await place(container, alice, percent, "Sell", "1", leverage=10)
    await place(container, alice, fixed, "Buy", "1.5", leverage=10)
    start = await money(container, alice.account_id)
    day = (clock.now() + timedelta(days=1)).date()

    assert await container.derivatives.pay_swaps(day) == 3
    assert await container.derivatives.pay_swaps(day) == 0
    assert await container.derivatives.pay_swaps(clock.now().date()) == 0  # opened after that midnight

    # Long 2 * 100 * -0.01% = -0.02; short 100 * 0.005% = +0.005; fixed long -0.3 * 1.5 = -0.45.
    assert (await money(container, alice.account_id)).available == start.available - D("0.02") + D(
        "0.005"
    ) - D("0.45")
    rows = await _rows(container, dt.swap_payments)
    assert sorted(r.amount for r in rows) == [D("-0.45"), D("-0.02"), D("0.005")]
