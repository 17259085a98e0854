"""One market's engine runner: a single asyncio task, a command queue, group commit.

The runner is the only writer of its market's book, orders, executions, trades and
checkpoint. Each turn of its loop takes every queued command (up to ``max_batch``),
runs them through the in-memory engine (``tick.Tick``) and writes all their effects,
the ledger transactions included, in ONE database transaction together with the
market's checkpoint (book digest, order and trade sequence, batch count). Only after
that commit are the callers answered and the events published. The next batch is
matched while this one commits (two batches at most: one being matched, one being
written; see "the loop" below), and its writes wait for this commit. If anything
fails before or at a commit, the book is rebuilt from the database, the failed batch
is run again once if the failure allows it or else every command of it gets the
error, and a batch matched on top of it is thrown away and run again: nothing is
acknowledged that is not stored.

Recovery (``start``) rebuilds the book from the market's live orders and its trades,
and compares its digest with the checkpoint. A mismatch stops that market: its orders
are refused with ``MarketStopped`` naming both digests, and the error is logged
loudly, instead of trading on a book that is not the one the database describes.

Time comes from the clock once per batch and goes into the engine (``on_time``) and
every row, so the same commands at the same times give the same effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import functools
import heapq
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import (
    BourseError,
    Conflict,
    IdempotencyConflict,
    InsufficientFunds,
    InvariantViolation,
    NotFound,
)
from bourse.domain.ledger import LedgerTransaction, account_owner, available_changes
from bourse.domain.markets import Market
from bourse.domain.matching import EngineState, MatchingEngine, WaitingStop
from bourse.domain.order_requests import to_millis
from bourse.domain.orders import Side, TimeInForce
from bourse.domain.trading import (
    EXACT,
    ZERO,
    BatchWrite,
    Checkpoint,
    FeeTerms,
    MarketStopped,
    Order,
)
from bourse.domain.values import AccountId, AssetId
from bourse.engine.commands import (
    CancelCommand,
    Command,
    EngineFailure,
    FeeTermsCache,
    Noop,
    PlaceCommand,
    RunnerSettings,
)
from bourse.engine.digest import BookDigest
from bourse.engine.events import Depth, book_after, publish_batch
from bourse.engine.tick import NotOpen, Tick, converted_stop_buy, engine_command, resting_order
from bourse.service.ports import Clock, EventBus, SubscriptionDropped, UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger("bourse.engine")

# A market changed in this process is re-read at once (its bus event), one changed elsewhere within this.
MARKET_REFRESH_SECONDS = 1.0


class MarketRunner:
    def __init__(
        self,
        market_id: str,
        uow: UnitOfWorkFactory,
        clock: Clock,
        bus: EventBus,
        fees: FeeTermsCache,
        settings: RunnerSettings | None = None,
    ) -> None:
        self.market_id = market_id
        self._uow = uow
        self._clock = clock
        self._bus = bus
        self._fees = fees
        self._settings = settings or RunnerSettings()
        self._queue: deque[tuple[Command, asyncio.Future[Any]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.stopped: str | None = None
        self.market: Market | None = None
        self.quote_scale = 0
        self.engine = MatchingEngine()
        self.live: dict[int, Order] = {}
        self.digest = BookDigest()
        self.order_seq = 0
        self.trade_seq = 0
        self.stop_expiries: list[tuple[int, int]] = []
        # (expiry ms, order id) of every live Gtd order: an idle runner works only when one is due.
        self._due: list[tuple[int, int]] = []
        self.book_seq = 0
        self.commits = 0  # committed batches (tests look at group commit through it)
        self.failed_batches = 0  # batches that did not commit (each rebuilt the book)
        # The market's batch count as of the last batch taken into memory (the checkpoint's ``batches``).
        self.batches = 0
        # Batches whose back (write, commit, answers) runs, oldest first; at most ``settings.pipeline``.
        self._inflight: list[_InFlight] = []
        self._force_checkpoint = False
        self._market_stale = True
        self._market_read_at = 0.0
        self._listener: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.recover()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"engine:{self.market_id}")
            self._task.add_done_callback(self._ended)
            self._listener = asyncio.create_task(self._listen(), name=f"engine:{self.market_id}:market")

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A loop that ends without being asked to is a bug: stop the market, answer what waits."""
        if self._closing:
            return
        error = None if task.cancelled() else task.exception()
        self._stop(f"market {self.market_id} stopped: its engine runner ended unexpectedly ({error!r})")
        stopped = MarketStopped(self.stopped or "", marketId=self.market_id)
        while self._queue:
            _, future = self._queue.popleft()
            if not future.done():
                future.set_exception(stopped)
        inflight, self._inflight = self._inflight, []
        for flight in inflight:
            # Its back still answers on commit; a failure nobody will settle any more answers here.
            def failed(task: asyncio.Task[None], batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
                if _error(task) is not None:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(stopped)

            flight.task.add_done_callback(functools.partial(failed, batch=flight.staged.batch))

    async def _listen(self) -> None:
        """Mark the market for a re-read when it changes (status, scales, limits)."""
        topic = f"markets.{self.market_id}"
        subscription = self._bus.subscribe(topic, maxsize=16)
        try:
            while True:
                try:
                    await subscription.get()
                except SubscriptionDropped:
                    subscription = self._bus.subscribe(topic, maxsize=16)
                self._market_stale = True
        finally:
            subscription.close()

    async def stop(self) -> None:
        """Finish what is queued, then end the task."""
        self._closing = True
        self._wake.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, 30)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            except Exception:  # noqa: S110 - the loop died earlier; _ended stopped the market and said why
                pass

    async def submit(self, command: Command) -> Any:
        """Queue ``command``; its result once the batch it went in has committed."""
        if self.stopped is not None:
            raise MarketStopped(self.stopped, marketId=self.market_id)
        if self._task is None or self._task.done() or self._closing:
            raise MarketStopped(f"market {self.market_id} is not running", marketId=self.market_id)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        self._wake.set()
        return await future

    async def poke(self) -> None:
        """Run a batch now and wait for its commit (timers: Gtd expiry after the clock moved)."""
        await self.submit(Noop())

    # --- recovery ------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Rebuild the book from the database and check it against the checkpoint."""
        now = self._clock.now()
        async with self._uow() as uow:
            market = await uow.markets.get(self.market_id)
            if market is None:
                raise NotFound(f"market {self.market_id} not found", field="marketId")
            quote = await uow.assets.get(market.quote_asset)
            orders = await uow.trading.live_orders(self.market_id)
            checkpoint = await uow.trading.checkpoint(self.market_id)
            last = await uow.trading.last_trade(self.market_id)
        self.market = market
        self.quote_scale = quote.scale if quote is not None else 18
        self.batches = checkpoint.batches if checkpoint is not None else 0
        self.stopped = None
        try:
            self._restore(market, orders, checkpoint, last, to_millis(now))
        except BourseError as e:
            self._stop(f"market {self.market_id} cannot be rebuilt from its orders: {e.message}")
            return
        expected = checkpoint.state_hash if checkpoint is not None else BookDigest().hexdigest()
        found = self.digest.hexdigest()
        if found != expected:
            self._stop(
                f"market {self.market_id} is stopped: the book rebuilt from the database (digest {found}) "
                f"is not the one recorded at the last commit (digest {expected})"
            )

    def _restore(
        self,
        market: Market,
        orders: list[Order],
        checkpoint: Checkpoint | None,
        last: tuple[int, Decimal] | None,
        now_ms: int,
    ) -> None:
        spec = market.spec()
        resting, stops, expiries = [], [], []
        for order in orders:
            if order.engine_seq is None:
                raise InvariantViolation(f"live order {order.order_id} has no place in the book")
            if order.is_waiting_stop:
                stops.append(WaitingStop(engine_command(order, market), order.engine_seq))
                if (
                    converted_stop_buy(order)
                    and order.time_in_force is TimeInForce.GTD
                    and order.cancellation_date
                ):
                    expiries.append((to_millis(order.cancellation_date), order.order_id))
            else:
                resting.append(resting_order(order, market))
        state = EngineState(
            tuple(resting),
            tuple(stops),
            None if last is None else spec.price_to_ticks(last[1]),
            0 if checkpoint is None else checkpoint.last_seq,
            0 if last is None else last[0],
            now_ms,
        )
        self.engine = MatchingEngine.restore(state, spec.engine_rules(), market.status)
        self.digest = BookDigest.of(self.engine.state())
        self.live = {o.order_id: o for o in orders}
        self.order_seq, self.trade_seq = state.order_seq, state.trade_seq
        self.stop_expiries = sorted(expiries)
        self._due = sorted(
            (to_millis(o.cancellation_date), o.order_id)
            for o in orders
            if o.time_in_force is TimeInForce.GTD and o.cancellation_date is not None
        )

    def _stop(self, reason: str) -> None:
        self.stopped = reason
        log.error("market stopped", market=self.market_id, reason=reason)

    # --- the loop ------------------------------------------------------------------------------
    #
    # A batch goes through two halves. The front (``_front``) reads what the batch needs, runs it
    # through the engine and takes its effects into the runner's memory; the back (``_back``, a
    # task of its own) writes them, commits and only then answers and publishes. While batch N
    # writes and commits, the loop already takes N+1 through its front and starts N+1's back,
    # so the engine's and the HTTP layer's work overlaps PostgreSQL's instead of waiting for it:
    # up to ``settings.pipeline`` backs run at once (1: a batch is matched while the one before
    # it is written, and its own writing starts once that one has committed).
    #
    # Order and all-or-nothing are kept this way:
    # - N+1's write (ledger transactions, orders, trades, executions, checkpoint: one statement,
    #   ``write_batch_and_ledger``) goes out once N's statement has returned, and waits in
    #   PostgreSQL for N's commit on the rows both touch (the checkpoint always; changed orders
    #   are upserted, so one N inserted is found). N+1 commits only after N has: in order.
    # - If N fails, every batch after it fails unwritten (``_AfterFailure``); the loop then
    #   rebuilds the book, runs N again once if its failure allows, and the later batches again
    #   from scratch, one at a time (``_settle``). Nothing is answered before its commit.
    # - N+1's front reads balances while N may not have committed. The read returns, from the
    #   same snapshot, the market's committed batch count; the net change of available balances
    #   of every batch in flight that the snapshot does not hold yet (``_Staged.overlay``) is
    #   added, so N+1 spends exactly what the serial order would let it.

    async def _loop(self) -> None:
        # This task's own decimal context (tasks do not share it): every sum the runner makes is exact.
        decimal.setcontext(EXACT.copy())
        settings = self._settings
        while True:
            if not self._queue and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), settings.idle_seconds)
            self._wake.clear()
            await self._prune()
            inflight = self._inflight
            while (
                inflight
                and not inflight[-1].task.done()
                and 0 < len(self._queue) < len(inflight[-1].staged.batch)
                and not self._closing
            ):
                # A batch is writing: let the next one grow to its size before matching it, or
                # until that one is done. Each batch costs the database about as much as a
                # dozen orders, so matching a few stragglers at once costs more than it saves.
                self._wake.clear()
                await self._wake.wait()
            await self._prune()
            if self._closing and not self._queue:
                await self._settle()
                if not self._queue:
                    return
            batch: list[tuple[Command, asyncio.Future[Any]]] = []
            while self._queue and len(batch) < settings.max_batch:
                batch.append(self._queue.popleft())
            if not batch and not self._timer_due():
                continue
            if self.stopped is not None:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(MarketStopped(self.stopped, marketId=self.market_id))
                continue
            await self._run(batch)

    def _timer_due(self) -> bool:
        due = self._due
        while due and due[0][1] not in self.live:
            heapq.heappop(due)
        return self._force_checkpoint or (bool(due) and due[0][0] <= to_millis(self._clock.now()))

    async def _prune(self) -> None:
        """Forget the committed batches at the head of the pipeline; settle it if one failed."""
        inflight = self._inflight
        while inflight and inflight[0].task.done():
            if _error(inflight[0].task) is not None:
                await self._settle()
                return
            inflight.pop(0)

    async def _run(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        """``batch`` through its front, then its back as a task behind the batches in flight."""
        inflight = self._inflight
        try:
            staged = await self._front(batch, inflight)
        except Exception as e:
            # What the front put into the engine is not stored: once the batches before it have
            # settled, the book is rebuilt from what is committed.
            await self._settle()
            await self._failed(batch, e, attempt=1)
            return
        if not staged.write:
            # Nothing to write, but its answers may show what the batches in flight did.
            await staged.stack.aclose()
            if inflight:
                await asyncio.wait((inflight[-1].task,))
                if _error(inflight[-1].task) is not None:
                    await self._settle()
                    await self._run_serial(batch)
                    return
            self._answer(batch, staged.results)
            return
        while len(inflight) >= self._settings.pipeline:
            await asyncio.wait((inflight[0].task,))
            if _error(inflight[0].task) is not None:
                # Matched on top of a batch that did not commit: thrown away, run again afterwards.
                await staged.stack.aclose()
                await self._settle()
                await self._run_serial(batch)
                return
            inflight.pop(0)
        flight = _InFlight(staged)
        flight.task = asyncio.create_task(self._back(flight, inflight[-1] if inflight else None))
        inflight.append(flight)

    async def _settle(self) -> None:
        """Wait for every batch in flight; rebuild, retry or fail the one that failed, and run the
        ones thrown away behind it again."""
        inflight, self._inflight = self._inflight, []
        if not inflight:
            return
        await asyncio.wait([flight.task for flight in inflight])
        broken = False
        for flight in inflight:
            error = _error(flight.task)
            if error is None:
                continue
            if broken or isinstance(error, _AfterFailure):
                # Matched on top of a batch that did not commit: whatever it failed with (its write
                # may have run against the rolled-back state), it runs again from scratch.
                await self._run_serial(flight.staged.batch)
            else:
                broken = True
                await self._failed(flight.staged.batch, error, attempt=1)

    async def _run_serial(self, batch: list[tuple[Command, asyncio.Future[Any]]], attempt: int = 1) -> None:
        """``batch`` alone, front and back in turn (after a failure, nothing else is in flight)."""
        try:
            staged = await self._front(batch, [])
            if staged.write:
                await self._back(_InFlight(staged), None)
            else:
                await staged.stack.aclose()
                self._answer(batch, staged.results)
        except Exception as e:
            await self._failed(batch, e, attempt)

    async def _failed(
        self, batch: list[tuple[Command, asyncio.Future[Any]]], error: BaseException, attempt: int
    ) -> None:
        """A batch that did not commit: rebuild the book from the database, then run it again once if
        the failure says that may help, else answer every command of it with the failure."""
        self.failed_batches += 1
        log.error(
            "engine batch failed",
            market=self.market_id,
            commands=len(batch),
            error=repr(error),
            attempt=attempt,
        )
        try:
            await self.recover()
        except Exception as e:
            self._stop(
                f"market {self.market_id} stopped: rebuilding its book after a failed batch failed: {e!r}"
            )
        # A balance taken by someone else between our read and our write, or a retryable conflict
        # (deadlock, stale remembered ledger ids): the batch is sound, run it again.
        retry = isinstance(error, InsufficientFunds) or (
            isinstance(error, Conflict) and error.details.get("retryable") is True
        )
        if retry and attempt == 1 and self.stopped is None:
            await self._run_serial(batch, attempt=2)
            return
        failure = EngineFailure(
            f"market {self.market_id}: the batch was not committed ({error}); nothing of it was acknowledged "
            "and the book was rebuilt from the database",
            marketId=self.market_id,
        )
        for _, future in batch:
            if not future.done():
                future.set_exception(failure)

    async def _front(
        self, batch: list[tuple[Command, asyncio.Future[Any]]], inflight: list[_InFlight]
    ) -> _Staged:
        """Read, match and take the batch's effects into memory; its unit of work stays open."""
        # Milliseconds, as every API shows times: what is stored compares equal to what was shown.
        now = self._clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        now_ms = to_millis(now)
        results: list[Any] = [None] * len(batch)
        stack = contextlib.AsyncExitStack()
        uow = await stack.enter_async_context(self._uow())
        try:
            market = self.market
            clock = asyncio.get_running_loop().time()
            if market is None or self._market_stale or clock >= self._market_read_at + MARKET_REFRESH_SECONDS:
                self._market_stale = False
                self._market_read_at = clock
                market = await uow.markets.get(self.market_id)
                if market is None:
                    raise InvariantViolation(f"market {self.market_id} disappeared")
                if market != self.market:
                    await self._adopt(uow, market, now)
            engine = self.engine
            tick = Tick(
                market,
                engine,
                self.live,
                self.digest,
                self.order_seq,
                self.trade_seq,
                self.quote_scale,
                now,
                list(self.stop_expiries),
            )
            tick.apply(engine.on_time(now_ms))
            tick.expire_stops(now_ms)
            pending = await self._prepare(uow, tick, batch, results, market, inflight)
            for i, (command, _) in enumerate(batch):
                if i in pending:
                    order_id, fee = pending[i]
                    assert isinstance(command, PlaceCommand)
                    results[i] = tick.place(order_id, command.account_id, command.request, fee)
                elif isinstance(command, CancelCommand):
                    results[i] = tick.cancel(
                        command.account_id, command.order_id, stop_only=command.stop_only
                    )
            await self._resolve_duplicates(uow, tick, batch, results)
        except BaseException:
            await stack.__aexit__(*sys.exc_info())
            raise
        staged = _Staged(batch, results, tick, market, now, now_ms, stack, uow)
        if tick.has_effects or self._force_checkpoint:
            self._take(staged)
        return staged

    def _take(self, staged: _Staged) -> None:
        """The tick's effects become the runner's memory, ahead of their commit (nothing here fails
        short of a bug: a batch that then does not commit rebuilds all of it from the database)."""
        tick, market = staged.tick, staged.market
        tick.update_digest()
        staged.txs, staged.positions = tick.ledger_transactions()
        staged.overlay = available_changes(staged.txs)
        last = self.engine.last_price
        self.batches += 1
        staged.checkpoint = Checkpoint(
            market.id,
            self.digest.hexdigest(),
            tick.order_seq,
            tick.trade_seq,
            None if last is None else market.spec().ticks_to_price(last),
            staged.now,
            self.batches,
        )
        staged.book = book_after(self._bus, tick, market, self.engine)
        staged.write = True
        self._force_checkpoint = False
        self.order_seq, self.trade_seq = tick.order_seq, tick.trade_seq
        self.stop_expiries = tick.stop_expiries
        for order_id, order in tick.touched.items():
            if order.is_live:
                self.live[order_id] = order
            else:
                self.live.pop(order_id, None)
        for order in tick.new_orders:
            if (
                order.is_live
                and order.time_in_force is TimeInForce.GTD
                and order.cancellation_date is not None
            ):
                heapq.heappush(self._due, (to_millis(order.cancellation_date), order.order_id))
        if self._settings.verify_digest:
            full = BookDigest.of(self.engine.state()).hexdigest()
            if full != self.digest.hexdigest():
                self._stop(f"market {self.market_id}: the running digest drifted from the book")

    async def _back(self, flight: _InFlight, previous: _InFlight | None) -> None:
        """Write and commit the batch once ``previous`` has committed, then answer and publish."""
        staged = flight.staged
        try:
            async with staged.stack:
                uow, tick = staged.uow, staged.tick
                holds, executions = tick.ledger_positions(staged.positions)
                write = self._batch_write(staged)
                try:
                    # Once ``previous``'s statement has returned, it holds every lock it takes and
                    # needs only its commit, so ours may go out now: in PostgreSQL it waits for that
                    # commit on whatever both touch (the market's checkpoint always). Sent earlier,
                    # ours could take a lock that ``previous`` still needs while we wait below for
                    # its commit, and neither would go on.
                    if previous is not None:
                        await previous.written.wait()
                    # One statement for the ledger transactions and the rest; no savepoint: any
                    # error rolls the whole batch back (``_failed``).
                    tx_ids, trade_ids = await uow.trading.write_batch_and_ledger(
                        write, staged.txs, holds, executions
                    )
                finally:
                    flight.written.set()
                if previous is not None:
                    await asyncio.wait((previous.task,))
                    if _error(previous.task) is not None:
                        raise _AfterFailure
                tick.assign_hold_ids(tx_ids, staged.positions)
                await uow.commit()
        except BaseException:
            self._wake.set()  # the loop settles the failure (rebuild, retry or fail)
            raise
        self._wake.set()  # a loop waiting for the next batch to grow takes it now
        self.commits += 1
        self._answer(staged.batch, staged.results)
        if tick.book_changed:
            self.book_seq += 1
        publish_batch(self._bus, tick, staged.market, staged.book, trade_ids, self.book_seq, staged.now_ms)

    async def _adopt(self, uow: UnitOfWork, market: Market, now: datetime) -> None:
        """A changed market: a new status applies at once; new scales, limits or band rebuild the book
        (the same orders in the new units) and the next commit records its digest."""
        current = self.market
        quote = await uow.assets.get(market.quote_asset)
        if quote is not None:
            self.quote_scale = quote.scale
        if current is not None and market.spec() != current.spec():
            last = self.engine.last_price
            last_price = None if last is None else current.spec().ticks_to_price(last)
            here = Checkpoint(market.id, "", self.order_seq, self.trade_seq, last_price, now)
            self._restore(
                market,
                list(self.live.values()),
                here,
                None if last_price is None else (self.trade_seq, last_price),
                to_millis(now),
            )
            self._force_checkpoint = True
        self.engine.set_status(market.status)
        self.market = market

    async def _prepare(
        self,
        uow: UnitOfWork,
        tick: Tick,
        batch: list[tuple[Command, asyncio.Future[Any]]],
        results: list[Any],
        market: Market,
        inflight: list[_InFlight],
    ) -> dict[int, tuple[int, FeeTerms]]:
        """Order ids, client order ids, balances and fee terms for the batch's new orders: the places
        to run (batch index -> (order id, fee terms)); duplicates and conflicts get their results."""
        places = [(i, c) for i, (c, _) in enumerate(batch) if isinstance(c, PlaceCommand)]
        if not places:
            return {}
        quote, base = market.quote_asset, market.base_asset
        keys = sorted(
            {(account_owner(c.account_id), quote if c.request.side is Side.BUY else base) for _, c in places}
        )
        ids, available, seen = await uow.trading.prepare(len(places), keys, self.market_id)
        if inflight:
            self._add_uncommitted(available, keys, seen, inflight)
        order_ids = {i: oid for (i, _), oid in zip(places, ids, strict=True)}
        first: dict[tuple[str, str], int] = {}
        entries: list[tuple[AccountId, str, int, bytes]] = []
        skip: set[int] = set()
        for i, command in places:
            cid = command.request.client_order_id
            if cid is None:
                continue
            key: tuple[str, str] = (command.account_id, cid)
            if key in first:
                results[i] = _SameAs(first[key])
                skip.add(i)
                continue
            first[key] = i
            entries.append((command.account_id, cid, order_ids[i], command.request.fingerprint()))
        if entries:
            reserved = await uow.trading.reserve_client_ids(entries)
            taken = [key for key in first if key not in reserved]
            owners = await uow.trading.client_id_owners(taken)
            for key in taken:
                i = first[key]
                owner_id, fingerprint = owners[key]
                taker = batch[i][0]
                assert isinstance(taker, PlaceCommand)
                skip.add(i)
                if fingerprint == taker.request.fingerprint():
                    results[i] = _Existing(owner_id)
                else:
                    results[i] = _conflict(key[1])
        run = [(i, c) for i, c in places if i not in skip]
        if not run:
            return {}
        tick.available = available
        fees = await self._fees.terms(uow, sorted({c.account_id for _, c in run}), market, self.quote_scale)
        return {i: (order_ids[i], fees[c.account_id]) for i, c in run}

    def _add_uncommitted(
        self,
        available: dict[tuple[str, str], Decimal],
        keys: list[tuple[str, AssetId]],
        seen: int,
        inflight: list[_InFlight],
    ) -> None:
        """Balances read in a snapshot holding ``seen`` committed batches, plus what the batches in
        flight after those change."""
        first, last = inflight[0].staged.checkpoint.batches, inflight[-1].staged.checkpoint.batches
        if not first - 1 <= seen <= last:
            raise InvariantViolation(
                f"market {self.market_id}: the snapshot holds {seen} committed batches, "
                f"expected {first - 1} to {last}"
            )
        for flight in inflight:
            if flight.staged.checkpoint.batches <= seen:
                continue
            overlay = flight.staged.overlay
            for key in keys:
                change = overlay.get(key)
                if change is not None:
                    available[key] = available.get(key, ZERO) + change

    async def _resolve_duplicates(
        self,
        uow: UnitOfWork,
        tick: Tick,
        batch: list[tuple[Command, asyncio.Future[Any]]],
        results: list[Any],
    ) -> None:
        existing = [
            r.order_id for r in results if isinstance(r, _Existing) and r.order_id not in tick.touched
        ]
        stored = {o.order_id: o for o in await uow.trading.orders_by_ids(existing)} if existing else {}
        for i, result in enumerate(results):
            if isinstance(result, _Existing):
                order = tick.touched.get(result.order_id) or stored.get(result.order_id)
                results[i] = (
                    order
                    if order is not None
                    else InvariantViolation(
                        f"client order id names order {result.order_id}, which does not exist"
                    )
                )
        for i, result in enumerate(results):
            if isinstance(result, _SameAs):
                command, first = batch[i][0], batch[result.index][0]
                assert isinstance(command, PlaceCommand) and isinstance(first, PlaceCommand)
                if command.request.fingerprint() != first.request.fingerprint():
                    results[i] = _conflict(command.request.client_order_id or "")
                else:
                    results[i] = results[result.index]

    @staticmethod
    def _batch_write(staged: _Staged) -> BatchWrite:
        """The batch's rows; its executions name their ledger transaction by position (the write
        numbers them), and the audit entry gets the transactions' ids and count there too."""
        tick, market = staged.tick, staged.market
        return BatchWrite(
            trades=tick.trades,
            new_orders=tick.new_orders,
            changed_orders=tick.changed_orders,
            executions=tick.execution_rows(list(range(len(staged.txs))), staged.positions),
            checkpoint=staged.checkpoint,
            quote_asset=market.quote_asset,
            audit=None
            if not staged.txs
            else AuditEntry(
                f"engine:{market.id}",
                AuditAction.MONEY_MOVED,
                f"market:{market.id}",
                details={"kind": "trading.batch"},
            ),
        )

    def _answer(self, batch: list[tuple[Command, asyncio.Future[Any]]], results: list[Any]) -> None:
        for (command, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            elif isinstance(result, Order):
                future.set_result(result.copy())
            elif isinstance(result, NotOpen) or isinstance(command, Noop):
                future.set_result(None)
            else:
                future.set_exception(InvariantViolation(f"no result for {type(command).__name__}"))

    # --- views for the service -----------------------------------------------------------------

    @property
    def last_price(self) -> Decimal | None:
        last = self.engine.last_price
        return None if last is None or self.market is None else self.market.spec().ticks_to_price(last)


@dataclass(slots=True, eq=False)
class _Staged:
    """A batch through its front: results, effects and the unit of work they will be written in."""

    batch: list[tuple[Command, asyncio.Future[Any]]]
    results: list[Any]
    tick: Tick
    market: Market
    now: datetime
    now_ms: int
    stack: contextlib.AsyncExitStack  # holds ``uow`` open until the back leaves it
    uow: UnitOfWork
    write: bool = False  # effects (or a checkpoint) to write; the rest is set with it
    txs: list[LedgerTransaction] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    overlay: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    checkpoint: Checkpoint = field(init=False)
    book: Depth | None = None


@dataclass(slots=True, eq=False)
class _InFlight:
    """A batch whose back (write, commit, answers) runs as ``task``."""

    staged: _Staged
    # Set once its write statement has returned (or failed): the next batch's may go out then.
    written: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] = field(init=False)


class _AfterFailure(Exception):
    """The batch before this one did not commit: this one, matched on top of it, is not written."""


def _error(task: asyncio.Task[None]) -> BaseException | None:
    return asyncio.CancelledError() if task.cancelled() else task.exception()


@dataclass(frozen=True, slots=True)
class _SameAs:
    index: int


@dataclass(frozen=True, slots=True)
class _Existing:
    order_id: int


def _conflict(client_order_id: str) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"clientOrderId {client_order_id!r} was used for a different order", field="clientOrderId"
    )


__all__ = [
    "CancelCommand",
    "EngineFailure",
    "FeeTermsCache",
    "MarketRunner",
    "Noop",
    "PlaceCommand",
    "RunnerSettings",
]
