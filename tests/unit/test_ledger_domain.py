"""The ledger's pure rules: balanced transactions, exact scales, moves."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.ledger import (
    EXTERNAL,
    FEES,
    HOUSE,
    Bucket,
    LedgerTransaction,
    Posting,
    account_owner,
    check_scale,
    is_system,
    move,
)
from bourse.domain.values import AssetId

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
