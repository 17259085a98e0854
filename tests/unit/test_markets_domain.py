"""Markets in the domain: defaults, every validation, calendars, updates, the engine's view."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.ledger import Asset, AssetType
from bourse.domain.markets import (
    DayOfWeek,
    MarketQuery,
    MarketStatus,
    MarketType,
    SessionOverride,
    TimeInterval,
    TradingCalendar,
    TradingSession,
    apply_fields,
    calendar_from_json,
    calendar_to_json,
    check_assets,
    new_market,
)

NOW = datetime(2025, 9, 9, 23, 3, 37, 501234, tzinfo=UTC)
BASE = {"baseAssetId": "BTC", "quoteAssetId": "USDT", "priceScale": 2, "amountScale": 6}


def make(**fields):
    return new_market({**BASE, **fields}, NOW)


def test_defaults_from_the_scales():
    m = make()
    assert m.id == "BTCUSDT" and m.type is MarketType.SPOT and m.status is MarketStatus.ACTIVE
    assert (m.tick_size, m.lot_step, m.min_amount) == (
        Decimal("0.01"),
        Decimal("0.000001"),
        Decimal("0.000001"),
    )
    assert (m.display_name, m.full_name) == ("BTC/USDT", "BTC/USDT")
    assert (m.price_deviation, m.slippage_rate) == (Decimal("0.1"), Decimal("0.05"))
    assert not m.is_otc and not m.is_hidden and m.calendar is None
    # stored as shown: milliseconds
    assert m.created_at == m.updated_at == NOW.replace(microsecond=501000)


def test_the_engine_view_converts_exactly_and_enforces_the_limits():
    m = make(tickSize="0.05", lotStep="0.001", minAmount="0.01", maxBaseAmount="100", slippageRate="0.02")
    spec = m.spec()
    assert spec.price_to_ticks(Decimal("100.25")) == 2005
    assert spec.quantity_to_lots(Decimal("0.5")) == 500
    rules = spec.engine_rules()
    assert (rules.min_quantity, rules.max_quantity) == (10, 100000)
    assert (rules.band_num, rules.band_den) == (1, 50)
    with pytest.raises(InvalidInput):
        spec.price_to_ticks(Decimal("100.26"))  # off tick
    with pytest.raises(InvalidInput):
        spec.quantity_to_lots(Decimal("0.009"))  # below minAmount


def test_given_market_id_and_derived_one():
    assert make(marketId="BTC-SPOT").id == "BTC-SPOT"
    assert new_market({**BASE, "baseAssetId": "btc", "quoteAssetId": "usdt"}, NOW).id == "BTCUSDT"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"baseAssetId": None}, "baseAssetId"),
        ({"priceScale": None}, "priceScale"),
        ({"priceScale": 19}, "priceScale"),
        ({"amountScale": -1}, "amountScale"),
        ({"priceScale": "2"}, "priceScale"),
        ({"priceScale": True}, "priceScale"),
        ({"marketId": "btc usdt"}, "marketId"),
        ({"marketId": "X"}, "marketId"),
        ({"baseAssetId": "b t c"}, "marketId"),  # cannot derive an id
        ({"quoteAssetId": "BTC"}, "quoteAssetId"),
        ({"type": "Future"}, "type"),
        ({"status": "Open"}, "status"),
        ({"tickSize": "0"}, "tickSize"),
        ({"tickSize": "-0.01"}, "tickSize"),
        ({"tickSize": "0.001"}, "tickSize"),  # more decimals than priceScale
        ({"tickSize": 0.01}, "tickSize"),  # a float
        ({"lotStep": "0.0000001"}, "lotStep"),  # more decimals than amountScale
        ({"lotStep": "abc"}, "lotStep"),
        ({"minAmount": "-1"}, "minAmount"),
        ({"lotStep": "0.01", "minAmount": "0.015"}, "minAmount"),  # not a multiple of lotStep
        ({"maxBaseAmount": "0"}, "maxBaseAmount"),
        ({"minAmount": "2", "maxBaseAmount": "1"}, "maxBaseAmount"),
        ({"lotStep": "0.01", "maxBaseAmount": "1.005"}, "maxBaseAmount"),
        ({"minQuoteAmount": "-5"}, "minQuoteAmount"),
        ({"priceDeviation": "1"}, "priceDeviation"),
        ({"priceDeviation": "-0.1"}, "priceDeviation"),
        ({"slippageRate": "1.5"}, "slippageRate"),
        ({"displayName": ""}, "displayName"),
        ({"fullName": "x" * 129}, "fullName"),
        ({"displayName": None}, "displayName"),
        ({"subtype": ""}, "subtype"),
        ({"marketGroupId": " "}, "marketGroupId"),
        ({"isOtc": "yes"}, "isOtc"),
        ({"externalTtl": -1}, "externalTtl"),
        ({"maxLeverage": 2**31}, "maxLeverage"),
        ({"fundingIntervalInHours": 0}, "fundingIntervalInHours"),
        ({"fundingStartTime": "8:00"}, "fundingStartTime"),
        ({"tradingSessionIds": "s1"}, "tradingSessionIds"),
        ({"swapSettings": {"type": "Points"}}, "swapSettings.type"),
        (
            {"swapSettings": {"type": "Fixed", "longPositionSettings": {"swapSize": "1"}}},
            "swapSettings.longPositionSettings",
        ),
        ({"colour": "red"}, "colour"),
    ],
)
def test_every_invalid_field_is_named(fields, field):
    with pytest.raises(InvalidInput) as e:
        make(**fields)
    assert e.value.details["field"] == field


def test_amounts_must_fit_the_assets():
    btc = Asset("BTC", "Bitcoin", 8, AssetType.CRYPTO)
    usdt = Asset("USDT", "Tether", 2, AssetType.CRYPTO)
    check_assets(make(amountScale=8, minQuoteAmount="10.5"), btc, usdt)
    with pytest.raises(InvalidInput) as e:
        check_assets(make(amountScale=9), btc, usdt)
    assert e.value.details["field"] == "amountScale"
    with pytest.raises(InvalidInput) as e:
        check_assets(make(minQuoteAmount="0.001"), btc, usdt)
    assert e.value.details["field"] == "minQuoteAmount"


def test_update_changes_what_is_given_and_null_clears():
    m = make(subtype="Main", maxBaseAmount="10", marketGroupId="majors")
    later = NOW + timedelta(minutes=1)
    u = apply_fields(m, {"status": "Halted", "subtype": None, "maxBaseAmount": None, "isHidden": True}, later)
    assert (u.status, u.subtype, u.max_base_amount, u.is_hidden) == (MarketStatus.HALTED, None, None, True)
    assert u.market_group_id == "majors" and u.created_at == m.created_at and u.updated_at > m.updated_at
    # a change that breaks the whole market is refused, field named
    with pytest.raises(InvalidInput) as e:
        apply_fields(m, {"priceScale": 1}, later)  # the 0.01 tick no longer fits
    assert e.value.details["field"] == "tickSize"


@pytest.mark.parametrize("field", ["baseAssetId", "quoteAssetId", "type", "marketId"])
def test_identity_fields_cannot_change(field):
    with pytest.raises(InvalidInput) as e:
        apply_fields(make(), {field: "X"}, NOW)
    assert e.value.details["field"] == field


def test_required_fields_cannot_be_cleared():
    with pytest.raises(InvalidInput) as e:
        apply_fields(make(), {"tickSize": None}, NOW)
    assert e.value.details["field"] == "tickSize"


# --- calendars ----------------------------------------------------------------------------------

LONDON = {
    "timeZoneId": "Europe/London",
    "tradingSessions": [
        {
            "dayOfWeek": "Monday",
            "timeIntervals": [
                {"start": "08:00:00", "end": "12:00:00"},
                {"start": "13:00:00", "end": "16:30:00"},
            ],
        },
        {"dayOfWeek": "Friday", "timeIntervals": [{"start": "22:00:00", "end": "00:00:00"}]},
    ],
    "sessionOverrides": [
        {"date": "2025-12-22", "timeIntervals": []},
        {"date": "2025-12-27", "timeIntervals": [{"start": "10:00:00", "end": "11:00:00"}]},
    ],
}


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_sessions_are_local_time_half_open_intervals():
    cal = calendar_from_json(LONDON)
    # Monday 2025-07-07, BST (UTC+1): 08:00 local = 07:00 UTC
    assert not cal.is_open(utc(2025, 7, 7, 6, 59, 59))
    assert cal.is_open(utc(2025, 7, 7, 7, 0, 0))
    assert not cal.is_open(utc(2025, 7, 7, 11, 0, 0))  # 12:00 local: the lunch break starts
    assert cal.is_open(utc(2025, 7, 7, 12, 0, 0))
    # Monday 2025-01-06, GMT (UTC+0): the same local hours, other UTC hours
    assert not cal.is_open(utc(2025, 1, 6, 7, 30))
    assert cal.is_open(utc(2025, 1, 6, 8, 30))
    # a day without sessions is closed
    assert not cal.is_open(utc(2025, 7, 8, 10, 0))


def test_end_at_midnight_runs_to_the_end_of_the_day():
    cal = calendar_from_json(LONDON)
    assert cal.is_open(utc(2025, 1, 10, 23, 59, 59))  # Friday
    assert not cal.is_open(utc(2025, 1, 11, 0, 0, 0))  # Saturday


def test_overrides_replace_the_weekday():
    cal = calendar_from_json(LONDON)
    assert not cal.is_open(utc(2025, 12, 22, 9, 0))  # a Monday, closed by override
    assert cal.is_open(utc(2025, 12, 27, 10, 30))  # a Saturday, opened by override
    assert not cal.is_open(utc(2025, 12, 27, 11, 0))


def test_no_sessions_means_always_open_except_overrides():
    cal = TradingCalendar("Asia/Tokyo", (), (SessionOverride(date(2025, 1, 1), ()),))
    assert cal.is_open(utc(2025, 1, 2, 3, 0))
    # 2024-12-31 15:30 UTC is already 2025-01-01 in Tokyo
    assert not cal.is_open(utc(2024, 12, 31, 15, 30))
    assert cal.is_open(utc(2024, 12, 31, 14, 30))


def test_calendar_round_trips_through_json():
    cal = calendar_from_json(LONDON)
    assert calendar_to_json(cal) == LONDON
    assert cal.sessions[0] == TradingSession(
        DayOfWeek.MONDAY, (TimeInterval(time(8), time(12)), TimeInterval(time(13), time(16, 30)))
    )
    assert make(calendar=LONDON).calendar == cal


@pytest.mark.parametrize(
    "change",
    [
        {"timeZoneId": "Mars/Olympus"},
        {"timeZoneId": "../etc/passwd"},
        {"timeZoneId": None},
        {"tradingSessions": [{"dayOfWeek": "Funday", "timeIntervals": []}]},
        {
            "tradingSessions": [
                {"dayOfWeek": "Monday", "timeIntervals": [{"start": "9:00", "end": "10:00:00"}]}
            ]
        },
        {
            "tradingSessions": [
                {"dayOfWeek": "Monday", "timeIntervals": [{"start": "25:00:00", "end": "26:00:00"}]}
            ]
        },
        {
            "tradingSessions": [
                {"dayOfWeek": "Monday", "timeIntervals": [{"start": "10:00:00", "end": "09:00:00"}]}
            ]
        },
        {
            "tradingSessions": [
                {
                    "dayOfWeek": "Monday",
                    "timeIntervals": [
                        {"start": "09:00:00", "end": "11:00:00"},
                        {"start": "10:00:00", "end": "12:00:00"},
                    ],
                }
            ]
        },
        {
            "tradingSessions": [
                {"dayOfWeek": "Monday", "timeIntervals": []},
                {"dayOfWeek": "Monday", "timeIntervals": []},
            ]
        },
        {"sessionOverrides": [{"date": "2025-02-30", "timeIntervals": []}]},
        {
            "sessionOverrides": [
                {"date": "2025-02-01", "timeIntervals": []},
                {"date": "2025-02-01", "timeIntervals": []},
            ]
        },
        {"holidays": []},
    ],
)
def test_invalid_calendars(change):
    with pytest.raises(InvalidInput) as e:
        calendar_from_json({**LONDON, **change})
    assert str(e.value.details["field"]).startswith("calendar")


def test_is_open_needs_an_aware_time():
    with pytest.raises(InvalidInput):
        calendar_from_json(LONDON).is_open(datetime(2025, 1, 6, 9, 0))


def test_query_bounds():
    with pytest.raises(InvalidInput):
        MarketQuery(limit=1001)
    with pytest.raises(InvalidInput):
        MarketQuery(offset=-1)
