"""Money backing open Cross positions stays: a withdrawal (or a spot order's hold) of a margin asset
that would take the account below its margin call level is refused with ``margin_required``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.errors import MarginRequired
from bourse.domain.orders import OrderStatus
from bourse.service.context import RequestMeta
from tests.integration.derivatives.support import D, Money, hedging_trader, make_cfd, money, place
from tests.integration.derivatives.test_job_entry_points import mark_to
from tests.integration.trading.support import ADMIN, make_market
from tests.integration.trading.support import place as spot


async def _deficits(container):
    async with container.uow() as uow:
        return (await uow.connection.execute(select(dt.deficits))).all()  # type: ignore[attr-defined]


async def test_a_withdrawal_of_the_cash_backing_an_unrealized_loss_is_refused(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "1", leverage=10)  # margin 10, fee 0.1
    await mark_to(container, market, "60", until=lambda m: m <= 61)  # upnl about -40

    with pytest.raises(MarginRequired) as refused:
        await container.transfers.withdraw(
            ADMIN, alice.account_id, "wd1", "USDT", "989.9", None, RequestMeta()
        )
    assert refused.value.code == "margin_required"
    # nothing stored: the money stays, the same deduplicationId can come again later
    transfers = await container.transfers.list_for_account(ADMIN, alice.account_id)
    assert transfers == []  # the helper deposits straight into the ledger: no transfer at all
    assert await money(container, alice.account_id) == Money(D("989.9"), D(10))
    # the stop-out that would have followed finds the loss covered: no deficit
    await container.derivatives.check_margin(alice.account_id)
    assert await _deficits(container) == []


async def test_a_withdrawal_that_keeps_the_level_above_the_margin_call_level_goes_through(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "1", leverage=10)
    await mark_to(container, market, "60", until=lambda m: m <= 61)
    # equity after: 89.9 + 10 - ~40 = ~59.9 against 10 used: level ~6, above 1
    wd = await container.transfers.withdraw(
        ADMIN, alice.account_id, "wd1", "USDT", "900", None, RequestMeta()
    )
    assert wd.status.value == "Pending"
    assert await money(container, alice.account_id) == Money(D("89.9"), D(10))


async def test_an_account_without_positions_withdraws_everything(container):
    await make_cfd(container)
    bob = await hedging_trader(container, "bob", usdt="1000")
    wd = await container.transfers.withdraw(ADMIN, bob.account_id, "wd1", "USDT", "1000", None, RequestMeta())
    assert wd.status.value == "Pending"


async def test_a_spot_order_cannot_hold_the_cash_backing_an_unrealized_loss(container):
    await make_market(container)  # spot BTCUSDT
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    await place(container, alice, market, "Buy", "1", leverage=10)
    await mark_to(container, market, "60", until=lambda m: m <= 61)

    with pytest.raises(MarginRequired):
        await spot(container, alice, "BTCUSDT", "Buy", "9.899", "100")  # would hold 989.9
    assert await money(container, alice.account_id) == Money(D("989.9"), D(10))
    # a small one leaves the level well above the call level
    small = await spot(container, alice, "BTCUSDT", "Buy", "1", "100")
    assert small.order.status is OrderStatus.PLACED


async def test_a_withdrawal_is_refused_while_the_level_cannot_be_evaluated(container, clock):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    opened = await place(container, alice, market, "Buy", "1", leverage=10)
    clock.advance(seconds=31)  # the mark is older than the market's stale_after (30 s)
    with pytest.raises(MarginRequired) as refused:
        await container.transfers.withdraw(ADMIN, alice.account_id, "wd1", "USDT", "1", None, RequestMeta())
    assert refused.value.details["positionIds"] == [opened.order.position_id]
