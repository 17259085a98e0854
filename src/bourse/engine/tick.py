"""One tick of a market's runner: commands through the engine, events into effects.

Nothing here does I/O. A ``Tick`` takes the commands of one batch in arrival order:
for a new order it checks the market rules, fixes the fee terms, reserves the funds
against the balances read at the start of the tick (tracking what earlier commands
of the tick held or released), feeds the engine, and folds the engine's events into
the orders (copies; the runner keeps them only after the commit), the trades, the
executions and the ledger transactions. The runner then writes all of it in one
database transaction.

A hold whose order the engine refuses outright (post-only would cross, Fok not
fillable, no liquidity) or cancels without any fill is dropped from the tick's
ledger transactions instead of being posted and released: such an order leaves no
trace in the ledger.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bourse.domain.errors import BourseError, InvariantViolation
from bourse.domain.ledger import LedgerTransaction, account_owner
from bourse.domain.markets import Market
from bourse.domain.matching import CancelOrder, EventKind, MatchingEngine, PlaceOrder, RawEvent, RestingOrder
from bourse.domain.matching.commands import GTC_LIMIT, OrderTerms
from bourse.domain.order_requests import OrderRequest, to_millis
from bourse.domain.orders import (
    ClientOrderId,
    OrderEvent,
    OrderId,
    OrderType,
    RejectReason,
    Side,
    StopStatus,
    TimeInForce,
    stop_transition,
    transition,
)
from bourse.domain.trading import (
    ZERO,
    ExecutionRow,
    FeeTerms,
    Fill,
    Order,
    TradeRecord,
    check_order,
    hold_transaction,
    new_order,
    reject,
    release_transaction,
    reservation,
    settle_trade,
)
from bourse.domain.values import AccountId, AssetId
from bourse.engine.digest import BookDigest, resting_term, stop_term

_ACCEPTED = EventKind.ACCEPTED
_REJECTED = EventKind.REJECTED
_PLACED = EventKind.PLACED
_TRADE = EventKind.TRADE
_PARTIALLY_FILLED = EventKind.PARTIALLY_FILLED
_FILLED = EventKind.FILLED
_CANCELLED = EventKind.CANCELLED
_EXPIRED = EventKind.EXPIRED
_STOP_TRIGGERED = EventKind.STOP_TRIGGERED
_CANCEL_REJECTED = EventKind.CANCEL_REJECTED


def converted_stop_buy(order: Order) -> bool:
    """A stop-market buy runs in the engine as a stop-limit Ioc at its reserve price.

    A triggered market buy trades up to the band around the price at the trigger, which
    a gap can put anywhere above the stop; the hold was sized at the stop's band bound,
    so the order must not pay more than that: the reserve price caps it, and like a
    market order its unfilled rest is cancelled. A Gtd one expires by the runner's clock
    (``Tick.expire_stops``), the engine's Ioc taking no expiry.
    """
    return order.type is OrderType.STOP and order.side is Side.BUY


def engine_command(order: Order, market: Market) -> PlaceOrder:
    """The engine's command for ``order``, the same on placement and when recovery rebuilds a stop."""
    spec = market.spec()
    qty = spec.quantity_to_lots(order.quantity, "requestedAmount")
    price = None if order.price is None else spec.price_to_ticks(order.price, "requestedPrice")
    stop = None if order.stop_price is None else spec.price_to_ticks(order.stop_price, "activationPrice")
    tif = order.time_in_force
    expire_at = None if order.cancellation_date is None else to_millis(order.cancellation_date)
    cid = None if order.client_order_id is None else ClientOrderId(order.client_order_id)
    oid = OrderId(order.order_id)
    if converted_stop_buy(order):
        assert order.reserve_price is not None
        terms = OrderTerms(
            OrderType.STOP_LIMIT,
            TimeInForce.FOK if tif is TimeInForce.FOK else TimeInForce.IOC,
            False,
            stop,
            None,
        )
        price = spec.price_to_ticks(order.reserve_price, "reservePrice")
        return PlaceOrder(oid, order.account_id, order.side, qty, price, cid, terms)
    if order.type is OrderType.LIMIT and tif is TimeInForce.GTC and not order.post_only:
        return PlaceOrder(oid, order.account_id, order.side, qty, price, cid, GTC_LIMIT)
    terms = OrderTerms(order.type, tif, order.post_only, stop, expire_at if tif is TimeInForce.GTD else None)
    return PlaceOrder(oid, order.account_id, order.side, qty, price, cid, terms)


def resting_order(order: Order, market: Market) -> RestingOrder:
    """A live order as it rests in the book (recovery)."""
    spec = market.spec()
    assert order.engine_seq is not None
    limit = order.reserve_price if converted_stop_buy(order) else order.price
    if limit is None:
        raise InvariantViolation("a resting order needs a limit price", order_id=order.order_id)
    expire_at = None
    if (
        order.time_in_force is TimeInForce.GTD
        and order.cancellation_date is not None
        and not converted_stop_buy(order)
    ):
        expire_at = to_millis(order.cancellation_date)
    return RestingOrder(
        OrderId(order.order_id),
        order.account_id,
        order.side,
        spec.price_to_ticks(limit),
        spec.quantity_to_lots(order.remaining),
        spec.quantity_to_lots(order.quantity),
        order.engine_seq,
        None if order.client_order_id is None else ClientOrderId(order.client_order_id),
        expire_at,
    )


@dataclass(frozen=True, slots=True)
class NotOpen:
    """A cancel of an order that is no longer live (or never was in this market's book)."""

    order_id: int


class Tick:
    """The effects of one batch. ``live``: the runner's live orders as the batches before this one
    left them, committed or still committing (read only here)."""

    def __init__(
        self,
        market: Market,
        engine: MatchingEngine,
        live: dict[int, Order],
        digest: BookDigest,
        order_seq: int,
        trade_seq: int,
        quote_scale: int,
        now: datetime,
        stop_expiries: list[tuple[int, int]],
    ) -> None:
        self.market = market
        self.spec = market.spec()
        self.engine = engine
        self.live = live
        self.digest = digest
        self.order_seq = order_seq
        self.trade_seq = trade_seq
        self.quote_scale = quote_scale
        self.now = now
        self.stop_expiries = stop_expiries
        self.touched: dict[int, Order] = {}
        self.new_ids: list[int] = []
        self.ledger: list[LedgerTransaction | None] = []
        self.hold_index: dict[int, int] = {}  # order id -> its hold's index in ``ledger`` (this tick)
        self.hold_tx: dict[int, int] = {}  # order id -> index of its hold transaction, kept for the id
        self.trades: list[TradeRecord] = []
        self.executions: list[tuple[Fill, int, int]] = []  # (fill, trade seq, ledger index)
        self.available: dict[tuple[str, str], Decimal] = {}
        self.balances: dict[AccountId, set[AssetId]] = {}
        self.book_changed = False

    # --- orders --------------------------------------------------------------------------------

    def _get(self, order_id: int) -> Order:
        order = self.touched.get(order_id)
        if order is None:
            live = self.live.get(order_id)
            if live is None:
                raise InvariantViolation(
                    "the engine named an order the runner does not know", order_id=order_id
                )
            order = self.touched[order_id] = live.copy()
        return order

    def find(self, order_id: int) -> Order | None:
        order = self.touched.get(order_id)
        return order if order is not None else self.live.get(order_id)

    def _changed(self, order: Order, *assets: AssetId) -> None:
        order.updated_at = self.now
        if assets:
            self.balances.setdefault(order.account_id, set()).update(assets)

    # --- commands ------------------------------------------------------------------------------

    def place(self, order_id: int, account_id: AccountId, request: OrderRequest, fee: FeeTerms) -> Order:
        market, spec, engine = self.market, self.spec, self.engine
        order = new_order(order_id, account_id, request, market, self.now)
        self.touched[order_id] = order
        self.new_ids.append(order_id)
        last_ticks = engine.last_price
        last = None if last_ticks is None else spec.ticks_to_price(last_ticks)
        reason = check_order(request, market, last, self.now)
        if reason is not None:
            return reject(order, reason)
        order.fee = fee
        reserve_price = None
        if order.side is Side.BUY:
            if order.type is OrderType.MARKET:
                assert last_ticks is not None  # check_order refused a market buy without a last price
                reserve_price = self._band_high(last_ticks)
            elif order.type is OrderType.STOP:
                assert order.stop_price is not None
                reserve_price = self._band_high(spec.price_to_ticks(order.stop_price))
            else:
                reserve_price = order.price
        order.reserve_price = reserve_price
        try:
            command = engine_command(order, market)
        except BourseError as e:  # beyond the engine's price or quantity range
            order.reserve_price = None
            return reject(order, RejectReason(e.details.get("reason", RejectReason.INVALID_PRICE.value)))
        needed = reservation(order, market, reserve_price, self.quote_scale)
        key = (account_owner(account_id), needed.asset)
        have = self.available.get(key, ZERO)
        if have < needed.amount:
            order.reserve_price = None
            return reject(order, RejectReason.INSUFFICIENT_FUNDS)
        self.available[key] = have - needed.amount
        order.locked_asset = needed.asset
        order.locked_amount = order.locked_remaining = needed.amount
        self.hold_index[order_id] = self.hold_tx[order_id] = len(self.ledger)
        self.ledger.append(hold_transaction(order))
        self._changed(order, needed.asset)
        if converted_stop_buy(order) and order.time_in_force is TimeInForce.GTD and order.cancellation_date:
            heapq.heappush(self.stop_expiries, (to_millis(order.cancellation_date), order_id))
        self.apply(engine.place(command))
        return order

    def _band_high(self, reference: int) -> Decimal:
        return self.spec.ticks_to_price(self.spec.engine_rules().band_bounds(reference)[1])

    def cancel(self, account_id: AccountId, order_id: int, *, stop_only: bool = False) -> Order | NotOpen:
        order = self.find(order_id)
        if order is None or not order.is_live or order.account_id != account_id:
            return NotOpen(order_id)
        if stop_only and not order.is_waiting_stop:
            return NotOpen(order_id)
        events = self.engine.cancel(CancelOrder(OrderId(order_id), account_id))
        if events and events[0][0] is _CANCEL_REJECTED:
            return NotOpen(order_id)
        self.apply(events)
        return self._get(order_id)

    def expire_stops(self, now_ms: int) -> None:
        """Expire the Gtd stop-market buys that are due (the engine holds them without an expiry)."""
        heap = self.stop_expiries
        while heap and heap[0][0] <= now_ms:
            _, order_id = heapq.heappop(heap)
            order = self.find(order_id)
            if order is None or not order.is_waiting_stop:
                continue
            events = self.engine.cancel(CancelOrder(OrderId(order_id), order.account_id))
            self.apply(events, expire=order_id)

    # --- events --------------------------------------------------------------------------------

    def apply(self, events: Iterable[RawEvent], expire: int | None = None) -> None:
        for ev in events:
            kind = ev[0]
            if kind is _TRADE:
                self._trade(ev)
                continue
            if kind is _CANCEL_REJECTED:
                continue
            order = self._get(ev[1])
            if kind is _PLACED:
                order.status = transition(order.status, OrderEvent.PLACE)
                self.order_seq += 1
                order.engine_seq = self.order_seq
                self.book_changed = True
            elif kind is _ACCEPTED:
                if order.type is OrderType.STOP or order.type is OrderType.STOP_LIMIT:
                    order.stop_status = stop_transition(None, OrderEvent.ACCEPT)
                    self.order_seq += 1
                    order.engine_seq = self.order_seq
            elif kind is _PARTIALLY_FILLED:
                order.status = transition(order.status, OrderEvent.PARTIAL_FILL)
                self._check_open(order, ev[3])
            elif kind is _FILLED:
                order.status = transition(order.status, OrderEvent.FILL)
                self._check_open(order, 0)
                order.engine_seq = None
                self._finish(order)
            elif kind is _CANCELLED:
                if expire == order.order_id:
                    self._end(order, OrderEvent.EXPIRE)
                else:
                    self._end(order, OrderEvent.CANCEL)
                    order.cancel_reason = ev[2].value
            elif kind is _EXPIRED:
                self._end(order, OrderEvent.EXPIRE)
            elif kind is _REJECTED:
                order.status = transition(order.status, OrderEvent.REJECT)
                order.reject_reason = ev[4].value
                order.engine_seq = None
                self._finish(order)
            elif kind is _STOP_TRIGGERED:
                order.stop_status = stop_transition(order.stop_status, OrderEvent.TRIGGER)
                order.status = transition(order.status, OrderEvent.TRIGGER)
                order.engine_seq = None
            self._changed(order)

    def _end(self, order: Order, event: OrderEvent) -> None:
        if order.stop_status is StopStatus.WAITING_FOR_ACTIVATION:
            order.stop_status = stop_transition(order.stop_status, event)
        elif order.engine_seq is not None:
            self.book_changed = True
        order.status = transition(order.status, event)
        order.engine_seq = None
        self._finish(order)

    def _check_open(self, order: Order, open_lots: int) -> None:
        if order.remaining != self.spec.lots_to_quantity(open_lots):
            raise InvariantViolation(
                "the engine's open quantity and the order's remaining amount differ", order_id=order.order_id
            )

    def _finish(self, order: Order) -> None:
        """The order is final: what it still holds goes back, or its untouched hold is dropped."""
        index = self.hold_index.pop(order.order_id, None)
        if index is not None and order.executed == 0:
            asset = order.locked_asset
            assert asset is not None
            self.ledger[index] = None
            self.hold_tx.pop(order.order_id, None)
            key = (account_owner(order.account_id), asset)
            self.available[key] = self.available.get(key, ZERO) + order.locked_amount
            order.locked_amount = order.locked_remaining = ZERO
            return
        released = order.locked_remaining
        tx = release_transaction(order)
        if tx is not None:
            assert order.locked_asset is not None
            self.ledger.append(tx)
            self._credit(order.account_id, order.locked_asset, released)

    def _credit(self, account_id: AccountId, asset: AssetId, amount: Decimal) -> None:
        key = (account_owner(account_id), asset)
        if key in self.available:
            self.available[key] += amount
        self.balances.setdefault(account_id, set()).add(asset)

    def _trade(self, ev: RawEvent) -> None:
        _, seq, price, qty, maker_id, taker_id, _maker_acct, _taker_acct, aggressor = ev
        maker, taker = self._get(maker_id), self._get(taker_id)
        buy, sell = (taker, maker) if aggressor is Side.BUY else (maker, taker)
        market, spec = self.market, self.spec
        price_d, amount = spec.ticks_to_price(price), spec.lots_to_quantity(qty)
        s = settle_trade(market, seq, buy, sell, price_d, amount, aggressor is Side.SELL, self.quote_scale)
        index = len(self.ledger)
        self.ledger.append(s.transaction)
        self.trades.append(
            TradeRecord(
                market.id, seq, price_d, amount, s.buy.quote_amount, aggressor, maker_id, taker_id, self.now
            )
        )
        self.executions.append((s.buy, seq, index))
        self.executions.append((s.sell, seq, index))
        base, quote = market.base_asset, market.quote_asset
        self._credit(sell.account_id, quote, s.sell.quote_amount - s.sell.commission)
        self._credit(buy.account_id, base, amount)
        self.balances.setdefault(sell.account_id, set()).add(base)
        self.balances.setdefault(buy.account_id, set()).add(quote)
        if s.released:
            self._credit(buy.account_id, quote, s.released)
        self.trade_seq = seq
        self.book_changed = True
        # A hold that has paid for a fill stays posted, whatever happens to the order later.
        self.hold_index.pop(buy.order_id, None)
        self.hold_index.pop(sell.order_id, None)
        buy.updated_at = sell.updated_at = self.now

    # --- after the commands --------------------------------------------------------------------

    def update_digest(self) -> None:
        """Bring the digest to the engine's book: every touched order's entry, then the header."""
        engine, digest, market = self.engine, self.digest, self.market
        for order_id, order in self.touched.items():
            resting = engine.open_order(order_id)
            if resting is not None:
                if resting.seq != order.engine_seq:
                    raise InvariantViolation(
                        "the runner's sequence number of a resting order is not the engine's",
                        order_id=order_id,
                    )
                digest.set(order_id, resting_term(resting))
            elif order.is_waiting_stop and order.engine_seq is not None:
                digest.set(order_id, stop_term(engine_command(order, market), order.engine_seq))
            else:
                digest.set(order_id, None)
        digest.set_header(engine.last_price, self.order_seq, self.trade_seq)

    def ledger_transactions(self) -> tuple[list[LedgerTransaction], list[int]]:
        """The transactions to post, and for each slot of ``ledger`` its position among them (or -1)."""
        txs: list[LedgerTransaction] = []
        positions: list[int] = []
        for tx in self.ledger:
            if tx is None:
                positions.append(-1)
            else:
                positions.append(len(txs))
                txs.append(tx)
        return txs, positions

    def execution_rows(self, tx_ids: list[int], positions: list[int]) -> list[ExecutionRow]:
        quote = self.market.quote_asset
        return [
            ExecutionRow(fill, self.market.id, seq, quote, tx_ids[positions[index]], self.now)
            for fill, seq, index in self.executions
        ]

    def ledger_positions(self, positions: list[int]) -> tuple[dict[int, int], list[int]]:
        """Where each new hold (order id -> position) and each execution's transaction are among
        the transactions to post (``positions`` from ``ledger_transactions``)."""
        holds = {
            order_id: positions[index] for order_id, index in self.hold_tx.items() if positions[index] >= 0
        }
        return holds, [positions[index] for _, _, index in self.executions]

    def assign_hold_ids(self, tx_ids: list[int], positions: list[int]) -> None:
        for order_id, index in self.hold_tx.items():
            position = positions[index]
            if position >= 0:
                self.touched[order_id].hold_tx_id = tx_ids[position]

    @property
    def new_orders(self) -> list[Order]:
        return [self.touched[i] for i in self.new_ids]

    @property
    def changed_orders(self) -> list[Order]:
        new = set(self.new_ids)
        return [o for i, o in self.touched.items() if i not in new]

    @property
    def has_effects(self) -> bool:
        return bool(self.touched or self.trades)


__all__ = ["NotOpen", "Tick", "converted_stop_buy", "engine_command", "resting_order"]
