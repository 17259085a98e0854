"""Funding (Perpetual) and overnight swaps (Cfd): rates, schedules, payments and their postings.

Funding happens at ``fundingStartTime + k * fundingIntervalInHours`` (UTC; the schedule is
anchored at the start time on 1970-01-01, so an interval that divides 24 h repeats daily). The
rate of an interval is ``clamp((mark - index) / index, -0.0075, +0.0075)``, half-even to
``RATE_SCALE`` decimals, from the interval's last mark and index. Each open position pays or
receives ``base * mark * rate`` (half-even to the settlement scale): when the rate is positive
longs pay and shorts receive.

Swaps: once a day for positions open at 00:00 UTC. ``Percent``: ``notional * size / 100``;
``Fixed``: ``size * lots``; in the leg's asset; the size is what the trader RECEIVES (negative:
the trader pays), MT-style.

Every payment is one transaction between the account and ``sys:house``. A charge is taken from
the account's available first, then from the paying position's own margin (its margin bucket and
the position's ``margin`` both go down); only what neither covers is a deficit (for a Cross
position the service first seizes the account's other margin assets, see
``service/derivatives_fills.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.ledger import HOUSE, Bucket, LedgerTransaction, Posting
from bourse.domain.markets import SwapSettings, SwapType
from bourse.domain.positions import (
    EXACT,
    ContractSpec,
    Position,
    PositionSide,
    round_half_even,
    round_to,
)
from bourse.domain.values import AssetId

FUNDING_CLAMP = Decimal("0.0075")
# Funding rates are stored and shown with this many decimals (half-even).
RATE_SCALE = 8
FUNDING_KIND = "position.funding"
SWAP_KIND = "position.swap"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def funding_rate(mark: Decimal, index: Decimal) -> Decimal:
    """``clamp((mark - index) / index, -0.0075, +0.0075)``, half-even to ``RATE_SCALE``."""
    if index <= 0 or mark <= 0:
        raise InvariantViolation("funding needs a positive mark and index", mark=str(mark), index=str(index))
    with localcontext(EXACT):
        raw = (mark - index) / index
    return round_to(max(-FUNDING_CLAMP, min(FUNDING_CLAMP, raw)), RATE_SCALE, ROUND_HALF_EVEN)


def funding_times(start: time, interval_hours: int, since: datetime, until: datetime) -> list[datetime]:
    """The funding moments ``t`` with ``since < t <= until`` (both timezone-aware)."""
    if interval_hours < 1:
        raise InvalidInput("fundingIntervalInHours must be at least 1", field="fundingIntervalInHours")
    if since.tzinfo is None or until.tzinfo is None:
        raise InvariantViolation("funding times need timezone-aware bounds")
    step = timedelta(hours=interval_hours)
    anchor = _EPOCH + timedelta(hours=start.hour, minutes=start.minute, seconds=start.second)
    k = (since - anchor) // step + 1  # the first moment strictly after ``since``
    moments = []
    moment = anchor + k * step
    while moment <= until:
        moments.append(moment)
        moment += step
    return moments


def funding_payment(position: Position, spec: ContractSpec, mark: Decimal, rate: Decimal) -> Decimal:
    """Signed, > 0 the trader receives: ``-s * base * mark * rate`` (s = +1 long, -1 short),
    half-even to the settlement scale."""
    with localcontext(EXACT):
        return round_half_even(-position.side.sign * position.base(spec) * mark * rate, spec.settlement_scale)


def swap_payment(
    position: Position,
    spec: ContractSpec,
    swap: SwapSettings,
    mark: Decimal,
    asset_scale: int | None = None,
) -> tuple[AssetId, Decimal] | None:
    """The day's swap of ``position``: (the leg's asset, signed amount, > 0 the trader receives),
    half-even to ``asset_scale`` (default: the settlement scale). None without a leg for the
    position's side or when it rounds to zero."""
    leg = swap.long if position.side is PositionSide.LONG else swap.short
    if leg is None or leg.size == 0:
        return None
    with localcontext(EXACT):
        if swap.type is SwapType.PERCENT:
            raw = position.base(spec) * mark * leg.size / 100
        else:
            raw = leg.size * position.lots
    amount = round_half_even(raw, spec.settlement_scale if asset_scale is None else asset_scale)
    return (leg.asset_id, amount) if amount != 0 else None


def settle_payment(
    account_owner: str,
    asset: AssetId,
    amount_signed: Decimal,
    available: Decimal,
    business_key: str,
    *,
    margin: Decimal = Decimal(0),
    kind: str = FUNDING_KIND,
    details: Mapping[str, Any] | None = None,
) -> tuple[LedgerTransaction | None, Decimal, Decimal]:
    """(transaction, taken from margin, deficit) of a payment to (> 0) or from (< 0) the account,
    against ``sys:house``. A charge is taken from ``available`` first, then from ``margin`` (the
    paying position's own margin, in the same asset; the caller lowers the position's margin by
    as much): money the trader holds pays what it owes before the house absorbs anything. Only
    what neither covers is the deficit (nothing is posted for it). None when nothing moves."""
    if available < 0 or margin < 0:
        raise InvariantViolation("available and margin cannot be negative", available=str(available))
    with localcontext(EXACT):  # the caller's context may round (a job's is Python's default)
        if amount_signed >= 0:
            from_available, from_margin = amount_signed, Decimal(0)
        else:
            owed = -amount_signed
            from_available = -min(owed, available)
            from_margin = min(owed + from_available, margin)
        deficit = -amount_signed + from_available - from_margin if amount_signed < 0 else Decimal(0)
        house = -from_available + from_margin
    if from_available == 0 and from_margin == 0:
        return None, from_margin, deficit
    postings = [Posting(HOUSE, asset, Bucket.AVAILABLE, house)]
    if from_available:
        postings.append(Posting(account_owner, asset, Bucket.AVAILABLE, from_available))
    if from_margin:
        postings.append(Posting(account_owner, asset, Bucket.MARGIN, from_margin.copy_negate()))
    tx = LedgerTransaction(
        kind=kind,
        postings=tuple(postings),
        business_key=business_key,
        details=dict(details) if details else {},
    )
    return tx, from_margin, deficit
