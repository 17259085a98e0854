"""``check_margin`` (what the margin job calls): margin calls once per crossing, stop-out biggest
loss first until the level recovers, isolated positions on their own level."""

from __future__ import annotations

from bourse.domain.notifications import NotificationQuery
from bourse.domain.orders import OrderStatus
from bourse.domain.positions import CloseReason
from tests.integration.derivatives.support import D, Money, hedging_trader, make_cfd, money, place
from tests.integration.derivatives.test_job_entry_points import mark_to


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
