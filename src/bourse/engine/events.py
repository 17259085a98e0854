"""The contract's bus events of one committed batch (published only after its commit)."""

from __future__ import annotations

from bourse.domain.markets import Market
from bourse.domain.matching import MatchingEngine
from bourse.domain.order_views import order_v3
from bourse.domain.values import format_decimal
from bourse.engine.tick import Tick
from bourse.service.ports import EventBus

BOOK_LEVELS = 50

Depth = tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]


def book_after(bus: EventBus, tick: Tick, market: Market, engine: MatchingEngine) -> Depth | None:
    """The book's top levels as ``tick`` left them, if it changed the book and someone listens.

    Taken right after the tick: by the time its batch has committed, the engine may already hold
    the next batch's orders (the runner matches a batch while the one before it commits)."""
    if tick.book_changed and bus.has_subscribers(f"book.{market.id}"):
        return engine.depth(BOOK_LEVELS)
    return None


def publish_batch(
    bus: EventBus,
    tick: Tick,
    market: Market,
    book: Depth | None,
    trade_ids: dict[int, int],
    book_seq: int,
    ts: int,
) -> None:
    """``trades.<m>`` per trade in order, ``book.<m>`` (``book``: top levels, from ``book_after``) if
    the book changed, the v3 shape of every order the batch touched on ``orders.<account>``, and
    ``balances.<account>``. An event nobody subscribes to is not built (the book's depth and the
    orders' v3 shapes cost most)."""
    m = market.id
    for t in tick.trades if bus.has_subscribers(f"trades.{m}") else ():
        bus.publish(
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
    if book is not None:
        spec = market.spec()
        bids, asks = book
        bus.publish(
            f"book.{m}",
            {
                "marketId": m,
                "seq": book_seq,
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
    for order in tick.touched.values():
        topic = f"orders.{order.account_id}"
        if bus.has_subscribers(topic):
            bus.publish(topic, order_v3(order, market))
    for account, assets in tick.balances.items():
        topic = f"balances.{account}"
        if bus.has_subscribers(topic):
            bus.publish(topic, {"accountId": account, "assetIds": sorted(assets), "ts": ts})
