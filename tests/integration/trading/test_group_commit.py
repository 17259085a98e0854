"""Group commit: a batch commits once, nothing is acknowledged before its commit, and a failed commit
fails the whole batch and puts the book back as the database has it."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from bourse.domain.orders import OrderStatus
from bourse.engine import EngineFailure, MarketRunner
from bourse.engine.runner import FeeTermsCache, PlaceCommand
from tests.integration.trading.support import USDT, D, balances, make_market, make_trader, place, request


async def test_concurrent_orders_in_one_batch_commit_once(container):
    market = await make_market(container)
    traders = [await make_trader(container, f"trader{i}", usdt="1000", btc="1") for i in range(40)]
    for t in traders:  # ownership confirmed once, so nothing but the queue stands between order and runner
        await container.trading.account(t.principal, t.account_id)
    # ... and the margin pre-check's view of who holds positions is fresh for the whole test (its
    # re-read, shared by every order arriving meanwhile, would split them over batches under load).
    container.derivatives.may_hold_ttl = 600.0
    await place(container, traders[0], market, "Buy", "0.01", "1.00")
    runner = await container.trading.engines.runner(market)
    commits = runner.commits
    views = await asyncio.gather(
        *(
            place(container, t, market, "Buy" if i % 2 else "Sell", "0.1", "100.00")
            for i, t in enumerate(traders)
        )
    )
    assert runner.commits == commits + 1
    assert len({v.order.order_id for v in views}) == 40
    assert all(v.order.status is OrderStatus.FILLED for v in views)


class FlakyUnitOfWork:
    """A real unit of work whose commit fails while ``armed`` (and notes what was answered by then)."""

    def __init__(self, inner: Any, control: dict[str, Any]) -> None:
        self._inner = inner
        self._control = control

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> FlakyUnitOfWork:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    async def commit(self) -> None:
        if self._control["armed"]:
            self._control["answered_before_commit"] = [t.done() for t in self._control["tasks"]]
            raise ConnectionError("injected commit failure")
        await self._inner.commit()


async def test_a_failed_commit_fails_every_command_of_the_batch_and_rebuilds_the_book(container, clock):
    market = await make_market(container)
    traders = [await make_trader(container, f"trader{i}", usdt="1000") for i in range(10)]
    control: dict[str, Any] = {"armed": False, "tasks": []}
    runner = MarketRunner(
        market, lambda: FlakyUnitOfWork(container.uow(), control), clock, container.bus, FeeTermsCache()
    )
    await runner.start()
    try:
        first = await runner.submit(
            PlaceCommand(traders[0].account_id, request(market, "Buy", "0.1", "99.00"))
        )
        digest, state_hash = runner.digest.hexdigest(), runner.engine.state_hash()
        control["armed"] = True
        control["tasks"] = [
            asyncio.ensure_future(
                runner.submit(PlaceCommand(t.account_id, request(market, "Buy", "0.1", "100.00")))
            )
            for t in traders
        ]
        outcomes = await asyncio.gather(*control["tasks"], return_exceptions=True)
        assert all(isinstance(o, EngineFailure) for o in outcomes), outcomes
        assert "injected commit failure" in str(outcomes[0]) and "rebuilt" in str(outcomes[0])
        assert control["answered_before_commit"] == [False] * 10
        # The book is the committed one again, and the money never moved.
        assert runner.stopped is None
        assert (runner.digest.hexdigest(), runner.engine.state_hash()) == (digest, state_hash)
        assert (await balances(container, traders[1].account_id))[USDT] == (D(1000), D(0))
        async with container.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one() == 1
        control["armed"] = False
        after = await runner.submit(
            PlaceCommand(traders[1].account_id, request(market, "Buy", "0.1", "100.00"))
        )
        assert after.status is OrderStatus.PLACED and after.order_id > first.order_id
        assert [o.order_id for o in runner.live.values()] == [first.order_id, after.order_id]
    finally:
        await runner.stop()


class BrokenClock:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.broken = False

    def now(self) -> Any:
        if self.broken:
            raise RuntimeError("clock gone")
        return self.inner.now()


async def test_a_runner_whose_loop_dies_stops_its_market_instead_of_hanging(container, clock):
    from datetime import timedelta

    from bourse.domain.trading import MarketStopped

    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    broken = BrokenClock(clock)
    runner = MarketRunner(market, container.uow, broken, container.bus, FeeTermsCache())
    await runner.start()
    try:
        expires = clock.now().replace(microsecond=0) + timedelta(hours=1)
        gtd = request(market, "Buy", "0.1", "100.00", tif="Gtd", expires=expires)
        await runner.submit(PlaceCommand(alice.account_id, gtd))
        broken.broken = True  # the idle loop's timer check now raises outside any batch
        for _ in range(100):
            if runner.stopped is not None:
                break
            await asyncio.sleep(0.05)
        assert runner.stopped is not None and "ended unexpectedly" in runner.stopped
        broken.broken = False
        try:
            await runner.submit(PlaceCommand(alice.account_id, request(market, "Buy", "0.1", "100.00")))
        except MarketStopped as e:
            assert "ended unexpectedly" in str(e)
        else:
            raise AssertionError("a dead runner took an order")
    finally:
        await runner.stop()


async def test_a_batch_whose_remembered_ledger_ids_went_stale_is_run_again_and_acknowledged(container):
    from bourse.adapters.db.ledger_repos import _KNOWN

    market = await make_market(container)
    buyer = await make_trader(container, "buyer", usdt="1000")
    seller = await make_trader(container, "seller", btc="1")
    await place(container, buyer, market, "Buy", "0.1", "100.00")  # the engine's ledger ids are now known
    runner = await container.trading.engines.runner(market)
    commits = runner.commits
    known = _KNOWN[(container.trading_db or container.engine).sync_engine]
    known.database = (known.database or 0) + 1
    view = await place(container, seller, market, "Sell", "0.1", "100.00")
    assert view.order.status is OrderStatus.FILLED
    assert runner.commits == commits + 1 and runner.stopped is None
    assert await balances(container, seller.account_id) == {
        "BTC": (D("0.9"), D("0")),
        "USDT": (D("9.99"), D("0")),
    }
