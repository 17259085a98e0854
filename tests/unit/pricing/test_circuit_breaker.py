"""The circuit breaker's rule over a window of trade prices."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bourse.domain.circuit_breaker import BreakerSettings, TradePoint, find_breach
from bourse.domain.errors import InvalidInput

D = Decimal
T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)


def trades(*prices: str) -> list[TradePoint]:
    return [TradePoint(i + 1, D(p), T0 + timedelta(seconds=i)) for i, p in enumerate(prices)]


def test_a_move_of_exactly_the_limit_does_not_trip():
    assert find_breach(trades("100", "105", "110", "90"), D("0.10")) is None


def test_the_first_trade_beyond_the_limit_trips_either_way():
    up = find_breach(trades("100", "105", "110.01", "120"), D("0.10"))
    assert up is not None
    assert (up.reference.trade_id, up.trade.trade_id, up.trade.price) == (1, 3, D("110.01"))
    assert up.move == D("0.100100")
    down = find_breach(trades("100", "95", "89.99"), D("0.10"))
    assert down is not None and down.trade.price == D("89.99") and down.move == D("-0.100100")


def test_the_reference_is_the_first_trade_by_id_whatever_the_order_given():
    points = trades("100", "111")
    breach = find_breach(list(reversed(points)), D("0.10"))
    assert breach is not None and breach.reference.price == D("100") and breach.trade.price == D("111")


def test_moves_between_later_trades_do_not_count():
    # 95 -> 104 is 9.5% up, but each is within 10% of the first trade, 100.
    assert find_breach(trades("100", "95", "104", "91"), D("0.10")) is None


def test_the_move_is_rounded_half_even_to_six_decimals():
    breach = find_breach(trades("3", "4"), D("0.10"))
    assert breach is not None and breach.move == D("0.333333")


def test_nothing_to_check():
    assert find_breach([], D("0.10")) is None
    assert find_breach(trades("100"), D("0.10")) is None
    assert find_breach(trades("100", "200"), D(0)) is None


def test_settings():
    s = BreakerSettings(D("0.10"), 300)
    assert s.enabled and s.window_start(T0) == T0 - timedelta(seconds=300)
    assert not BreakerSettings(D(0), 300).enabled
    assert not BreakerSettings(D("0.1"), 0).enabled
    with pytest.raises(InvalidInput):
        BreakerSettings(D(1), 300)
    with pytest.raises(InvalidInput):
        BreakerSettings(D("0.1"), -1)
