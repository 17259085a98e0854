"""The order lifecycle is one transition table; anything else is a bug that fails fast."""

from __future__ import annotations

import pytest

from bourse.domain.errors import InvariantViolation
from bourse.domain.orders import (
    FINAL_STATUSES,
    ORDER_TRANSITIONS,
    OrderEvent,
    OrderStatus,
    StopStatus,
    stop_transition,
    transition,
)

S = OrderStatus
E = OrderEvent


def walk(*events: OrderEvent) -> OrderStatus:
    status: OrderStatus | None = None
    for event in events:
        status = transition(status, event)
    assert status is not None
    return status


def test_a_resting_order_fills_in_parts() -> None:
    assert walk(E.ACCEPT, E.PLACE, E.PARTIAL_FILL, E.PARTIAL_FILL, E.FILL) is S.FILLED


def test_a_taker_partly_filled_then_resting_stays_partially_filled() -> None:
    assert walk(E.ACCEPT, E.PARTIAL_FILL, E.PLACE) is S.PARTIALLY_FILLED


def test_refused_orders_never_start() -> None:
    assert walk(E.REJECT) is S.REJECTED


@pytest.mark.parametrize("end", [E.CANCEL, E.EXPIRE])
@pytest.mark.parametrize("before", [(), (E.PLACE,), (E.PARTIAL_FILL,), (E.PLACE, E.PARTIAL_FILL)])
def test_live_orders_can_be_cancelled_or_expire(before: tuple[OrderEvent, ...], end: OrderEvent) -> None:
    assert walk(E.ACCEPT, *before, end) in (S.CANCELLED, S.EXPIRED)


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
@pytest.mark.parametrize("event", list(OrderEvent))
def test_final_states_accept_nothing(final: OrderStatus, event: OrderEvent) -> None:
    with pytest.raises(InvariantViolation):
        transition(final, event)


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (None, E.PLACE),  # on the book without being accepted
        (None, E.FILL),
        (S.STARTED, E.ACCEPT),  # accepted twice
        (S.PLACED, E.PLACE),
        (S.PLACED, E.REJECT),  # a resting order is cancelled, never rejected
        (S.PARTIALLY_FILLED, E.TRIGGER),
    ],
)
def test_illegal_transitions_raise(status: OrderStatus | None, event: OrderEvent) -> None:
    with pytest.raises(InvariantViolation) as info:
        transition(status, event)
    assert info.value.details["event"] == event.value


def test_the_table_only_leaves_live_states() -> None:
    assert not [key for key in ORDER_TRANSITIONS if key[0] in FINAL_STATUSES]


def test_stop_orders_wait_then_activate_or_are_cancelled() -> None:
    waiting = stop_transition(None, E.ACCEPT)
    assert waiting is StopStatus.WAITING_FOR_ACTIVATION
    assert stop_transition(waiting, E.TRIGGER) is StopStatus.ACTIVATED
    assert stop_transition(waiting, E.CANCEL) is StopStatus.CANCELLED
    assert stop_transition(waiting, E.EXPIRE) is StopStatus.CANCELLED
    # once activated the stop is an ordinary order; its stop status no longer moves
    for event in OrderEvent:
        with pytest.raises(InvariantViolation):
            stop_transition(StopStatus.ACTIVATED, event)
    # the order itself stays Started while waiting and across the trigger
    assert walk(E.ACCEPT, E.TRIGGER, E.PLACE) is S.PLACED
    assert walk(E.ACCEPT, E.TRIGGER, E.REJECT) is S.REJECTED
