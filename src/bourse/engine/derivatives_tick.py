"""One tick of an OrderBook derivative market's runner: orders through the engine, trades into
position fills. No I/O here; the runner writes what a tick produced in one transaction.

The engine matches lots (the market's ``lotStep`` is the engine's quantity step) and ticks,
exactly as on a spot market. What differs is the money:

- **Hold** (placing): ``available -> locked`` in the settlement asset, per lot step
  ``round_up(margin of one step at the reserve price) + round_up(fee of one step)``, times the
  order's steps, plus one minimum fee (the rule's ``minFeeRAT`` in the settlement asset, fixed
  at placement; none without a RAT rate); a reduce-only order holds the fee parts only. The reserve price bounds every
  price the order can fill at: a buy's limit (a market buy: the band above the last price); a
  sell's limit or the best bid when higher (a sell crosses at bid prices, then rests at its own
  price). Rounding each step up makes a fill's share (``hold * lots filled / lots``) cover what
  ``apply_fill`` charges for that fill at any price within the bound (ceil(k*x) <= k*ceil(x)).
- **Fill** (each trade, both sides, ONE ledger transaction per trade): each side's share of its
  hold (the first fill's share includes the held minimum fee) goes back to available, then ``domain.positions.apply_fill`` posts margin, fee, realized
  PnL against ``sys:house`` and applies the deficit rule. A netting flip is worked as its close
  (paid from what the account has, its hold aside) then its open (paid from the hold's share),
  so the margin held for the new position never pays the old one's loss.
- **Reduce-only** orders (closes by id, trigger and stop-out closes, and a netting order that
  fits the lots of the opposite position no other waiting order of the account may take) close
  exactly their lots. The tick keeps them safe: the lots waiting to close a position never exceed
  it (``CloseLotsTaken``), and a netting order that could open on the side where reduce-only
  orders wait is refused, so no fill of another order can take a position from under them.
- **Minimum fee**: each fill's fee is ``max(rule fee, minimum)``. A pure close pays it as far as
  the account has it (``apply_fill``); an opening part pays the minimum from the hold's minimum
  (the first fill) and from the account's free balance, and the house forgoes what neither
  covers (later partial fills of an account without free funds).
- Cancel, expiry and rejection release what the order still holds; a hold that paid for no fill
  is dropped from the tick's ledger transactions (the order leaves no trace in the ledger).

New positions get placeholder ids (``new:<n>``) that the runner swaps for sequence values before
writing (``assign_position_ids``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, localcontext

from bourse.domain.errors import InsufficientFunds, InvalidInput, InvariantViolation
from bourse.domain.fees import CfdFee, CommissionRule, FeeType, min_fee_in_asset
from bourse.domain.ledger import Bucket, LedgerTransaction, Posting, account_owner
from bourse.domain.matching import CancelOrder, EventKind, MatchingEngine, PlaceOrder, RawEvent, RestingOrder
from bourse.domain.matching.commands import GTC_LIMIT, OrderTerms
from bourse.domain.matching.spec import MarketSpec, MarketStatus
from bourse.domain.order_requests import to_millis
from bourse.domain.orders import (
    OrderEvent,
    OrderId,
    OrderStatus,
    OrderType,
    Side,
    StopStatus,
    TimeInForce,
    stop_transition,
    transition,
)
from bourse.domain.positions import (
    EXACT,
    FILL_KIND,
    ZERO,
    AccountKind,
    Position,
    apply_fill,
    derivative_fee,
    initial_margin,
    notional,
)
from bourse.domain.trading import HOLD_KIND, RELEASE_KIND, TradeRecord
from bourse.domain.triggers import TakeProfitLevel, Triggers
from bourse.domain.values import AccountId, AssetId
from bourse.engine.digest import BookDigest, resting_term
from bourse.service.derivatives_context import Contract
from bourse.service.derivatives_fills import FillPrice, build_triggers
from bourse.service.derivatives_records import (
    BookOrderRequest,
    Deficit,
    DeficitKind,
    DerivativeOrder,
    DerivativeReject,
    PositionExecution,
)

_ACCEPTED = EventKind.ACCEPTED
_REJECTED = EventKind.REJECTED
_PLACED = EventKind.PLACED
_TRADE = EventKind.TRADE
_PARTIALLY_FILLED = EventKind.PARTIALLY_FILLED
_FILLED = EventKind.FILLED
_CANCELLED = EventKind.CANCELLED
_EXPIRED = EventKind.EXPIRED
_CANCEL_REJECTED = EventKind.CANCEL_REJECTED
_AT_MARKET = (OrderType.MARKET, OrderType.STOP)
_STOPS = (OrderType.STOP, OrderType.STOP_LIMIT)

TRADE_KIND = FILL_KIND
NEW_PREFIX = "new:"


def fee_terms(rule: CommissionRule) -> tuple[FeeType, Decimal]:
    """The derivative fee terms an order keeps: the rule's cfd settings, else its taker size as a
    percent (``domain.positions.derivative_fee``)."""
    if rule.cfd is not None:
        return rule.cfd.type, rule.cfd.size
    return FeeType.PERCENT, rule.taker_size


def order_fee(order: DerivativeOrder, price: Decimal, lots: Decimal, c: Contract) -> Decimal:
    """The fee of ``lots`` at ``price`` by the order's fee terms, before its minimum fee."""
    if order.fee_type is None or order.fee_size is None:
        raise InvariantViolation("a book order without fee terms", order_id=order.order_id)
    terms = CfdFee(None, FeeType(order.fee_type), order.fee_size)
    return derivative_fee(terms, notional(price, lots, c.spec), lots, c.spec.settlement_scale)


def engine_command(order: DerivativeOrder, c: Contract) -> PlaceOrder:
    """The engine's command for a book order (lots as the engine quantity)."""
    spec = c.market.spec()
    qty = spec.quantity_to_lots(order.lots, "requestedLotAmount")
    price = None if order.price is None else spec.price_to_ticks(order.price, "requestedPrice")
    oid = OrderId(order.order_id)
    tif = order.time_in_force
    if order.type in _AT_MARKET:  # a Stop order is a Market order once activated
        terms = OrderTerms(
            OrderType.MARKET,
            TimeInForce.FOK if tif is TimeInForce.FOK else TimeInForce.IOC,
            False,
            None,
            None,
        )
        return PlaceOrder(oid, order.account_id, order.side, qty, None, None, terms)
    if tif is TimeInForce.GTC and not order.post_only:
        return PlaceOrder(oid, order.account_id, order.side, qty, price, None, GTC_LIMIT)
    expire_at = (
        to_millis(order.cancellation_date)
        if tif is TimeInForce.GTD and order.cancellation_date is not None
        else None
    )
    terms = OrderTerms(OrderType.LIMIT, tif, order.post_only, None, expire_at)
    return PlaceOrder(oid, order.account_id, order.side, qty, price, None, terms)


def is_waiting_stop(order: DerivativeOrder) -> bool:
    """A Stop/StopLimit book order not activated yet: held by the runner, not in the engine."""
    return order.is_live and order.stop_status is StopStatus.WAITING_FOR_ACTIVATION


def resting_order(order: DerivativeOrder, c: Contract) -> RestingOrder:
    """A live book order as it rests (recovery)."""
    spec = c.market.spec()
    if order.engine_seq is None or order.price is None:
        raise InvariantViolation(
            "a resting book order needs its place and limit price", order_id=order.order_id
        )
    expire_at = None
    if order.time_in_force is TimeInForce.GTD and order.cancellation_date is not None:
        expire_at = to_millis(order.cancellation_date)
    return RestingOrder(
        OrderId(order.order_id),
        order.account_id,
        order.side,
        spec.price_to_ticks(order.price),
        spec.quantity_to_lots(order.remaining_lots),
        spec.quantity_to_lots(order.lots),
        order.engine_seq,
        None,
        expire_at,
    )


class DerivativeTick:
    """The effects of one batch. ``live`` and ``positions`` are the runner's committed state
    (read only here; changed copies live in ``touched`` and ``changed_positions``)."""

    def __init__(
        self,
        c: Contract,
        engine: MatchingEngine,
        live: dict[int, DerivativeOrder],
        positions: dict[str, Position],
        digest: BookDigest,
        order_seq: int,
        trade_seq: int,
        now: datetime,
        rate_to_rat: Decimal | None,
    ) -> None:
        self.c = c
        self.market = c.market
        self.engine = engine
        self.live = live
        self.positions = positions
        self.digest = digest
        self.order_seq = order_seq
        self.trade_seq = trade_seq
        self.now = now
        self.rate = rate_to_rat
        self.asset: AssetId = c.settlement_asset
        self.touched: dict[int, DerivativeOrder] = {}
        self.new_ids: list[int] = []
        self.ledger: list[LedgerTransaction | None] = []
        self.hold_index: dict[int, int] = {}
        self.hold_tx: dict[int, int] = {}
        self.trades: list[TradeRecord] = []
        self.executions: list[tuple[PositionExecution, int]] = []  # (row, its ledger slot)
        self.changed_positions: dict[str, Position] = {}
        self.opened_by: dict[str, int] = {}  # position id -> the order that opened it
        self.trigger_saves: dict[str, Triggers | None] = {}
        self.deficits: list[Deficit] = []
        self.available: dict[tuple[str, str], Decimal] = {}
        self.kinds: dict[AccountId, AccountKind] = {}
        self.book_changed = False
        self._new_positions = 0

    # --- state views ---------------------------------------------------------------------------

    def order(self, order_id: int) -> DerivativeOrder:
        order = self.touched.get(order_id) or self.live.get(order_id)
        if order is None:
            raise InvariantViolation("the engine named an order the runner does not know", order_id=order_id)
        return order

    def find(self, order_id: int) -> DerivativeOrder | None:
        return self.touched.get(order_id) or self.live.get(order_id)

    def _set(self, order: DerivativeOrder) -> DerivativeOrder:
        self.touched[order.order_id] = order
        return order

    def position(self, position_id: str | None) -> Position | None:
        if position_id is None:
            return None
        return self.changed_positions.get(position_id) or self.positions.get(position_id)

    def open_positions(self, account: AccountId) -> list[Position]:
        merged = {**self.positions, **self.changed_positions}
        return sorted(
            (p for p in merged.values() if p.account_id == account and p.is_open),
            key=lambda p: (len(p.position_id), p.position_id),
        )

    def live_orders(self, account: AccountId) -> list[DerivativeOrder]:
        merged = {**self.live, **self.touched}
        return [
            o for o in merged.values() if o.account_id == account and o.is_live and o.engine_seq is not None
        ]

    def _free(self, account: AccountId) -> Decimal:
        return self.available.get((account_owner(account), self.asset), ZERO)

    def _move(self, tx: LedgerTransaction) -> None:
        """Keep the tick's available balances in step with a transaction of this tick."""
        for p in tx.postings:
            if p.bucket == Bucket.AVAILABLE and p.asset == self.asset:
                key = (p.owner, p.asset)
                if key in self.available:
                    self.available[key] += p.amount

    # --- commands ------------------------------------------------------------------------------

    def place(
        self,
        order_id: int,
        cmd: BookOrderRequest,
        rule: CommissionRule,
        kind: AccountKind,
        fingerprint: bytes | None,
    ) -> DerivativeOrder:
        c, req = self.c, cmd.request
        fee_type, fee_size = fee_terms(rule)
        # The minimum fee in the settlement asset at this batch's RAT rate (none without a rate).
        min_fee = min_fee_in_asset(rule.min_fee_rat, self.rate, c.spec.settlement_scale)
        order = DerivativeOrder(
            order_id=order_id,
            market_id=c.market.id,
            account_id=cmd.account_id,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            lots=req.lots,
            remaining_lots=req.lots,
            leverage=max(1, req.leverage or 1),
            margin_type=req.margin_type,
            status=OrderStatus.STARTED,
            commission_asset=c.settlement_asset,
            created_at=self.now,
            updated_at=self.now,
            price=req.price,
            activation_price=req.activation_price if req.type in _STOPS else None,
            position_id=cmd.close_position_id,
            reduce_only=cmd.close_position_id is not None,
            source=cmd.source,
            reason=cmd.reason,
            triggers=req.triggers,
            cancellation_date=req.cancellation_date,
            client_order_id=req.client_order_id,
            fingerprint=fingerprint,
            in_book=True,
            post_only=req.post_only,
            fee_type=fee_type.value,
            fee_size=fee_size,
            min_fee=min_fee,
        )
        self.new_ids.append(order_id)
        self._set(order)
        if cmd.reject is not None:
            return self._reject(order, cmd.reject.value)
        status = self.market.status
        if status is MarketStatus.HALTED:
            return self._reject(order, DerivativeReject.MARKET_HALTED.value)
        if not cmd.preempt:  # the platform's closes must close, wherever the book stands
            refused = self._market_checks(order)
            if refused is not None:
                return self._reject(order, refused.value)
        if cmd.preempt and cmd.close_position_id is not None:
            self._preempt(cmd.account_id, cmd.close_position_id, kind)
            order = self.order(order_id)
        if order.type in _STOPS:
            self._wait(order, kind)
        else:
            self._enter(order, kind)
        self.run_stops()
        return self.order(order_id)

    def _market_checks(self, order: DerivativeOrder) -> DerivativeReject | None:
        """Spot's price checks (``domain.trading.check_order``) on a book order: a Limit price
        farther from the last trade price than the market's ``priceDeviation`` (0: off), and a
        quote amount (price x base amount, the price being the limit, else the activation price,
        else the last trade price) below the market's ``minQuoteAmount``."""
        m, spec = self.market, self.market.spec()
        last = None if self.engine.last_price is None else spec.ticks_to_price(self.engine.last_price)
        with localcontext(EXACT):
            if (
                order.type is OrderType.LIMIT
                and order.price is not None
                and last is not None
                and m.price_deviation > 0
                and abs(order.price - last) > last * m.price_deviation
            ):
                return DerivativeReject.PRICE_DEVIATION
            reference = order.price if order.price is not None else order.activation_price or last
            if (
                m.min_quote_amount is not None
                and reference is not None
                and reference * self.c.spec.base(order.lots) < m.min_quote_amount
            ):
                return DerivativeReject.QUOTE_AMOUNT_BELOW_MINIMUM
        return None

    def _enter(self, order: DerivativeOrder, kind: AccountKind) -> None:
        """Classify, hold and send to the engine a new order or an activated stop (whose waiting
        hold, if any, is this tick's ``hold_index`` entry or ``locked_remaining``: replaced)."""
        order_id = order.order_id
        reason, opening, order = self._classify(order, kind)
        if reason is not None:
            return self._refuse(order, reason.value)
        if self.market.status is MarketStatus.CLOSE_ONLY and not order.reduce_only:
            return self._refuse(order, DerivativeReject.MARKET_CLOSE_ONLY.value)
        if order.post_only and (
            order.type in _AT_MARKET or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
        ):
            return self._refuse(order, DerivativeReject.INVALID_TIME_IN_FORCE.value)
        reserve = self._reserve(order)
        if reserve is None:
            return self._refuse(order, DerivativeReject.NO_REFERENCE_PRICE.value)
        try:
            command = engine_command(order, self.c)
        except InvalidInput as e:
            return self._refuse(order, e.details.get("reason", DerivativeReject.INVALID_PRICE.value))
        hold = self._hold(order, reserve, opening)
        if not self._take_hold(order, hold):
            return self._refuse(order, DerivativeReject.INSUFFICIENT_MARGIN.value)
        self._set(self.order(order_id).but(reserve_price=reserve))
        self.apply(self.engine.place(command))

    def _take_hold(self, order: DerivativeOrder, hold: Decimal) -> bool:
        """Hold ``hold`` for ``order`` (``available -> locked``). A waiting stop's hold is replaced:
        one taken in this tick is rewritten, one committed earlier is topped up or partly released
        (one transaction for the difference). False, nothing changed, if the account cannot pay."""
        key = (account_owner(order.account_id), self.asset)
        have = self.available.get(key, ZERO)
        index = self.hold_index.get(order.order_id)
        before = order.locked_remaining
        if have + before < hold:
            return False
        self.available[key] = have + before - hold
        order = self._set(order.but(locked_amount=hold, locked_remaining=hold))
        if index is not None:  # held in this tick: the hold is rewritten (or dropped)
            if hold > 0:
                self.ledger[index] = _hold_tx(order, self.asset)
            else:
                self.ledger[index] = None
                self.hold_index.pop(order.order_id)
                self.hold_tx.pop(order.order_id, None)
        elif before == 0:
            if hold > 0:
                self.hold_index[order.order_id] = self.hold_tx[order.order_id] = len(self.ledger)
                self.ledger.append(_hold_tx(order, self.asset))
        elif before != hold:  # a committed stop's hold: one transaction for the difference
            self.ledger.append(_hold_tx(order, self.asset, hold - before, "activation"))
        return True

    def _refuse(self, order: DerivativeOrder, reason: str) -> None:
        """Reject an order before the engine saw it; an activated stop gives its hold back."""
        order = self._set(
            order.but(
                status=transition(order.status, OrderEvent.REJECT), reject_reason=reason, updated_at=self.now
            )
        )
        if order.locked_remaining > 0 or order.order_id in self.hold_index:
            self._set(self._finish(order))

    # --- stop orders ---------------------------------------------------------------------------

    def _wait(self, order: DerivativeOrder, kind: AccountKind) -> None:
        """A new Stop/StopLimit order: checked, held as an order that may open (it is classified
        again when it activates), and kept by the runner until the last trade price reaches it."""
        reason, _, _ = self._classify(order, kind)
        if reason is not None:
            return self._refuse(order, reason.value)
        spec = self.market.spec()
        if order.activation_price is None:
            return self._refuse(order, DerivativeReject.INVALID_STOP_PRICE.value)
        try:
            spec.price_to_ticks(order.activation_price, "activationPrice")
        except InvalidInput:
            return self._refuse(order, DerivativeReject.INVALID_STOP_PRICE.value)
        if order.post_only and order.type is OrderType.STOP:
            return self._refuse(order, DerivativeReject.INVALID_TIME_IN_FORCE.value)
        try:
            engine_command(order, self.c)
        except InvalidInput as e:
            return self._refuse(order, e.details.get("reason", DerivativeReject.INVALID_PRICE.value))
        reserve = self._stop_reserve(order)
        if not self._take_hold(order, self._hold(order, reserve, True)):
            return self._refuse(order, DerivativeReject.INSUFFICIENT_MARGIN.value)
        self._set(
            self.order(order.order_id).but(
                reserve_price=reserve, stop_status=stop_transition(None, OrderEvent.ACCEPT)
            )
        )

    def _stop_reserve(self, order: DerivativeOrder) -> Decimal:
        """The price a waiting stop holds at: what its activation would reserve if the book stood
        at the stop price (a buy Stop: the band above it; a buy StopLimit: its limit; a sell: its
        limit or stop, or the best bid when higher). Re-sized when it activates."""
        spec = self.market.spec()
        assert order.activation_price is not None
        if order.side is Side.BUY:
            if order.type is OrderType.STOP:
                stop = spec.price_to_ticks(order.activation_price)
                return spec.ticks_to_price(spec.engine_rules().band_bounds(stop)[1])
            assert order.price is not None
            return order.price
        bids, _ = self.engine.depth(1)
        own = (
            order.price
            if order.type is OrderType.STOP_LIMIT and order.price is not None
            else order.activation_price
        )
        return own if not bids else max(own, spec.ticks_to_price(bids[0][0]))

    def waiting_stops(self) -> list[DerivativeOrder]:
        merged = {**self.live, **self.touched}
        return sorted((o for o in merged.values() if is_waiting_stop(o)), key=lambda o: o.order_id)

    def run_stops(self) -> None:
        """Activate every waiting stop the last trade price has reached (buy: last >= stop; sell:
        last <= stop), oldest first, until none is due; an activation's own trades may reach more."""
        if self.market.status is MarketStatus.HALTED:
            return
        spec = self.market.spec()
        while True:
            last = self.engine.last_price
            if last is None:
                return
            due = [o for o in self.waiting_stops() if _reached(o, last, spec)]
            if not due:
                return
            order = due[0]
            order = self._set(
                order.but(
                    stop_status=stop_transition(order.stop_status, OrderEvent.TRIGGER),
                    status=transition(order.status, OrderEvent.TRIGGER),
                    updated_at=self.now,
                )
            )
            self._enter(order, self.kinds.get(order.account_id, AccountKind.HEDGING))

    def expire_stops(self) -> None:
        """Gtd waiting stops whose time has come (the engine, which expires resting orders, never
        saw them)."""
        for order in self.waiting_stops():
            if (
                order.time_in_force is TimeInForce.GTD
                and order.cancellation_date is not None
                and order.cancellation_date <= self.now
            ):
                self._end_stop(order, OrderEvent.EXPIRE)

    def _end_stop(self, order: DerivativeOrder, event: OrderEvent) -> DerivativeOrder:
        order = order.but(
            status=transition(order.status, event),
            stop_status=stop_transition(order.stop_status, event),
            updated_at=self.now,
        )
        return self._set(self._finish(order))

    def _reject(self, order: DerivativeOrder, reason: str) -> DerivativeOrder:
        return self._set(order.but(status=OrderStatus.REJECTED, reject_reason=reason, updated_at=self.now))

    def _classify(
        self, order: DerivativeOrder, kind: AccountKind
    ) -> tuple[DerivativeReject | None, bool, DerivativeOrder]:
        """(why it is refused, whether it may open a position, the order as classified)."""
        account = order.account_id
        waiting = [o for o in self.live_orders(account) if o.order_id != order.order_id]
        if order.reduce_only:
            p = self.position(order.position_id)
            if p is None or not p.is_open or p.account_id != account or p.market_id != self.market.id:
                return DerivativeReject.INVALID_QUANTITY, False, order
            if p.side.closing_side is not order.side:
                return DerivativeReject.INVALID_QUANTITY, False, order
            if order.lots > p.lots - self._claimed(waiting, p, kind):
                return DerivativeReject.CLOSE_LOTS_TAKEN, False, order
            return None, False, order.but(leverage=p.leverage, margin_type=p.margin_type)
        if kind is AccountKind.HEDGING:
            return None, True, order
        mine = self.open_positions(account)
        p = mine[0] if mine else None
        if p is not None and p.side.closing_side is order.side:
            same_side = [o for o in waiting if o.side is order.side]
            if order.lots <= p.lots - sum((o.remaining_lots for o in same_side), ZERO):
                return (
                    None,
                    False,
                    order.but(
                        reduce_only=True,
                        position_id=p.position_id,
                        leverage=p.leverage,
                        margin_type=p.margin_type,
                    ),
                )
            if any(o.reduce_only for o in same_side):
                return DerivativeReject.CLOSE_LOTS_TAKEN, True, order
        others: list[Position | DerivativeOrder] = [*([p] if p is not None else [])]
        others += [o for o in waiting if not o.reduce_only]
        for other in others:
            if other.leverage != order.leverage:
                return DerivativeReject.INVALID_LEVERAGE, True, order
            if other.margin_type is not order.margin_type:
                return DerivativeReject.INVALID_MARGIN_TYPE, True, order
        return None, True, order

    @staticmethod
    def _claimed(waiting: list[DerivativeOrder], p: Position, kind: AccountKind) -> Decimal:
        """Lots of ``p`` other waiting orders of the account may close first."""
        closing = p.side.closing_side
        if kind is AccountKind.NETTING:
            return sum((o.remaining_lots for o in waiting if o.side is closing), ZERO)
        return sum(
            (o.remaining_lots for o in waiting if o.reduce_only and o.position_id == p.position_id), ZERO
        )

    def _preempt(self, account: AccountId, position_id: str, kind: AccountKind) -> None:
        """Cancel the account's waiting orders that could close the position before a platform close."""
        p = self.position(position_id)
        if p is None:
            return
        for o in self.live_orders(account):
            if o.side is not p.side.closing_side:
                continue
            if kind is AccountKind.NETTING or (o.reduce_only and o.position_id == position_id):
                self.cancel(account, o.order_id)

    def _reserve(self, order: DerivativeOrder) -> Decimal | None:
        spec = self.market.spec()
        last = self.engine.last_price
        if order.side is Side.BUY:
            if order.type in _AT_MARKET:
                if last is None:
                    return None
                return spec.ticks_to_price(spec.engine_rules().band_bounds(last)[1])
            return order.price
        bids, _ = self.engine.depth(1)
        best = spec.ticks_to_price(bids[0][0]) if bids else None
        if order.type in _AT_MARKET:
            return best if best is not None else self.market.tick_size
        assert order.price is not None
        return order.price if best is None else max(order.price, best)

    def _hold(self, order: DerivativeOrder, reserve: Decimal, opening: bool) -> Decimal:
        c = self.c
        step = c.spec.lot_step
        with localcontext(EXACT):
            steps = order.lots / step
            margin = (
                initial_margin(reserve, c.spec.base(step), order.leverage, c.spec.settlement_scale)
                if opening
                else ZERO
            )
            # One minimum fee on top, for the first fill (``_fill_side``).
            return steps * (margin + order_fee(order, reserve, step, c)) + (order.min_fee or ZERO)

    def cancel(self, account_id: AccountId, order_id: int) -> DerivativeOrder | None:
        order = self.find(order_id)
        if order is None or not order.is_live or order.account_id != account_id:
            return None
        if is_waiting_stop(order):
            return self._end_stop(order, OrderEvent.CANCEL)
        if order.engine_seq is None:
            return None
        events = self.engine.cancel(CancelOrder(OrderId(order_id), account_id))
        if events and events[0][0] is _CANCEL_REJECTED:
            return None
        self.apply(events)
        return self.order(order_id)

    # --- events --------------------------------------------------------------------------------

    def apply(self, events: Iterable[RawEvent]) -> None:
        for ev in events:
            kind = ev[0]
            if kind is _TRADE:
                self._trade(ev)
                continue
            if kind is _CANCEL_REJECTED or kind is _ACCEPTED:
                continue
            order = self.order(ev[1])
            if kind is _PLACED:
                self.order_seq += 1
                order = order.but(
                    status=transition(order.status, OrderEvent.PLACE), engine_seq=self.order_seq
                )
                self.book_changed = True
            elif kind is _PARTIALLY_FILLED:
                order = order.but(status=transition(order.status, OrderEvent.PARTIAL_FILL))
            elif kind is _FILLED:
                order = self._finish(
                    order.but(status=transition(order.status, OrderEvent.FILL), engine_seq=None)
                )
            elif kind is _CANCELLED:
                if order.engine_seq is not None:
                    self.book_changed = True
                order = self._finish(
                    order.but(
                        status=transition(order.status, OrderEvent.CANCEL),
                        cancel_reason=ev[2].value,
                        engine_seq=None,
                    )
                )
            elif kind is _EXPIRED:
                if order.engine_seq is not None:
                    self.book_changed = True
                order = self._finish(
                    order.but(status=transition(order.status, OrderEvent.EXPIRE), engine_seq=None)
                )
            elif kind is _REJECTED:
                order = self._finish(
                    order.but(
                        status=transition(order.status, OrderEvent.REJECT),
                        reject_reason=ev[4].value,
                        engine_seq=None,
                    )
                )
            self._set(order.but(updated_at=self.now))

    def _finish(self, order: DerivativeOrder) -> DerivativeOrder:
        """The order is final: what it still holds goes back, or its untouched hold is dropped."""
        index = self.hold_index.pop(order.order_id, None)
        key = (account_owner(order.account_id), self.asset)
        if index is not None and order.executed_lots == 0:
            self.ledger[index] = None
            self.hold_tx.pop(order.order_id, None)
            if key in self.available:
                self.available[key] += order.locked_amount
            return order.but(locked_amount=ZERO, locked_remaining=ZERO)
        amount = order.locked_remaining
        if amount > 0:
            tx = LedgerTransaction(
                kind=RELEASE_KIND,
                postings=(
                    Posting(key[0], self.asset, Bucket.LOCKED, -amount),
                    Posting(key[0], self.asset, Bucket.AVAILABLE, amount),
                ),
                business_key=f"derivative:{order.order_id}:release",
                details={"orderId": order.order_id, "marketId": order.market_id},
            )
            self.ledger.append(tx)
            self._move(tx)
            order = order.but(locked_remaining=ZERO)
        return order

    def _trade(self, ev: RawEvent) -> None:
        _, seq, price_ticks, qty, maker_id, taker_id, _m, _t, aggressor = ev
        spec = self.market.spec()
        price, lots = spec.ticks_to_price(price_ticks), spec.lots_to_quantity(qty)
        maker, taker = self.order(maker_id), self.order(taker_id)
        buy, sell = (taker, maker) if aggressor is Side.BUY else (maker, taker)
        slot = len(self.ledger)
        postings: list[Posting] = []
        rows: list[PositionExecution] = []
        for order in (buy, sell):
            updated, legs, made = self._fill(order, lots, price, seq)
            self._set(updated)
            postings.extend(legs)
            rows.extend(made)
            # A hold that has paid for a fill stays posted, whatever happens to the order later.
            self.hold_index.pop(order.order_id, None)
        tx = LedgerTransaction(
            kind=TRADE_KIND,
            postings=tuple(postings),
            business_key=f"derivative-trade:{self.market.id}:{seq}",
            details={
                "marketId": self.market.id,
                "seq": seq,
                "buyOrderId": buy.order_id,
                "sellOrderId": sell.order_id,
            },
        )
        self.ledger.append(tx)
        self.executions.extend((row, slot) for row in rows)
        base = self.c.spec.base(lots)
        with localcontext(EXACT):
            quote = price * base
        self.trades.append(
            TradeRecord(self.market.id, seq, price, lots, quote, aggressor, maker_id, taker_id, self.now)
        )
        self.trade_seq = seq
        self.book_changed = True

    def _new_position_id(self) -> str:
        self._new_positions += 1
        return f"{NEW_PREFIX}{self._new_positions}"

    def _fill(
        self, order: DerivativeOrder, lots: Decimal, price: Decimal, seq: int
    ) -> tuple[DerivativeOrder, list[Posting], list[PositionExecution]]:
        """One side of one trade: its share of the hold back to available, then ``apply_fill`` (a
        close part, then an open part). The updated order, its postings and execution rows."""
        c, account = self.c, order.account_id
        owner = account_owner(account)
        kind = self.kinds.get(account, AccountKind.HEDGING)
        left = order.remaining_lots - lots
        if left < 0:
            raise InvariantViolation("a fill larger than the order's remaining lots", order_id=order.order_id)
        minimum = order.min_fee or ZERO
        first = order.remaining_lots == order.lots
        with localcontext(EXACT):
            # The lots' share of the per-step hold, plus the one minimum fee held for the first fill.
            proportional = (order.locked_amount - minimum) * lots / order.lots
            share = order.locked_remaining if left == 0 else proportional + (minimum if first else ZERO)
        if share > order.locked_remaining:
            raise InvariantViolation("a book order's hold does not cover its fill", order_id=order.order_id)
        legs: list[Posting] = []
        if share > 0:
            legs += [
                Posting(owner, self.asset, Bucket.LOCKED, -share),
                Posting(owner, self.asset, Bucket.AVAILABLE, share),
            ]
        free = self._free(account)
        rule_fee = order_fee(order, price, lots, c)
        fee = max(rule_fee, minimum)  # each fill pays at least the minimum, as far as it can:
        # the share covers the margin and the rule's fee; beyond that, an opening part pays the
        # minimum from what the share holds for it (the first fill) and the account's free balance.
        with localcontext(EXACT):
            spare = max(ZERO, share - proportional)

        target: Position | None = None
        base_position: Position | None = None  # what an opening part increases
        if order.reduce_only:
            target = self.position(order.position_id)
            if target is None or not target.is_open or target.lots < lots:
                raise InvariantViolation(
                    "a reduce-only book order outgrew its position", order_id=order.order_id
                )
            closing = lots
        elif kind is AccountKind.NETTING:
            mine = self.open_positions(account)
            p = mine[0] if mine else None
            if p is not None and p.side.closing_side is order.side:
                target, closing = p, min(lots, p.lots)
            else:
                base_position, closing = p, ZERO
        else:
            own = self.position(order.position_id)
            base_position = own if own is not None and own.is_open else None
            closing = ZERO
        opening = lots - closing

        before: dict[str, Position] = {}
        changed: list[Position] = []
        rows: list[PositionExecution] = []
        fee_charged = pnl = ZERO
        key = f"derivative-trade:{self.market.id}:{seq}:{order.order_id}"
        try:
            if closing > 0:
                assert target is not None
                before[target.position_id] = target
                r = apply_fill(
                    kind=kind,
                    spec=c.spec,
                    positions=[target],
                    side=order.side,
                    lots=closing,
                    price=price,
                    leverage=target.leverage,
                    margin_type=target.margin_type,
                    fee=ZERO if opening > 0 else fee,
                    available=free + (ZERO if opening > 0 else share),
                    new_position_id="unused",
                    now=self.now,
                    close_position_id=target.position_id,
                    business_key=key,
                    asset=self.asset,
                    account_id=account,
                )
                if r.postings is not None:
                    legs += r.postings.postings
                    free = _after(free + (ZERO if opening > 0 else share), r.postings, owner, self.asset)
                fee_charged += r.fee
                pnl += r.realized_pnl
                changed += r.changed
                rows += self._rows(order, before, r.changed, None, r.realized_pnl, price, seq)
                for p in r.changed:
                    self._keep(p, order.order_id)
                    if not p.is_open:
                        self.trigger_saves[p.position_id] = None
                if r.deficit > 0:
                    self.deficits.append(
                        Deficit(
                            business_key=f"deficit:order:{order.order_id}:{seq}",
                            account_id=account,
                            market_id=self.market.id,
                            asset=self.asset,
                            amount=r.deficit,
                            kind=DeficitKind.CLOSE,
                            created_at=self.now,
                            position_id=target.position_id,
                            order_id=order.order_id,
                        )
                    )
            if opening > 0:
                if base_position is not None:
                    before[base_position.position_id] = base_position
                r = apply_fill(
                    kind=AccountKind.NETTING,  # increase the base position, or open a new one
                    spec=c.spec,
                    positions=[base_position] if base_position is not None else [],
                    side=order.side,
                    lots=opening,
                    price=price,
                    leverage=order.leverage,
                    margin_type=order.margin_type,
                    fee=min(fee, rule_fee + spare + max(free, ZERO)),
                    available=free + share,
                    new_position_id=self._new_position_id(),
                    now=self.now,
                    business_key=key,
                    asset=self.asset,
                    account_id=account,
                )
                if r.postings is not None:
                    legs += r.postings.postings
                fee_charged += r.fee
                rows += self._rows(order, before, r.changed, r.opened, ZERO, price, seq)
                for p in r.changed:
                    self._keep(p, order.order_id)
                if r.opened is not None:
                    self._keep(r.opened, order.order_id)
                    self.opened_by[r.opened.position_id] = order.order_id
                target_after = r.opened or (r.changed[0] if r.changed else None)
                if target_after is not None:
                    self._triggers(order, target_after, r.opened is not None, price)
                    order = order.but(position_id=target_after.position_id)
        except (InsufficientFunds, InvalidInput) as e:
            # The hold and the placement rules make this impossible; a broken invariant must not post.
            raise InvariantViolation(f"a book fill broke its hold: {e}", order_id=order.order_id) from e
        if order.position_id is None and changed:
            order = order.but(position_id=changed[0].position_id)
        fees = _split_fee(fee_charged, [r.lots for r in rows], c.spec.settlement_scale)
        rows = [replace(r, fee=f) for r, f in zip(rows, fees, strict=True)]
        legs_tx_free = [
            p for p in legs if p.owner == owner and p.bucket == Bucket.AVAILABLE and p.asset == self.asset
        ]
        key_free = (owner, self.asset)
        if key_free in self.available:
            self.available[key_free] += sum((p.amount for p in legs_tx_free), ZERO)
        base = c.spec.base(lots)
        with localcontext(EXACT):
            order = order.but(
                remaining_lots=left,
                locked_remaining=order.locked_remaining - share,
                executed_base=order.executed_base + base,
                executed_quote=order.executed_quote + price * base,
                commission=order.commission + fee_charged,
                realized_pnl=order.realized_pnl + pnl,
                updated_at=self.now,
            )
        return order, legs, rows

    def _keep(self, p: Position, order_id: int) -> None:
        self.changed_positions[p.position_id] = p
        self.opened_by.setdefault(p.position_id, order_id)

    def _triggers(self, order: DerivativeOrder, position: Position, opened: bool, price: Decimal) -> None:
        """The take profit / stop loss asked for with the order, on the position it opened or grew.
        One on the wrong side of the fill price is not set (the order is filled already)."""
        if order.triggers.empty or order.reduce_only:
            return
        try:
            requested = build_triggers(
                order.triggers, position.side, position.lots, position.entry_price, price, self.c
            )
        except InvalidInput:
            return
        if requested is None:
            return
        if not opened:
            requested.take_profit = [TakeProfitLevel(lv.price, position.lots) for lv in requested.take_profit]
        self.trigger_saves[position.position_id] = requested

    def _rows(
        self,
        order: DerivativeOrder,
        before: dict[str, Position],
        changed: list[Position],
        opened: Position | None,
        realized_pnl: Decimal,
        price: Decimal,
        seq: int,
    ) -> list[PositionExecution]:
        spec = self.c.spec

        def row(
            position: Position, lots: Decimal, closed: Decimal, pnl: Decimal, entry: Decimal
        ) -> PositionExecution:
            return PositionExecution(
                order_id=order.order_id,
                position_id=position.position_id,
                account_id=order.account_id,
                market_id=self.market.id,
                side=order.side,
                reason=order.reason,
                lots=lots,
                base_amount=spec.base(lots),
                price=price,
                raw_price=price,
                markup=ZERO,
                fee=ZERO,
                fee_asset=self.asset,
                realized_pnl=pnl,
                closed_lots=closed,
                entry_price=entry,
                rate_to_rat=self.rate,
                ledger_tx_id=0,
                created_at=self.now,
            )

        out = []
        for p in changed:
            old = before[p.position_id]
            if p.lots < old.lots:
                closed = old.lots - p.lots
                out.append(row(p, closed, closed, realized_pnl, old.entry_price))
            else:
                out.append(row(p, p.lots - old.lots, ZERO, ZERO, p.entry_price))
        if opened is not None:
            out.append(row(opened, opened.lots, ZERO, ZERO, opened.entry_price))
        return out

    # --- after the commands --------------------------------------------------------------------

    def update_digest(self) -> None:
        engine, digest = self.engine, self.digest
        for order_id in self.touched:
            resting = engine.open_order(order_id)
            if resting is not None:
                if resting.seq != self.touched[order_id].engine_seq:
                    raise InvariantViolation(
                        "the runner's sequence number of a resting order is not the engine's",
                        order_id=order_id,
                    )
                digest.set(order_id, resting_term(resting))
            else:
                digest.set(order_id, None)
        digest.set_header(engine.last_price, self.order_seq, self.trade_seq)

    def ledger_transactions(self) -> tuple[list[LedgerTransaction], list[int]]:
        txs: list[LedgerTransaction] = []
        positions: list[int] = []
        for tx in self.ledger:
            if tx is None:
                positions.append(-1)
            else:
                positions.append(len(txs))
                txs.append(tx)
        return txs, positions

    @property
    def new_position_count(self) -> int:
        return self._new_positions

    def assign_position_ids(self, ids: list[str]) -> None:
        """Swap the placeholder ids of the positions this tick opened for ``ids`` (in order)."""
        if len(ids) != self._new_positions:
            raise InvariantViolation("position ids do not match the positions opened")

        def real(pid: str | None) -> str | None:
            if pid is None or not pid.startswith(NEW_PREFIX):
                return pid
            return ids[int(pid[len(NEW_PREFIX) :]) - 1]

        self.changed_positions = {
            str(real(k)): replace(p, position_id=str(real(p.position_id)))
            for k, p in self.changed_positions.items()
        }
        self.opened_by = {str(real(k)): v for k, v in self.opened_by.items()}
        self.trigger_saves = {str(real(k)): v for k, v in self.trigger_saves.items()}
        self.touched = {k: o.but(position_id=real(o.position_id)) for k, o in self.touched.items()}
        self.executions = [(replace(r, position_id=str(real(r.position_id))), s) for r, s in self.executions]
        self.deficits = [replace(d, position_id=real(d.position_id)) for d in self.deficits]

    @property
    def new_orders(self) -> list[DerivativeOrder]:
        return [self.touched[i] for i in self.new_ids]

    @property
    def changed_orders(self) -> list[DerivativeOrder]:
        new = set(self.new_ids)
        return [o for i, o in self.touched.items() if i not in new]

    @property
    def has_effects(self) -> bool:
        return bool(self.touched or self.trades)


def _hold_tx(
    order: DerivativeOrder, asset: AssetId, amount: Decimal | None = None, step: str = "hold"
) -> LedgerTransaction:
    """``available -> locked`` of the order's hold (or of ``amount``: an activated stop's
    difference, negative when it holds less than while waiting)."""
    owner = account_owner(order.account_id)
    amount = order.locked_amount if amount is None else amount
    return LedgerTransaction(
        kind=HOLD_KIND if amount > 0 else RELEASE_KIND,
        postings=(
            Posting(owner, asset, Bucket.AVAILABLE, -amount),
            Posting(owner, asset, Bucket.LOCKED, amount),
        ),
        business_key=f"derivative:{order.order_id}:{step}",
        details={"orderId": order.order_id, "marketId": order.market_id},
    )


def _reached(order: DerivativeOrder, last: int, spec: MarketSpec) -> bool:
    """A waiting stop's activation price is reached by the last trade price (in ticks)."""
    if order.activation_price is None:
        raise InvariantViolation("a stop order without an activation price", order_id=order.order_id)
    stop = spec.price_to_ticks(order.activation_price)
    return last >= stop if order.side is Side.BUY else last <= stop


def _after(available: Decimal, tx: LedgerTransaction, owner: str, asset: AssetId) -> Decimal:
    """``available`` after the owner's available postings of ``tx``."""
    return available + sum(
        (
            p.amount
            for p in tx.postings
            if p.owner == owner and p.asset == asset and p.bucket == Bucket.AVAILABLE
        ),
        ZERO,
    )


def _split_fee(total: Decimal, parts: list[Decimal], scale: int) -> list[Decimal]:
    from bourse.service.derivatives_fills import _split

    if not parts:
        return []
    return _split(total, parts, scale)


__all__ = ["DerivativeTick", "FillPrice", "engine_command", "fee_terms", "resting_order"]
