"""The ext-orders seamless wallet: requests, their validation, fingerprints and postings.

An external product stakes a user's money (create), gives it back (cancel) or
settles it with a profit or loss against the house (settlement). Every request
carries the caller's ``extRequestId``; the fingerprint of its canonical form is
what decides whether a repeat is a replay or a conflict.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bourse.domain.errors import BusinessRejection, Conflict, InvalidInput, NotFound
from bourse.domain.ledger import HOUSE, Bucket, LedgerTransaction, Posting, account_owner
from bourse.domain.values import AccountId, AssetId, format_decimal

MAX_DECIMALS = 8
MAX_INTEGER_DIGITS = 14  # DECIMAL(22,8)
EXT_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:@+=-]{1,128}$")
# Plain notation only: exponents and signs other than a leading minus are refused.
_AMOUNT_RE = re.compile(r"^-?[0-9]{1,40}(\.[0-9]{1,40})?$")
MAX_USERNAME = 64
MAX_CURRENCY = 32
MAX_EXT_REF_ID = 256


class ExtRequestType(StrEnum):
    CREATE = "create"
    CANCEL = "cancel"
    SETTLEMENT = "settlement"


class UnknownUser(NotFound):
    code = "unknown_user"


class UnknownCurrency(NotFound):
    code = "unknown_currency"


class OverRelease(BusinessRejection):
    """More would leave a stake than is in it: the caller's books and ours disagree."""

    code = "over_release"


class NegativeSettlement(BusinessRejection):
    code = "negative_settlement"


class ExtRequestConflict(Conflict):
    """The extRequestId was used before for a different request."""

    code = "ext_request_conflict"


def parse_amount(value: object, field: str, *, zero_ok: bool = False, negative_ok: bool = False) -> Decimal:
    """A DECIMAL(22,8) amount sent as a JSON string in plain notation."""
    if not isinstance(value, str) or not _AMOUNT_RE.match(value):
        raise InvalidInput(f'{field} must be a decimal number in a JSON string, e.g. "100.0"', field=field)
    amount = Decimal(value)
    _sign, digits, exponent = amount.normalize().as_tuple()
    assert isinstance(exponent, int)
    if -exponent > MAX_DECIMALS:
        raise InvalidInput(f"{field} has more than {MAX_DECIMALS} decimals", field=field)
    if amount != 0 and len(digits) + exponent > MAX_INTEGER_DIGITS:
        raise InvalidInput(f"{field} has more than {MAX_INTEGER_DIGITS} integer digits", field=field)
    if amount < 0 and not negative_ok:
        raise InvalidInput(f"{field} must not be negative", field=field)
    if amount == 0 and not (zero_ok or negative_ok):
        raise InvalidInput(f"{field} must be positive", field=field)
    return amount + 0  # drops a "-0"


def _text(value: object, field: str, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInput(f"{field} must be a string of 1-{limit} characters", field=field)
    return value


def parse_ext_request_id(value: object) -> str:
    if not isinstance(value, str) or not EXT_REQUEST_ID_RE.match(value):
        raise InvalidInput(
            "extRequestId must be 1-128 letters, digits or . _ : @ + = -", field="extRequestId"
        )
    return value


@dataclass(frozen=True, slots=True)
class ExtRequest:
    """One create, cancel or settlement, parsed. ``sent`` keeps the fields as the caller wrote them."""

    type: ExtRequestType
    ext_request_id: str
    username: str
    currency: AssetId
    ext_ref_id: str | None
    amounts: Mapping[str, Decimal]
    sent: Mapping[str, str | None]

    def fingerprint(self) -> bytes:
        """SHA-256 of the canonical request: "100.0" and "100" are the same amount."""
        canonical = {
            "type": self.type.value,
            "extRequestId": self.ext_request_id,
            "username": self.username,
            "currency": self.currency,
            "extRefId": self.ext_ref_id,
            **{name: format_decimal(amount) for name, amount in self.amounts.items()},
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).digest()

    def amount(self, name: str) -> Decimal:
        return self.amounts[name]


STAKE_FIELDS = ("amount", "bonusAmount")
SETTLEMENT_FIELDS = ("totalOrderAmount", "totalOrderBonusAmount", "pnlAmount", "pnlBonusAmount")


def parse_request(kind: ExtRequestType, body: Mapping[str, Any]) -> ExtRequest:
    """Validate a create, cancel or settlement body (camelCase keys, as in the spec)."""
    ext_request_id = parse_ext_request_id(body.get("extRequestId"))
    username = _text(body.get("username"), "username", MAX_USERNAME)
    currency = _text(body.get("currency"), "currency", MAX_CURRENCY)
    ext_ref_id = _text(body.get("extRefId"), "extRefId", MAX_EXT_REF_ID, optional=True)
    assert username is not None and currency is not None
    amounts: dict[str, Decimal]
    fields: tuple[str, ...]
    if kind is ExtRequestType.SETTLEMENT:
        amounts = {
            "totalOrderAmount": parse_amount(body.get("totalOrderAmount"), "totalOrderAmount"),
            "totalOrderBonusAmount": parse_amount(
                body.get("totalOrderBonusAmount"), "totalOrderBonusAmount", zero_ok=True
            ),
            "pnlAmount": parse_amount(body.get("pnlAmount"), "pnlAmount", negative_ok=True),
            "pnlBonusAmount": parse_amount(body.get("pnlBonusAmount"), "pnlBonusAmount", negative_ok=True),
        }
        if amounts["totalOrderAmount"] + amounts["pnlAmount"] < 0:
            raise NegativeSettlement("totalOrderAmount + pnlAmount is negative", field="pnlAmount")
        if amounts["totalOrderBonusAmount"] + amounts["pnlBonusAmount"] < 0:
            raise NegativeSettlement(
                "totalOrderBonusAmount + pnlBonusAmount is negative", field="pnlBonusAmount"
            )
        fields = SETTLEMENT_FIELDS
    else:
        amounts = {
            "amount": parse_amount(body.get("amount"), "amount"),
            "bonusAmount": parse_amount(body.get("bonusAmount"), "bonusAmount", zero_ok=True),
        }
        fields = STAKE_FIELDS
    sent: dict[str, str | None] = {"extRequestId": ext_request_id, "username": username, "currency": currency}
    sent.update({name: body[name] for name in fields})
    sent["extRefId"] = ext_ref_id
    return ExtRequest(kind, ext_request_id, username, AssetId(currency), ext_ref_id, amounts, sent)


def sent_fields(kind: ExtRequestType) -> tuple[str, ...]:
    """The request's fields in the spec's order (storage may not keep it)."""
    amounts = SETTLEMENT_FIELDS if kind is ExtRequestType.SETTLEMENT else STAKE_FIELDS
    return ("extRequestId", "username", "currency", *amounts, "extRefId")


def business_key(caller_id: int, ext_request_id: str) -> str:
    return f"ext:{caller_id}:{ext_request_id}"


LEDGER_KINDS = {
    ExtRequestType.CREATE: "ext_order.create",
    ExtRequestType.CANCEL: "ext_order.cancel",
    ExtRequestType.SETTLEMENT: "ext_order.settlement",
}


def postings(request: ExtRequest, account_id: AccountId) -> tuple[Posting, ...]:
    """What the request does to balances; zero legs are left out.

    create:      available -> stake, bonus -> bonus_stake
    cancel:      stake -> available, bonus_stake -> bonus
    settlement:  stake -total, available +(total+pnl), house available -pnl (bonus legs alike)
    """
    user = account_owner(account_id)
    asset = request.currency
    legs: list[tuple[str, str, Decimal]] = []
    if request.type is ExtRequestType.SETTLEMENT:
        for total_field, pnl_field, stake, wallet in (
            ("totalOrderAmount", "pnlAmount", Bucket.STAKE, Bucket.AVAILABLE),
            ("totalOrderBonusAmount", "pnlBonusAmount", Bucket.BONUS_STAKE, Bucket.BONUS),
        ):
            total, pnl = request.amount(total_field), request.amount(pnl_field)
            legs += [(user, stake, -total), (user, wallet, total + pnl), (HOUSE, wallet, -pnl)]
    else:
        sign = 1 if request.type is ExtRequestType.CREATE else -1
        for field, wallet, stake in (
            ("amount", Bucket.AVAILABLE, Bucket.STAKE),
            ("bonusAmount", Bucket.BONUS, Bucket.BONUS_STAKE),
        ):
            amount = request.amount(field) * sign
            legs += [(user, wallet, -amount), (user, stake, amount)]
    return tuple(Posting(owner, asset, str(bucket), amount) for owner, bucket, amount in legs if amount != 0)


def ledger_transaction(request: ExtRequest, account_id: AccountId, caller_id: int) -> LedgerTransaction:
    return LedgerTransaction(
        kind=LEDGER_KINDS[request.type],
        postings=postings(request, account_id),
        business_key=business_key(caller_id, request.ext_request_id),
        details={
            "extRequestId": request.ext_request_id,
            "callerId": caller_id,
            "extRefId": request.ext_ref_id,
        },
    )


def over_release_buckets(request_type: ExtRequestType) -> frozenset[str]:
    """Buckets whose shortfall means the request releases more than is staked (not a short wallet)."""
    if request_type is ExtRequestType.CREATE:
        return frozenset()
    return frozenset({Bucket.STAKE.value, Bucket.BONUS_STAKE.value})


SUCCESS_CODE = 1
SUCCESS_MSG = "Success"


def success_response(time_ms: int) -> dict[str, Any]:
    """The spec's success body; stored with the request so that a replay returns it unchanged."""
    return {"code": SUCCESS_CODE, "msg": SUCCESS_MSG, "time": time_ms, "data": None, "success": True}
