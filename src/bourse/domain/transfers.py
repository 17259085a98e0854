"""Back-office transfers: money entering (deposit) or leaving (withdrawal) an account.

A deposit is credited at once and born Completed. A withdrawal is born Pending
with its amount held (available -> locked), then confirmed (Completed: the hold
is paid out) or cancelled (Cancelled: the hold is released). Completed,
Cancelled and Failed are final.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bourse.domain.errors import Conflict, IdempotencyConflict, InvalidInput
from bourse.domain.values import AccountId, AssetId, format_decimal

MAX_DEDUPLICATION_ID_LENGTH = 128


class TransferType(StrEnum):
    DEPOSIT = "Deposit"
    WITHDRAWAL = "Withdrawal"


class TransferStatus(StrEnum):
    PENDING = "Pending"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    FAILED = "Failed"


TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.PENDING: frozenset(
        {TransferStatus.COMPLETED, TransferStatus.CANCELLED, TransferStatus.FAILED}
    ),
    TransferStatus.COMPLETED: frozenset(),
    TransferStatus.CANCELLED: frozenset(),
    TransferStatus.FAILED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: str
    account_id: AccountId
    deduplication_id: str
    asset_id: AssetId
    type: TransferType
    status: TransferStatus
    amount: Decimal
    hold_id: int | None
    callback_url: str | None
    created_at: datetime
    updated_at: datetime

    def same_request(self, type_: TransferType, asset_id: AssetId, amount: Decimal) -> bool:
        """Whether a repeat of this transfer's deduplicationId asks for the same movement."""
        return self.type == type_ and self.asset_id == asset_id and self.amount == amount


def transition(transfer: Transfer, target: TransferStatus) -> bool:
    """Whether moving ``transfer`` to ``target`` changes anything.

    False when it is already there: repeating the final action (confirming a
    confirmed withdrawal) is idempotent. Any other move out of a final status,
    and any action on a deposit, is a Conflict.
    """
    if transfer.type is not TransferType.WITHDRAWAL:
        raise Conflict("only withdrawals can be confirmed or cancelled", transferId=transfer.transfer_id)
    if transfer.status is target:
        return False
    if target not in TRANSITIONS[transfer.status]:
        raise Conflict(
            f"transfer is {transfer.status.value}, it cannot become {target.value}",
            transferId=transfer.transfer_id,
            status=transfer.status.value,
        )
    return True


def check_repeat(existing: Transfer, type_: TransferType, asset_id: AssetId, amount: Decimal) -> Transfer:
    """A repeated deduplicationId returns the first transfer, if it asks for the same thing."""
    if not existing.same_request(type_, asset_id, amount):
        raise IdempotencyConflict(
            "deduplicationId was already used for a different transfer",
            field="deduplicationId",
            transferId=existing.transfer_id,
        )
    return existing


def validate_deduplication_id(value: str) -> str:
    if not value or not value.strip() or len(value) > MAX_DEDUPLICATION_ID_LENGTH:
        raise InvalidInput(
            f"deduplicationId must be 1-{MAX_DEDUPLICATION_ID_LENGTH} characters", field="deduplicationId"
        )
    return value


def validate_amount(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise InvalidInput("amount must be positive", field="amount")
    return amount


def to_millis(moment: datetime) -> datetime:
    """Timestamps are shown with milliseconds; stored the same, so that a stored and a shown one agree."""
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: 2025-09-09T23:03:37.501Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def transfer_view(transfer: Transfer) -> dict[str, Any]:
    """The transfer JSON of the brokerage spec; the API response and the callback body alike."""
    return {
        "transferId": transfer.transfer_id,
        "deduplicationId": transfer.deduplication_id,
        "assetId": transfer.asset_id,
        "type": transfer.type.value,
        "status": transfer.status.value,
        "amount": format_decimal(transfer.amount),
        "createdAt": iso_millis(transfer.created_at),
        "updatedAt": iso_millis(transfer.updated_at),
    }


def callback_body(transfer: Transfer) -> str:
    return json.dumps(transfer_view(transfer), separators=(",", ":"))
