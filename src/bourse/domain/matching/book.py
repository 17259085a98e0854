"""Price levels on integer ticks with price-time priority; the matching loop.

Layout, chosen for speed (this is the engine's hot path):

- each side is a dict ``price -> deque of orders`` (one FIFO per level) plus a heap
  of its prices (asks as ``price``, bids as ``-price``), so the best price is
  ``heap[0]`` and a new level costs one ``heappush``;
- a resting order is a small list (``OID, ACCOUNT, IS_BUY, PRICE, OPEN, SEQ, QTY,
  CLIENT_ID, EXPIRE_AT, LEVEL``; see the indexes below, spelled as literals in the
  loops), LEVEL being the deque it waits in, so a cancel goes straight to it;
- a cancel is O(1): the order leaves ``orders`` and its open quantity becomes 0;
  the dead entry is dropped when it reaches the head of its level, and a level
  left empty stays in the heap until it reaches the top. What is left behind is
  at most one entry (and one level) per order that ever rested, so the engine
  calls ``compact`` after every ``2 * live + 4096`` orders it rests: memory stays
  bounded by the live book and the cost is amortised O(1) per order, without any
  bookkeeping in the cancel path.

Events are appended to the caller's list as raw tuples (see events.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from heapq import heapify, heappop, heappush
from typing import Any

from bourse.domain.matching.events import EventKind
from bourse.domain.orders import CancelReason, SelfTradePrevention, Side

# Indexes of a resting order record.
OID, ACCOUNT, IS_BUY, PRICE, OPEN, SEQ, QTY, CLIENT_ID, EXPIRE_AT, LEVEL = range(10)

Order = list[Any]

_TRADE = EventKind.TRADE
_PARTIALLY_FILLED = EventKind.PARTIALLY_FILLED
_FILLED = EventKind.FILLED
_CANCELLED = EventKind.CANCELLED
_STP_REASON = CancelReason.SELF_TRADE_PREVENTION
_STP_NONE = SelfTradePrevention.NONE
_STP_OLDEST = SelfTradePrevention.CANCEL_OLDEST
_STP_NEWEST = SelfTradePrevention.CANCEL_NEWEST
_BUY = Side.BUY
_SELL = Side.SELL
_COMPACT_SLACK = 4096


class OrderBook:
    __slots__ = (
        "ask_heap",
        "asks",
        "bid_heap",
        "bids",
        "client_ids",
        "last_price",
        "orders",
        "stp_stopped",
        "trade_seq",
    )

    def __init__(self) -> None:
        self.bids: dict[int, deque[Order]] = {}
        self.asks: dict[int, deque[Order]] = {}
        self.bid_heap: list[int] = []  # -price
        self.ask_heap: list[int] = []  # price
        self.orders: dict[int, Order] = {}
        self.client_ids: dict[tuple[str, str], int] = {}
        self.last_price: int | None = None
        self.trade_seq = 0
        self.stp_stopped = False  # the last match() ended on a self-trade that stops the taker

    # -- the hot path ---------------------------------------------------------------------

    def match(
        self,
        oid: int,
        account: str,
        is_buy: bool,
        limit: int,
        qty: int,
        stp: SelfTradePrevention,
        out: list[Any],
    ) -> int:
        """Trade ``qty`` against the other side up to ``limit``; returns the quantity left.

        Sets ``stp_stopped`` when a self-trade stopped the incoming order (its rest must
        then be cancelled, not rested).
        """
        orders = self.orders
        client_ids = self.client_ids
        seq = self.trade_seq
        last = None
        stp_on = stp is not _STP_NONE
        self.stp_stopped = False
        if is_buy:
            heap, levels, sign, side = self.ask_heap, self.asks, 1, _BUY
        else:
            heap, levels, sign, side = self.bid_heap, self.bids, -1, _SELL
        limit_key = limit * sign
        append = out.append
        while qty and heap:
            key = heap[0]
            if key > limit_key:
                break
            price = key * sign
            level = levels[price]
            while level:
                m = level[0]
                mq = m[4]  # OPEN
                if not mq:  # cancelled earlier, dropped now
                    level.popleft()
                    continue
                if stp_on and m[1] == account:
                    if stp is _STP_NEWEST:
                        self.stp_stopped = True
                        break
                    level.popleft()
                    del orders[m[0]]
                    if m[7] is not None:
                        del client_ids[(m[1], m[7])]
                    m[4] = 0
                    append((_CANCELLED, m[0], _STP_REASON, mq, m[6] - mq))
                    if stp is _STP_OLDEST:
                        continue
                    self.stp_stopped = True
                    break
                seq += 1
                last = price
                if mq > qty:
                    mq -= qty
                    m[4] = mq
                    append((_TRADE, seq, price, qty, m[0], oid, m[1], account, side))
                    append((_PARTIALLY_FILLED, m[0], m[6] - mq, mq))
                    qty = 0
                    break
                append((_TRADE, seq, price, mq, m[0], oid, m[1], account, side))
                qty -= mq
                level.popleft()  # filled: it leaves the level and ``orders``, so OPEN may stay
                del orders[m[0]]
                if m[7] is not None:
                    del client_ids[(m[1], m[7])]
                append((_FILLED, m[0], m[6]))
                if not qty:
                    break
            # keep the head of a level live, and no empty level where a match will look first
            while level and not level[0][4]:
                level.popleft()
            if level:
                break
            heappop(heap)
            del levels[price]
            if self.stp_stopped:
                break
        if last is not None:
            self.trade_seq = seq
            self.last_price = last
        return qty

    def add_level(self, order: Order) -> None:
        """Open the price level of ``order`` (the caller files it in ``orders``)."""
        price = order[PRICE]
        level = order[LEVEL] = deque((order,))
        if order[IS_BUY]:
            self.bids[price] = level
            heappush(self.bid_heap, -price)
        else:
            self.asks[price] = level
            heappush(self.ask_heap, price)

    def rest(self, order: Order) -> None:
        price = order[PRICE]
        level = (self.bids if order[IS_BUY] else self.asks).get(price)
        if level is None:
            self.add_level(order)
        else:
            order[LEVEL] = level
            level.append(order)
        self.orders[order[OID]] = order
        if order[CLIENT_ID] is not None:
            self.client_ids[(order[ACCOUNT], order[CLIENT_ID])] = order[OID]

    def remove(self, order: Order) -> int:
        """Take a live order off the book (lazily); returns its open quantity."""
        open_qty: int = order[OPEN]
        del self.orders[order[OID]]
        if order[CLIENT_ID] is not None:
            del self.client_ids[(order[ACCOUNT], order[CLIENT_ID])]
        order[OPEN] = 0
        level = order[LEVEL]
        while level and not level[0][OPEN]:
            level.popleft()
        return open_qty

    # -- queries and upkeep (off the hot path) --------------------------------------------

    def best(self, is_buy_side: bool) -> int | None:
        """The best live price of a side (drops empty levels found on top)."""
        heap, levels, sign = (self.bid_heap, self.bids, -1) if is_buy_side else (self.ask_heap, self.asks, 1)
        while heap:
            price = heap[0] * sign
            level = levels[price]
            while level and not level[0][OPEN]:
                level.popleft()
            if level:
                return price
            heappop(heap)
            del levels[price]
        return None

    def levels_from_best(self, is_buy_side: bool) -> Iterator[tuple[int, deque[Order]]]:
        """Non-empty levels of a side, best price first."""
        levels = self.bids if is_buy_side else self.asks
        for price in sorted(levels, reverse=is_buy_side):
            level = levels[price]
            if any(o[OPEN] for o in level):
                yield price, level

    def fillable(self, is_buy: bool, limit: int, qty: int, account: str, stp: SelfTradePrevention) -> bool:
        """Whether an incoming order could fill ``qty`` up to ``limit`` now, with the same
        self-trade rule ``match`` applies (own orders are skipped or end the fill)."""
        available = 0
        for price, level in self.levels_from_best(not is_buy):
            if (price > limit) if is_buy else (price < limit):
                break
            for o in level:
                if not o[OPEN]:
                    continue
                if stp is not _STP_NONE and o[ACCOUNT] == account:
                    if stp is _STP_OLDEST:
                        continue
                    return False
                available += o[OPEN]
                if available >= qty:
                    return True
        return False

    def resting(self) -> Iterator[Order]:
        """Every live order: bids best first, then asks best first, each level in time order."""
        for is_buy_side in (True, False):
            for _price, level in self.levels_from_best(is_buy_side):
                for o in level:
                    if o[OPEN]:
                        yield o

    def depth(self, is_buy_side: bool, limit: int) -> list[tuple[int, int, int]]:
        """(price, open quantity, order count) per level, best first."""
        rows = []
        for price, level in self.levels_from_best(is_buy_side):
            live = [o[OPEN] for o in level if o[OPEN]]
            rows.append((price, sum(live), len(live)))
            if len(rows) >= limit:
                break
        return rows

    def compact(self) -> int:
        """Rebuild the levels if cancelled entries and empty levels are more than twice the live
        orders. Returns after how many more rested orders to call again."""
        live = len(self.orders)
        entries = sum(map(len, self.bids.values())) + sum(map(len, self.asks.values()))
        if entries + len(self.bids) + len(self.asks) > 3 * live + 64:
            self.rebuild()
        return 2 * live + _COMPACT_SLACK

    def rebuild(self) -> None:
        """Keep only live orders, in time order, and only non-empty levels."""
        for levels, heap, sign in ((self.bids, self.bid_heap, -1), (self.asks, self.ask_heap, 1)):
            kept = {}
            for price, level in levels.items():
                live = deque(o for o in level if o[OPEN])
                if live:
                    kept[price] = live
                    for o in live:
                        o[LEVEL] = live
            levels.clear()
            levels.update(kept)
            heap[:] = [p * sign for p in kept]
            heapify(heap)
