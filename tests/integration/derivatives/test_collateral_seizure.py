"""A Cross loss the settlement asset cannot pay is paid by the account's other selected margin
assets (they counted in its margin level) before anything is left to the house as a deficit."""

from __future__ import annotations

from sqlalchemy import select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.ledger import HOUSE, Bucket, account_owner
from bourse.domain.notifications import NotificationQuery
from bourse.domain.orders import OrderStatus
from tests.integration.derivatives.support import D, make_cfd, place, set_price
from tests.integration.derivatives.test_job_entry_points import mark_to
from tests.integration.trading.support import ADMIN, BTC, make_market, make_trader
from tests.integration.trading.support import place as spot


async def _rows(container, table):
    async with container.uow() as uow:
        return (await uow.connection.execute(select(table).order_by(table.c.id))).all()  # type: ignore[attr-defined]


async def _balance(container, owner, asset):
    async with container.uow() as uow:
        return await uow.ledger.balance(owner, asset, Bucket.AVAILABLE)


async def _btc_at_100_with_ratio(container, ratio: str) -> None:
    await make_market(container)  # spot BTCUSDT: BTC's price in USDT
    maker = await make_trader(container, "maker", btc="10", usdt="10000")
    taker = await make_trader(container, "taker", btc="10", usdt="10000")
    await spot(container, maker, "BTCUSDT", "Sell", "0.1", "100")
    await spot(container, taker, "BTCUSDT", "Buy", "0.1", "100")
    await container.derivatives.set_margin_ratio("test", "USDT", D(1))
    await container.derivatives.set_margin_ratio("test", "BTC", D(ratio))


async def _long_then_close_at_50(container, btc: str):
    market = await make_cfd(container)
    alice = await make_trader(container, "alice", usdt="10.1", btc=btc)
    await container.derivatives.select_margin_asset(alice.principal, alice.account_id, "BTC", True)
    opened = await place(container, alice, market, "Buy", "1", leverage=10)  # margin 10, fee 0.1
    assert opened.order.status is OrderStatus.FILLED
    await mark_to(container, market, "50", until=lambda m: m <= 51)
    await set_price(container, market, "50", "50")
    return market, alice, opened


async def test_a_cross_loss_beyond_the_settlement_asset_is_paid_with_other_collateral(container):
    await _btc_at_100_with_ratio(container, "0.9")
    _, alice, opened = await _long_then_close_at_50(container, btc="10")
    check = await container.derivatives.check_margin(alice.account_id)
    assert check.closed == []  # level (10 + 10 * 100 * 0.9 - 50) / 10: no stop-out

    await container.derivatives.close(alice.principal, alice.account_id, opened.order.position_id, None)

    # loss 50, 10 of it paid by the released margin: 40 USDT short = 0.4 BTC at 100
    assert await _rows(container, dt.deficits) == []
    (row,) = await _rows(container, dt.collateral_seizures)
    assert (row.asset, row.amount, row.rate, row.value, row.kind) == ("BTC", D("0.4"), D(100), D(40), "Close")
    assert row.position_id == int(opened.order.position_id)
    owner = account_owner(alice.account_id)
    assert await _balance(container, owner, BTC) == D("9.6")
    assert await _balance(container, HOUSE, BTC) == D("0.4")
    async with container.uow() as uow:
        notes = await uow.notifications.list_admin(ADMIN.uid, NotificationQuery())
    (note,) = [n for n in notes if n.type in ("PositionDeficit", "CollateralSeized")]
    assert note.type == "CollateralSeized"
    assert note.data["seized"] == [{"assetId": "BTC", "amount": "0.4"}]


async def test_what_other_collateral_cannot_cover_is_a_deficit(container):
    await _btc_at_100_with_ratio(container, "0.9")
    _, alice, opened = await _long_then_close_at_50(container, btc="0.1")  # worth 10 of the 40
    # level (10 + 0.1 * 100 * 0.9 - 50) / 10 < 0.5: the stop-out closes it
    check = await container.derivatives.check_margin(alice.account_id)
    assert [v.order.position_id for v in check.closed] == [opened.order.position_id]

    (row,) = await _rows(container, dt.collateral_seizures)
    assert (row.asset, row.amount, row.value) == ("BTC", D("0.1"), D(10))
    (deficit,) = await _rows(container, dt.deficits)
    assert (deficit.kind, deficit.amount) == ("Close", D(30))
    assert await _balance(container, account_owner(alice.account_id), BTC) == D(0)
    async with container.uow() as uow:
        notes = await uow.notifications.list_admin(ADMIN.uid, NotificationQuery())
    (note,) = [n for n in notes if n.type in ("PositionDeficit", "CollateralSeized")]
    assert note.type == "PositionDeficit"
    assert (note.data["amount"], note.data["seized"]) == ("30", [{"assetId": "BTC", "amount": "0.1"}])


async def test_an_unselected_asset_is_never_seized(container):
    await _btc_at_100_with_ratio(container, "0.9")
    market = await make_cfd(container)
    bob = await make_trader(container, "bob", usdt="10.1", btc="10")  # BTC not selected as margin
    opened = await place(container, bob, market, "Buy", "1", leverage=10)
    await mark_to(container, market, "50", until=lambda m: m <= 51)
    await set_price(container, market, "50", "50")
    await container.derivatives.close(bob.principal, bob.account_id, opened.order.position_id, None)
    assert await _rows(container, dt.collateral_seizures) == []
    (deficit,) = await _rows(container, dt.deficits)
    assert deficit.amount == D(40)
    assert await _balance(container, account_owner(bob.account_id), BTC) == D(10)
