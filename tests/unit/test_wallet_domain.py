"""The ext-orders rules that need no database: amounts, fingerprints, postings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.ledger import HOUSE, Bucket, account_owner
from bourse.domain.values import AccountId
from bourse.domain.wallet import (
    ExtRequestType,
    NegativeSettlement,
    business_key,
    ledger_transaction,
    over_release_buckets,
    parse_amount,
    parse_request,
    postings,
    success_response,
)

CREATE = ExtRequestType.CREATE
CANCEL = ExtRequestType.CANCEL
SETTLEMENT = ExtRequestType.SETTLEMENT
ACCOUNT = AccountId("A00FF")
USER = account_owner(ACCOUNT)

SPEC_CREATE = {
    "extRequestId": "unique-id-of-requests-from-caller",
    "username": "abc@def",
    "currency": "USDT",
    "amount": "100.0",
    "bonusAmount": "0",
    "extRefId": "external extra ref id",
}
SPEC_SETTLEMENT = {
    "extRequestId": "unique-id-of-requests-from-caller",
    "username": "abc@def",
    "currency": "USDT",
    "totalOrderAmount": "123.00",
    "totalOrderBonusAmount": "0.0",
    "pnlAmount": "-100.0",
    "pnlBonusAmount": "0.0",
    "extRefId": "external extra ref id",
}


def legs(request_type, body):
    return {(p.owner, p.bucket, p.amount) for p in postings(parse_request(request_type, body), ACCOUNT)}


# --- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100.0", Decimal("100")),
        ("0.00000001", Decimal("0.00000001")),
        ("99999999999999.99999999", Decimal("99999999999999.99999999")),
        ("1.000000000", Decimal(1)),
        ("007", Decimal(7)),
    ],
)
def test_amounts_within_decimal_22_8_are_accepted(text, expected):
    assert parse_amount(text, "amount") == expected


@pytest.mark.parametrize(
    "value",
    [
        "0.000000001",
        "100000000000000",
        "1e2",
        "1E-3",
        "+1",
        " 1",
        "1,5",
        "",
        ".5",
        "5.",
        "NaN",
        "Infinity",
        "-1",
        "0",
        "-0",
        100,
        1.5,
        None,
        True,
    ],
)
def test_positive_amounts_refuse_everything_else(value):
    with pytest.raises(InvalidInput) as info:
        parse_amount(value, "amount")
    assert info.value.details["field"] == "amount"


def test_zero_only_where_allowed_and_negative_only_for_pnl():
    assert parse_amount("0", "bonusAmount", zero_ok=True) == 0
    assert parse_amount("-0.0", "bonusAmount", zero_ok=True) == 0
    assert str(parse_amount("-0.0", "bonusAmount", zero_ok=True)) == "0.0"
    with pytest.raises(InvalidInput):
        parse_amount("-1", "bonusAmount", zero_ok=True)
    assert parse_amount("-100.0", "pnlAmount", negative_ok=True) == Decimal(-100)
    with pytest.raises(InvalidInput):
        parse_amount("-100000000000000", "pnlAmount", negative_ok=True)


# --- requests ----------------------------------------------------------------------------------


def test_spec_create_parses_and_keeps_the_fields_as_sent():
    request = parse_request(CREATE, SPEC_CREATE)
    assert request.amounts == {"amount": Decimal(100), "bonusAmount": Decimal(0)}
    assert dict(request.sent) == SPEC_CREATE


def test_ext_ref_id_is_optional_and_bonus_defaults_are_the_routers_job():
    body = {k: v for k, v in SPEC_CREATE.items() if k != "extRefId"}
    request = parse_request(CANCEL, body)
    assert request.ext_ref_id is None
    assert request.sent["extRefId"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("extRequestId", ""),
        ("extRequestId", "has space"),
        ("extRequestId", "a/b"),
        ("extRequestId", "x" * 129),
        ("username", ""),
        ("username", None),
        ("currency", ""),
        ("extRefId", ""),
        ("extRefId", "r" * 257),
        ("amount", "0"),
        ("bonusAmount", "-1"),
        ("amount", 5),
    ],
)
def test_bad_fields_are_invalid_input_naming_the_field(field, value):
    with pytest.raises(InvalidInput) as info:
        parse_request(CREATE, {**SPEC_CREATE, field: value})
    assert info.value.details["field"] == field


def test_settlement_below_zero_is_rejected_for_either_leg():
    with pytest.raises(NegativeSettlement):
        parse_request(SETTLEMENT, {**SPEC_SETTLEMENT, "pnlAmount": "-123.00000001"})
    with pytest.raises(NegativeSettlement):
        parse_request(SETTLEMENT, {**SPEC_SETTLEMENT, "totalOrderBonusAmount": "1", "pnlBonusAmount": "-1.5"})
    full_loss = parse_request(SETTLEMENT, {**SPEC_SETTLEMENT, "pnlAmount": "-123"})
    assert full_loss.amounts["pnlAmount"] == Decimal(-123)


# --- fingerprints ------------------------------------------------------------------------------


def test_fingerprint_is_the_canonical_request():
    base = parse_request(CREATE, SPEC_CREATE).fingerprint()
    assert len(base) == 32
    assert parse_request(CREATE, {**SPEC_CREATE, "amount": "100"}).fingerprint() == base
    assert parse_request(CREATE, {**SPEC_CREATE, "bonusAmount": "0.000"}).fingerprint() == base
    assert parse_request(CREATE, {**SPEC_CREATE, "extra": "ignored"}).fingerprint() == base
    for changed in (
        {"amount": "100.00000001"},
        {"username": "abc@deg"},
        {"currency": "USDC"},
        {"extRefId": "other"},
        {"extRefId": None},
        {"bonusAmount": "1"},
    ):
        assert parse_request(CREATE, {**SPEC_CREATE, **changed}).fingerprint() != base, changed
    assert parse_request(CANCEL, SPEC_CREATE).fingerprint() != base


# --- postings ----------------------------------------------------------------------------------


def test_create_moves_available_to_stake_and_bonus_to_bonus_stake():
    assert legs(CREATE, SPEC_CREATE) == {
        (USER, Bucket.AVAILABLE, Decimal(-100)),
        (USER, Bucket.STAKE, Decimal(100)),
    }
    assert legs(CREATE, {**SPEC_CREATE, "bonusAmount": "2.5"}) == {
        (USER, Bucket.AVAILABLE, Decimal(-100)),
        (USER, Bucket.STAKE, Decimal(100)),
        (USER, Bucket.BONUS, Decimal("-2.5")),
        (USER, Bucket.BONUS_STAKE, Decimal("2.5")),
    }


def test_cancel_is_the_reverse_of_create():
    assert legs(CANCEL, {**SPEC_CREATE, "bonusAmount": "2.5"}) == {
        (USER, Bucket.AVAILABLE, Decimal(100)),
        (USER, Bucket.STAKE, Decimal(-100)),
        (USER, Bucket.BONUS, Decimal("2.5")),
        (USER, Bucket.BONUS_STAKE, Decimal("-2.5")),
    }


def test_spec_settlement_loss_goes_to_the_house():
    assert legs(SETTLEMENT, SPEC_SETTLEMENT) == {
        (USER, Bucket.STAKE, Decimal(-123)),
        (USER, Bucket.AVAILABLE, Decimal(23)),
        (HOUSE, Bucket.AVAILABLE, Decimal(100)),
    }


def test_settlement_win_is_paid_by_the_house_and_full_loss_credits_nothing():
    win = {**SPEC_SETTLEMENT, "pnlAmount": "7.5", "totalOrderBonusAmount": "4", "pnlBonusAmount": "1"}
    assert legs(SETTLEMENT, win) == {
        (USER, Bucket.STAKE, Decimal(-123)),
        (USER, Bucket.AVAILABLE, Decimal("130.5")),
        (HOUSE, Bucket.AVAILABLE, Decimal("-7.5")),
        (USER, Bucket.BONUS_STAKE, Decimal(-4)),
        (USER, Bucket.BONUS, Decimal(5)),
        (HOUSE, Bucket.BONUS, Decimal(-1)),
    }
    assert legs(SETTLEMENT, {**SPEC_SETTLEMENT, "pnlAmount": "-123", "pnlBonusAmount": "0"}) == {
        (USER, Bucket.STAKE, Decimal(-123)),
        (HOUSE, Bucket.AVAILABLE, Decimal(123)),
    }


def test_every_transaction_balances_and_carries_the_business_key():
    for kind, body in ((CREATE, SPEC_CREATE), (CANCEL, SPEC_CREATE), (SETTLEMENT, SPEC_SETTLEMENT)):
        tx = ledger_transaction(parse_request(kind, body), ACCOUNT, 42)
        assert sum(p.amount for p in tx.postings) == 0
        assert (
            tx.business_key
            == business_key(42, SPEC_CREATE["extRequestId"])
            == ("ext:42:unique-id-of-requests-from-caller")
        )


def test_only_releases_can_over_release():
    assert over_release_buckets(CREATE) == frozenset()
    assert over_release_buckets(CANCEL) == {Bucket.STAKE, Bucket.BONUS_STAKE}
    assert over_release_buckets(SETTLEMENT) == {Bucket.STAKE, Bucket.BONUS_STAKE}


def test_success_response_is_the_spec_body():
    assert success_response(1663235599835) == {
        "code": 1,
        "msg": "Success",
        "time": 1663235599835,
        "data": None,
        "success": True,
    }
