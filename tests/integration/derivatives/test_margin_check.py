"""``check_margin`` (what the margin job calls): margin calls once per crossing, stop-out biggest
loss first until the level recovers, isolated positions on their own level."""

from __future__ import annotations

from bourse.domain.markets import MarketType
from bourse.domain.notifications import NotificationQuery
from bourse.domain.orders import OrderStatus, OrderType, Side
from bourse.domain.positions import CloseReason
from bourse.service.derivatives import PreviewRequest
from tests.integration.derivatives.support import D, Money, hedging_trader, make_cfd, money, place, set_price
from tests.integration.derivatives.test_job_entry_points import mark_to
from tests.integration.trading.support import USDT, deposit


async def _calls(container, trader):
    async with container.uow() as uow:
        notes = await uow.notifications.list_trader(trader.principal.uid, None, NotificationQuery())
    return [n for n in notes if n.type == "MarginCall"]


async def test_a_margin_call_is_sent_once_per_crossing(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="30")
    await place(container, alice, market, "Buy", "2", leverage=10)
    # Collateral 29.8, used margin 20: the level is below 1 once the mark is below 95.1 and below
    # the stop-out level 0.5 once it is below 90.1.
    check = await container.derivatives.check_margin(alice.account_id)
    assert (check.margin_call_sent, check.closed) == (False, [])

    await mark_to(container, market, "93", until=lambda m: m < 95)
    assert (await container.derivatives.check_margin(alice.account_id)).margin_call_sent is True
    assert (await container.derivatives.check_margin(alice.account_id)).margin_call_sent is False
    (note,) = await _calls(container, alice)
    assert note.data["accountId"] == alice.account_id and note.data["marginCallLevel"] == "1"

    await mark_to(container, market, "100", until=lambda m: m > 96)
    assert (await container.derivatives.check_margin(alice.account_id)).margin_call_sent is False  # re-armed
    await mark_to(container, market, "93", until=lambda m: m < 95)
    assert (await container.derivatives.check_margin(alice.account_id)).margin_call_sent is True
    assert len(await _calls(container, alice)) == 2


async def test_stop_out_closes_the_biggest_loss_first_until_the_level_recovers(container):
    falling = await make_cfd(container, "FALLCFD")
    steady = await make_cfd(container, "STEADYCFD")
    bob = await hedging_trader(container, "bob", usdt="60")
    keeper = await place(container, bob, steady, "Buy", "0.5", leverage=10)
    loser = await place(container, bob, falling, "Buy", "2", leverage=10)
    # Collateral 60 - 0.05 - 0.2 = 59.75, used margin 25: stop-out once equity is below 12.5, i.e.
    # the loser's mark below 76.375.
    await mark_to(container, falling, "75", until=lambda m: m < 76)

    check = await container.derivatives.check_margin(bob.account_id)

    # The loser goes first (sold at 75: -50, fee 0.15); collateral 9.6 over 5 of margin is a level
    # of 1.92 again, so the other position stays.
    (closed,) = check.closed
    assert closed.order.position_id == loser.order.position_id
    assert (closed.order.reason, closed.order.source.value, closed.order.status) == (
        CloseReason.STOP_OUT,
        "StopOut",
        OrderStatus.FILLED,
    )
    assert closed.order.realized_pnl == D(-50)
    assert await money(container, bob.account_id) == Money(D("4.6"), D(5))
    kept = await container.derivatives.position(bob.principal, bob.account_id, keeper.order.position_id)
    assert kept.position.is_open and kept.margin_level == D("1.92")


async def test_an_isolated_position_is_stopped_out_on_its_own_level(container):
    market = await make_cfd(container)
    carol = await hedging_trader(container, "carol", usdt="1000")
    isolated = await place(container, carol, market, "Buy", "2", leverage=10, margin_type="Isolated")
    cross = await place(container, carol, market, "Sell", "1", leverage=10)
    # Own level (20 + 2 * (mark - 100)) / 20 is below 0.5 once the mark is below 95.
    await mark_to(container, market, "90", until=lambda m: m < 94.5)

    check = await container.derivatives.check_margin(carol.account_id)

    assert [v.order.position_id for v in check.closed] == [isolated.order.position_id]
    assert (
        await container.derivatives.position(carol.principal, carol.account_id, cross.order.position_id)
    ).position.is_open


async def test_a_stop_out_chosen_on_a_stale_snapshot_is_skipped_once_the_level_recovered(container, clock):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="10.1")
    opened = await place(container, alice, market, "Buy", "1", leverage=10)  # margin 10, nothing available
    position_id = opened.order.position_id
    await mark_to(container, market, "60", until=lambda m: m <= 61)
    await set_price(container, market, "60", "60")
    stale = await container.derivatives._margin_snapshot(alice.account_id)
    target = container.derivatives._stop_out_target(stale, set())
    assert target == position_id  # level about (10 - 40) / 10: below the stop-out level

    # a deposit lands between the snapshot and the close
    await deposit(container, alice.account_id, USDT, D(1000))
    assert await container.derivatives._stop_out(alice.account_id, target, set(), clock.now()) is None
    view = await container.derivatives.position(alice.principal, alice.account_id, position_id)
    assert view.position.lots == D(1)


async def test_an_account_with_a_stale_mark_is_not_evaluated_nor_stopped_out(container, clock):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="10.1")
    opened = await place(container, alice, market, "Buy", "1", leverage=10)
    position_id = opened.order.position_id
    await mark_to(container, market, "60", until=lambda m: m <= 61)  # level far below the stop-out
    clock.advance(seconds=31)  # the mark is now older than the market's 30 s stale_after

    check = await container.derivatives.check_margin(alice.account_id)
    assert (check.closed, check.margin_call_sent) == ([], False)
    assert await _calls(container, alice) == []
    (view,) = await container.derivatives.positions(alice.principal, alice.account_id)
    assert view.position.lots == D(1)
    assert (view.mark, view.unrealized_pnl, view.margin_level, view.liquidation_price) == (
        None,
        None,
        None,
        None,
    )

    # a fresh price again: evaluated, and stopped out
    await set_price(container, market, "60", "60")
    await mark_to(container, market, "60", until=lambda m: m <= 61)
    check = await container.derivatives.check_margin(alice.account_id)
    assert [v.order.position_id for v in check.closed] == [position_id]


async def test_order_data_shows_no_margin_level_while_a_position_has_a_stale_mark(container, clock):
    stale_market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, stale_market, "Buy", "1", leverage=10)
    request = PreviewRequest("BTCCFD2", Side.BUY, OrderType.MARKET, D(1), leverage=10)
    fresh = await make_cfd(container, "BTCCFD2")
    before = await container.derivatives.preview(alice.principal, alice.account_id, MarketType.CFD, request)
    assert before.margin_level is not None and fresh == "BTCCFD2"

    clock.advance(seconds=31)  # the marks go stale (no pricing tick); BTCCFD2's quote stays (Manual)
    after = await container.derivatives.preview(alice.principal, alice.account_id, MarketType.CFD, request)
    assert after.margin_level is None
    assert after.quote_amount == D(100)  # the rest of the preview is still there
