"""The ledger's pure rules: balanced transactions, exact scales, moves."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.ledger import (
    EXTERNAL,
    FEES,
    HOUSE,
    MAX_SCALE,
    Bucket,
    LedgerTransaction,
    Posting,
    account_owner,
    available_changes,
    check_scale,
    is_system,
    move,
)
from bourse.domain.values import AssetId, decimal_places

USDT = AssetId("USDT")
BTC = AssetId("BTC")
A = account_owner("acc-1")
B = account_owner("acc-2")


def p(owner: str, amount: str, asset: AssetId = USDT, bucket: str = Bucket.AVAILABLE) -> Posting:
    return Posting(owner, asset, bucket, Decimal(amount))


def test_owners() -> None:
    assert A == "acct:acc-1"
    assert all(is_system(o) for o in (HOUSE, FEES, EXTERNAL))
    assert not is_system(A)


def test_a_balanced_multi_asset_transaction_is_accepted() -> None:
    tx = LedgerTransaction(
        "trade",
        (p(A, "-100"), p(B, "99.9"), p(FEES, "0.1"), p(B, "-0.5", BTC), p(A, "0.5", BTC)),
        business_key="fill-1",
        details={"order": 7},
    )
    assert tx.business_key == "fill-1" and tx.details["order"] == 7


@pytest.mark.parametrize(
    "postings",
    [
        (),
        (p(A, "-1"), p(B, "0.999")),  # off by a thousandth
        (p(A, "-1"), p(B, "1", BTC)),  # sums to zero overall, not per asset
        (p(A, "0"), p(B, "0")),
        (Posting(A, USDT, Bucket.AVAILABLE, Decimal("NaN")), p(B, "1")),
        (
            Posting(A, USDT, Bucket.AVAILABLE, Decimal("-Infinity")),
            Posting(B, USDT, "available", Decimal("Infinity")),
        ),
        (p(A, "-0.0000000000000000001"), p(B, "0.0000000000000000001")),  # 19 decimals: storage would round
        (p(A, "-1E+20"), p(B, "1E+20")),  # storage would overflow
    ],
)
def test_unbalanced_or_malformed_transactions_are_refused(postings: tuple[Posting, ...]) -> None:
    with pytest.raises(InvariantViolation):
        LedgerTransaction("bad", postings)


def test_trailing_zeros_beyond_the_stored_scale_are_accepted() -> None:
    """What counts is the places an amount needs, not how it was written."""
    tx = LedgerTransaction("ok", (p(A, "-1.000000000000000000000000"), p(B, "1")))
    assert tx.postings[0].amount == Decimal("-1")


@settings(max_examples=300)
@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, min_value=Decimal("-1E+19"), max_value=Decimal("1E+19")
    ),
    st.integers(min_value=0, max_value=8),
)
def test_an_amount_is_refused_exactly_when_it_needs_more_places_than_storage_keeps(
    amount: Decimal, zeros: int
) -> None:
    assume(amount != 0)
    written = Decimal(
        f"{amount:f}{'' if '.' in f'{amount:f}' else '.'}{'0' * zeros}"
    )  # same value, more zeros
    postings = (p(A, str(written.copy_negate())), p(B, str(written)))
    if decimal_places(amount) > MAX_SCALE:
        with pytest.raises(InvariantViolation):
            LedgerTransaction("t", postings)
    else:
        assert LedgerTransaction("t", postings).postings[1].amount == amount


def test_wide_amounts_are_negated_and_summed_without_the_default_contexts_rounding() -> None:
    """31 significant digits (Decimal's default context keeps 28)."""
    amount = Decimal("1000000000000.123456789012345678")
    tx = move("transfer", USDT, amount, (A, Bucket.AVAILABLE), (B, Bucket.AVAILABLE))
    assert [p.amount for p in tx.postings] == [amount.copy_negate(), amount]
    changes = available_changes([tx, tx])
    assert changes[(B, USDT)] == Decimal("2000000000000.246913578024691356")
    assert changes[(A, USDT)] == Decimal("-2000000000000.246913578024691356")


def test_a_float_amount_is_refused() -> None:
    with pytest.raises(InvariantViolation):
        LedgerTransaction("bad", (Posting(A, USDT, "available", 1.5), Posting(B, USDT, "available", -1.5)))  # type: ignore[arg-type]


def test_move_builds_two_opposite_postings() -> None:
    tx = move(
        "transfer",
        USDT,
        Decimal("2.5"),
        (A, Bucket.AVAILABLE),
        (B, Bucket.LOCKED),
        business_key="t1",
        details={"why": "test"},
    )
    assert tx.postings == (
        Posting(A, USDT, "available", Decimal("-2.5")),
        Posting(B, USDT, "locked", Decimal("2.5")),
    )
    assert (tx.kind, tx.business_key, dict(tx.details)) == ("transfer", "t1", {"why": "test"})


@pytest.mark.parametrize("amount", ["0", "-1"])
def test_move_needs_a_positive_amount(amount: str) -> None:
    with pytest.raises(InvariantViolation):
        move("transfer", USDT, Decimal(amount), (A, Bucket.AVAILABLE), (B, Bucket.AVAILABLE))


def test_move_needs_two_different_places() -> None:
    with pytest.raises(InvariantViolation):
        move("transfer", USDT, Decimal(1), (A, Bucket.AVAILABLE), (A, Bucket.AVAILABLE))


@pytest.mark.parametrize(
    ("amount", "scale"), [("1.23", 2), ("1.2300000", 2), ("100", 0), ("1E+2", 0), ("0", 0)]
)
def test_check_scale_accepts_amounts_within_the_scale(amount: str, scale: int) -> None:
    check_scale(Decimal(amount), scale, "amount")


@pytest.mark.parametrize(("amount", "scale"), [("1.234", 2), ("0.1", 0), ("0.000000001", 8)])
def test_check_scale_refuses_never_rounds(amount: str, scale: int) -> None:
    with pytest.raises(InvalidInput) as e:
        check_scale(Decimal(amount), scale, "qty")
    assert e.value.details["field"] == "qty"
