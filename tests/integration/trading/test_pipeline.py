"""The runner's pipeline: a batch is matched while the one before it is still committing.

Each test holds batch N at its commit (its write statement has returned, so it holds its locks),
lets batch N+1 go through the engine meanwhile, then lets N commit or fail. What a user relies
on: N+1 spends exactly what the serial order would let it (money N's fills bring in included,
money N holds excluded), nothing of N+1 is answered before N commits, and if N fails, N+1 is
matched again on the book without N instead of being stored on top of it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from bourse.domain.orders import OrderStatus, RejectReason
from bourse.domain.trading import HOLD_KIND, TRADE_KIND
from bourse.engine import EngineFailure, MarketRunner
from bourse.engine.runner import FeeTermsCache, PlaceCommand
from tests.integration.trading.support import BTC, USDT, D, balances, make_market, make_trader, request


class HeldCommit:
    """A real unit of work whose first commit after ``arm`` waits for ``release`` (then fails if
    ``fail``); the runner's pipeline goes on meanwhile."""

    def __init__(self, inner: Any, control: HeldCommits) -> None:
        self._inner = inner
        self._control = control

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> HeldCommit:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    async def commit(self) -> None:
        control = self._control
        if control.armed:
            control.armed = False
            control.held.set()
            await control.release.wait()
            if control.fail:
                raise ConnectionError("injected commit failure")
        await self._inner.commit()


class HeldCommits:
    def __init__(self) -> None:
        self.armed = False
        self.fail = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()


async def _runner(container: Any, clock: Any, market: str, control: HeldCommits) -> MarketRunner:
    runner = MarketRunner(
        market, lambda: HeldCommit(container.uow(), control), clock, container.bus, FeeTermsCache()
    )
    await runner.start()
    return runner


async def _pending(task: asyncio.Future[Any]) -> bool:
    """Still unanswered after the loop had every chance to answer it."""
    for _ in range(20):
        await asyncio.sleep(0.01)
    return not task.done()


@pytest.mark.parametrize("holder_asks", [True, False])
async def test_the_next_batch_spends_what_the_committing_one_brings_in_and_not_what_it_holds(
    container, clock, holder_asks
):
    market = await make_market(container)
    buyer = await make_trader(container, "buyer", usdt="1000")
    seller = await make_trader(container, "seller", btc="0.1")
    holder = await make_trader(container, "holder", usdt="10.02")
    control = HeldCommits()
    runner = await _runner(container, clock, market, control)
    try:
        await runner.submit(PlaceCommand(buyer.account_id, request(market, "Buy", "0.1", "100.00")))
        control.armed = True
        # Batch N: the seller's BTC fills the resting buy (~9.99 USDT after the fee comes in) and the
        # holder's buy holds all of its USDT. N is held at its commit.
        first = [
            asyncio.ensure_future(
                runner.submit(PlaceCommand(seller.account_id, request(market, "Sell", "0.1", "100.00")))
            ),
            asyncio.ensure_future(
                runner.submit(PlaceCommand(holder.account_id, request(market, "Buy", "0.1", "99.00")))
            ),
        ]
        await asyncio.wait_for(control.held.wait(), 5)
        # Batch N+1, matched while N is not committed: the seller spends N's proceeds, the holder
        # asks for money N holds.
        second = [
            asyncio.ensure_future(
                runner.submit(PlaceCommand(seller.account_id, request(market, "Buy", "0.05", "99.00")))
            ),
        ]
        if holder_asks:
            second.append(
                asyncio.ensure_future(
                    runner.submit(PlaceCommand(holder.account_id, request(market, "Buy", "0.01", "98.00")))
                )
            )
        assert await _pending(second[0]) and await _pending(first[0])  # nothing answered before N commits
        control.release.set()
        sold, held = await asyncio.gather(*first)
        spent, *refused = await asyncio.gather(*second)
    finally:
        await runner.stop()
    assert sold.status is OrderStatus.FILLED and held.status is OrderStatus.PLACED
    assert spent.status is OrderStatus.PLACED  # funded by N's fill, as in serial order
    for order in refused:  # it asked for money N holds
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason == RejectReason.INSUFFICIENT_FUNDS.value
    # Right the first time, not by a write the database refused (an overdraft) and a retry.
    assert runner.failed_batches == 0 and runner.stopped is None
    seller_money = await balances(container, seller.account_id)
    assert seller_money[BTC] == (D(0), D(0))
    assert (
        seller_money[USDT][1] == spent.locked_amount
        and seller_money[USDT][0] == D("9.99") - spent.locked_amount
    )
    # The one statement a batch writes names each hold's and each execution's ledger transaction
    # by its position; stored, they are that transaction's id.
    async with container.engine.connect() as conn:
        holds = (
            await conn.execute(
                text(
                    "SELECT o.order_id, t.kind, p.amount FROM orders o JOIN ledger_transactions t ON t.id = o.hold_tx_id "
                    "JOIN ledger_postings p ON p.tx_id = t.id AND p.amount < 0 WHERE o.order_id = ANY(:ids)"
                ),
                {"ids": [held.order_id, spent.order_id]},
            )
        ).all()
        fills = (
            await conn.execute(
                text(
                    "SELECT e.order_id, t.kind FROM executions e JOIN ledger_transactions t ON t.id = e.ledger_tx_id "
                    "WHERE e.order_id = :id"
                ),
                {"id": sold.order_id},
            )
        ).all()
    assert sorted((r.order_id, r.kind, -r.amount) for r in holds) == sorted(
        [(held.order_id, HOLD_KIND, held.locked_amount), (spent.order_id, HOLD_KIND, spent.locked_amount)]
    )
    assert [tuple(r) for r in fills] == [(sold.order_id, TRADE_KIND)]


async def test_a_batch_matched_on_top_of_one_that_fails_is_matched_again_without_it(container, clock):
    market = await make_market(container)
    buyer = await make_trader(container, "buyer", usdt="1000")
    seller = await make_trader(container, "seller", btc="1")
    other = await make_trader(container, "other", btc="1")
    control = HeldCommits()
    runner = await _runner(container, clock, market, control)
    try:
        resting = await runner.submit(PlaceCommand(buyer.account_id, request(market, "Buy", "0.1", "100.00")))
        digest = runner.digest.hexdigest()
        control.armed, control.fail = True, True
        # N: the seller takes the resting buy; it will not commit.
        doomed = asyncio.ensure_future(
            runner.submit(PlaceCommand(seller.account_id, request(market, "Sell", "0.1", "100.00")))
        )
        await asyncio.wait_for(control.held.wait(), 5)
        # N+1, matched on top of N: on that book the buy is gone and this sell rests.
        after = asyncio.ensure_future(
            runner.submit(PlaceCommand(other.account_id, request(market, "Sell", "0.1", "100.00")))
        )
        assert await _pending(after)
        control.release.set()
        failure = await asyncio.gather(doomed, return_exceptions=True)
        view = await after
    finally:
        await runner.stop()
    assert isinstance(failure[0], EngineFailure) and "injected commit failure" in str(failure[0])
    # Matched again on the book without N: it takes the resting buy.
    assert view.status is OrderStatus.FILLED
    assert digest != runner.digest.hexdigest() and runner.stopped is None
    assert resting.order_id not in runner.live
    assert (await balances(container, seller.account_id))[BTC] == (D(1), D(0))
    assert (await balances(container, other.account_id))[BTC] == (D("0.9"), D(0))
    async with container.engine.connect() as conn:
        statuses = dict(
            (await conn.execute(text("SELECT order_id, status FROM orders ORDER BY order_id"))).all()
        )
    assert statuses == {resting.order_id: "Filled", view.order_id: "Filled"}
