"""OTC fee sharing rules: the share formula, the numbers' form, the fingerprint, signing, the query."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.feeshare import (
    BadSignature,
    BillingStatus,
    FeeShareRecord,
    Rate,
    ShareTerms,
    calculated,
    check_sign,
    fingerprint,
    fingerprint_matches,
    fingerprint_text,
    number_text,
    parse_record_query,
    share_of,
    sign,
    signing_text,
)
from bourse.domain.values import AssetId

D = Decimal
EXAMPLE_TERMS = ShareTerms(D("0.2"), D("0.0004"), D("0.001"), AssetId("BTC"))
T0 = datetime(2023, 10, 10, 0, 5, tzinfo=UTC)


def record(**fields: object) -> FeeShareRecord:
    values: dict[str, object] = dict(
        id=2,
        company_id=1411,
        coin=AssetId("BTC"),
        item_date=date(2023, 10, 9),
        status=BillingStatus.STATISTIC,
        value_all=D("1"),
        value_sub=D("0"),
        fee=D("0.005"),
        terms=EXAMPLE_TERMS,
        share=D(0),
        change_rate=D(0),
        convert_value=D(0),
        fingerprint="",
        remark="",
        settle_tx_id=None,
        created_at=T0,
        updated_at=T0,
        count_time=T0,
        rate_time=T0,
    )
    values.update(fields)
    return FeeShareRecord(**values)  # type: ignore[arg-type]


# --- the formula ----------------------------------------------------------------------------------


def test_the_spec_example_shares_a_fifth_of_the_fee() -> None:
    # max(0.005 * 0.2, 1 * 0.0004) = 0.001, under the cap 1 * 0.001
    assert share_of(D("0.005"), D("1"), D("0"), EXAMPLE_TERMS, 8) == D("0.001")


def test_the_cap_binds_when_the_fee_share_exceeds_max_rate_of_the_volume() -> None:
    # max(1 * 0.2, 10 * 0.0004) = 0.2 is capped at 10 * 0.001 = 0.01
    assert share_of(D("1"), D("10"), D("0"), EXAMPLE_TERMS, 8) == D("0.01")


def test_the_volume_floor_binds_when_the_fee_share_is_below_it() -> None:
    # max(0.001 * 0.2, 1 * 0.0004) = 0.0004 (the fee alone would give 0.0002)
    assert share_of(D("0.001"), D("1"), D("0"), EXAMPLE_TERMS, 8) == D("0.0004")


def test_self_dealing_volume_is_excluded_from_floor_and_cap() -> None:
    # 9 of 10 were between the merchant's own users: only 1 is shared, so the cap is 0.001
    assert share_of(D("0.05"), D("10"), D("9"), EXAMPLE_TERMS, 8) == D("0.001")
    # all of it self-dealing: nothing is shared, whatever the fees
    assert share_of(D("0.05"), D("10"), D("10"), EXAMPLE_TERMS, 8) == 0


def test_the_share_is_rounded_down_to_the_coins_scale() -> None:
    terms = ShareTerms(D("0.333"), D("0"), D("1"), AssetId("USDT"))
    assert share_of(D("1"), D("100"), D("0"), terms, 2) == D("0.33")
    assert share_of(D("1"), D("100"), D("0"), terms, 6) == D("0.333")


def test_terms_are_fractions_with_at_most_16_decimals() -> None:
    with pytest.raises(InvalidInput) as e:
        ShareTerms(D("1.5"), D("0"), D("0"), AssetId("BTC"))
    assert e.value.details["field"] == "incomeDivideRate"
    with pytest.raises(InvalidInput) as e:
        ShareTerms(D("0"), D("0.00000000000000001"), D("0"), AssetId("BTC"))
    assert e.value.details["field"] == "volumeDivideRate"
    with pytest.raises(InvalidInput):
        ShareTerms(D("0"), D("0"), D("-0.1"), AssetId("BTC"))


# --- numbers and stages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("0"), "0E-16"),
        (D("0.0004"), "0.0004000000000000"),
        (D("1"), "1.0000000000000000"),
        (D("0.2"), "0.2000000000000000"),
        (D("12345.5"), "12345.5000000000000000"),
        (D("0.0000001"), "1.000000000E-7"),  # as Java's BigDecimal.toString writes it
    ],
)
def test_numbers_have_the_spec_form(value: Decimal, text: str) -> None:
    assert number_text(value) == text


def test_calculating_the_example_keeps_the_share_unconverted_in_its_own_symbol() -> None:
    done = calculated(record(), 8, None, T0)
    assert done.status is BillingStatus.CALCULATED
    assert done.share == D("0.001") and done.convert_value == D("0.001") and done.change_rate == 0
    assert done.remark == "" and fingerprint_matches(done)


def test_calculating_another_coin_converts_at_the_rate() -> None:
    r = record(coin=AssetId("ETH"), fee=D("0.5"), value_all=D("10"))
    rate_at = datetime(2023, 10, 9, 23, 59, tzinfo=UTC)
    done = calculated(r, 8, Rate(D("0.05"), rate_at), T0)
    # share = min(max(0.1, 0.004), 0.01) = 0.01 ETH = 0.0005 BTC at 0.05
    assert done.share == D("0.01") and done.change_rate == D("0.05") and done.convert_value == D("0.0005")
    assert done.rate_time == rate_at


def test_without_a_rate_the_share_is_not_converted_and_the_remark_says_so() -> None:
    done = calculated(record(coin=AssetId("ETH")), 8, None, T0)
    assert done.convert_value == 0 and done.change_rate == 0
    assert done.remark == "no ETH/BTC price: not converted"


# --- fingerprint ----------------------------------------------------------------------------------


def test_the_fingerprint_is_the_md5_of_the_documented_canonical_text() -> None:
    done = calculated(record(), 8, None, T0)
    assert fingerprint_text(done) == (
        "companyId=1411&coinSymbol=BTC&itemDate=1696809600000&otcTradeValueAll=1.0000000000000000"
        "&otcTradeValueSub=0.0000000000000000&otcTradeFeeValue=0.0050000000000000"
        "&incomeDivideRate=0.2000000000000000&volumeDivideRate=0.0004000000000000"
        "&maxDivideRate=0.0010000000000000&rateSymbol=BTC&share=0.0010000000000000"
        "&changeRate=0.0000000000000000&otcTradeFeeConvertValue=0.0010000000000000"
    )
    # docs/api/feeshare.md shows this value (computed with `md5sum` over the text above)
    assert done.fingerprint == "607e16132f05ebf93c53effa841f9e8e"


@pytest.mark.parametrize(
    "change",
    [
        {"fee": D("0.006")},
        {"value_sub": D("0.1")},
        {"share": D("0.002")},
        {"terms": replace(EXAMPLE_TERMS, max_rate=D("0.01"))},
        {"company_id": 1412},
        {"item_date": date(2023, 10, 8)},
    ],
)
def test_a_changed_field_no_longer_matches_the_fingerprint(change: dict[str, object]) -> None:
    done = calculated(record(), 8, None, T0)
    assert fingerprint_matches(done)
    assert not fingerprint_matches(replace(done, **change))  # type: ignore[arg-type]


def test_remark_status_and_times_are_outside_the_fingerprint() -> None:
    done = calculated(record(), 8, None, T0)
    moved = replace(
        done, remark="x", status=BillingStatus.SETTLED, updated_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert fingerprint(moved) == done.fingerprint


def test_a_record_without_a_fingerprint_never_matches() -> None:
    assert not fingerprint_matches(record())


# --- signing --------------------------------------------------------------------------------------

SIGNED = {
    "appKey": "8f14e45fceea167a5a36dedd4bea2543",
    "itemDateStart": "1696809600000",
    "itemDateEnd": "1696982400000",
    "pageSize": "20",
    "page": "1",
    "billstatus": "3",
    "symbol": "",
}


def test_the_signing_text_is_the_non_empty_parameters_sorted_by_name() -> None:
    assert signing_text({**SIGNED, "sign": "whatever"}) == (
        "appKey=8f14e45fceea167a5a36dedd4bea2543&billstatus=3&itemDateEnd=1696982400000"
        "&itemDateStart=1696809600000&page=1&pageSize=20"
    )


def test_the_sign_is_the_lowercase_hex_hmac_sha256_of_it() -> None:
    # docs/api/feeshare.md's example, computed with `openssl dgst -sha256 -hmac`
    expected = "3d5be4000188c514a688f59f3fba810ff2928cdae5d0dd4e7c3544d982e3f111"
    assert sign("secret-of-merchant-1411", SIGNED) == expected
    check_sign("secret-of-merchant-1411", {**SIGNED, "sign": expected})


@pytest.mark.parametrize(
    "params",
    [
        SIGNED,  # no sign
        {**SIGNED, "sign": ""},
        {**SIGNED, "sign": "3d5be4000188c514a688f59f3fba810ff2928cdae5d0dd4e7c3544d982e3f112"},
        {**SIGNED, "page": "2", "sign": "3d5be4000188c514a688f59f3fba810ff2928cdae5d0dd4e7c3544d982e3f111"},
    ],
)
def test_a_missing_or_wrong_sign_is_refused(params: dict[str, str]) -> None:
    with pytest.raises(BadSignature):
        check_sign("secret-of-merchant-1411", params)


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(BadSignature):
        check_sign("another-secret", {**SIGNED, "sign": sign("secret-of-merchant-1411", SIGNED)})


# --- the query ------------------------------------------------------------------------------------

NOW = datetime(2023, 10, 10, 0, 30, tzinfo=UTC)


def test_query_defaults_are_the_last_7_days_page_1_of_10_every_status() -> None:
    q = parse_record_query({}, NOW)
    assert (q.first_day, q.last_day) == (date(2023, 10, 3), date(2023, 10, 10))
    assert (q.page, q.page_size, q.status, q.coin) == (1, 10, None, None)
    assert parse_record_query({"billstatus": "-999"}, NOW).status is None


def test_query_bounds_are_inclusive_item_dates() -> None:
    q = parse_record_query({"itemDateStart": "1696809600000", "itemDateEnd": "1696809600000"}, NOW)
    assert q.first_day == q.last_day == date(2023, 10, 9)
    # a start after a day's midnight leaves that day out
    q = parse_record_query({"itemDateStart": "1696809600001"}, NOW)
    assert q.first_day == date(2023, 10, 10)


def test_query_values_within_the_limits() -> None:
    q = parse_record_query({"pageSize": "1000", "page": "3", "billstatus": "1", "symbol": "btc"}, NOW)
    assert (q.page_size, q.page, q.offset, q.status, q.coin) == (
        1000,
        3,
        2000,
        BillingStatus.CALCULATED,
        "btc",
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": "1001"}, "pageSize"),
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
        ({"page": "0"}, "page"),
        ({"billstatus": "2"}, "billstatus"),
        ({"itemDateStart": "1696982400000", "itemDateEnd": "1696809600000"}, "itemDateStart"),
        ({"itemDateEnd": "yesterday"}, "itemDateEnd"),
        ({"symbol": "BTC/USDT"}, "symbol"),
    ],
)
def test_query_values_out_of_range_are_refused_by_name(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_record_query(params, NOW)
    assert e.value.details["field"] == field
