"""The matching rules a trader relies on, one at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bourse.domain.matching import EngineRules, MarketStatus, MatchingEngine, PlaceOrder, RawEvent, typed
from bourse.domain.matching.events import (
    EVENT_TYPES,
    CancelRejected,
    EventKind,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPlaced,
    OrderRejected,
    StopTriggered,
    Trade,
)
from bourse.domain.orders import (
    CancelReason,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

from .support import BUY, SELL, book, cancel, fills, kinds, of_kind, order, trades

K = EventKind
STP = SelfTradePrevention


def engine(stp: SelfTradePrevention = STP.CANCEL_NEWEST, **kw: int) -> MatchingEngine:
    return MatchingEngine(EngineRules(stp=stp, **kw))


def rejected(events: Sequence[RawEvent]) -> RejectReason:
    assert kinds(events) == [K.REJECTED], events
    reason: RejectReason = events[0][4]
    return reason


def ev(cls: Any, *fields: Any) -> Any:
    """A typed event of ``cls`` (its kind filled in) to compare raw events with."""
    return cls(KIND_OF[cls], *fields)


KIND_OF = {cls: kind for kind, cls in EVENT_TYPES.items()}


def reason_of(event: RawEvent) -> Any:
    return typed(event).reason  # type: ignore[union-attr]


# -- price-time priority and fills ----------------------------------------------------------


def test_best_price_first_then_oldest_first_at_the_makers_price() -> None:
    e = engine()
    e.place(order(1, SELL, 5, 101))
    e.place(order(2, SELL, 5, 101))
    e.place(order(3, SELL, 5, 100))
    events = e.place(order(4, BUY, 12, 102))
    assert fills(events) == [(3, 4, 5, 100), (1, 4, 5, 101), (2, 4, 2, 101)]
    assert [typed(x) for x in events] == [
        ev(OrderAccepted, 4, "acct-4", None),
        ev(Trade, 1, 100, 5, 3, 4, "acct-3", "acct-4", BUY),
        ev(OrderFilled, 3, 5),
        ev(Trade, 2, 101, 5, 1, 4, "acct-1", "acct-4", BUY),
        ev(OrderFilled, 1, 5),
        ev(Trade, 3, 101, 2, 2, 4, "acct-2", "acct-4", BUY),
        ev(OrderPartiallyFilled, 2, 2, 3),
        ev(OrderFilled, 4, 12),
    ]
    assert e.last_price == 101
    assert book(e) == {"bids": [], "asks": [(101, 2, 3)]}
    assert e.depth() == ([], [(101, 3, 1)])


def test_a_gtc_remainder_rests_at_its_limit() -> None:
    e = engine()
    e.place(order(1, BUY, 5, 99))
    e.place(order(2, SELL, 4, 99))
    events = e.place(order(3, SELL, 9, 98))
    assert fills(events) == [(1, 3, 1, 99)]
    assert kinds(events)[-2:] == [K.PARTIALLY_FILLED, K.PLACED]
    assert typed(events[-1]) == ev(OrderPlaced, 3, 98, 8)
    assert book(e) == {"bids": [], "asks": [(98, 3, 8)]}


def test_a_partially_filled_maker_keeps_its_place_in_the_queue() -> None:
    e = engine()
    e.place(order(1, SELL, 10, 100))
    e.place(order(2, SELL, 10, 100))
    e.place(order(3, BUY, 4, 100))
    assert fills(e.place(order(4, BUY, 8, 100))) == [(1, 4, 6, 100), (2, 4, 2, 100)]


def test_cancelled_orders_never_trade_and_leave_the_queue_in_order() -> None:
    e = engine()
    for oid in range(1, 6):
        e.place(order(oid, SELL, 1, 100))
    assert kinds(e.cancel(cancel(1))) == [K.CANCELLED]
    assert kinds(e.cancel(cancel(3))) == [K.CANCELLED]
    assert [f[0] for f in fills(e.place(order(9, BUY, 10, 100)))] == [2, 4, 5]


# -- time in force --------------------------------------------------------------------------


def test_ioc_cancels_what_does_not_fill_at_once() -> None:
    e = engine()
    e.place(order(1, SELL, 3, 100))
    events = e.place(order(2, BUY, 5, 100, tif=TimeInForce.IOC))
    assert kinds(events) == [K.ACCEPTED, K.TRADE, K.FILLED, K.PARTIALLY_FILLED, K.CANCELLED]
    assert typed(events[-1]) == ev(OrderCancelled, 2, CancelReason.IOC_REMAINDER, 2, 3)
    assert book(e) == {"bids": [], "asks": []}
    nothing = e.place(order(3, BUY, 5, 100, tif=TimeInForce.IOC))
    assert kinds(nothing) == [K.ACCEPTED, K.CANCELLED]


def test_fok_is_all_or_nothing_checked_before_any_fill() -> None:
    e = engine()
    e.place(order(1, SELL, 3, 100))
    e.place(order(2, SELL, 3, 101))
    e.place(order(3, SELL, 3, 103))
    assert rejected(e.place(order(4, BUY, 7, 102, tif=TimeInForce.FOK))) is RejectReason.FOK_NOT_FILLABLE
    assert len(book(e)["asks"]) == 3  # nothing traded
    events = e.place(order(5, BUY, 6, 102, tif=TimeInForce.FOK))
    assert fills(events) == [(1, 5, 3, 100), (2, 5, 3, 101)]
    assert kinds(events)[-1] is K.FILLED


def test_fok_counts_only_liquidity_self_trade_prevention_lets_it_reach() -> None:
    e = engine()
    e.place(order(1, SELL, 3, 100, "me"))
    e.place(order(2, SELL, 5, 100, "them"))
    assert (
        rejected(e.place(order(3, BUY, 5, 100, "me", tif=TimeInForce.FOK))) is RejectReason.FOK_NOT_FILLABLE
    )
    oldest = order(4, BUY, 5, 100, "me", tif=TimeInForce.FOK, stp=STP.CANCEL_OLDEST)
    events = e.place(oldest)
    assert fills(events) == [(2, 4, 5, 100)]
    assert of_kind(events, K.CANCELLED)[0][1] == 1


def test_gtd_orders_expire_at_their_time() -> None:
    e = engine()
    e.on_time(1_000)
    e.place(order(1, SELL, 5, 100, tif=TimeInForce.GTD, expire_at=2_000))
    e.place(order(2, SELL, 5, 100, tif=TimeInForce.GTD, expire_at=3_000))
    e.place(order(3, BUY, 2, 100))
    assert e.on_time(1_999) == []
    expired = e.on_time(2_000)
    assert [typed(x) for x in expired] == [ev(OrderExpired, 1, 3, 2)]
    e.cancel(cancel(2))
    assert e.on_time(5_000) == []  # a cancelled order does not expire again
    assert book(e) == {"bids": [], "asks": []}


@pytest.mark.parametrize(
    ("tif", "expire_at"),
    [(TimeInForce.GTD, None), (TimeInForce.GTD, 1_000), (TimeInForce.GTD, 500), (TimeInForce.GTC, 5_000)],
)
def test_expiry_must_be_given_in_the_future_and_only_for_gtd(tif: TimeInForce, expire_at: int | None) -> None:
    e = engine()
    e.on_time(1_000)
    assert (
        rejected(e.place(order(1, BUY, 1, 100, tif=tif, expire_at=expire_at))) is RejectReason.INVALID_EXPIRY
    )


# -- post-only ------------------------------------------------------------------------------


def test_post_only_rests_or_is_rejected_never_takes() -> None:
    e = engine()
    e.place(order(1, SELL, 5, 100))
    assert rejected(e.place(order(2, BUY, 5, 100, post_only=True))) is RejectReason.POST_ONLY_WOULD_CROSS
    assert kinds(e.place(order(3, BUY, 5, 99, post_only=True))) == [K.ACCEPTED, K.PLACED]
    e.cancel(cancel(1))  # the level at 100 is now empty: nothing to cross any more
    assert kinds(e.place(order(4, BUY, 5, 100, post_only=True))) == [K.ACCEPTED, K.PLACED]


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_post_only_cannot_be_immediate(tif: TimeInForce) -> None:
    e = engine()
    assert (
        rejected(e.place(order(1, BUY, 5, 99, post_only=True, tif=tif))) is RejectReason.INVALID_TIME_IN_FORCE
    )


# -- self-trade prevention ------------------------------------------------------------------


def test_cancel_newest_stops_the_incoming_order_at_its_own_resting_order() -> None:
    e = engine(STP.CANCEL_NEWEST)
    e.place(order(1, SELL, 3, 100, "them"))
    e.place(order(2, SELL, 5, 100, "me"))
    events = e.place(order(3, BUY, 5, 100, "me"))
    assert fills(events) == [(1, 3, 3, 100)]
    assert typed(events[-1]) == ev(OrderCancelled, 3, CancelReason.SELF_TRADE_PREVENTION, 2, 3)
    assert book(e)["asks"] == [(100, 2, 5)]


def test_cancel_oldest_removes_the_resting_order_and_keeps_matching() -> None:
    e = engine(STP.CANCEL_OLDEST)
    e.place(order(1, SELL, 5, 100, "me"))
    e.place(order(2, SELL, 5, 101, "them"))
    events = e.place(order(3, BUY, 5, 101, "me"))
    assert kinds(events) == [K.ACCEPTED, K.CANCELLED, K.TRADE, K.FILLED, K.FILLED]
    assert typed(events[1]) == ev(OrderCancelled, 1, CancelReason.SELF_TRADE_PREVENTION, 5, 0)
    assert fills(events) == [(2, 3, 5, 101)]
    assert e.cancel(cancel(1, "me"))[0][0] is K.CANCEL_REJECTED


def test_cancel_both_cancels_each_side() -> None:
    e = engine(STP.CANCEL_BOTH)
    e.place(order(1, SELL, 5, 100, "me"))
    events = e.place(order(2, BUY, 3, 100, "me"))
    assert [(x[0], x[1]) for x in events] == [(K.ACCEPTED, 2), (K.CANCELLED, 1), (K.CANCELLED, 2)]
    assert book(e) == {"bids": [], "asks": []}


def test_the_incoming_order_may_choose_its_own_prevention() -> None:
    e = engine(STP.CANCEL_NEWEST)
    e.place(order(1, SELL, 5, 100, "me"))
    events = e.place(order(2, BUY, 5, 100, "me", stp=STP.NONE))
    assert fills(events) == [(1, 2, 5, 100)]


# -- market orders and the price band -------------------------------------------------------


def market(oid: int, side: Side, qty: int, **kw: Any) -> PlaceOrder:
    return order(oid, side, qty, None, order_type=OrderType.MARKET, **kw)


def test_market_orders_never_fill_beyond_the_band_around_the_last_price() -> None:
    e = engine(band_num=1, band_den=10)
    e.place(order(1, SELL, 1, 100))
    e.place(order(2, BUY, 1, 100))  # last = 100: a buy may go up to 110
    e.place(order(3, SELL, 3, 105))
    e.place(order(4, SELL, 3, 110))
    e.place(order(5, SELL, 5, 111))
    events = e.place(market(6, BUY, 10))
    assert fills(events) == [(3, 6, 3, 105), (4, 6, 3, 110)]
    assert typed(events[-1]) == ev(OrderCancelled, 6, CancelReason.PRICE_BAND, 4, 6)
    # the band moves with the last price (now 110): 111 is within 121
    assert fills(e.place(market(7, BUY, 2))) == [(5, 7, 2, 111)]


def test_a_sell_market_order_is_bounded_below() -> None:
    e = engine(band_num=1, band_den=10)
    e.place(order(1, BUY, 1, 100))
    e.place(order(2, SELL, 1, 100))
    e.place(order(3, BUY, 2, 90))
    e.place(order(4, BUY, 2, 89))
    events = e.place(market(5, SELL, 4))
    assert fills(events) == [(3, 5, 2, 90)]
    assert reason_of(events[-1]) is CancelReason.PRICE_BAND


def test_before_the_first_trade_the_best_opposite_price_anchors_the_band() -> None:
    e = engine(band_num=1, band_den=10)
    e.place(order(1, SELL, 1, 200))
    e.place(order(2, SELL, 1, 225))
    events = e.place(market(3, BUY, 2))
    assert fills(events) == [(1, 3, 1, 200)]


def test_market_orders_need_liquidity() -> None:
    e = engine()
    assert rejected(e.place(market(1, BUY, 1))) is RejectReason.NO_LIQUIDITY
    e.place(order(2, SELL, 1, 100))
    events = e.place(market(3, BUY, 4))
    assert typed(events[-1]) == ev(OrderCancelled, 3, CancelReason.NO_LIQUIDITY, 3, 1)


def test_market_orders_take_no_price_and_cannot_be_post_only() -> None:
    e = engine()
    assert rejected(e.place(order(1, BUY, 1, 100, order_type=OrderType.MARKET))) is RejectReason.INVALID_PRICE
    assert rejected(e.place(market(2, BUY, 1, post_only=True))) is RejectReason.INVALID_TIME_IN_FORCE


def test_market_fok_must_fill_inside_the_band() -> None:
    e = engine(band_num=1, band_den=10)
    e.place(order(1, SELL, 1, 100))
    e.place(order(2, SELL, 5, 111))
    assert rejected(e.place(market(3, BUY, 2, tif=TimeInForce.FOK))) is RejectReason.FOK_NOT_FILLABLE


# -- stops ----------------------------------------------------------------------------------


def trade_at(e: MatchingEngine, price: int, oid: int) -> None:
    e.place(order(oid, SELL, 1, price, "maker"))
    assert trades(e.place(order(oid + 1, BUY, 1, price, "taker")))


def test_a_buy_stop_waits_until_the_last_price_reaches_it() -> None:
    e = engine()
    trade_at(e, 100, 900)
    assert kinds(e.place(order(1, BUY, 2, None, order_type=OrderType.STOP, stop_price=105))) == [K.ACCEPTED]
    e.place(order(2, SELL, 5, 106))
    trade_at(e, 104, 910)
    assert e.waiting_stops()[0].order_id == 1
    e.place(order(920, SELL, 1, 105, "maker"))
    events = e.place(order(921, BUY, 1, 105, "taker"))
    i = kinds(events).index(K.STOP_TRIGGERED)
    assert typed(events[i]) == ev(StopTriggered, 1, 105)
    assert fills(events[i:]) == [(2, 1, 2, 106)]
    assert e.waiting_stops() == []


def test_a_sell_stop_limit_triggers_at_or_below_and_rests_as_a_limit() -> None:
    e = engine()
    trade_at(e, 100, 900)
    e.place(order(1, SELL, 4, 94, order_type=OrderType.STOP_LIMIT, stop_price=95))
    trade_at(e, 96, 910)
    assert [s.order_id for s in e.waiting_stops()] == [1]
    e.place(order(920, BUY, 1, 95, "maker"))
    events = e.place(order(921, SELL, 1, 95, "taker"))
    assert kinds(events) == [K.ACCEPTED, K.TRADE, K.FILLED, K.FILLED, K.STOP_TRIGGERED, K.PLACED]
    assert typed(events[-1]) == ev(OrderPlaced, 1, 94, 4)
    assert book(e)["asks"] == [(94, 1, 4)]


def test_stops_reached_together_activate_in_placement_order_and_cascade() -> None:
    e = engine()
    trade_at(e, 100, 900)
    e.place(order(1, BUY, 1, None, order_type=OrderType.STOP, stop_price=103))
    e.place(order(2, BUY, 1, None, order_type=OrderType.STOP, stop_price=102))
    e.place(order(3, BUY, 1, None, order_type=OrderType.STOP, stop_price=108))
    for oid, price in ((10, 105), (11, 108), (12, 109)):
        e.place(order(oid, SELL, 1, price, "maker"))
    e.place(order(20, SELL, 1, 104, "maker"))
    events = e.place(order(21, BUY, 1, 104, "taker"))
    triggered = [x[1] for x in of_kind(events, K.STOP_TRIGGERED)]
    # 1 and 2 are reached by 104 together, 1 was placed first; 2's fill at 108 reaches 3
    assert triggered == [1, 2, 3]
    assert [(f[0], f[1], f[3]) for f in fills(events)] == [
        (20, 21, 104),
        (10, 1, 105),
        (11, 2, 108),
        (12, 3, 109),
    ]


def test_a_stop_already_reached_is_activated_at_once() -> None:
    e = engine()
    trade_at(e, 100, 900)
    e.place(order(1, SELL, 1, 101))
    events = e.place(order(2, BUY, 1, None, order_type=OrderType.STOP, stop_price=99))
    assert kinds(events)[:2] == [K.ACCEPTED, K.STOP_TRIGGERED]
    assert fills(events) == [(1, 2, 1, 101)]


def test_waiting_stops_can_be_cancelled_and_expire() -> None:
    e = engine()
    trade_at(e, 100, 900)
    e.place(order(1, BUY, 1, None, order_type=OrderType.STOP, stop_price=105))
    e.place(
        order(
            2, BUY, 1, 106, order_type=OrderType.STOP_LIMIT, stop_price=105, tif=TimeInForce.GTD, expire_at=50
        )
    )
    assert typed(e.cancel(cancel(1))[0]) == ev(OrderCancelled, 1, CancelReason.REQUESTED, 1, 0)
    assert [typed(x) for x in e.on_time(50)] == [ev(OrderExpired, 2, 1, 0)]
    e.place(order(3, SELL, 5, 106))
    trade_at(e, 105, 910)
    assert book(e)["asks"] == [(106, 3, 5)]  # neither stop came back


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"order_type": OrderType.STOP, "stop_price": None}, RejectReason.INVALID_STOP_PRICE),
        ({"order_type": OrderType.STOP, "stop_price": 0}, RejectReason.INVALID_STOP_PRICE),
        ({"order_type": OrderType.STOP, "stop_price": 5, "price": 5}, RejectReason.INVALID_PRICE),
        ({"order_type": OrderType.STOP_LIMIT, "stop_price": 5}, RejectReason.INVALID_PRICE),
        ({"order_type": OrderType.LIMIT, "stop_price": 5, "price": 5}, RejectReason.INVALID_STOP_PRICE),
        (
            {"order_type": OrderType.STOP, "stop_price": 5, "post_only": True},
            RejectReason.INVALID_TIME_IN_FORCE,
        ),
    ],
)
def test_stop_orders_are_checked(kw: dict[str, Any], reason: RejectReason) -> None:
    price = kw.pop("price", None)
    assert rejected(engine().place(order(1, BUY, 1, price, **kw))) is reason


# -- market status and rejections -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (MarketStatus.HALTED, RejectReason.MARKET_HALTED),
        (MarketStatus.CLOSE_ONLY, RejectReason.MARKET_CLOSE_ONLY),
    ],
)
def test_halted_and_close_only_markets_refuse_orders_but_allow_cancels(
    status: MarketStatus, reason: RejectReason
) -> None:
    e = engine()
    e.place(order(1, SELL, 5, 100))
    e.set_status(status)
    assert rejected(e.place(order(2, BUY, 5, 100))) is reason
    assert rejected(e.place(order(3, BUY, 1, None, order_type=OrderType.STOP, stop_price=9))) is reason
    assert kinds(e.cancel(cancel(1))) == [K.CANCELLED]
    e.set_status(MarketStatus.ACTIVE)
    assert kinds(e.place(order(4, BUY, 5, 100))) == [K.ACCEPTED, K.PLACED]


@pytest.mark.parametrize(
    ("qty", "price", "reason"),
    [
        (0, 100, RejectReason.INVALID_QUANTITY),
        (-1, 100, RejectReason.INVALID_QUANTITY),
        (1_001, 100, RejectReason.INVALID_QUANTITY),
        (1, 0, RejectReason.INVALID_PRICE),
        (1, 10_001, RejectReason.INVALID_PRICE),
        (1, None, RejectReason.INVALID_PRICE),
    ],
)
def test_quantities_and_prices_outside_the_market_limits_are_rejected(
    qty: int, price: int | None, reason: RejectReason
) -> None:
    e = MatchingEngine(EngineRules(max_price=10_000, max_quantity=1_000))
    assert rejected(e.place(order(1, BUY, qty, price))) is reason
    assert typed(e.place(order(1, BUY, qty, price))[0]) == ev(OrderRejected, 1, "acct-1", None, reason)


def test_order_ids_and_client_order_ids_are_unique_among_live_orders() -> None:
    e = engine()
    e.place(order(1, BUY, 1, 90, "a", client_id="x"))
    assert rejected(e.place(order(1, BUY, 1, 90, "b"))) is RejectReason.DUPLICATE_ORDER_ID
    assert (
        rejected(e.place(order(2, BUY, 1, 90, "a", client_id="x"))) is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    )
    assert kinds(e.place(order(3, BUY, 1, 90, "b", client_id="x"))) == [K.ACCEPTED, K.PLACED]
    e.place(order(4, BUY, 1, None, "a", order_type=OrderType.STOP, stop_price=200, client_id="s"))
    assert (
        rejected(e.place(order(5, BUY, 1, 90, "a", client_id="s"))) is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    )
    e.cancel(cancel(1, "a"))
    assert kinds(e.place(order(6, BUY, 1, 90, "a", client_id="x"))) == [K.ACCEPTED, K.PLACED]
    # a filled order frees its client order id too
    e.place(order(7, SELL, 2, 90, "c"))
    assert kinds(e.place(order(8, BUY, 1, 90, "b", client_id="x")))[-1] is K.PLACED


def test_cancelling_an_unknown_or_someone_elses_order_is_rejected_without_effect() -> None:
    e = engine()
    e.place(order(1, BUY, 1, 90, "owner"))
    for cmd in (cancel(2, "owner"), cancel(1, "intruder")):
        assert [typed(x) for x in e.cancel(cmd)] == [
            ev(CancelRejected, cmd.order_id, cmd.account_id, RejectReason.UNKNOWN_ORDER)
        ]
    assert book(e)["bids"] == [(90, 1, 1)]
    e.cancel(cancel(1, "owner"))
    assert e.cancel(cancel(1, "owner"))[0][0] is K.CANCEL_REJECTED


def test_typed_views_refuse_malformed_events() -> None:
    with pytest.raises(ValueError):
        typed((K.FILLED, 1))
