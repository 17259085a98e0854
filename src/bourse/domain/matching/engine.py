"""The matching engine of one market: commands in, events out, nothing else.

One engine per market and one writer (the market's task) calling it; it does no
I/O and keeps no clock: time only arrives through ``on_time(now)``. The same
command stream always gives the same events and the same ``state_hash()``.

Rules, in the order they are applied to a new order:

1. a halted or close-only market rejects it (cancels still work);
2. quantity, price, stop price and expiry are checked against the market's limits,
   order ids and client order ids against the live orders;
3. stop orders wait (WaitingForActivation) until the last trade price reaches the
   stop price: buy stops when last >= stop, sell stops when last <= stop. A stop
   that is already reached when it arrives is activated at once. Stops reached by
   the same last price are activated in the order they were placed, one after the
   other; each may trade and reach further stops, which queue behind them;
4. post-only orders that would cross are rejected; Fok orders that cannot fill
   completely right now are rejected before anything trades; market orders with
   nothing on the other side are rejected;
5. the order trades at the resting orders' prices, best price first, oldest first
   within a price. A market order trades only within last * (1 +- band) (the best
   opposite price stands in for the last price before the first trade);
6. meeting its own account's resting order, the incoming order follows the
   market's (or its own) self-trade prevention;
7. what is left rests (Gtc, Gtd) or is cancelled with the reason (Ioc, market
   orders, self-trade prevention).
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from typing import Any

from bourse.domain.errors import InvariantViolation
from bourse.domain.matching.book import (
    ACCOUNT,
    CLIENT_ID,
    EXPIRE_AT,
    IS_BUY,
    OID,
    OPEN,
    PRICE,
    QTY,
    SEQ,
    OrderBook,
)
from bourse.domain.matching.commands import GTC_LIMIT, CancelOrder, OrderTerms, PlaceOrder
from bourse.domain.matching.events import EventKind, Events, RawEvent
from bourse.domain.matching.spec import EngineRules, MarketStatus
from bourse.domain.matching.state import EngineState, RestingOrder, WaitingStop, state_hash
from bourse.domain.orders import (
    CancelReason,
    ClientOrderId,
    OrderId,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from bourse.domain.values import AccountId

_ACCEPTED = EventKind.ACCEPTED
_REJECTED = EventKind.REJECTED
_PLACED = EventKind.PLACED
_PARTIALLY_FILLED = EventKind.PARTIALLY_FILLED
_FILLED = EventKind.FILLED
_CANCELLED = EventKind.CANCELLED
_EXPIRED = EventKind.EXPIRED
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_BUY = Side.BUY
_ACTIVE = MarketStatus.ACTIVE
_REQUESTED = CancelReason.REQUESTED
_GTC_LIMIT = GTC_LIMIT


class MatchingEngine:
    __slots__ = (
        "_ask_heap",
        "_asks",
        "_bid_heap",
        "_bids",
        "_book",
        "_buy_stops",
        "_client_ids",
        "_compact_seq",
        "_expiries",
        "_fast_terms",
        "_limits",
        "_now",
        "_orders",
        "_rules",
        "_sell_stops",
        "_seq",
        "_status",
        "_stops",
    )

    def __init__(self, rules: EngineRules | None = None, status: MarketStatus = MarketStatus.ACTIVE) -> None:
        self._rules = rules = rules or EngineRules()
        self._limits = (rules.min_quantity, rules.max_quantity, rules.min_price, rules.max_price)
        self._book = book = OrderBook()
        # the book's containers, bound here for the hot path (the book mutates them in place)
        self._orders, self._client_ids = book.orders, book.client_ids
        self._bids, self._asks, self._bid_heap, self._ask_heap = (
            book.bids,
            book.asks,
            book.bid_heap,
            book.ask_heap,
        )
        self.set_status(status)
        self._stops: dict[int, WaitingStop] = {}
        self._buy_stops: list[tuple[int, int, int]] = []  # (stop price, seq, order id)
        self._sell_stops: list[tuple[int, int, int]] = []  # (-stop price, seq, order id)
        self._expiries: list[tuple[int, int, int]] = []  # (expire_at, seq, order id)
        self._seq = 0
        self._compact_seq = 0
        self._now = 0

    @property
    def status(self) -> MarketStatus:
        return self._status

    @property
    def last_price(self) -> int | None:
        return self._book.last_price

    @property
    def rules(self) -> EngineRules:
        return self._rules

    # -- commands -------------------------------------------------------------------------

    def place(self, cmd: PlaceOrder) -> Events:
        """Place an order (a command as it arrives from the market's queue)."""
        order_id, account_id, side, quantity, price, client_order_id, terms = cmd
        return self.place_order(order_id, account_id, side, quantity, price, client_order_id, terms)

    def cancel(self, cmd: CancelOrder) -> Events:
        """Cancel a live order or a waiting stop of the command's account."""
        order_id, account_id = cmd
        return self.cancel_order(order_id, account_id)

    def place_order(
        self,
        order_id: OrderId,
        account_id: AccountId,
        side: Side,
        quantity: int,
        price: int | None = None,
        client_order_id: ClientOrderId | None = None,
        terms: OrderTerms = GTC_LIMIT,
    ) -> Events:
        """``place(PlaceOrder(...))`` without building the command: the same fields, in order."""
        # The common case, inlined: a valid Gtc limit order, in an open market, that does not
        # cross rests at once. ``_fast_terms`` is GTC_LIMIT only while the market is open.
        if terms is self._fast_terms and price is not None:
            min_qty, max_qty, min_price, max_price = self._limits
            orders = self._orders
            if (
                min_qty <= quantity <= max_qty
                and min_price <= price <= max_price
                and order_id not in orders
                and order_id not in self._stops
                and (client_order_id is None or (account_id, client_order_id) not in self._client_ids)
            ):
                if side is _BUY:
                    heap = self._ask_heap
                    if heap and heap[0] <= price:
                        return self._cross(order_id, account_id, side, quantity, price, client_order_id)
                    is_buy = True
                    level = self._bids.get(price)
                else:
                    heap = self._bid_heap
                    if heap and -heap[0] >= price:
                        return self._cross(order_id, account_id, side, quantity, price, client_order_id)
                    is_buy = False
                    level = self._asks.get(price)
                seq = self._seq + 1
                self._seq = seq
                if seq >= self._compact_seq:
                    self._compact_seq = seq + self._book.compact()
                order = [
                    order_id,
                    account_id,
                    is_buy,
                    price,
                    quantity,
                    seq,
                    quantity,
                    client_order_id,
                    None,
                    level,
                ]
                if level is None:
                    self._book.add_level(order)
                else:
                    level.append(order)
                orders[order_id] = order
                if client_order_id is not None:
                    self._client_ids[(account_id, client_order_id)] = order_id
                return (
                    (_ACCEPTED, order_id, account_id, client_order_id),
                    (_PLACED, order_id, price, quantity),
                )
        return self._place(PlaceOrder(order_id, account_id, side, quantity, price, client_order_id, terms))

    def _cross(
        self, oid: int, account: str, side: Side, qty: int, price: int, client_id: str | None
    ) -> Events:
        """A valid Gtc limit order that crosses: trade, then rest the remainder."""
        out: list[RawEvent] = [(_ACCEPTED, oid, account, client_id)]
        book = self._book
        is_buy = side is _BUY
        left = book.match(oid, account, is_buy, price, qty, self._rules.stp, out)
        if left != qty:
            if left:
                out.append((_PARTIALLY_FILLED, oid, qty - left, left))
            else:
                out.append((_FILLED, oid, qty))
        if left:
            if book.stp_stopped:
                out.append((_CANCELLED, oid, CancelReason.SELF_TRADE_PREVENTION, left, qty - left))
            else:
                self._rest([oid, account, is_buy, price, left, 0, qty, client_id, None, None])
                out.append((_PLACED, oid, price, left))
        if self._stops and left != qty:
            self._run_stops(out)
        return out

    def _place(self, cmd: PlaceOrder) -> Events:
        oid, account, side, qty, price, client_id, terms = cmd
        otype, tif, post_only, stop_price, expire_at, stp = terms
        out: list[RawEvent] = []
        rules = self._rules
        reason = None
        if self._status is not _ACTIVE:
            reason = (
                RejectReason.MARKET_HALTED
                if self._status is MarketStatus.HALTED
                else RejectReason.MARKET_CLOSE_ONLY
            )
        elif not rules.min_quantity <= qty <= rules.max_quantity:
            reason = RejectReason.INVALID_QUANTITY
        elif oid in self._book.orders or oid in self._stops:
            reason = RejectReason.DUPLICATE_ORDER_ID
        elif client_id is not None and (account, client_id) in self._book.client_ids:
            reason = RejectReason.DUPLICATE_CLIENT_ORDER_ID
        elif otype is _LIMIT or otype is _STOP_LIMIT:
            if price is None or not rules.min_price <= price <= rules.max_price:
                reason = RejectReason.INVALID_PRICE
        elif price is not None:  # market and stop-market orders take no limit price
            reason = RejectReason.INVALID_PRICE
        if reason is None:
            reason = self._check_terms(otype, tif, post_only, expire_at)
        if reason is None and (otype is _STOP or otype is _STOP_LIMIT):
            if stop_price is None or not rules.min_price <= stop_price <= rules.max_price:
                reason = RejectReason.INVALID_STOP_PRICE
            else:
                self._accept_stop(cmd, out)
                return out
        elif reason is None and stop_price is not None:
            reason = RejectReason.INVALID_STOP_PRICE
        if reason is not None:
            out.append((_REJECTED, oid, account, client_id, reason))
            return out
        if stp is None:
            stp = rules.stp
        self._execute(oid, account, side, qty, price, tif, post_only, client_id, expire_at, stp, False, out)
        return out

    def cancel_order(self, order_id: OrderId, account_id: AccountId) -> Events:
        """``cancel(CancelOrder(...))`` without building the command."""
        order = self._orders.pop(order_id, None)
        if order is not None:
            if order[1] == account_id:
                # book.remove(), inlined: cancels are a third of all commands
                open_qty = order[4]
                order[4] = 0
                if order[7] is not None:
                    del self._client_ids[(account_id, order[7])]
                level = order[9]
                if level[0] is order:
                    level.popleft()
                    while level and not level[0][4]:
                        level.popleft()
                return ((_CANCELLED, order_id, _REQUESTED, open_qty, order[6] - open_qty),)
            self._orders[order_id] = order
        stop = self._stops.get(order_id)
        if stop is not None and stop.order.account_id == account_id:
            self._drop_stop(stop.order)
            return ((_CANCELLED, order_id, _REQUESTED, stop.order.quantity, 0),)
        # someone else's order is as unknown as a missing one: its existence is not disclosed
        return ((EventKind.CANCEL_REJECTED, order_id, account_id, RejectReason.UNKNOWN_ORDER),)

    def on_time(self, now: int) -> Events:
        """Advance the engine's clock (epoch ms) and expire Gtd orders and stops due by ``now``."""
        if now > self._now:
            self._now = now
        out: list[RawEvent] = []
        expiries = self._expiries
        book = self._book
        while expiries and expiries[0][0] <= self._now:
            _, _, oid = heappop(expiries)
            order = book.orders.get(oid)
            if order is not None and order[EXPIRE_AT] is not None and order[EXPIRE_AT] <= self._now:
                open_qty = book.remove(order)
                out.append((_EXPIRED, oid, open_qty, order[QTY] - open_qty))
                continue
            stop = self._stops.get(oid)
            expire_at = None if stop is None else stop.order.terms.expire_at
            if stop is not None and expire_at is not None and expire_at <= self._now:
                self._drop_stop(stop.order)
                out.append((_EXPIRED, oid, stop.order.quantity, 0))
        return out

    def set_status(self, status: MarketStatus) -> None:
        """Halting keeps the book as it is: resting orders stay, and cancels still work."""
        self._status = status
        self._fast_terms = GTC_LIMIT if status is MarketStatus.ACTIVE else None

    # -- the order's way through the book ---------------------------------------------------

    def _check_terms(
        self, otype: OrderType, tif: TimeInForce, post_only: bool, expire_at: int | None
    ) -> RejectReason | None:
        if tif is _GTD:
            if expire_at is None or expire_at <= self._now:
                return RejectReason.INVALID_EXPIRY
        elif expire_at is not None:
            return RejectReason.INVALID_EXPIRY
        if post_only and (otype is _MARKET or otype is _STOP or tif is _IOC or tif is _FOK):
            return RejectReason.INVALID_TIME_IN_FORCE
        return None

    def _execute(
        self,
        oid: int,
        account: str,
        side: Side,
        qty: int,
        price: int | None,
        tif: TimeInForce,
        post_only: bool,
        client_id: str | None,
        expire_at: int | None,
        stp: SelfTradePrevention,
        activated: bool,
        out: list[RawEvent],
    ) -> None:
        """Take an order from acceptance (or stop activation) to its resting or final state."""
        book = self._book
        is_buy = side is _BUY
        opposite = book.ask_heap if is_buy else book.bid_heap
        reject = None
        if price is None:  # a market order, bounded by the price band around the last price
            reference = book.last_price
            best = book.best(not is_buy)
            if best is None:
                reject = RejectReason.NO_LIQUIDITY
            else:
                low, high = self._rules.band_bounds(reference if reference is not None else best)
                limit = high if is_buy else low
        else:
            limit = price
            if post_only:
                best = book.best(not is_buy)
                if best is not None and (best <= price if is_buy else best >= price):
                    reject = RejectReason.POST_ONLY_WOULD_CROSS
        if reject is None and tif is _FOK and not book.fillable(is_buy, limit, qty, account, stp):
            reject = RejectReason.FOK_NOT_FILLABLE
        if reject is not None:
            out.append((_REJECTED, oid, account, client_id, reject))
            return
        if not activated:
            out.append((_ACCEPTED, oid, account, client_id))

        left = qty
        stopped = False
        if opposite and (opposite[0] <= limit if is_buy else -opposite[0] >= limit):
            left = book.match(oid, account, is_buy, limit, qty, stp, out)
            stopped = book.stp_stopped
            filled = qty - left
            if filled:
                if left:
                    out.append((_PARTIALLY_FILLED, oid, filled, left))
                else:
                    out.append((_FILLED, oid, qty))
        if left:
            if stopped:
                out.append((_CANCELLED, oid, CancelReason.SELF_TRADE_PREVENTION, left, qty - left))
            elif price is None:
                why = CancelReason.NO_LIQUIDITY if book.best(not is_buy) is None else CancelReason.PRICE_BAND
                out.append((_CANCELLED, oid, why, left, qty - left))
            elif tif is _GTC or tif is _GTD:
                self._rest([oid, account, is_buy, price, left, 0, qty, client_id, expire_at, None])
                out.append((_PLACED, oid, price, left))
                if expire_at is not None:
                    heappush(self._expiries, (expire_at, self._seq, oid))
            else:
                out.append((_CANCELLED, oid, CancelReason.IOC_REMAINDER, left, qty - left))
        # an activated stop is itself run by _run_stops, which checks the stops after it
        if left != qty and not activated and (self._buy_stops or self._sell_stops):
            self._run_stops(out)

    def _rest(self, order: list[Any]) -> None:
        """Put an order's rest on the book with the next priority number (off the fast path)."""
        seq = self._seq + 1
        self._seq = seq
        if seq >= self._compact_seq:
            self._compact_seq = seq + self._book.compact()
        order[SEQ] = seq
        self._book.rest(order)

    # -- stops ------------------------------------------------------------------------------

    def _accept_stop(self, cmd: PlaceOrder, out: list[RawEvent]) -> None:
        out.append((_ACCEPTED, cmd.order_id, cmd.account_id, cmd.client_order_id))
        self._seq += 1
        self._wait(WaitingStop(cmd, self._seq))
        self._run_stops(out)

    def _wait(self, stop: WaitingStop) -> None:
        cmd, seq = stop
        terms = cmd.terms
        assert terms.stop_price is not None
        self._stops[cmd.order_id] = stop
        if cmd.side is _BUY:
            heappush(self._buy_stops, (terms.stop_price, seq, cmd.order_id))
        else:
            heappush(self._sell_stops, (-terms.stop_price, seq, cmd.order_id))
        if cmd.client_order_id is not None:
            self._book.client_ids[(cmd.account_id, cmd.client_order_id)] = cmd.order_id
        if terms.expire_at is not None:
            heappush(self._expiries, (terms.expire_at, seq, cmd.order_id))

    def _drop_stop(self, cmd: PlaceOrder) -> None:
        # the heaps keep their entries; _due_stops skips ids that are no longer waiting
        del self._stops[cmd.order_id]
        if cmd.client_order_id is not None:
            del self._book.client_ids[(cmd.account_id, cmd.client_order_id)]

    def _due_stops(self) -> list[WaitingStop]:
        last = self._book.last_price
        due: list[WaitingStop] = []
        if last is None:
            return due
        stops = self._stops
        for heap, sign in ((self._buy_stops, 1), (self._sell_stops, -1)):
            # buy stops fire at last >= stop, sell stops at last <= stop
            while heap and heap[0][0] <= last * sign:
                _, seq, oid = heappop(heap)
                stop = stops.get(oid)
                if stop is not None and stop.seq == seq:
                    due.append(stop)
        due.sort(key=lambda s: s.seq)
        return due

    def _run_stops(self, out: list[RawEvent]) -> None:
        """Activate every stop the last price has reached, oldest first, until none is left."""
        queue = deque(self._due_stops())
        while queue:
            cmd = queue.popleft().order
            terms = cmd.terms
            self._drop_stop(cmd)
            out.append((EventKind.STOP_TRIGGERED, cmd.order_id, self._book.last_price))
            # its own trades may reach further stops: they queue behind the ones already due
            self._execute(
                cmd.order_id,
                cmd.account_id,
                cmd.side,
                cmd.quantity,
                cmd.price if terms.order_type is _STOP_LIMIT else None,
                terms.time_in_force,
                terms.post_only,
                cmd.client_order_id,
                terms.expire_at,
                terms.stp if terms.stp is not None else self._rules.stp,
                True,
                out,
            )
            queue.extend(self._due_stops())

    # -- state --------------------------------------------------------------------------------

    def state(self) -> EngineState:
        book = self._book
        orders = tuple(
            RestingOrder(
                OrderId(o[OID]),
                AccountId(o[ACCOUNT]),
                Side.BUY if o[IS_BUY] else Side.SELL,
                o[PRICE],
                o[OPEN],
                o[QTY],
                o[SEQ],
                o[CLIENT_ID],
                o[EXPIRE_AT],
            )
            for o in book.resting()
        )
        stops = tuple(sorted(self._stops.values(), key=lambda s: s.seq))
        return EngineState(orders, stops, book.last_price, self._seq, book.trade_seq, self._now)

    @classmethod
    def restore(
        cls, state: EngineState, rules: EngineRules | None = None, status: MarketStatus = MarketStatus.ACTIVE
    ) -> MatchingEngine:
        """An engine with exactly the given live orders, stops, last price and counters."""
        engine = cls(rules, status)
        book = engine._book
        for o in sorted(state.orders, key=lambda o: o.seq):
            if o.order_id in book.orders or not 0 < o.open_quantity <= o.quantity:
                raise InvariantViolation("cannot restore a duplicate or empty order", order_id=o.order_id)
            book.rest(
                [
                    o.order_id,
                    o.account_id,
                    o.side is _BUY,
                    o.price,
                    o.open_quantity,
                    o.seq,
                    o.quantity,
                    o.client_order_id,
                    o.expire_at,
                    None,
                ]
            )
            if o.expire_at is not None:
                heappush(engine._expiries, (o.expire_at, o.seq, o.order_id))
        bid, ask = book.best(True), book.best(False)
        if bid is not None and ask is not None and bid >= ask:
            # a book at rest never crosses: the stored orders are not what the engine left
            raise InvariantViolation("restored book is crossed", best_bid=bid, best_ask=ask)
        for stop in sorted(state.stops, key=lambda s: s.seq):
            if stop.order.order_id in book.orders or stop.order.order_id in engine._stops:
                raise InvariantViolation("cannot restore a duplicate stop", order_id=stop.order.order_id)
            engine._wait(stop)
        book.last_price = state.last_price
        book.trade_seq = state.trade_seq
        engine._seq = state.order_seq
        engine._now = state.now
        return engine

    def state_hash(self) -> str:
        """SHA-256 of the live orders (side, price, seq, id, open, account), stops, last price
        and counters, in a canonical order: equal for equal books, whatever their history."""
        return state_hash(self.state())

    def depth(self, levels: int = 20) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(bids, asks) as (price, open quantity, orders), best first."""
        return self._book.depth(True, levels), self._book.depth(False, levels)

    def open_order(self, order_id: int) -> RestingOrder | None:
        o = self._book.orders.get(order_id)
        if o is None:
            return None
        return RestingOrder(
            OrderId(o[OID]),
            AccountId(o[ACCOUNT]),
            Side.BUY if o[IS_BUY] else Side.SELL,
            o[PRICE],
            o[OPEN],
            o[QTY],
            o[SEQ],
            o[CLIENT_ID],
            o[EXPIRE_AT],
        )

    def waiting_stops(self) -> list[PlaceOrder]:
        return [s.order for s in sorted(self._stops.values(), key=lambda s: s.seq)]
