"""clientOrderId: one order per (account, id), whatever the timing; another request under it is a conflict."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bourse.domain.errors import IdempotencyConflict
from bourse.domain.orders import OrderStatus
from tests.integration.trading.support import USDT, D, balances, make_market, make_trader, place


async def count_orders(container, client_order_id):
    async with container.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM orders WHERE client_order_id = :c"), {"c": client_order_id}
            )
        ).scalar_one()


async def test_a_repeat_returns_the_first_order_and_holds_nothing_more(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    first = await place(container, alice, market, "Buy", "0.1", "100.00", client_order_id="my-1")
    again = await place(container, alice, market, "Buy", "0.1", "100.00", client_order_id="my-1")
    assert again.order.order_id == first.order.order_id and again.order.client_order_id == "my-1"
    assert (await balances(container, alice.account_id))[USDT] == (D("989.99"), D("10.01"))
    with pytest.raises(IdempotencyConflict):
        await place(container, alice, market, "Buy", "0.2", "100.00", client_order_id="my-1")
    # Another account may use the same id.
    bob = await make_trader(container, "bob", usdt="1000")
    other = await place(container, bob, market, "Buy", "0.1", "100.00", client_order_id="my-1")
    assert other.order.order_id != first.order.order_id


async def test_a_rejected_order_is_the_answer_to_its_repeats_too(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1")
    first = await place(container, alice, market, "Buy", "1", "100.00", client_order_id="poor")
    again = await place(container, alice, market, "Buy", "1", "100.00", client_order_id="poor")
    assert first.order.status is OrderStatus.REJECTED and again.order.order_id == first.order.order_id


async def test_twenty_concurrent_identical_submits_make_one_order(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    results = await asyncio.gather(
        *(place(container, alice, market, "Buy", "0.1", "100.00", client_order_id="burst") for _ in range(20))
    )
    assert len({r.order.order_id for r in results}) == 1
    assert await count_orders(container, "burst") == 1
    assert (await balances(container, alice.account_id))[USDT] == (D("989.99"), D("10.01"))


async def test_concurrent_submits_across_batches_make_one_order(container):
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")

    async def later(delay: float):
        await asyncio.sleep(delay)
        return await place(container, alice, market, "Buy", "0.1", "100.00", client_order_id="spread")

    results = await asyncio.gather(*(later(i * 0.003) for i in range(20)))
    assert len({r.order.order_id for r in results}) == 1
    assert await count_orders(container, "spread") == 1


async def test_one_id_on_two_markets_at_once_is_one_order_and_one_conflict(container):
    btc = await make_market(container)
    eth = await make_market(container, baseAssetId="ETH")
    alice = await make_trader(container, "alice", usdt="1000")
    for market in (btc, eth):  # both runners up before the race
        await place(container, alice, market, "Buy", "0.1", "1.00")
    outcomes = await asyncio.gather(
        place(container, alice, btc, "Buy", "0.1", "100.00", client_order_id="both"),
        place(container, alice, eth, "Buy", "0.1", "100.00", client_order_id="both"),
        return_exceptions=True,
    )
    assert sum(isinstance(o, IdempotencyConflict) for o in outcomes) == 1
    assert await count_orders(container, "both") == 1
