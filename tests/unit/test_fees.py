"""Fees: which rule applies, what a fill costs, what a buy order must hold."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.fees import (
    CommissionRule,
    FeeType,
    commission,
    fee_settings_view,
    max_commission,
    min_fee_in_asset,
    parse_fee_settings,
    select_rule,
)
from bourse.domain.markets import new_market

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def market(market_id="BTCUSDT", group=None):
    fields = {
        "baseAssetId": "BTC",
        "quoteAssetId": "USDT",
        "priceScale": 2,
        "amountScale": 6,
        "marketId": market_id,
    }
    if group:
        fields["marketGroupId"] = group
    return new_market(fields, NOW)


def rule(
    rule_id,
    priority,
    *,
    market_id=None,
    group=None,
    default=False,
    fee_type=FeeType.PERCENT,
    maker="0.1",
    taker="0.2",
    min_fee_rat=None,
):
    return CommissionRule(
        rule_id,
        "p",
        priority,
        default,
        market_id,
        group,
        fee_type,
        Decimal(maker),
        Decimal(taker),
        None if min_fee_rat is None else Decimal(min_fee_rat),
    )


DEFAULT = rule("d", 1, default=True)


def test_market_rule_beats_group_rule_beats_default_whatever_the_priority():
    group_rule = rule("g", 2, group="majors")
    market_rule = rule("m", 9, market_id="BTCUSDT")
    rules = [DEFAULT, group_rule, market_rule]
    assert select_rule(rules, market(group="majors")) is market_rule
    assert select_rule(rules, market("ETHUSDT", group="majors")) is group_rule
    assert select_rule(rules, market("ETHUSDT", group="alts")) is DEFAULT
    assert select_rule(rules, market("ETHUSDT")) is DEFAULT


def test_among_equally_specific_rules_the_lower_priority_number_wins():
    # Rules come from storage in any order; the choice must not depend on it.
    low, high = rule("z", 3, group="majors"), rule("a", 7, group="majors")
    assert select_rule([high, DEFAULT, low], market(group="majors")) is low
    assert select_rule([low, high, DEFAULT], market(group="majors")) is low


def test_a_profile_without_a_default_rule_is_a_bug():
    with pytest.raises(InvariantViolation):
        select_rule([rule("m", 1, market_id="OTHER")], market())


def test_percent_fee_is_a_percentage_rounded_up_to_the_quote_scale():
    r = rule("d", 1, default=True, maker="0.1", taker="0.2")
    # 0.1% of 123.45 = 0.12345 -> 0.13 at scale 2 (up, in the house's favour)
    assert commission(r, Decimal("123.45"), is_maker=True, quote_scale=2) == Decimal("0.13")
    assert commission(r, Decimal("123.45"), is_maker=False, quote_scale=2) == Decimal("0.25")
    # exact values are not bumped
    assert commission(r, Decimal("1000"), is_maker=True, quote_scale=2) == Decimal("1.00")
    # the smallest fill still pays the smallest unit
    assert commission(r, Decimal("0.000001"), is_maker=True, quote_scale=6) == Decimal("0.000001")


def test_a_zero_fee_or_a_zero_fill_costs_nothing():
    free = rule("d", 1, default=True, maker="0", taker="0")
    assert commission(free, Decimal("500"), is_maker=False, quote_scale=6) == 0
    assert commission(rule("d", 1, default=True), Decimal("0"), is_maker=True, quote_scale=6) == 0


def test_fixed_fee_is_charged_per_fill_whatever_its_size():
    r = rule("d", 1, default=True, fee_type=FeeType.FIXED, maker="0.5", taker="1.25")
    assert commission(r, Decimal("10"), is_maker=True, quote_scale=2) == Decimal("0.50")
    assert commission(r, Decimal("1000000"), is_maker=False, quote_scale=2) == Decimal("1.25")
    # a fixed size finer than the quote asset is rounded up too
    fine = rule("d", 1, default=True, fee_type=FeeType.FIXED, maker="0.001", taker="0.001")
    assert commission(fine, Decimal("10"), is_maker=True, quote_scale=2) == Decimal("0.01")


def test_large_amounts_stay_exact():
    r = rule("d", 1, default=True, maker="0.0000000001", taker="0.1")
    amount = Decimal("99999999999999999999.999999999999999999")
    # 0.1% = 99999999999999999.999999999999999999999: the last digit beyond scale 18 rounds up
    assert commission(r, amount, is_maker=False, quote_scale=18) == Decimal("100000000000000000")
    # 1e-10 % of it = 99999999.999999999999999999999999999999 (38 significant digits, no float, no loss)
    assert commission(r, amount, is_maker=True, quote_scale=18) == Decimal("100000000")
    assert commission(r, Decimal("12345.678901234567890123"), is_maker=True, quote_scale=18) == Decimal(
        "0.000000012345678902"
    )


def test_max_commission_is_the_larger_of_maker_and_taker():
    cheap_taker = rule("d", 1, default=True, maker="0.3", taker="0.1")
    assert max_commission(cheap_taker, Decimal("100"), 2) == Decimal("0.30")
    assert max_commission(rule("d", 1, default=True), Decimal("100"), 2) == Decimal("0.20")


def test_commission_is_the_rules_fee_before_its_minimum():
    # the minimum is applied by the order's fee terms (domain.trading.FeeTerms, derivative_fee)
    r = rule("d", 1, default=True, maker="0.1", taker="0.1", min_fee_rat="5")
    assert commission(r, Decimal("100"), is_maker=True, quote_scale=2) == Decimal("0.10")


def test_the_minimum_in_an_asset_is_min_fee_rat_over_its_rate_rounded_up():
    # 1 RAT at 3 RAT per unit: 0.333...; rounded UP to 6 decimals
    assert min_fee_in_asset(Decimal(1), Decimal(3), 6) == Decimal("0.333334")
    # an asset worth 0.5 RAT: 2.5 RAT minimum is 5 units
    assert min_fee_in_asset(Decimal("2.5"), Decimal("0.5"), 2) == Decimal("5.00")
    # the root asset itself (rate 1)
    assert min_fee_in_asset(Decimal("0.1"), Decimal(1), 6) == Decimal("0.1")
    # BTC at 60000 RAT: a 1 RAT minimum is 0.00001667 BTC (0.0000166666... up)
    assert min_fee_in_asset(Decimal(1), Decimal(60000), 8) == Decimal("0.00001667")


def test_no_minimum_without_min_fee_rat_or_without_a_rate():
    assert min_fee_in_asset(None, Decimal(3), 6) is None
    assert min_fee_in_asset(Decimal(1), None, 6) is None
    assert min_fee_in_asset(Decimal(1), Decimal(0), 6) is None


def test_a_negative_fill_is_a_bug():
    with pytest.raises(InvariantViolation):
        commission(DEFAULT, Decimal("-1"), is_maker=True, quote_scale=2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"default": True, "market_id": "BTCUSDT"}, "marketId"),
        ({}, "marketId"),  # neither market nor group
        ({"market_id": "BTCUSDT", "group": "g"}, "marketId"),  # both
        ({"default": True, "maker": "-0.1"}, "feeSettings.spot.makerSize"),
        ({"default": True, "taker": "100"}, "feeSettings.spot.takerSize"),  # a percentage below 100
        ({"default": True, "min_fee_rat": "-1"}, "feeSettings.minFeeRAT"),
    ],
)
def test_rule_validation(kwargs, field):
    with pytest.raises(InvalidInput) as e:
        rule("x", 1, **kwargs)
    assert e.value.details["field"] == field


def test_fixed_sizes_may_exceed_100():
    assert rule("d", 1, default=True, fee_type=FeeType.FIXED, maker="250", taker="250").taker_size == 250


def test_fee_settings_size_defaults_both_sides_and_extensions_override():
    both = parse_fee_settings({"spot": {"type": "Percent", "size": "0.2"}})
    assert (both.fee_type, both.maker_size, both.taker_size, both.min_fee_rat, both.cfd) == (
        FeeType.PERCENT,
        Decimal("0.2"),
        Decimal("0.2"),
        None,
        None,
    )
    split = parse_fee_settings(
        {
            "spot": {"type": "Fixed", "size": "1", "makerSize": "0.5"},
            "minFeeRAT": "2",
            "cfd": {"assetId": "USDT", "type": "Percent", "size": "0.05"},
        }
    )
    assert (split.maker_size, split.taker_size, split.min_fee_rat) == (
        Decimal("0.5"),
        Decimal("1"),
        Decimal("2"),
    )
    assert split.cfd is not None and split.cfd.size == Decimal("0.05")
    only_sides = parse_fee_settings({"spot": {"type": "Percent", "makerSize": "0", "takerSize": "0.1"}})
    assert (only_sides.maker_size, only_sides.taker_size) == (0, Decimal("0.1"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "feeSettings.spot"),
        ({"spot": {"type": "Percent"}}, "feeSettings.spot.size"),
        ({"spot": {"type": "Bps", "size": "1"}}, "feeSettings.spot.type"),
        ({"spot": {"type": "Percent", "size": 0.1}}, "feeSettings.spot.size"),  # a float lost precision
        ({"spot": {"type": "Percent", "size": "abc"}}, "feeSettings.spot.size"),
        ({"spot": {"type": "Percent", "size": "1", "rate": "2"}}, "feeSettings.spot"),
        ({"spot": {"type": "Percent", "size": "1"}, "extra": 1}, "feeSettings"),
        (
            {"spot": {"type": "Percent", "size": "1"}, "cfd": {"type": "Percent", "size": "-1"}},
            "feeSettings.cfd.size",
        ),
    ],
)
def test_fee_settings_errors(body, field):
    with pytest.raises(InvalidInput) as e:
        parse_fee_settings(body)
    assert e.value.details["field"] == field


def test_fee_settings_view_round_trips():
    body = {
        "spot": {"type": "Percent", "size": "0.2", "makerSize": "0.1", "takerSize": "0.2"},
        "cfd": {"assetId": "USDT", "type": "Fixed", "size": "3"},
        "minFeeRAT": "1.5",
    }
    fees = parse_fee_settings(body)
    r = CommissionRule(
        "r",
        "p",
        1,
        True,
        None,
        None,
        fees.fee_type,
        fees.maker_size,
        fees.taker_size,
        fees.min_fee_rat,
        fees.cfd,
    )
    assert fee_settings_view(r) == body
