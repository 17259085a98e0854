"""Same commands, same events, same state hash; a rebuilt book is the same book."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bourse.domain.errors import InvariantViolation
from bourse.domain.matching import (
    CancelOrder,
    EngineRules,
    MatchingEngine,
    PlaceOrder,
    RawEvent,
    typed,
)
from bourse.domain.matching.events import EventKind
from bourse.domain.orders import OrderStatus, OrderType, SelfTradePrevention, StopStatus, TimeInForce

from .support import BUY, SELL, Lifecycle, cancel, order

ACCOUNTS = ["a", "b", "c"]  # few accounts, so orders meet their own and self-trade prevention acts
Command = PlaceOrder | CancelOrder | int  # an int advances the clock to that time


@st.composite
def streams(draw: st.DrawFn) -> list[Command]:
    out: list[Command] = []
    now = 0
    for oid in range(1, draw(st.integers(0, 60)) + 1):
        kind = draw(
            st.sampled_from(
                ["plain", "plain", "limit", "limit", "market", "stop", "stop_limit", "cancel", "time"]
            )
        )
        side = draw(st.sampled_from([BUY, SELL]))
        account = draw(st.sampled_from(ACCOUNTS))
        qty = draw(st.integers(1, 12))
        price = draw(st.integers(96, 104))
        tif = draw(st.sampled_from(list(TimeInForce)))
        stp = draw(st.sampled_from([None, *SelfTradePrevention]))
        expire_at = now + draw(st.integers(1, 50)) if tif is TimeInForce.GTD else None
        if kind == "cancel":
            target = draw(st.integers(1, oid))
            out.append(cancel(target, draw(st.sampled_from([*ACCOUNTS, "x"]))))
        elif kind == "time":
            now += draw(st.integers(0, 30))
            out.append(now)
        elif kind == "plain":  # a Gtc limit order with the market's self-trade prevention
            out.append(order(oid, side, qty, price, account, slow=draw(st.booleans())))
        elif kind == "limit":
            post_only = draw(st.booleans()) and tif in (TimeInForce.GTC, TimeInForce.GTD)
            out.append(
                order(
                    oid, side, qty, price, account, tif=tif, post_only=post_only, expire_at=expire_at, stp=stp
                )
            )
        elif kind == "market":
            out.append(
                order(
                    oid,
                    side,
                    qty,
                    None,
                    account,
                    order_type=OrderType.MARKET,
                    tif=tif,
                    expire_at=expire_at,
                    stp=stp,
                )
            )
        else:
            limit = price if kind == "stop_limit" else None
            otype = OrderType.STOP_LIMIT if kind == "stop_limit" else OrderType.STOP
            stop = draw(st.integers(96, 104))
            out.append(
                order(
                    oid,
                    side,
                    qty,
                    limit,
                    account,
                    order_type=otype,
                    stop_price=stop,
                    tif=tif,
                    expire_at=expire_at,
                    stp=stp,
                )
            )
    return out


def run(engine: MatchingEngine, commands: list[Command]) -> list[RawEvent]:
    events: list[RawEvent] = []
    for c in commands:
        if isinstance(c, int):
            events.extend(engine.on_time(c))
        elif isinstance(c, PlaceOrder):
            events.extend(engine.place(c))
        else:
            events.extend(engine.cancel(c))
    return events


def new_engine() -> MatchingEngine:
    return MatchingEngine(EngineRules(band_num=1, band_den=20))


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(streams(), st.integers(0, 60))
def test_same_stream_same_events_and_hash_and_a_rebuilt_book_carries_on_identically(
    commands: list[Command], cut: int
) -> None:
    first, second = new_engine(), new_engine()
    assert run(first, commands) == run(second, commands)
    assert first.state_hash() == second.state_hash()

    # rebuild from the state at the cut: same hash, and the rest of the stream plays out the same
    head, tail = commands[:cut], commands[cut:]
    original = new_engine()
    run(original, head)
    rebuilt = MatchingEngine.restore(original.state(), EngineRules(band_num=1, band_den=20))
    assert rebuilt.state_hash() == original.state_hash()
    assert run(rebuilt, tail) == run(original, tail)
    assert rebuilt.state_hash() == original.state_hash() == first.state_hash()


@SETTINGS
@given(streams())
def test_every_event_stream_is_a_legal_walk_through_the_lifecycle(commands: list[Command]) -> None:
    engine = new_engine()
    life = Lifecycle()
    quantity: dict[int, int] = {}
    traded: dict[int, int] = defaultdict(int)
    for c in commands:
        if isinstance(c, PlaceOrder):
            life.submit(c)
            quantity.setdefault(c.order_id, c.quantity)
        events = run(engine, [c])
        life.apply(events)  # raises InvariantViolation on an illegal transition
        for e in events:
            t: Any = typed(e)
            if e[0] is EventKind.TRADE:
                traded[t.maker_order_id] += t.quantity
                traded[t.taker_order_id] += t.quantity
            elif e[0] in (EventKind.FILLED, EventKind.PARTIALLY_FILLED):
                assert t.filled_quantity == traded[t.order_id]
            elif e[0] in (EventKind.CANCELLED, EventKind.EXPIRED):
                assert t.filled_quantity == traded[t.order_id]
                assert t.cancelled_quantity + t.filled_quantity == quantity[t.order_id]

    state = engine.state()
    resting = {o.order_id for o in state.orders}
    live = {oid for oid, s in life.status.items() if s in (OrderStatus.PLACED, OrderStatus.PARTIALLY_FILLED)}
    assert resting == live
    for o in state.orders:
        assert o.open_quantity + traded[o.order_id] == o.quantity
    waiting = {oid for oid, s in life.stop_status.items() if s is StopStatus.WAITING_FOR_ACTIVATION}
    assert {s.order.order_id for s in state.stops} == waiting
    assert all(life.status[oid] is OrderStatus.STARTED for oid in waiting)


def test_self_trade_prevention_never_lets_an_account_trade_with_itself() -> None:
    @SETTINGS
    @given(streams())
    def check(commands: list[Command]) -> None:
        engine = MatchingEngine(EngineRules(band_num=1, band_den=20, stp=SelfTradePrevention.CANCEL_NEWEST))
        plain = [
            c for c in commands if not (isinstance(c, PlaceOrder) and c.terms.stp is SelfTradePrevention.NONE)
        ]
        for e in run(engine, plain):
            if e[0] is EventKind.TRADE:
                assert e[6] != e[7]

    check()


def test_the_hash_tells_different_books_apart() -> None:
    a, b = new_engine(), new_engine()
    for e in (a, b):
        e.place(order(1, BUY, 5, 100))
        e.place(order(2, SELL, 5, 101))
    assert a.state_hash() == b.state_hash()
    b.place(order(3, SELL, 1, 102))
    assert a.state_hash() != b.state_hash()
    b.cancel(cancel(3))
    # the cancelled entry still sits in its level, lazily; it is not part of the state
    assert b.state().orders == a.state().orders
    assert MatchingEngine.restore(b.state()).state_hash() == b.state_hash()
    a.place(order(4, BUY, 1, 99))
    c = new_engine()
    for cmd in (order(1, BUY, 5, 100), order(2, SELL, 5, 101), order(4, BUY, 1, 99, "other")):
        c.place(cmd)
    assert a.state().orders != c.state().orders
    assert a.state_hash() != c.state_hash()  # who owns the order matters


def test_lazy_cancels_are_compacted_without_losing_time_priority() -> None:
    engine = new_engine()
    engine.place(order(1, SELL, 5, 100))
    oid = 1
    for _ in range(30_000):
        oid += 1
        engine.place(order(oid, SELL, 1, 100))
        engine.place(order(oid + 100_000, SELL, 1, 200 + oid % 500))  # deep levels that empty again
        engine.cancel(cancel(oid))
        engine.cancel(cancel(oid + 100_000))
    engine.place(order(2, SELL, 5, 100))
    book = engine._book  # the garbage must stay bounded, whatever the stream
    entries = sum(len(level) for level in book.asks.values())
    assert entries < 3 * len(book.orders) + 2 * 4096
    assert len(book.ask_heap) == len(book.asks) < 4096 + 10
    events = engine.place(order(3, BUY, 10, 100))
    assert [(e[4], e[3]) for e in events if e[0] is EventKind.TRADE] == [(1, 5), (2, 5)]


def test_a_rebuild_refuses_states_the_engine_cannot_have_left() -> None:
    engine = new_engine()
    engine.place(order(1, BUY, 5, 100))
    engine.place(order(2, SELL, 5, 101))
    state = engine.state()
    duplicate = state._replace(orders=(*state.orders, state.orders[0]))
    crossed = state._replace(orders=(state.orders[0]._replace(price=101), state.orders[1]))
    empty = state._replace(orders=(state.orders[0]._replace(open_quantity=0), state.orders[1]))
    for bad in (duplicate, crossed, empty):
        with pytest.raises(InvariantViolation):
            MatchingEngine.restore(bad)
    assert MatchingEngine.restore(state).depth() == engine.depth()
