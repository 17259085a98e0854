"""The double-entry ledger: postings, transactions, balances, assets and holds.

Every money movement is one ``LedgerTransaction`` whose postings sum to exactly
zero per asset. A balance is the sum of the postings of one ledger account,
named by (owner, asset, bucket). Only system owners (``sys:`` prefix) may go
negative: ``sys:external`` is the outside world (deposits make it negative),
``sys:house`` the platform's own book, ``sys:fees`` collected fees.

Order funds and ext-order stakes are two-phase holds: ``available -> locked``
while pending, then posted (``locked -> destination``) or voided
(``locked -> available``), each exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.values import EXACT, AssetId, decimal_places

SYSTEM_PREFIX = "sys:"
HOUSE = "sys:house"
FEES = "sys:fees"
EXTERNAL = "sys:external"

# Storage is NUMERIC(38, 18): more decimals would be rounded, larger numbers overflow.
MAX_SCALE = 18
MAX_MAGNITUDE = Decimal(10) ** 20

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_ZERO = Decimal(0)


class Bucket(StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"
    STAKE = "stake"
    BONUS = "bonus"
    BONUS_STAKE = "bonus_stake"
    MARGIN = "margin"  # held by open derivative positions (domain/positions.py)


def account_owner(account_id: str) -> str:
    """The ledger owner of a trading account."""
    return f"acct:{account_id}"


def is_system(owner: str) -> bool:
    return owner.startswith(SYSTEM_PREFIX)


def _too_fine(amount: Decimal) -> bool:
    """More than MAX_SCALE places once trailing zeros go (normalizing only when the exponent says
    it may be: most amounts already have MAX_SCALE places or fewer as written)."""
    exponent = amount.as_tuple().exponent
    return isinstance(exponent, int) and exponent < -MAX_SCALE and decimal_places(amount) > MAX_SCALE


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transaction: ``+amount`` raises the balance of (owner, asset, bucket), ``-`` lowers it."""

    owner: str
    asset: AssetId
    bucket: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class LedgerTransaction:
    kind: str
    postings: tuple[Posting, ...]
    business_key: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not self.kind:
            raise InvariantViolation("a ledger transaction needs a kind")
        if not self.postings:
            raise InvariantViolation("a ledger transaction needs postings", kind=self.kind)
        sums: dict[str, Decimal] = {}
        for p in self.postings:
            if not p.owner or not p.asset or not p.bucket:
                raise InvariantViolation("a posting needs owner, asset and bucket", kind=self.kind)
            if not isinstance(p.amount, Decimal) or not p.amount.is_finite() or p.amount == 0:
                raise InvariantViolation(
                    f"posting amount must be a finite non-zero Decimal, got {p.amount!r}", kind=self.kind
                )
            if _too_fine(p.amount) or p.amount.copy_abs() >= MAX_MAGNITUDE:
                raise InvariantViolation(
                    f"posting amount {p.amount} is out of the stored range", kind=self.kind
                )
            # Exact whatever the caller's context: a rounded sum could pass an unbalanced set.
            sums[p.asset] = EXACT.add(sums.get(p.asset, _ZERO), p.amount)
        unbalanced = {a: s for a, s in sums.items() if s != 0}
        if unbalanced:
            raise InvariantViolation(
                f"ledger transaction {self.kind!r} does not balance: {unbalanced}", kind=self.kind
            )


def move(
    kind: str,
    asset: AssetId,
    amount: Decimal,
    src: tuple[str, str],
    dst: tuple[str, str],
    business_key: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> LedgerTransaction:
    """The simplest transaction: ``amount`` (> 0) of ``asset`` from (owner, bucket) ``src`` to ``dst``."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvariantViolation(f"a move needs a positive amount, got {amount!r}", kind=kind)
    if src == dst:
        raise InvariantViolation("a move needs different source and destination", kind=kind)
    return LedgerTransaction(
        kind=kind,
        postings=(
            Posting(src[0], asset, src[1], amount.copy_negate()),
            Posting(dst[0], asset, dst[1], amount),
        ),
        business_key=business_key,
        details=MappingProxyType(dict(details)) if details else _EMPTY,
    )


def available_changes(txs: Iterable[LedgerTransaction]) -> dict[tuple[str, str], Decimal]:
    """The net change ``txs`` make to each (owner, asset)'s available balance."""
    changes: dict[tuple[str, str], Decimal] = {}
    for tx in txs:
        for p in tx.postings:
            if p.bucket == Bucket.AVAILABLE:
                key = (p.owner, p.asset)
                changes[key] = EXACT.add(changes.get(key, _ZERO), p.amount)
    return changes


@dataclass(frozen=True, slots=True)
class Balance:
    owner: str
    asset: AssetId
    bucket: str
    amount: Decimal


# --- assets ------------------------------------------------------------------------------------


class AssetType(StrEnum):
    CRYPTO = "Crypto"
    FIAT = "Fiat"


@dataclass(frozen=True, slots=True)
class Asset:
    id: AssetId
    name: str
    scale: int
    type: AssetType
    source: str = "Internal"


def check_scale(amount: Decimal, scale: int, field: str) -> None:
    """Refuse, never round, an amount with more decimals than the asset allows."""
    if decimal_places(amount) > scale:
        raise InvalidInput(f"{field} has more than {scale} decimal places", field=field, scale=scale)


# --- holds -------------------------------------------------------------------------------------


class HoldStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    owner: str
    asset: AssetId
    amount: Decimal
    status: HoldStatus
    reference: str


# --- consistency report ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountMismatch:
    """A ledger account whose stored balance differs from the sum of its postings."""

    owner: str
    asset: AssetId
    bucket: str
    stored: Decimal
    recomputed: Decimal


@dataclass(frozen=True, slots=True)
class UnbalancedTransaction:
    tx_id: int
    asset: AssetId
    total: Decimal


@dataclass(frozen=True, slots=True)
class LedgerCheckReport:
    accounts: int
    transactions: int
    postings: int
    mismatches: tuple[AccountMismatch, ...]
    unbalanced: tuple[UnbalancedTransaction, ...]
    asset_totals: Mapping[str, Decimal]
    """Sum of all postings per asset: zero in a consistent ledger."""
    negative_user_balances: tuple[Balance, ...] = ()

    @property
    def clean(self) -> bool:
        return (
            not self.mismatches
            and not self.unbalanced
            and not self.negative_user_balances
            and all(v == 0 for v in self.asset_totals.values())
        )
