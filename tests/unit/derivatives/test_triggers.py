"""Triggers: Price/Rate/Points/Pnl conversions, the take-profit ladder, OCO and the trailing stop."""

from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.positions import CloseReason, PositionSide
from bourse.domain.triggers import (
    Firing,
    StopLoss,
    TakeProfitLevel,
    Triggers,
    TriggerType,
    TriggerValues,
    evaluate,
    new_trailing_stop,
    take_profit_ladder,
    trailing_rate_from_price,
    trailing_stop_price,
    trigger_values,
    validate_trailing_rate,
)
from tests.unit.derivatives.support import SPEC, D, position

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
BASE = D("0.03")  # 3 lots
ENTRY = D("50000")


def values(kind, side, trigger_type, size, **kw) -> TriggerValues:
    return trigger_values(kind, side, ENTRY, BASE, SPEC, trigger_type, D(size), **kw)


# --- conversions ----------------------------------------------------------------------------------


def test_long_take_profit_all_four_ways():
    # Price 51000: distance 1000 = 1000 / 50000 = 0.02 of entry = 2000 ticks of 0.5; pnl 1000 * 0.03 = 30.00
    assert values("tp", LONG, TriggerType.PRICE, "51000") == TriggerValues(
        D("51000"), D("0.02"), 2000, D("30.00")
    )
    # Rate 0.0123: 50000 * 1.0123 = 50615 (on the tick); 615 / 0.5 = 1230 ticks; 615 * 0.03 = 18.45
    assert values("tp", LONG, TriggerType.RATE, "0.0123") == TriggerValues(
        D("50615.0"), D("0.0123"), 1230, D("18.45")
    )
    # Points 7: 50000 + 7 * 0.5 = 50003.5; rate 3.5 / 50000 = 0.00007; pnl 3.5 * 0.03 = 0.105 -> half-even 0.10
    assert values("tp", LONG, TriggerType.POINTS, "7") == TriggerValues(
        D("50003.5"), D("0.00007"), 7, D("0.10")
    )
    # Pnl 10: 50000 + 10 / 0.03 = 50333.33.. -> nearest tick 50333.5; 333.5 / 50000 = 0.00667; 667 ticks;
    # pnl back 333.5 * 0.03 = 10.005 -> half-even 10.00
    assert values("tp", LONG, TriggerType.PNL, "10") == TriggerValues(
        D("50333.5"), D("0.00667"), 667, D("10.00")
    )


def test_long_stop_loss_and_both_spellings_of_a_pnl_stop():
    # Rate 0.01 below: 49500.0; 500 / 0.5 = 1000 ticks; pnl -500 * 0.03 = -15.00
    expected = TriggerValues(D("49500.0"), D("0.01"), 1000, D("-15.00"))
    assert values("sl", LONG, TriggerType.RATE, "0.01") == expected
    assert values("sl", LONG, TriggerType.PNL, "15") == expected
    assert values("sl", LONG, TriggerType.PNL, "-15") == expected
    assert values("sl", LONG, TriggerType.PRICE, "49500") == TriggerValues(
        D("49500"), D("0.01"), 1000, D("-15.00")
    )


def test_short_take_profit_and_stop_loss():
    # TP Rate 0.01 below for a short: 49500.0, pnl (50000 - 49500) * 0.03 = +15.00
    assert values("tp", SHORT, TriggerType.RATE, "0.01") == TriggerValues(
        D("49500.0"), D("0.01"), 1000, D("15.00")
    )
    # SL Points 100 above: 50000 + 50 = 50050.0; rate 50 / 50000 = 0.001; pnl -50 * 0.03 = -1.50
    assert values("sl", SHORT, TriggerType.POINTS, "100") == TriggerValues(
        D("50050.0"), D("0.001"), 100, D("-1.50")
    )
    # SL Pnl 20: 50000 + 20 / 0.03 = 50666.66.. -> 50666.5; pnl -666.5 * 0.03 = -19.995 -> -20.00 (half-even)
    assert values("sl", SHORT, TriggerType.PNL, "20") == TriggerValues(
        D("50666.5"), D("0.01333"), 1333, D("-20.00")
    )


@pytest.mark.parametrize(
    ("kind", "side", "trigger_type", "size"),
    [
        ("tp", LONG, TriggerType.PRICE, "49000"),  # a long's TP below entry
        ("sl", LONG, TriggerType.PRICE, "51000"),  # a long's SL above entry
        ("tp", SHORT, TriggerType.PRICE, "51000"),
        ("sl", SHORT, TriggerType.PRICE, "49000"),
        ("tp", LONG, TriggerType.PRICE, "50000"),  # at entry
        ("tp", LONG, TriggerType.PNL, "-10"),  # a TP is a profit
        ("tp", LONG, TriggerType.RATE, "0"),
        ("sl", LONG, TriggerType.RATE, "-0.01"),
        ("sl", LONG, TriggerType.RATE, "1"),  # price 0
        ("tp", LONG, TriggerType.POINTS, "1.5"),  # not whole ticks
        ("tp", LONG, TriggerType.PRICE, "50000.3"),  # off the tick
    ],
)
def test_wrong_side_and_bad_sizes_are_refused(kind, side, trigger_type, size):
    with pytest.raises(InvalidInput) as e:
        values(kind, side, trigger_type, size)
    assert e.value.details["field"] == ("takeProfit" if kind == "tp" else "stopLoss")


def test_an_existing_position_checks_the_side_against_the_mark():
    # long entered at 50000, mark 51000: a stop-loss at 50500 locks in profit; its values stay relative to entry
    got = values("sl", LONG, TriggerType.PRICE, "50500", reference=D("51000"))
    assert got == TriggerValues(D("50500"), D("-0.01"), -1000, D("15.00"))
    with pytest.raises(InvalidInput):
        values("sl", LONG, TriggerType.PRICE, "51500", reference=D("51000"))


# --- trailing rate ------------------------------------------------------------------------------


def test_trailing_rate_bounds_and_from_a_price():
    assert validate_trailing_rate(D("0.001")) == D("0.001")
    assert validate_trailing_rate(D("0.05")) == D("0.05")
    for bad in ("0.0009", "0.0501", "0"):
        with pytest.raises(InvalidInput):
            validate_trailing_rate(D(bad))
    # |50000 - 49500| / 50000 = 0.01
    assert trailing_rate_from_price(D("49500"), D("50000")) == D("0.01")
    assert trailing_rate_from_price(D("50250"), D("50000")) == D("0.005")
    with pytest.raises(InvalidInput):
        trailing_rate_from_price(D("49990"), D("50000"))  # 0.0002 is too tight
    with pytest.raises(InvalidInput):
        trailing_rate_from_price(D("47000"), D("50000"))  # 0.06 is too wide


# --- evaluation ---------------------------------------------------------------------------------


def ladder() -> Triggers:
    return Triggers(
        take_profit=take_profit_ladder([(D(51000), D(3)), (D(52000), D(3)), (D(53000), D(4))], D(10)),
        stop_loss=StopLoss(D(49000)),
    )


def test_take_profit_ladder_fires_level_by_level_and_the_last_cancels_the_stop_loss():
    p = position(lots="10", margin="500.00")
    triggers = ladder()
    fired, triggers = evaluate(p, triggers, D("50500"), SPEC)
    assert fired == [] and triggers.stop_loss is not None
    fired, triggers = evaluate(p, triggers, D("51000"), SPEC)
    assert fired == [Firing(CloseReason.TAKE_PROFIT, D(3))]
    p.lots -= 3  # the service closes the lots
    fired, triggers = evaluate(p, triggers, D("51500"), SPEC)
    assert fired == []
    # a jump past both remaining levels fires both, nearest first
    fired, triggers = evaluate(p, triggers, D("53500"), SPEC)
    assert fired == [Firing(CloseReason.TAKE_PROFIT, D(3)), Firing(CloseReason.TAKE_PROFIT, D(4))]
    assert all(level.done for level in triggers.take_profit) and triggers.stop_loss is None  # OCO
    assert triggers.is_empty


def test_short_ladder_and_lots_capped_to_what_is_left():
    p = position(PositionSide.SHORT, lots="5")  # 5 lots left after a manual partial close
    triggers = Triggers([TakeProfitLevel(D(49000), D(3)), TakeProfitLevel(D(48000), D(3))])
    fired, triggers = evaluate(p, triggers, D("48000"), SPEC)
    assert fired == [Firing(CloseReason.TAKE_PROFIT, D(3)), Firing(CloseReason.TAKE_PROFIT, D(2))]


def test_stop_loss_fires_everything_and_cancels_the_take_profits():
    p = position(lots="10", margin="500.00")
    triggers = ladder()
    triggers.stop_loss = StopLoss(D(49000), limit_price=D("48800"))
    fired, after = evaluate(p, triggers, D("48900"), SPEC)
    assert fired == [Firing(CloseReason.STOP_LOSS, D(10), D("48800"))]
    assert after.stop_loss is None and all(level.done for level in after.take_profit)
    assert triggers.stop_loss is not None and not triggers.take_profit[0].done  # input untouched


def test_ladder_validation():
    with pytest.raises(InvalidInput):
        take_profit_ladder([(D(51000), D(6)), (D(52000), D(5))], D(10))  # 11 lots of 10
    with pytest.raises(InvalidInput):
        take_profit_ladder([(D(51000), D(0))], D(10))
    with pytest.raises(InvalidInput):
        take_profit_ladder([(D(51000), D(1)), (D(51000), D(2))], D(10))


def run(
    side: PositionSide, rate: str, activated_at: str, series: list[str]
) -> tuple[int | None, list[Decimal]]:
    """Feed ``series`` of marks to a trailing stop: (index it fired at, stop price after each mark)."""
    p = position(side)
    triggers = Triggers(stop_loss=new_trailing_stop(side, D(activated_at), D(rate), SPEC))
    stops = []
    for i, mark in enumerate(series):
        fired, triggers = evaluate(p, triggers, D(mark), SPEC)
        if fired:
            assert fired == [Firing(CloseReason.TRAILING_STOP, D(3))]
            return i, stops
        assert triggers.stop_loss is not None
        stops.append(triggers.stop_loss.price)
    return None, stops


def test_trailing_stop_long_follows_the_best_mark():
    # rate 1%, activated at 50000 (stop 49500.0). best -> stop = best * 0.99:
    # 0: 50000 -> 49500.0 | 1: 50400 -> 49896.0 | 2: 50800 -> 50292.0 | 3: 50600 (best stays 50800) 50292.0
    # 4: 51000 -> 50490.0 | 5: 50500 > 50490, holds | 6: 50490 <= 50490 -> fires
    series = ["50000", "50400", "50800", "50600", "51000", "50500", "50490", "50480"]
    index, stops = run(LONG, "0.01", "50000", series)
    assert index == 6
    assert stops == [D("49500.0"), D("49896.0"), D("50292.0"), D("50292.0"), D("50490.0"), D("50490.0")]


def test_trailing_stop_short_follows_the_lowest_mark():
    # rate 0.5%, activated at 50000 (stop 50250.0). stop = lowest * 1.005:
    # 0: 49800 -> 50049.0 | 1: 49700 -> 49948.5 | 2: 49900 holds | 3: 49948.0 < 49948.5 holds | 4: 49948.5 fires
    index, stops = run(SHORT, "0.005", "50000", ["49800", "49700", "49900", "49948.0", "49948.5"])
    assert index == 4
    assert stops == [D("50049.0"), D("49948.5"), D("49948.5"), D("49948.5")]


def test_a_closed_position_fires_nothing():
    p = position()
    p.lots = D(0)
    fired, _ = evaluate(p, ladder(), D("40000"), SPEC)
    assert fired == []


def test_a_trailing_stop_price_lands_on_the_tick():
    # tick 0.5: 50010 * 0.99 = 49509.9 -> 49510.0 (nearest tick), not 49509.9 (the price scale)
    assert trailing_stop_price(PositionSide.LONG, D("50010"), D("0.01"), SPEC) == D("49510.0")
    # 49990 * 1.01 = 50489.9 -> 50490.0
    assert trailing_stop_price(PositionSide.SHORT, D("49990"), D("0.01"), SPEC) == D("50490.0")
