"""Market data rules: candle periods at every interval, OHLC folding, the 24h ticker, book deltas."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bourse.domain.errors import InvalidInput
from bourse.domain.marketdata import (
    BookSnapshot,
    Candle,
    Interval,
    TradeTick,
    apply_delta,
    book_delta,
    history_range,
    parse_instant,
    parse_interval,
    parse_levels,
    rolling_ticker,
    ticker_window_start,
)


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


JUST_BEFORE = timedelta(microseconds=1)


# (interval, an instant, the start of its period, the end of that period)
BOUNDARIES = [
    (Interval.M1, t(2025, 9, 9, 12, 34, 59, 999999), t(2025, 9, 9, 12, 34), t(2025, 9, 9, 12, 35)),
    (Interval.M1, t(2025, 9, 9, 12, 35), t(2025, 9, 9, 12, 35), t(2025, 9, 9, 12, 36)),
    (Interval.M5, t(2025, 9, 9, 12, 39, 59, 999999), t(2025, 9, 9, 12, 35), t(2025, 9, 9, 12, 40)),
    (Interval.M5, t(2025, 9, 9, 12, 40), t(2025, 9, 9, 12, 40), t(2025, 9, 9, 12, 45)),
    (Interval.M15, t(2025, 9, 9, 12, 44, 59), t(2025, 9, 9, 12, 30), t(2025, 9, 9, 12, 45)),
    (Interval.M15, t(2025, 9, 9, 23, 59, 59), t(2025, 9, 9, 23, 45), t(2025, 9, 10, 0, 0)),
    (Interval.H1, t(2025, 9, 9, 12, 59, 59, 999999), t(2025, 9, 9, 12), t(2025, 9, 9, 13)),
    (Interval.H1, t(2025, 12, 31, 23, 0), t(2025, 12, 31, 23), t(2026, 1, 1, 0)),
    (Interval.H4, t(2025, 9, 9, 3, 59, 59, 999999), t(2025, 9, 9, 0), t(2025, 9, 9, 4)),
    (Interval.H4, t(2025, 9, 9, 4, 0), t(2025, 9, 9, 4), t(2025, 9, 9, 8)),
    (Interval.H4, t(2025, 9, 9, 23, 59), t(2025, 9, 9, 20), t(2025, 9, 10, 0)),
    (Interval.D1, t(2025, 9, 9, 23, 59, 59, 999999), t(2025, 9, 9), t(2025, 9, 10)),
    (Interval.D1, t(2024, 2, 28, 12), t(2024, 2, 28), t(2024, 2, 29)),
    # 2025-09-08 is a Monday: Sunday night still belongs to the week of Monday 1 September.
    (Interval.W1, t(2025, 9, 7, 23, 59, 59, 999999), t(2025, 9, 1), t(2025, 9, 8)),
    (Interval.W1, t(2025, 9, 8, 0, 0), t(2025, 9, 8), t(2025, 9, 15)),
    (Interval.W1, t(2025, 9, 14, 12), t(2025, 9, 8), t(2025, 9, 15)),
    # A week across New Year: Wednesday 1 January 2025 is in the week of Monday 30 December 2024.
    (Interval.W1, t(2025, 1, 1, 10), t(2024, 12, 30), t(2025, 1, 6)),
    (Interval.MN1, t(2024, 2, 29, 23, 59, 59, 999999), t(2024, 2, 1), t(2024, 3, 1)),
    (Interval.MN1, t(2024, 3, 1), t(2024, 3, 1), t(2024, 4, 1)),
    (Interval.MN1, t(2025, 12, 31, 23, 59), t(2025, 12, 1), t(2026, 1, 1)),
    (Interval.MN1, t(2025, 1, 15), t(2025, 1, 1), t(2025, 2, 1)),
]


@pytest.mark.parametrize(("interval", "at", "start", "end"), BOUNDARIES)
def test_each_interval_puts_an_instant_in_its_utc_period(interval, at, start, end):
    assert interval.start_of(at) == start
    assert interval.end_of(start) == end
    # The period is [start, end): its last microsecond is in it, its end starts the next one.
    assert interval.start_of(end - JUST_BEFORE) == start
    assert interval.start_of(end) == end


def test_every_interval_is_covered_by_the_boundary_cases():
    assert {case[0] for case in BOUNDARIES} == set(Interval)


def test_an_offset_time_is_bucketed_by_its_utc_instant():
    # 01:30 at +02:00 on Monday is 23:30 UTC on Sunday: still last week, still the previous day.
    at = datetime(2025, 9, 8, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert Interval.W1.start_of(at) == t(2025, 9, 1)
    assert Interval.D1.start_of(at) == t(2025, 9, 7)
    assert Interval.H4.start_of(at) == t(2025, 9, 7, 20)


def test_shift_and_count_months_across_years():
    assert Interval.MN1.shift(t(2024, 12, 1), 1) == t(2025, 1, 1)
    assert Interval.MN1.shift(t(2025, 1, 1), -13) == t(2023, 12, 1)
    assert Interval.MN1.periods_between(t(2024, 11, 20), t(2025, 2, 3)) == 4
    assert Interval.W1.periods_between(t(2025, 9, 7), t(2025, 9, 8)) == 2
    assert Interval.M1.periods_between(t(2025, 9, 9, 0, 0, 59), t(2025, 9, 9, 0, 0, 1)) == 1


def test_interval_names_are_case_sensitive():
    assert parse_interval("1m") is Interval.M1
    assert parse_interval("1M") is Interval.MN1
    for bad in ("2m", "1H", "", "1w "):
        with pytest.raises(InvalidInput) as err:
            parse_interval(bad)
        assert err.value.details["field"] == "interval"


def test_instants_are_epoch_ms_or_iso_8601():
    assert parse_instant("1757458917501", "from") == datetime(2025, 9, 9, 23, 1, 57, 501000, tzinfo=UTC)
    assert parse_instant("0", "from") == t(1970, 1, 1)
    assert parse_instant("2025-09-09T23:03:37.501Z", "to") == t(2025, 9, 9, 23, 3, 37, 501000)
    assert parse_instant("2025-09-10T01:03:37+02:00", "to") == t(2025, 9, 9, 23, 3, 37)
    assert parse_instant("2025-09-09T23:03:37", "to") == t(2025, 9, 9, 23, 3, 37)
    for bad in ("yesterday", "2025-13-01", "1.5", ""):
        with pytest.raises(InvalidInput):
            parse_instant(bad, "from")


def test_history_range_defaults_limits_and_order():
    now = t(2025, 9, 9, 12, 34, 56)
    default = history_range(Interval.M1, None, None, now)
    assert default.to == now and default.first_start == t(2025, 9, 9, 12, 34) - timedelta(minutes=499)
    # Exactly 1000 candles is fine, 1001 is refused rather than silently cut.
    ok = history_range(Interval.H1, t(2025, 1, 1), t(2025, 1, 1) + timedelta(hours=999, minutes=59), now)
    assert ok.first_start == t(2025, 1, 1)
    with pytest.raises(InvalidInput, match="1001"):
        history_range(Interval.H1, t(2025, 1, 1), t(2025, 1, 1) + timedelta(hours=1000), now)
    with pytest.raises(InvalidInput, match="after"):
        history_range(Interval.D1, t(2025, 9, 10), t(2025, 9, 9), now)
    # "from" inside a period starts the range at that period, so the candle overlapping it is included.
    assert history_range(Interval.MN1, t(2025, 3, 15), t(2025, 6, 1), now).first_start == t(2025, 3, 1)


def tick(trade_id: int, price: str, amount: str, at: datetime, market: str = "BTCUSDT") -> TradeTick:
    return TradeTick(market, trade_id, D(price), D(amount), D(price) * D(amount), "Buy", at)


def test_candle_open_high_low_close_and_volumes():
    at = t(2025, 9, 9, 12, 0, 5)
    candle = Candle.opened_by(tick(1, "100", "0.5", at), Interval.M5)
    assert (candle.start, candle.end) == (t(2025, 9, 9, 12), t(2025, 9, 9, 12, 5))
    assert candle.add(tick(2, "103.5", "1", at))
    assert candle.add(tick(3, "99.25", "0.25", at))
    assert candle.add(tick(4, "101", "2", at))
    assert (candle.open, candle.high, candle.low, candle.close) == (
        D("100"),
        D("103.5"),
        D("99.25"),
        D("101"),
    )
    assert candle.base_volume == D("3.75")
    assert candle.quote_volume == D("50") + D("103.5") + D("24.8125") + D("202")
    assert (candle.trades, candle.last_trade_id) == (4, 4)


def test_a_trade_folded_twice_changes_nothing():
    at = t(2025, 9, 9, 12)
    candle = Candle.opened_by(tick(7, "100", "1", at), Interval.M1)
    assert candle.add(tick(8, "90", "1", at))
    before = candle.copy()
    assert not candle.add(tick(8, "90", "1", at))
    assert not candle.add(tick(5, "500", "9", at))
    assert candle == before


NOW = t(2025, 9, 9, 12, 30, 20)


def minute(start: datetime, o: str, h: str, low: str, c: str, base: str, quote: str, n: int = 1) -> Candle:
    return Candle("BTCUSDT", Interval.M1, start, D(o), D(h), D(low), D(c), D(base), D(quote), n, 0)


def test_ticker_math_to_the_last_decimal():
    window_start = ticker_window_start(NOW)
    assert window_start == t(2025, 9, 8, 12, 31)  # the current minute and the 1439 before it
    candles = [
        minute(window_start - timedelta(minutes=1), "1", "1000", "0.1", "1", "50", "50"),  # out: too old
        minute(window_start, "100", "110", "95", "105", "1", "100"),
        minute(t(2025, 9, 9, 3, 0), "105", "120.5", "104", "118", "2", "237"),
        minute(t(2025, 9, 9, 12, 30), "118", "119", "90.25", "96", "0.5", "47", n=3),
    ]
    ticker = rolling_ticker("BTCUSDT", candles, NOW, D("96"), price_scale=2)
    assert (ticker.open, ticker.high, ticker.low, ticker.close, ticker.last) == (
        D("100"),
        D("120.5"),
        D("90.25"),
        D("96"),
        D("96"),
    )
    assert (ticker.base_volume, ticker.quote_volume, ticker.trades) == (D("3.5"), D("384"), 5)
    # 384 / 3.5 = 109.714285...: half-even to the market's 2 price decimals.
    assert ticker.vwap == D("109.71")
    assert ticker.change == D("-4")
    assert ticker.percentage == D("-4.00")
    assert ticker.window_end == t(2025, 9, 9, 12, 31)


def test_ticker_rounds_half_even_at_the_last_place():
    # vwap 10.125 exactly -> 10.12 (half to even); percentage 0.125 % -> 0.12.
    candles = [minute(t(2025, 9, 9, 12, 0), "800", "810", "800", "801", "8", "81")]
    ticker = rolling_ticker("BTCUSDT", candles, NOW, None, price_scale=2)
    assert ticker.vwap == D("10.12")
    assert ticker.percentage == D("0.12")
    assert ticker.last == D("801")  # no last price known yet: the window's close


def test_ticker_of_a_quiet_market_and_of_one_never_traded():
    old = minute(t(2025, 9, 7), "1", "2", "1", "2", "1", "2")
    quiet = rolling_ticker("BTCUSDT", [old], NOW, D("2"), price_scale=2)
    assert (quiet.open, quiet.high, quiet.low, quiet.close, quiet.last) == (D(2),) * 5
    assert (quiet.change, quiet.percentage, quiet.vwap) == (D(0), D(0), None)
    assert (quiet.base_volume, quiet.quote_volume, quiet.trades) == (D(0), D(0), 0)
    never = rolling_ticker("BTCUSDT", [], NOW, None, price_scale=2)
    assert (never.open, never.last, never.change, never.vwap) == (None, None, None, None)


def test_the_ticker_window_slides_with_the_clock():
    candle = minute(t(2025, 9, 8, 12, 31), "100", "100", "100", "100", "1", "100")
    assert rolling_ticker("X", [candle], NOW, D(100), price_scale=0).trades == 1
    later = NOW + timedelta(minutes=1)
    assert rolling_ticker("X", [candle], later, D(100), price_scale=0).trades == 0


def lv(*pairs: tuple[str, str]) -> list[tuple[D, D]]:
    return [(D(p), D(a)) for p, a in pairs]


def test_depth_delta_names_changed_new_and_removed_levels_best_first():
    before = lv(("100", "1"), ("99", "2"), ("98", "3"))
    after = lv(("101", "0.5"), ("100", "1"), ("99", "1.5"))
    assert book_delta(before, after, descending=True) == lv(("101", "0.5"), ("99", "1.5"), ("98", "0"))
    asks_before = lv(("101", "1"), ("102", "1"))
    asks_after = lv(("102", "1"), ("103", "4"))
    assert book_delta(asks_before, asks_after, descending=False) == lv(("101", "0"), ("103", "4"))
    assert book_delta(before, before, descending=True) == []


def test_depth_levels_compare_by_value_not_by_spelling():
    assert book_delta(lv(("100.0", "1.50")), lv(("100", "1.5")), descending=True) == []


def test_levels_from_an_event_are_checked():
    assert parse_levels([["100.5", "2"]], "bids") == ((D("100.5"), D("2")),)
    for bad in ("x", [["1"]], [["a", "1"]], [[1, 2, 3]]):
        with pytest.raises(InvalidInput):
            parse_levels(bad, "bids")


prices = st.integers(min_value=1, max_value=40).map(lambda n: D(n) / 4)
amounts = st.integers(min_value=1, max_value=1000).map(lambda n: D(n) / 100)
sides = st.dictionaries(prices, amounts, max_size=12)


@given(sides, sides, st.booleans())
def test_applying_the_delta_turns_the_old_book_into_the_new(old, new, descending):
    def ordered(book: dict) -> list:
        return sorted(book.items(), key=lambda level: level[0], reverse=descending)

    delta = book_delta(ordered(old), ordered(new), descending=descending)
    assert apply_delta(ordered(old), delta, descending=descending) == ordered(new)
    assert len(delta) == len({p for p in old.keys() | new.keys() if old.get(p) != new.get(p)})


def test_a_book_snapshot_is_newer_by_sequence_or_by_time():
    at = t(2025, 9, 9, 12)
    first = BookSnapshot("X", 5, (), (), at)
    assert BookSnapshot("X", 6, (), (), at).supersedes(first)
    assert not BookSnapshot("X", 5, (), (), at).supersedes(first)
    assert not BookSnapshot("X", 4, (), (), at).supersedes(first)
    # An engine restarted in the same process counts from 1 again, later.
    assert BookSnapshot("X", 1, (), (), at + timedelta(milliseconds=1)).supersedes(first)
