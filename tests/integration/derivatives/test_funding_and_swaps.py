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


async def test_a_funding_charge_beyond_available_is_a_deficit(container, clock):
    market = await make_cfd(
        container, "BTCPERP", type="Perpetual", fundingStartTime="00:00:00", fundingIntervalInHours=8
    )
    carol = await hedging_trader(container, "carol", usdt="20.2")
    await place(container, carol, market, "Buy", "2", leverage=10, product="Perpetual")
    assert await money(container, carol.account_id) == Money(D(0), D(20))

    rate = FundingRate(market, clock.now() + timedelta(minutes=1), 8, D("0.0075"), D("100"), D("99"))
    assert await container.derivatives.pay_funding(rate) == 1

    # Owed 2 * 100 * 0.0075 = 1.5 with nothing available: all of it is a deficit, nothing posted.
    assert await money(container, carol.account_id) == Money(D(0), D(20))
    (row,) = await _rows(container, dt.funding_payments)
    assert (row.amount, row.deficit, row.ledger_tx_id) == (D("-1.5"), D("1.5"), None)
    (deficit,) = await _rows(container, dt.deficits)
    assert (deficit.kind, deficit.amount) == ("Funding", D("1.5"))
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
