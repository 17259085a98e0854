"""Funding and swaps: rate clamp, schedule, who pays, swap sizes, payments with a deficit."""

from datetime import UTC, datetime, time

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.funding import (
    FUNDING_KIND,
    SWAP_KIND,
    funding_payment,
    funding_rate,
    funding_times,
    settle_payment,
    swap_payment,
)
from bourse.domain.ledger import HOUSE, Bucket
from bourse.domain.markets import SwapLeg, SwapSettings, SwapType
from bourse.domain.positions import PositionSide
from bourse.domain.values import AssetId
from tests.unit.derivatives.support import OWNER, SPEC, USDT, D, position


def at(day: int, hour: int) -> datetime:
    return datetime(2025, 1, day, hour, tzinfo=UTC)


def test_funding_rate_is_the_premium_clamped():
    # (50100 - 50000) / 50000 = 0.002
    assert funding_rate(D("50100"), D("50000")) == D("0.00200000")
    # 0.02 and -0.02 clamp to +-0.0075
    assert funding_rate(D("51000"), D("50000")) == D("0.0075")
    assert funding_rate(D("49000"), D("50000")) == D("-0.0075")
    # 0.2 / 50000.1 = 0.0000039999920.. -> half-even to 8 decimals: 0.00000400
    assert funding_rate(D("50000.3"), D("50000.1")) == D("0.00000400")
    assert funding_rate(D("50000"), D("50000")) == 0


def test_funding_times():
    # every 8 h from 00:00: after 2025-01-01T00:00 (exclusive) up to 2025-01-02T00:00 (inclusive)
    assert funding_times(time(0), 8, at(1, 0), at(2, 0)) == [at(1, 8), at(1, 16), at(2, 0)]
    assert funding_times(time(4), 8, at(1, 0), at(2, 0)) == [at(1, 4), at(1, 12), at(1, 20)]
    assert funding_times(time(0), 8, at(1, 1), at(1, 7)) == []
    # 5 h is anchored on 1970-01-01T00:00: 2025-01-01 is day 20089, 20089 * 24 = 482136 h = 1 (mod 5),
    # so the moments that day are 04:00, 09:00, 14:00, 19:00
    assert funding_times(time(0), 5, at(1, 0), at(1, 23)) == [at(1, 4), at(1, 9), at(1, 14), at(1, 19)]
    with pytest.raises(InvalidInput):
        funding_times(time(0), 0, at(1, 0), at(2, 0))


def test_funding_payment_longs_pay_when_the_rate_is_positive():
    # 0.03 BTC * 50000 * 0.0001 = 0.15
    assert funding_payment(position(), SPEC, D("50000"), D("0.0001")) == D("-0.15")
    assert funding_payment(position(PositionSide.SHORT), SPEC, D("50000"), D("0.0001")) == D("0.15")
    assert funding_payment(position(), SPEC, D("50000"), D("-0.0001")) == D("0.15")
    # 0.03 * 50000.5 * 0.00012345 = 0.18517685.. -> half-even 0.19, paid by the long
    assert funding_payment(position(), SPEC, D("50000.5"), D("0.00012345")) == D("-0.19")


def test_swaps_percent_and_fixed():
    percent = SwapSettings(SwapType.PERCENT, short=SwapLeg(D("0.005"), USDT), long=SwapLeg(D("-0.01"), USDT))
    # long pays 0.01% of 0.03 * 50000 = 1500: -0.15 ; short receives 0.005% of 1500 = 0.075 -> half-even 0.08
    assert swap_payment(position(), SPEC, percent, D("50000")) == (USDT, D("-0.15"))
    assert swap_payment(position(PositionSide.SHORT), SPEC, percent, D("50000")) == (USDT, D("0.08"))
    fixed = SwapSettings(SwapType.FIXED, long=SwapLeg(D("-0.25"), USDT))
    # -0.25 per lot * 3 lots = -0.75, whatever the mark
    assert swap_payment(position(), SPEC, fixed, D("1")) == (USDT, D("-0.75"))
    # no short leg: nothing
    assert swap_payment(position(PositionSide.SHORT), SPEC, fixed, D("50000")) is None
    # in another asset at its scale: -0.25 * 3 = -0.75 BTC at scale 8
    btc = SwapSettings(SwapType.FIXED, long=SwapLeg(D("-0.25"), AssetId("BTC")))
    assert swap_payment(position(), SPEC, btc, D("1"), asset_scale=8) == (AssetId("BTC"), D("-0.75000000"))


def test_settle_payment_receives_pays_and_records_the_shortfall():
    tx, from_margin, deficit = settle_payment(OWNER, USDT, D("0.15"), D(0), "funding:BTCUSD:t:p1")
    assert tx is not None and from_margin == 0 and deficit == 0
    assert (tx.kind, tx.business_key) == (FUNDING_KIND, "funding:BTCUSD:t:p1")
    assert {(p.owner, p.amount) for p in tx.postings} == {(HOUSE, D("-0.15")), (OWNER, D("0.15"))}

    # a charge of 0.75 with 0.50 available and no margin: 0.50 paid, 0.25 deficit
    tx, from_margin, deficit = settle_payment(OWNER, USDT, D("-0.75"), D("0.50"), "swap:1", kind=SWAP_KIND)
    assert tx is not None and from_margin == 0 and deficit == D("0.25") and tx.kind == SWAP_KIND
    assert {(p.owner, p.amount) for p in tx.postings} == {(HOUSE, D("0.50")), (OWNER, D("-0.50"))}

    # nothing available, no margin: nothing posted, all of it a deficit
    assert settle_payment(OWNER, USDT, D("-0.75"), D(0), "swap:2") == (None, D(0), D("0.75"))


def test_a_charge_beyond_available_is_paid_from_the_positions_margin_before_any_deficit():
    # 0.75 owed, 0.50 available, the position holds 0.10 margin: 0.50 + 0.10 paid, 0.15 deficit
    tx, from_margin, deficit = settle_payment(OWNER, USDT, D("-0.75"), D("0.50"), "f:1", margin=D("0.10"))
    assert (from_margin, deficit) == (D("0.10"), D("0.15"))
    assert tx is not None
    assert {(p.owner, p.bucket, p.amount) for p in tx.postings} == {
        (HOUSE, Bucket.AVAILABLE, D("0.60")),
        (OWNER, Bucket.AVAILABLE, D("-0.50")),
        (OWNER, Bucket.MARGIN, D("-0.10")),
    }
    # nothing available, margin enough: all of it from margin, no deficit
    tx, from_margin, deficit = settle_payment(OWNER, USDT, D("-1.5"), D(0), "f:2", margin=D(20))
    assert (from_margin, deficit) == (D("1.5"), D(0))
    assert tx is not None
    assert {(p.owner, p.bucket, p.amount) for p in tx.postings} == {
        (HOUSE, Bucket.AVAILABLE, D("1.5")),
        (OWNER, Bucket.MARGIN, D("-1.5")),
    }
    # a payment the trader receives never touches margin
    tx, from_margin, deficit = settle_payment(OWNER, USDT, D("0.4"), D(0), "f:3", margin=D(20))
    assert (from_margin, deficit) == (D(0), D(0))


def test_a_charge_of_more_digits_than_the_default_context_keeps_is_taken_exactly():
    # 31 significant digits; Python's default decimal context (28) would round the house's leg
    owed = D("1000000000000.123456789012345678")
    tx, from_margin, deficit = settle_payment(
        OWNER, USDT, owed.copy_negate(), D("600000000000.000000000000000001"), "f:wide", margin=owed
    )
    assert deficit == 0 and from_margin == D("400000000000.123456789012345677")
    assert tx is not None
    assert {(p.owner, p.bucket, p.amount) for p in tx.postings} == {
        (HOUSE, Bucket.AVAILABLE, owed),
        (OWNER, Bucket.AVAILABLE, D("-600000000000.000000000000000001")),
        (OWNER, Bucket.MARGIN, D("-400000000000.123456789012345677")),
    }
