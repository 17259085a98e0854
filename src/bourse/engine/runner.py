"""One market's engine runner: a single asyncio task, a command queue, group commit.

The runner is the only writer of its market's book, orders, executions, trades and
checkpoint. Each turn of its loop takes every queued command (up to ``max_batch``),
runs them through the in-memory engine (``tick.Tick``) and writes all their effects,
the ledger transactions included, in ONE database transaction together with the
market's checkpoint (book digest, order and trade sequence). Only after that commit
are the callers answered and the events published; if anything fails before or at
the commit, every command of the batch gets the error and the book is rebuilt from
the database, so memory never runs ahead of what is stored.

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
import heapq
from collections import deque
from dataclasses import dataclass
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
from bourse.domain.ledger import account_owner
from bourse.domain.markets import Market
from bourse.domain.matching import EngineState, MatchingEngine, WaitingStop
from bourse.domain.order_requests import to_millis
from bourse.domain.orders import Side, TimeInForce
from bourse.domain.trading import (
    EXACT,
    BatchWrite,
    Checkpoint,
    FeeTerms,
    MarketStopped,
    Order,
)
from bourse.domain.values import AccountId
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
from bourse.engine.events import publish_batch
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
        while self._queue:
            _, future = self._queue.popleft()
            if not future.done():
                future.set_exception(MarketStopped(self.stopped or "", marketId=self.market_id))

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

    async def _loop(self) -> None:
        # This task's own decimal context (tasks do not share it): every sum the runner makes is exact.
        decimal.setcontext(EXACT.copy())
        settings = self._settings
        while True:
            if not self._queue and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), settings.idle_seconds)
            self._wake.clear()
            if self._closing and not self._queue:
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

    async def _run(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        for attempt in (1, 2):
            try:
                await self._tick(batch)
                return
            except Exception as e:
                error = e
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
            if not (retry and attempt == 1 and self.stopped is None):
                break
        failure = EngineFailure(
            f"market {self.market_id}: the batch was not committed ({error}); nothing of it was acknowledged "
            "and the book was rebuilt from the database",
            marketId=self.market_id,
        )
        for _, future in batch:
            if not future.done():
                future.set_exception(failure)

    async def _tick(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        # Milliseconds, as every API shows times: what is stored compares equal to what was shown.
        now = self._clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        now_ms = to_millis(now)
        results: list[Any] = [None] * len(batch)
        async with self._uow() as uow:
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
            pending = await self._prepare(uow, tick, batch, results, market)
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
            if not tick.has_effects and not self._force_checkpoint:
                self._answer(batch, results)
                return
            tick.update_digest()
            trade_ids = await self._write(uow, tick, market, now)
            await uow.commit()
        self.commits += 1
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
            full = BookDigest.of(engine.state()).hexdigest()
            if full != self.digest.hexdigest():
                self._stop(f"market {self.market_id}: the running digest drifted from the book")
        self._answer(batch, results)
        self._publish(tick, market, trade_ids, now_ms)

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
        ids, available = await uow.trading.prepare(len(places), keys)
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

    async def _write(self, uow: UnitOfWork, tick: Tick, market: Market, now: datetime) -> dict[int, int]:
        txs, positions = tick.ledger_transactions()
        # No savepoint: any error rolls the whole batch back (``_run``).
        tx_ids = await uow.ledger.apply_many(txs, savepoint=False) if txs else []
        tick.assign_hold_ids(tx_ids, positions)
        last = self.engine.last_price
        trade_ids = await uow.trading.write_batch(
            BatchWrite(
                trades=tick.trades,
                new_orders=tick.new_orders,
                changed_orders=tick.changed_orders,
                executions=tick.execution_rows(tx_ids, positions),
                checkpoint=Checkpoint(
                    market.id,
                    self.digest.hexdigest(),
                    tick.order_seq,
                    tick.trade_seq,
                    None if last is None else market.spec().ticks_to_price(last),
                    now,
                ),
                quote_asset=market.quote_asset,
                audit=None
                if not tx_ids
                else AuditEntry(
                    f"engine:{market.id}",
                    AuditAction.MONEY_MOVED,
                    f"market:{market.id}",
                    details={
                        "kind": "trading.batch",
                        "tx_ids": [min(tx_ids), max(tx_ids)],
                        "count": len(tx_ids),
                    },
                ),
            )
        )
        return trade_ids

    # --- after the commit ----------------------------------------------------------------------

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

    def _publish(self, tick: Tick, market: Market, trade_ids: dict[int, int], ts: int) -> None:
        if tick.book_changed:
            self.book_seq += 1
        publish_batch(self._bus, tick, market, self.engine, trade_ids, self.book_seq, ts)

    # --- views for the service -----------------------------------------------------------------

    @property
    def last_price(self) -> Decimal | None:
        last = self.engine.last_price
        return None if last is None or self.market is None else self.market.spec().ticks_to_price(last)


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
