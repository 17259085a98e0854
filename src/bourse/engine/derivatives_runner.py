"""The engine runner of a Cfd/Perpetual market: ADR 0007's guarantees for derivative orders.

It is a ``MarketRunner`` (same queue, batch loop, retry and stop rules) whose book holds the
market's ``derivative_orders`` with ``in_book`` set, and which also owns the market's open
positions: it alone writes that market's book orders, positions, position executions, trigger
rows of the positions it closes, and the checkpoint. Closes (the trader's, triggers', stop-out's)
are reduce-only orders submitted here, never direct position writes.

A batch: market refresh, Gtd expiry, ids and available balances (the placing accounts and every
account with an order in the book: a maker's fill may realize a loss paid from what it has),
the commission rules and account kinds, then the pure tick (``derivatives_tick``), then ONE
transaction: ledger transactions (holds, one per trade, releases), order rows, position rows,
trigger rows, executions, deficits, trades and the checkpoint with the book digest. Callers are
answered after the commit. Recovery rebuilds the book from the live book orders and the open
positions from their rows, and checks the digest like a spot market.
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import BourseError, IdempotencyConflict, InvariantViolation, NotFound
from bourse.domain.fees import CommissionRule, select_rule
from bourse.domain.ledger import account_owner
from bourse.domain.markets import Market
from bourse.domain.matching import EngineState, MatchingEngine
from bourse.domain.order_requests import to_millis
from bourse.domain.orders import TimeInForce
from bourse.domain.positions import AccountKind, Position
from bourse.domain.trading import BatchWrite, Checkpoint
from bourse.domain.values import AccountId, AssetId, format_decimal
from bourse.engine.commands import FeeTermsCache, Noop, RunnerSettings
from bourse.engine.derivatives_tick import DerivativeTick, is_waiting_stop, resting_order
from bourse.engine.digest import BookDigest
from bourse.engine.runner import MARKET_REFRESH_SECONDS, MarketRunner
from bourse.service.derivatives_context import Contract, Rates, contract_of
from bourse.service.derivatives_events import Changes, publish
from bourse.service.derivatives_fills import record_deficit
from bourse.service.derivatives_records import BookOrderRequest, DerivativeOrder
from bourse.service.ports import Clock, EventBus, UnitOfWork, UnitOfWorkFactory

BOOK_LEVELS = 50


class PlaceDerivative(NamedTuple):
    order: BookOrderRequest


class CancelDerivative(NamedTuple):
    account_id: AccountId
    order_id: int


class _Dup(NamedTuple):
    first: int


class DerivativeMarketRunner(MarketRunner):
    def __init__(
        self,
        market_id: str,
        uow: UnitOfWorkFactory,
        clock: Clock,
        bus: EventBus,
        fees: FeeTermsCache,
        settings: RunnerSettings | None = None,
        root_asset: str = "RAT",
    ) -> None:
        super().__init__(market_id, uow, clock, bus, fees, settings)
        self._root = root_asset
        self.contract: Contract | None = None
        self.live: dict[int, DerivativeOrder] = {}  # type: ignore[assignment]
        self.positions: dict[str, Position] = {}
        self._kinds: dict[AccountId, AccountKind] = {}

    # --- recovery ------------------------------------------------------------------------------

    async def recover(self) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            market = await uow.markets.get(self.market_id)
            if market is None:
                raise NotFound(f"market {self.market_id} not found", field="marketId")
            c = await contract_of(uow, market)
            orders = await uow.derivatives.book_orders(self.market_id)
            positions = await uow.derivatives.market_positions(self.market_id)
            checkpoint = await uow.trading.checkpoint(self.market_id)
            last = await uow.trading.last_trade(self.market_id)
        self.market, self.contract = market, c
        self.quote_scale = c.spec.settlement_scale
        self.stopped = None
        self.positions = {p.position_id: p for p in positions}
        try:
            self._rebuild(c, orders, 0 if checkpoint is None else checkpoint.last_seq, last, to_millis(now))
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

    def _rebuild(
        self,
        c: Contract,
        orders: list[DerivativeOrder],
        order_seq: int,
        last: tuple[int, Decimal] | None,
        now_ms: int,
    ) -> None:
        spec = c.market.spec()
        # Waiting stops are the runner's, not the engine's: they enter the engine when they activate.
        resting = tuple(resting_order(o, c) for o in orders if not is_waiting_stop(o))
        state = EngineState(
            resting,
            (),
            None if last is None else spec.price_to_ticks(last[1]),
            order_seq,
            0 if last is None else last[0],
            now_ms,
        )
        self.engine = MatchingEngine.restore(state, spec.engine_rules(), c.market.status)
        self.digest = BookDigest.of(self.engine.state())
        self.live = {o.order_id: o for o in orders}
        self.order_seq, self.trade_seq = state.order_seq, state.trade_seq
        self.stop_expiries = []
        self._due = sorted(
            (to_millis(o.cancellation_date), o.order_id)
            for o in orders
            if o.time_in_force is TimeInForce.GTD and o.cancellation_date is not None
        )

    async def _adopt(self, uow: UnitOfWork, market: Market, now: datetime) -> None:
        current = self.market
        c = await contract_of(uow, market)
        if current is not None and market.spec() != current.spec():
            last = self.engine.last_price
            last_price = None if last is None else current.spec().ticks_to_price(last)
            self._rebuild(
                c,
                list(self.live.values()),
                self.order_seq,
                None if last_price is None else (self.trade_seq, last_price),
                to_millis(now),
            )
            self._force_checkpoint = True
        self.engine.set_status(market.status)
        self.market, self.contract = market, c
        self.quote_scale = c.spec.settlement_scale

    # --- one batch -----------------------------------------------------------------------------

    async def _run(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        # One batch at a time: the spot runner's pipeline (matching a batch while the one before
        # it commits) is not built for positions and margin.
        await self._run_serial(batch)

    async def _run_serial(self, batch: list[tuple[Any, asyncio.Future[Any]]], attempt: int = 1) -> None:
        try:
            await self._tick(batch)
        except Exception as e:
            await self._failed(batch, e, attempt)

    async def _tick(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
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
            c = self.contract
            assert c is not None and market is not None
            rate = await Rates(uow, AssetId(self._root)).get(c.settlement_asset)
            tick = DerivativeTick(
                c,
                self.engine,
                self.live,
                self.positions,
                self.digest,
                self.order_seq,
                self.trade_seq,
                now,
                rate,
            )
            places = [(i, cmd.order) for i, (cmd, _) in enumerate(batch) if isinstance(cmd, PlaceDerivative)]
            accounts = sorted({o.account_id for o in self.live.values()} | {r.account_id for _, r in places})
            await self._read_kinds(uow, accounts)
            tick.kinds = self._kinds
            keys = sorted({(account_owner(a), c.settlement_asset) for a in accounts})
            ids, available, _ = await uow.trading.prepare(len(places), keys)
            tick.available = {k: available.get(k, Decimal(0)) for k in keys}
            tick.apply(self.engine.on_time(now_ms))
            tick.expire_stops()
            tick.run_stops()
            order_ids = {i: oid for (i, _), oid in zip(places, ids, strict=True)}
            rules = await self._rules(uow, sorted({r.account_id for _, r in places}), market)
            first: dict[tuple[str, str], int] = {}
            for i, (command, _) in enumerate(batch):
                if isinstance(command, PlaceDerivative):
                    req = command.order
                    cid = req.request.client_order_id
                    fingerprint = req.request.fingerprint() if cid is not None else None
                    if cid is not None:
                        key = (req.account_id, cid)
                        if key in first:
                            results[i] = _Dup(first[key])
                            continue
                        first[key] = i
                        existing = await uow.derivatives.order_by_client_id(req.account_id, cid)
                        if existing is not None:
                            results[i] = (
                                existing
                                if existing.fingerprint == fingerprint
                                else _conflict(cid, existing.order_id)
                            )
                            continue
                    tick.place(
                        order_ids[i], req, rules[req.account_id], self._kinds[req.account_id], fingerprint
                    )
                    results[i] = order_ids[i]
                elif isinstance(command, CancelDerivative):
                    cancelled = tick.cancel(command.account_id, command.order_id)
                    results[i] = None if cancelled is None else command.order_id
                elif not isinstance(command, Noop):
                    results[i] = InvariantViolation(f"{type(command).__name__} is not a derivative command")
            if not tick.has_effects and not self._force_checkpoint:
                self._answer_all(batch, results, tick)
                return
            tick.update_digest()
            if tick.new_position_count:
                tick.assign_position_ids(await uow.derivatives.new_position_ids(tick.new_position_count))
            trade_ids = await self._write_book(uow, tick, market, now)
            await uow.commit()
        self.commits += 1
        self._force_checkpoint = False
        self.order_seq, self.trade_seq = tick.order_seq, tick.trade_seq
        for order_id, order in tick.touched.items():
            if order.is_live and (order.engine_seq is not None or is_waiting_stop(order)):
                self.live[order_id] = order
            else:
                self.live.pop(order_id, None)
        for position_id, position in tick.changed_positions.items():
            if position.is_open:
                self.positions[position_id] = position
            else:
                self.positions.pop(position_id, None)
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
        self._answer_all(batch, results, tick)
        self._publish_book(tick, market, trade_ids, now_ms)
        publish(self._bus, now, account_changes(tick))

    async def _read_kinds(self, uow: UnitOfWork, accounts: list[AccountId]) -> None:
        for account in accounts:
            if account not in self._kinds:
                record = await uow.accounts.get(account)
                if record is None:
                    raise NotFound(f"account {account} not found", field="accountId")
                self._kinds[account] = AccountKind(record.account_type)

    @staticmethod
    async def _rules(
        uow: UnitOfWork, accounts: list[AccountId], market: Market
    ) -> dict[AccountId, CommissionRule]:
        if not accounts:
            return {}
        fresh = await uow.commissions.rules_for_accounts(accounts)
        out = {}
        for account in accounts:
            if account not in fresh:
                raise NotFound(f"account {account} not found", field="accountId")
            out[account] = select_rule(fresh[account], market)
        return out

    async def _write_book(
        self, uow: UnitOfWork, tick: DerivativeTick, market: Market, now: datetime
    ) -> dict[int, int]:
        txs, slots = tick.ledger_transactions()
        tx_ids = await uow.ledger.apply_many(txs) if txs else []
        for order_id, index in tick.hold_tx.items():
            if slots[index] >= 0:
                tick.touched[order_id] = tick.touched[order_id].but(hold_tx_id=tx_ids[slots[index]])
        for order in tick.new_orders:
            if not await uow.derivatives.add_order(order):
                raise IdempotencyConflict(
                    "clientOrderId was used by a concurrent order", field="clientOrderId"
                )
        for order in tick.changed_orders:
            await uow.derivatives.update_order(order)
        for position_id, position in tick.changed_positions.items():
            await uow.derivatives.save_positions([position], tick.opened_by[position_id])
        for position_id, triggers in tick.trigger_saves.items():
            await uow.derivatives.save_triggers(position_id, triggers)
        if tick.executions:
            await uow.derivatives.add_executions(
                [replace(row, ledger_tx_id=tx_ids[slots[slot]]) for row, slot in tick.executions]
            )
        actor = f"engine:{market.id}"
        for deficit in tick.deficits:
            await record_deficit(uow, deficit, actor=actor, meta=None)
        last = self.engine.last_price
        return await uow.trading.write_batch(
            BatchWrite(
                trades=tick.trades,
                new_orders=[],
                changed_orders=[],
                executions=[],
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
                    actor,
                    AuditAction.MONEY_MOVED,
                    f"market:{market.id}",
                    details={
                        "kind": "derivatives.batch",
                        "tx_ids": [min(tx_ids), max(tx_ids)],
                        "count": len(tx_ids),
                    },
                ),
            )
        )

    # --- after the commit ----------------------------------------------------------------------

    def _answer_all(
        self, batch: list[tuple[Any, asyncio.Future[Any]]], results: list[Any], tick: DerivativeTick
    ) -> None:
        resolved: list[Any] = []
        for result in results:
            if isinstance(result, int) and not isinstance(result, bool):
                resolved.append(tick.touched[result])
            else:
                resolved.append(result)
        for i, result in enumerate(resolved):
            if isinstance(result, _Dup):
                first, mine = batch[result.first][0], batch[i][0]
                assert isinstance(first, PlaceDerivative) and isinstance(mine, PlaceDerivative)
                same = first.order.request.fingerprint() == mine.order.request.fingerprint()
                cid = mine.order.request.client_order_id or ""
                resolved[i] = resolved[result.first] if same else _conflict(cid, None)
        for (_, future), result in zip(batch, resolved, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _publish_book(self, tick: DerivativeTick, market: Market, trade_ids: dict[int, int], ts: int) -> None:
        """``trades.<m>`` per trade and ``book.<m>`` (top levels, lots) when the book changed."""
        m = market.id
        for t in tick.trades:
            self._bus.publish(
                f"trades.{m}",
                {
                    "marketId": m,
                    "tradeId": trade_ids.get(t.market_seq),
                    "price": format_decimal(t.price),
                    "amount": format_decimal(t.amount),
                    "quoteAmount": format_decimal(t.quote_amount),
                    "takerSide": t.taker_side.value,
                    "ts": ts,
                },
            )
        if tick.book_changed:
            self.book_seq += 1
            spec = market.spec()
            bids, asks = self.engine.depth(BOOK_LEVELS)
            self._bus.publish(
                f"book.{m}",
                {
                    "marketId": m,
                    "seq": self.book_seq,
                    "bids": [
                        [format_decimal(spec.ticks_to_price(p)), format_decimal(spec.lots_to_quantity(q))]
                        for p, q, _ in bids
                    ],
                    "asks": [
                        [format_decimal(spec.ticks_to_price(p)), format_decimal(spec.lots_to_quantity(q))]
                        for p, q, _ in asks
                    ],
                    "ts": ts,
                },
            )


def account_changes(tick: DerivativeTick) -> list[Changes]:
    """What the committed tick changed per account, as the derivatives service tells the bus
    (``service/derivatives_events.py``): its orders (placed, filled, cancelled, rejected, expired,
    activated), its positions, and the settlement asset's balances when money of it moved."""
    out: dict[AccountId, Changes] = {}

    def of(account: AccountId) -> Changes:
        return out.setdefault(account, Changes(account))

    for order in tick.touched.values():
        of(order.account_id).order_ids.append(order.order_id)
    for position in tick.changed_positions.values():
        of(position.account_id).position_ids.append(position.position_id)
    owners = {account_owner(a): a for a in out}
    txs, _ = tick.ledger_transactions()
    for tx in txs:
        for p in tx.postings:
            account = owners.get(p.owner)
            if account is not None and p.asset not in out[account].assets:
                out[account].assets.append(p.asset)
    return list(out.values())


def _conflict(client_order_id: str, order_id: int | None) -> IdempotencyConflict:
    details: dict[str, Any] = {"field": "clientOrderId"}
    if order_id is not None:
        details["orderId"] = str(order_id)
    return IdempotencyConflict(f"clientOrderId {client_order_id!r} was used for another order", **details)


__all__ = ["CancelDerivative", "DerivativeMarketRunner", "PlaceDerivative"]
