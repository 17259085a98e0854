"""Pricing rules priced by hand: dealer markup rounding, mark smoothing, staleness, settings parsing."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.markets import new_market
from bourse.domain.pricing import (
    DEFAULT_STALE_AFTER_SECONDS,
    ExecutionMode,
    FundingQuery,
    PriceSource,
    SourceKind,
    dealer_quote,
    is_stale,
    mark_sample,
    mid,
    parse_pricing_settings,
    smooth_mark,
)

D = Decimal
NOW = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)


def _market(market_type: str = "Perpetual", market_id: str = "BTCPERP"):
    return new_market(
        {
            "marketId": market_id,
            "baseAssetId": "BTC",
            "quoteAssetId": "USDT",
            "priceScale": 2,
            "amountScale": 4,
            "type": market_type,
        },
        NOW,
    )


# --- dealer quote ------------------------------------------------------------------------------


def test_markup_widens_and_rounds_away_from_the_trader():
    q = dealer_quote("M", D("99.999"), D("100.001"), D("0.001"), 2, NOW)
    # ask 100.001 * 1.001 = 100.101001 -> up to 100.11; bid 99.999 * 0.999 = 99.899001 -> down to 99.89
    assert (q.ask, q.bid) == (D("100.11"), D("99.89"))
    assert (q.raw_ask, q.raw_bid) == (D("100.001"), D("99.999"))
    assert q.at == NOW and q.market_id == "M"


def test_markup_on_prices_already_on_the_scale():
    q = dealer_quote("M", D("65000.00"), D("65001.00"), D("0.002"), 2, NOW)
    # 65001 * 1.002 = 65131.002 -> 65131.01; 65000 * 0.998 = 64870 exactly
    assert (q.bid, q.ask) == (D("64870.00"), D("65131.01"))


def test_zero_markup_still_rounds_outwards_and_keeps_exact_prices():
    q = dealer_quote("M", D("100.005"), D("100.005"), D(0), 2, NOW)
    assert (q.bid, q.ask) == (D("100.00"), D("100.01"))
    exact = dealer_quote("M", D("100.00"), D("100.01"), D(0), 2, NOW)
    assert (exact.bid, exact.ask) == (D("100.00"), D("100.01"))


def test_quote_on_a_zero_scale():
    q = dealer_quote("M", D("1000"), D("1000"), D("0.0005"), 0, NOW)
    # 1000.5 -> 1001 up; 999.5 -> 999 down
    assert (q.bid, q.ask) == (D("999"), D("1001"))


# --- mark --------------------------------------------------------------------------------------


def test_smoothing_sequence_by_hand():
    # alpha = 2 / (5 + 1) = 1/3, rounded half-even to 2 decimals after each step.
    marks = []
    previous = None
    for sample in ("100", "106", "103", "100", "100"):
        previous = smooth_mark(previous, D(sample), 2)
        marks.append(previous)
    # 100 (first sample); 100 + 6/3 = 102; 102 + 1/3 = 102.333.. -> 102.33;
    # 102.33 - 2.33/3 = 101.55333.. -> 101.55; 101.55 - 1.55/3 = 101.03333.. -> 101.03
    assert marks == [D("100.00"), D("102.00"), D("102.33"), D("101.55"), D("101.03")]


def test_smoothing_rounds_half_to_even_exactly():
    # 100.00 + (100.015 - 100.00) / 3 = 100.005 exactly: the tie goes to the even 100.00
    assert smooth_mark(D("100.00"), D("100.015"), 2) == D("100.00")
    # 100.01 + 0.015 / 3 = 100.015: the tie goes to the even 100.02
    assert smooth_mark(D("100.01"), D("100.025"), 2) == D("100.02")
    # the first sample is the sample itself, rounded half-even
    assert smooth_mark(None, D("100.015"), 2) == D("100.02")
    assert smooth_mark(None, D("100.025"), 2) == D("100.02")


def test_another_sample_count():
    # N = 3: alpha = 1/2
    assert smooth_mark(D("100"), D("101"), 2, samples=3) == D("100.50")


def test_mark_follows_the_index_else_the_book_mid():
    assert mark_sample(D("100.5"), D("1"), D("2")) == D("100.5")
    assert mark_sample(None, D("100.01"), D("100.02")) == D("100.015")
    assert mark_sample(None, D("100.01"), None) is None
    assert mark_sample(None, None, None) is None
    assert mid(D("65000.1"), D("65000.2")) == D("65000.15")


# --- staleness ---------------------------------------------------------------------------------


def test_stale_after_the_limit_not_at_it():
    assert is_stale(None, NOW, 30)
    assert not is_stale(NOW - timedelta(seconds=30), NOW, 30)
    assert is_stale(NOW - timedelta(seconds=30, milliseconds=1), NOW, 30)
    assert not is_stale(NOW, NOW, 1)


# --- settings ----------------------------------------------------------------------------------


def test_manual_dealer_settings():
    s = parse_pricing_settings(
        _market(),
        {
            "executionMode": "Dealer",
            "sourceKind": "Manual",
            "bid": "100",
            "ask": "101",
            "markupRate": "0.001",
        },
        NOW,
    )
    assert s.execution_mode is ExecutionMode.DEALER
    assert s.source == PriceSource(SourceKind.MANUAL, bid=D(100), ask=D(101))
    assert s.markup_rate == D("0.001")
    assert s.stale_after_seconds == DEFAULT_STALE_AFTER_SECONDS == 30
    assert s.updated_at == NOW and s.market_id == "BTCPERP"


def test_ccxt_and_market_sources_and_no_source():
    ccxt = parse_pricing_settings(
        _market("Cfd"),
        {"executionMode": "Dealer", "sourceKind": "Ccxt", "exchange": "Binance", "symbol": "BTC/USDT"},
        NOW,
    )
    assert ccxt.source == PriceSource(SourceKind.CCXT, exchange="binance", symbol="BTC/USDT")
    own = parse_pricing_settings(
        _market(),
        {
            "executionMode": "OrderBook",
            "sourceKind": "Market",
            "sourceMarketId": "BTCUSDT",
            "staleAfterSeconds": 5,
        },
        NOW,
    )
    assert own.source == PriceSource(SourceKind.MARKET, market_id="BTCUSDT")
    assert own.stale_after_seconds == 5
    bare = parse_pricing_settings(_market(), {"executionMode": "OrderBook"}, NOW)
    assert bare.source is None and bare.markup_rate == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "executionMode"),
        ({"executionMode": "Auction"}, "executionMode"),
        ({"executionMode": "Dealer"}, "sourceKind"),
        ({"executionMode": "Dealer", "sourceKind": "Oracle"}, "sourceKind"),
        ({"executionMode": "Dealer", "sourceKind": "Manual", "bid": "100"}, "ask"),
        ({"executionMode": "Dealer", "sourceKind": "Manual", "bid": "101", "ask": "100"}, "ask"),
        ({"executionMode": "Dealer", "sourceKind": "Manual", "bid": "0", "ask": "100"}, "bid"),
        ({"executionMode": "Dealer", "sourceKind": "Manual", "bid": 100.5, "ask": "101"}, "bid"),
        ({"executionMode": "Dealer", "sourceKind": "Market", "sourceMarketId": "X", "bid": "1"}, "bid"),
        ({"executionMode": "Dealer", "sourceKind": "Market"}, "sourceMarketId"),
        ({"executionMode": "Dealer", "sourceKind": "Market", "sourceMarketId": "BTCPERP"}, "sourceMarketId"),
        ({"executionMode": "Dealer", "sourceKind": "Ccxt", "exchange": "binance"}, "symbol"),
        (
            {"executionMode": "Dealer", "sourceKind": "Ccxt", "exchange": "bin ance", "symbol": "A/B"},
            "exchange",
        ),
        (
            {"executionMode": "Dealer", "sourceKind": "Ccxt", "exchange": "binance", "symbol": "BTC USDT"},
            "symbol",
        ),
        ({"executionMode": "OrderBook", "exchange": "binance"}, "exchange"),
        ({"executionMode": "OrderBook", "markupRate": "0.5"}, "markupRate"),
        ({"executionMode": "OrderBook", "markupRate": "-0.001"}, "markupRate"),
        ({"executionMode": "OrderBook", "staleAfterSeconds": 0}, "staleAfterSeconds"),
        ({"executionMode": "OrderBook", "staleAfterSeconds": 86401}, "staleAfterSeconds"),
        ({"executionMode": "OrderBook", "staleAfterSeconds": "30"}, "staleAfterSeconds"),
        ({"executionMode": "OrderBook", "staleAfterSeconds": True}, "staleAfterSeconds"),
        ({"executionMode": "OrderBook", "leverage": 5}, "leverage"),
    ],
)
def test_invalid_settings_name_the_field(body, field):
    with pytest.raises(InvalidInput) as e:
        parse_pricing_settings(_market(), body, NOW)
    assert e.value.details["field"] == field


def test_spot_markets_have_no_price_source():
    with pytest.raises(InvalidInput) as e:
        parse_pricing_settings(_market("Spot", "BTCUSDT"), {"executionMode": "OrderBook"}, NOW)
    assert e.value.details["field"] == "marketId"


def test_largest_markup_below_half():
    s = parse_pricing_settings(_market(), {"executionMode": "OrderBook", "markupRate": "0.4999"}, NOW)
    assert s.markup_rate == D("0.4999")


@pytest.mark.parametrize("limit", [0, 1001, -1])
def test_funding_page_limits(limit):
    with pytest.raises(InvalidInput) as e:
        FundingQuery(limit)
    assert e.value.details["field"] == "limit"
    assert FundingQuery(1000).limit == 1000 and FundingQuery().limit == 100


def test_quote_lands_on_the_tick_ask_up_bid_down():
    # tick 0.05 on price scale 2: 100.01 -> ask 100.05, 99.99 -> bid 99.95 (not 100.01 / 99.99)
    q = dealer_quote("M", D("99.99"), D("100.01"), D(0), 2, NOW, D("0.05"))
    assert (q.bid, q.ask) == (D("99.95"), D("100.05"))
    # already on the tick: unchanged; with a markup the rounding is still outwards to the tick
    assert dealer_quote("M", D("99.95"), D("100.05"), D(0), 2, NOW, D("0.05")).ask == D("100.05")
    m = dealer_quote("M", D("100"), D("100"), D("0.001"), 2, NOW, D("0.25"))
    # 100.1 -> 100.25 up; 99.9 -> 99.75 down
    assert (m.bid, m.ask) == (D("99.75"), D("100.25"))
