"""A-book hedging of Dealer fills: the outbox row written with the fill, the job sending it to a
paper venue and recording the fill, and time-outs with their one admin notification.

The Cfd market quotes 100/101 through a manual source with a 1% markup: a buy fills at 102.01
(101 * 1.01), a sell at 99 (100 * 0.99); the paper venue fills at the source's 101 / 100.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bourse.domain.notifications import AdminNotificationType, NotificationQuery
from bourse.domain.orders import OrderStatus
from bourse.domain.values import UserId
from bourse.jobs.runner import BackgroundJobs, hedging_job, start_background_jobs
from bourse.service.context import RequestMeta
from tests.integration.derivatives.support import D, hedging_trader, make_cfd, place
from tests.integration.trading.support import ADMIN
from tests.integration.venues.support import external_orders, hedge, paper, paper_venue, set_paper_mode


async def _timeouts(container):
    async with container.uow() as uow:
        items = await uow.notifications.list_admin(UserId(1), NotificationQuery(limit=50))
    return [n for n in items if n.type == AdminNotificationType.EXTERNAL_ORDER_TIMEOUT.value]


async def test_a_dealer_fill_on_a_hedged_market_writes_one_external_order_with_it(container, clock):
    market = await make_cfd(container, bid="100", ask="101", markup="0.01")
    await hedge(container, market, await paper_venue(container), ratio="0.5", timeout=30)
    alice = await hedging_trader(container, "alice", usdt="1000")

    view = await place(container, alice, market, "Buy", "2.5", leverage=10)

    assert view.order.status is OrderStatus.FILLED
    (row,) = await external_orders(container)
    assert row.external_order_id == f"H{view.order.order_id}" and row.order_id == view.order.order_id
    assert (row.venue_id, row.venue_symbol, row.market_id, row.account_id) == (
        "paper",
        market,
        market,
        alice.account_id,
    )
    assert (row.side, row.type, row.amount, row.reference_price, row.status) == (
        "Buy",
        "Market",
        D("1.25"),  # 0.5 of 2.5 BTC, at the market's 2 decimals
        D("102.01"),
        "New",
    )
    assert row.position_execution_id is not None and row.uid == alice.principal.uid
    assert (row.created_at, row.timeout_at) == (clock.now(), clock.now() + timedelta(seconds=30))
    assert (row.attempts, row.lp_order_id, row.sent_at, row.filled) == (0, None, None, 0)


async def test_no_external_order_for_a_refused_fill_an_unhedged_market_or_disabled_settings(container):
    market = await make_cfd(container, bid="100", ask="101")
    other = await make_cfd(container, "ETHCFD", bid="10", ask="10", baseAssetId="ETH")
    venue = await paper_venue(container)
    await hedge(container, market, venue)
    alice = await hedging_trader(container, "alice", usdt="10")

    refused = await place(container, alice, market, "Buy", "2", leverage=1)  # 202 of margin: not there
    assert refused.order.status is OrderStatus.REJECTED
    unhedged = await place(container, alice, other, "Buy", "0.5", leverage=10)
    assert unhedged.order.status is OrderStatus.FILLED
    assert await external_orders(container) == []

    await container.hedging.set_hedging(
        ADMIN,
        market,
        {"venueId": venue, "venueSymbol": market, "hedgeRatio": "1", "enabled": False},
        RequestMeta(),
    )
    assert (
        await place(container, alice, market, "Buy", "0.01", leverage=10)
    ).order.status is OrderStatus.FILLED
    # disabled settings are kept but hedge nothing
    assert await external_orders(container) == []


async def test_the_job_sends_it_to_the_paper_venue_and_records_the_fill(container, clock):
    market = await make_cfd(container, bid="100", ask="101", markup="0.01")
    await hedge(container, market, await paper_venue(container, feeRate="0.001"), ratio="1")
    alice = await hedging_trader(container, "alice", usdt="1000")
    bought = await place(container, alice, market, "Buy", "2", leverage=10)
    sold = await place(container, alice, market, "Sell", "1", leverage=10)

    clock.advance(seconds=1)
    assert await container.hedging.run_external_orders() == 2

    buy, sell = await external_orders(container)
    assert (buy.order_id, buy.status, buy.filled, buy.average_price) == (
        bought.order.order_id,
        "Filled",
        D(2),
        D(101),  # the venue's price: the source's ask, without our markup
    )
    assert (buy.commission, buy.commission_asset, buy.lp_order_id) == (D("0.202"), "USDT", "paper-1")
    assert (buy.attempts, buy.sent_at, buy.updated_at, buy.last_error) == (1, clock.now(), clock.now(), None)
    assert (sell.order_id, sell.side, sell.status, sell.filled, sell.average_price, sell.commission) == (
        sold.order.order_id,
        "Sell",
        "Filled",
        D(1),
        D(100),
        D("0.1"),
    )
    assert paper(container).requests == [("place", buy.external_order_id), ("place", sell.external_order_id)]
    # finished orders are neither sent nor looked up again
    assert await container.hedging.run_external_orders() == 0


async def test_an_acknowledged_order_fills_at_a_later_look_up_and_a_rejected_one_stops(container, clock):
    market = await make_cfd(container, bid="100", ask="101")
    venue = await paper_venue(container, mode="Accept")
    await hedge(container, market, venue, ratio="1")
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "1", leverage=10)

    await container.hedging.run_external_orders()  # sent, acknowledged; the same pass looks it up
    (row,) = await external_orders(container)
    assert (row.status, row.filled, row.lp_order_id) == ("Filled", D(1), "paper-1")
    assert [op for op, _ in paper(container).requests] == ["place", "get"]

    await set_paper_mode(container, venue, mode="Reject")
    await place(container, alice, market, "Buy", "1", leverage=10)
    await container.hedging.run_external_orders()
    _, rejected = await external_orders(container)
    assert (rejected.status, rejected.filled, rejected.lp_order_id) == ("Rejected", 0, None)
    assert rejected.last_error.startswith("VenueRejected: paper venue paper rejects every order")
    assert await container.hedging.run_external_orders() == 0
    assert await _timeouts(container) == []


async def test_a_venue_that_never_answers_times_the_order_out_once_with_a_notification_and_a_cancel(
    container, clock
):
    market = await make_cfd(container, bid="100", ask="101")
    venue = await paper_venue(container, mode="Silent")
    await hedge(container, market, venue, ratio="1", timeout=30)
    alice = await hedging_trader(container, "alice", usdt="1000")
    placed = await place(container, alice, market, "Buy", "1", leverage=10)

    await container.hedging.run_external_orders()
    (row,) = await external_orders(container)
    assert (row.status, row.attempts) == ("Sent", 1)
    assert row.last_error.startswith("VenueTimeout: paper venue paper did not answer")

    clock.advance(seconds=29)
    await container.hedging.run_external_orders()  # looked up again, still no answer
    assert (await external_orders(container))[0].status == "Sent"
    assert await _timeouts(container) == []

    clock.advance(seconds=1)
    await container.hedging.run_external_orders()
    (row,) = await external_orders(container)
    assert row.status == "TimedOut" and row.updated_at == clock.now()
    assert row.last_error.startswith("cancel: VenueTimeout")  # the best-effort cancel was tried
    assert paper(container).requests[-1] == ("cancel", row.external_order_id)
    (note,) = await _timeouts(container)
    assert note.title == "External order timed out"
    assert note.data == {
        "type": "ExternalOrderTimeout",
        "externalOrderId": row.external_order_id,
        "lpOrderId": None,
        "orderId": str(placed.order.order_id),
        "venueId": "paper",
        "venueSymbol": market,
        "marketId": market,
        "accountId": alice.account_id,
        "side": "Buy",
        "amount": "1",
        "filledAmount": "0",
        "statusBefore": "Sent",
        "lastError": note.data["lastError"],
    }
    assert note.data["lastError"].startswith("VenueTimeout")  # what the order knew when it timed out

    # once per order: later passes neither notify nor call the venue again
    calls = len(paper(container).requests)
    clock.advance(seconds=60)
    assert await container.hedging.run_external_orders() == 0
    assert len(await _timeouts(container)) == 1 and len(paper(container).requests) == calls


async def test_an_order_never_sent_times_out_without_a_cancel(container, clock):
    market = await make_cfd(container, bid="100", ask="101")
    venue = await paper_venue(container)
    await hedge(container, market, venue, ratio="1", timeout=5)
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "1", leverage=10)

    clock.advance(seconds=6)  # the job did not run in time (it was down)
    await container.hedging.run_external_orders()
    (row,) = await external_orders(container)
    assert (row.status, row.attempts, row.sent_at) == ("TimedOut", 0, None)
    assert paper(container) is None  # the venue was never called
    (note,) = await _timeouts(container)
    assert note.data["statusBefore"] == "New"


async def test_a_late_answer_after_the_timeout_records_the_fill_but_keeps_timed_out(container, clock):
    market = await make_cfd(container, bid="100", ask="101")
    venue = await paper_venue(container, mode="Accept", latencyMs=0)
    await hedge(container, market, venue, ratio="1", timeout=5)
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "1", leverage=10)
    await set_paper_mode(container, venue, mode="Unavailable")
    await container.hedging.run_external_orders()  # Sent; the venue cannot be reached
    (row,) = await external_orders(container)
    assert row.status == "Sent" and row.last_error.startswith("VenueUnavailable")

    clock.advance(seconds=5)
    await container.hedging.run_external_orders()
    (row,) = await external_orders(container)
    assert row.status == "TimedOut" and row.last_error.startswith("cancel: VenueUnavailable")


async def test_the_runner_sends_hedges_by_itself(container):
    jobs = start_background_jobs(container)
    try:
        assert "external-orders" in {job.name for job in jobs.jobs}
    finally:
        await jobs.aclose()

    market = await make_cfd(container, bid="100", ask="101")
    await hedge(container, market, await paper_venue(container), ratio="1")
    alice = await hedging_trader(container, "alice", usdt="1000")
    running = BackgroundJobs([hedging_job(container, interval=0.02)]).start()
    try:
        await place(container, alice, market, "Buy", "1", leverage=10)
        for _ in range(250):
            rows = await external_orders(container)
            if rows and rows[0].status == "Filled":
                break
            await asyncio.sleep(0.02)
    finally:
        await running.aclose()
    (row,) = await external_orders(container)
    assert (row.status, row.filled, row.average_price) == ("Filled", D(1), D(101))
