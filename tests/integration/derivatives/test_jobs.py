"""The derivatives jobs as the runner starts them: positions move with no client (a take profit
fires, a stop-out closes), funding is paid once per moment on the lots open at that moment however
late the job runs, swaps once per day at the 00:00 mark, and missed moments are caught up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select

from bourse.adapters.db import derivatives_tables as dt
from bourse.adapters.db import pricing_tables as pt
from bourse.domain.orders import OrderStatus
from bourse.domain.positions import CloseReason
from bourse.jobs.runner import BackgroundJobs, derivatives_jobs, pricing_jobs, start_background_jobs
from bourse.service.derivatives_records import ClosedPositionQuery
from tests.integration.derivatives.support import D, hedging_trader, make_cfd, money, place, set_price

FAST = 0.02


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / FAST)):
        if await check():
            return
        await asyncio.sleep(FAST)
    raise AssertionError("the jobs never got there")


def _jobs(container) -> BackgroundJobs:
    """The runner's pricing and derivatives jobs, polling fast."""
    return BackgroundJobs(
        [
            *pricing_jobs(container, tick=FAST, funding=FAST, breaker=60),
            *derivatives_jobs(container, orders=FAST, triggers=FAST, margin=FAST, funding=FAST, swaps=FAST),
        ]
    ).start()


async def _rows(container, table, order_by):
    async with container.uow() as uow:
        return (await uow.connection.execute(select(table).order_by(*order_by))).all()  # type: ignore[attr-defined]


async def test_the_runner_starts_the_derivatives_jobs(container):
    jobs = start_background_jobs(container)
    try:
        names = {job.name for job in jobs.jobs}
    finally:
        await jobs.aclose()
    assert {
        "derivative-orders",
        "derivative-triggers",
        "derivative-margin",
        "funding-payments",
        "swap-payments",
    } <= names


async def test_a_take_profit_fires_with_no_client(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    opened = await place(container, alice, market, "Buy", "2", leverage=10, tp="103")
    position_id = opened.order.position_id
    assert position_id is not None
    jobs = _jobs(container)
    try:
        await set_price(container, market, "110", "110")

        async def closed() -> bool:
            view = await container.derivatives.position(alice.principal, alice.account_id, position_id)
            return not view.position.is_open

        await _eventually(closed)
    finally:
        await jobs.aclose()
    (close,), _ = await container.derivatives.closed_positions(
        alice.principal, alice.account_id, ClosedPositionQuery()
    )
    assert (close.row.execution.reason, close.row.execution.price) == (CloseReason.TAKE_PROFIT, D(110))
    # Sold 2 lots at 110 bought at 100: +20; fees 0.2 + 0.22; the margin came back.
    assert await money(container, alice.account_id) == type(await money(container, alice.account_id))(
        D("1019.58"), D(0)
    )


async def test_a_stop_out_happens_with_no_request(container):
    market = await make_cfd(container)
    # 2 lots at 100, leverage 100: margin 2, fee 0.2, 0.3 left available. At 99 the loss is 2:
    # equity 0.3 over 2 of margin, level 0.15, below the default stop-out level 0.5.
    bob = await hedging_trader(container, "bob", usdt="2.5")
    opened = await place(container, bob, market, "Buy", "2", leverage=100)
    assert opened.order.status is OrderStatus.FILLED
    jobs = _jobs(container)
    try:
        await set_price(container, market, "99", "99")

        async def stopped() -> bool:
            return not (await container.derivatives.positions(bob.principal, bob.account_id))

        await _eventually(stopped)
    finally:
        await jobs.aclose()
    (close,), _ = await container.derivatives.closed_positions(
        bob.principal, bob.account_id, ClosedPositionQuery()
    )
    assert close.row.execution.reason is CloseReason.STOP_OUT
    order = await container.derivatives.get_order(
        bob.principal, bob.account_id, str(close.row.execution.order_id)
    )
    assert order is not None and order.order.source.value == "StopOut"


async def test_funding_is_paid_once_on_the_lots_open_at_the_moment_even_late_and_after_the_close(
    container, clock
):
    clock.current = datetime(2026, 1, 5, 7, 59, tzinfo=UTC)
    market = await make_cfd(
        container, "BTCPERP", type="Perpetual", fundingStartTime="00:00:00", fundingIntervalInHours=8
    )
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    clock.advance(seconds=10)
    await place(container, alice, market, "Buy", "2", leverage=10, product="Perpetual")
    await place(container, bob, market, "Sell", "1", leverage=10, product="Perpetual")
    clock.advance(seconds=20)  # 07:59:30: the index jumps to 110, the mark follows to 103.33
    await set_price(container, market, "110", "110")
    clock.advance(seconds=31)  # 08:00:01: the tick passes the funding moment
    await container.pricing.tick()
    clock.advance(minutes=10)  # 08:10: carol opens after the moment: she owes nothing for it
    carol = await hedging_trader(container, "carol", usdt="1000")
    await place(container, carol, market, "Buy", "1", leverage=10, product="Perpetual")
    clock.advance(minutes=20)  # 08:30: alice closes one lot, then the other
    (position,) = await container.derivatives.positions(alice.principal, alice.account_id)
    await container.derivatives.close(alice.principal, alice.account_id, position.position.position_id, D(1))
    clock.advance(minutes=10)
    await container.derivatives.close(alice.principal, alice.account_id, position.position.position_id, None)
    before = {t.account_id: await money(container, t.account_id) for t in (alice, bob, carol)}

    clock.advance(minutes=20)  # 09:00: the funding jobs run late
    assert await container.pricing.run_funding_rates() == 1
    assert await container.derivatives.run_funding() == 2
    assert await container.derivatives.run_funding() == 0
    clock.advance(hours=1)
    assert await container.derivatives.run_funding() == 0

    # The moment's mark 103.33 (not the later 105.55) and index 110: rate clamp(-0.0606) = -0.0075.
    # Longs receive: alice on her 2 lots 2 * 103.33 * 0.0075 = 1.54995; bob's short pays 0.774975.
    (rate,) = await container.pricing.funding_rates_after(market, None)
    assert (rate.applied_at, rate.mark, rate.index, rate.rate) == (
        datetime(2026, 1, 5, 8, tzinfo=UTC),
        D("103.33"),
        D(110),
        D("-0.0075"),
    )
    after = {t.account_id: await money(container, t.account_id) for t in (alice, bob, carol)}
    assert after[alice.account_id].available - before[alice.account_id].available == D("1.54995")
    assert after[bob.account_id].available - before[bob.account_id].available == D("-0.774975")
    assert after[carol.account_id] == before[carol.account_id]
    rows = await _rows(container, dt.funding_payments, [dt.funding_payments.c.id])
    assert sorted((r.account_id, r.amount) for r in rows) == sorted(
        [(alice.account_id, D("1.54995")), (bob.account_id, D("-0.774975"))]
    )


async def test_funding_catches_up_every_missed_moment_once(container, clock):
    clock.current = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    market = await make_cfd(
        container, "BTCPERP", type="Perpetual", fundingStartTime="00:00:00", fundingIntervalInHours=8
    )
    bob = await hedging_trader(container, "bob", usdt="1000")
    await place(container, bob, market, "Sell", "1", leverage=10, product="Perpetual")
    await set_price(container, market, "110", "110")  # mark 103.33, index 110 from now on
    start = await money(container, bob.account_id)

    clock.advance(hours=18)  # 01:00 the next day: 08:00, 16:00 and 00:00 passed with nothing running
    await container.pricing.tick()
    assert await container.pricing.run_funding_rates() == 3
    assert await container.derivatives.run_funding() == 3
    assert await container.derivatives.run_funding() == 0

    # Each moment at the mark it had (103.33, the last sample before them): the short pays
    # 1 * 103.33 * 0.0075 = 0.774975 three times.
    rows = await _rows(container, dt.funding_payments, [dt.funding_payments.c.applied_at])
    assert [(r.applied_at.hour, r.mark, r.amount) for r in rows] == [
        (8, D("103.33"), D("-0.774975")),
        (16, D("103.33"), D("-0.774975")),
        (0, D("103.33"), D("-0.774975")),
    ]
    assert (await money(container, bob.account_id)).available == start.available - 3 * D("0.774975")


SWAPS = {
    "type": "Percent",
    "longPositionSettings": {"swapSize": "-0.01", "assetId": "USDT"},
    "shortPositionSettings": {"swapSize": "0.005", "assetId": "USDT"},
}


async def test_swaps_once_per_day_at_the_midnight_mark_and_caught_up_after_a_gap(container, clock):
    clock.current = datetime(2026, 1, 5, 23, 50, tzinfo=UTC)
    market = await make_cfd(container, swapSettings=SWAPS)
    alice = await hedging_trader(container, "alice", usdt="1000")
    bob = await hedging_trader(container, "bob", usdt="1000")
    clock.advance(minutes=1)
    (alice_position,) = [(await place(container, alice, market, "Buy", "2", leverage=10)).order.position_id]
    await place(container, bob, market, "Sell", "1", leverage=10)
    clock.advance(minutes=4)  # 23:55: the mark moves to 110
    await set_price(container, market, "130", "130")
    clock.advance(minutes=5, seconds=30)  # 00:00:30: the tick passes midnight (the mark then: 110)
    await container.pricing.tick()
    await set_price(container, market, "200", "200")  # later prices do not count for that day
    clock.advance(minutes=5)
    start = {t.account_id: await money(container, t.account_id) for t in (alice, bob)}

    assert await container.derivatives.run_swaps() == 2
    assert await container.derivatives.run_swaps() == 0

    # At 110: alice's long 2 * 110 * -0.01% = -0.022, bob's short 110 * 0.005% = +0.0055.
    now = {t.account_id: await money(container, t.account_id) for t in (alice, bob)}
    assert now[alice.account_id].available - start[alice.account_id].available == D("-0.022")
    assert now[bob.account_id].available - start[bob.account_id].available == D("0.0055")
    marks = await _rows(container, pt.mark_history, [pt.mark_history.c.at])
    assert [(r.at, r.mark) for r in marks] == [(datetime(2026, 1, 6, tzinfo=UTC), D(110))]

    # Alice closes; three days pass with no job and no tick; bob's short is paid for each once.
    assert alice_position is not None
    await container.derivatives.close(alice.principal, alice.account_id, alice_position, None)
    mark = (await container.pricing.mark(market)).mark
    clock.advance(days=3)
    await container.pricing.tick()
    assert await container.derivatives.run_swaps() == 3
    assert await container.derivatives.run_swaps() == 0
    rows = await _rows(container, dt.swap_payments, [dt.swap_payments.c.day, dt.swap_payments.c.account_id])
    later = [(r.day.day, r.amount) for r in rows if r.account_id == bob.account_id][1:]
    bob_daily = (mark * D("0.00005")).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)  # as swap_payment rounds
    assert later == [(7, bob_daily), (8, bob_daily), (9, bob_daily)]
    assert [r.day.day for r in rows if r.account_id == alice.account_id] == [6]
