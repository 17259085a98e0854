"""Repositories for transfers and their callback deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from bourse.adapters.db import transfer_tables as tt
from bourse.domain.callbacks import (
    CallbackAttempt,
    CallbackDelivery,
    DeliveryReport,
    DeliveryState,
)
from bourse.domain.transfers import Transfer, TransferStatus, TransferType
from bourse.domain.values import AccountId, AssetId, normalized


def _transfer(row: object) -> Transfer:
    m = row._mapping  # type: ignore[attr-defined]
    return Transfer(
        transfer_id=m["transfer_id"],
        account_id=AccountId(m["account_id"]),
        deduplication_id=m["deduplication_id"],
        asset_id=AssetId(m["asset_id"]),
        type=TransferType(m["type"]),
        status=TransferStatus(m["status"]),
        amount=normalized(m["amount"]),
        hold_id=m["hold_id"],
        callback_url=m["callback_url"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class SqlTransferRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, transfer: Transfer) -> bool:
        # ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to commit or roll
        # back, so of many identical requests exactly one inserts.
        stmt = (
            pg_insert(tt.transfers)
            .values(
                transfer_id=transfer.transfer_id,
                account_id=transfer.account_id,
                deduplication_id=transfer.deduplication_id,
                asset_id=transfer.asset_id,
                type=transfer.type.value,
                status=transfer.status.value,
                amount=transfer.amount,
                hold_id=transfer.hold_id,
                callback_url=transfer.callback_url,
                created_at=transfer.created_at,
                updated_at=transfer.updated_at,
            )
            .on_conflict_do_nothing(index_elements=["account_id", "deduplication_id"])
        )
        result = await self._c.execute(stmt)
        return result.rowcount == 1

    async def get(self, transfer_id: str, *, for_update: bool = False) -> Transfer | None:
        stmt = select(tt.transfers).where(tt.transfers.c.transfer_id == transfer_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return _transfer(row) if row else None

    async def get_by_deduplication_id(self, account_id: AccountId, deduplication_id: str) -> Transfer | None:
        t = tt.transfers
        row = (
            await self._c.execute(
                select(t).where(and_(t.c.account_id == account_id, t.c.deduplication_id == deduplication_id))
            )
        ).first()
        return _transfer(row) if row else None

    async def list_for_account(self, account_id: AccountId) -> list[Transfer]:
        t = tt.transfers
        rows = await self._c.execute(select(t).where(t.c.account_id == account_id).order_by(t.c.seq.desc()))
        return [_transfer(r) for r in rows]

    async def update(self, transfer: Transfer) -> None:
        t = tt.transfers
        await self._c.execute(
            update(t)
            .where(t.c.transfer_id == transfer.transfer_id)
            .values(
                status=transfer.status.value,
                hold_id=transfer.hold_id,
                callback_url=transfer.callback_url,
                updated_at=transfer.updated_at,
            )
        )


class SqlCallbackRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def enqueue(self, transfer_id: str, url: str, body: str, now: datetime) -> int:
        stmt = (
            insert(tt.callback_deliveries)
            .values(transfer_id=transfer_id, url=url, body=body, next_attempt_at=now, created_at=now)
            .returning(tt.callback_deliveries.c.id)
        )
        return int((await self._c.execute(stmt)).scalar_one())

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[CallbackDelivery]:
        d = tt.callback_deliveries
        earlier = aliased(d, name="earlier")
        # Status changes of one transfer arrive in order: a delivery waits while an older one of
        # the same transfer is still pending (retrying or leased by another worker).
        older_pending = exists().where(
            and_(
                earlier.c.transfer_id == d.c.transfer_id, earlier.c.state == "pending", earlier.c.id < d.c.id
            )
        )
        rows = (
            await self._c.execute(
                select(d.c.id, d.c.transfer_id, d.c.url, d.c.body, d.c.attempts)
                .where(and_(d.c.state == "pending", d.c.next_attempt_at <= now, ~older_pending))
                .order_by(d.c.next_attempt_at, d.c.id)
                .limit(limit)
                .with_for_update(of=d, skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        # The lease: a worker that dies mid-attempt leaves the delivery due again after it.
        await self._c.execute(
            update(d).where(d.c.id.in_([r.id for r in rows])).values(next_attempt_at=lease_until)
        )
        return [CallbackDelivery(r.id, r.transfer_id, r.url, r.body, r.attempts) for r in rows]

    async def record_attempt(
        self, attempt: CallbackAttempt, state: DeliveryState, next_attempt_at: datetime | None
    ) -> None:
        await self._c.execute(
            insert(tt.callback_attempts).values(
                delivery_id=attempt.delivery_id,
                attempt=attempt.attempt,
                attempted_at=attempt.attempted_at,
                address=attempt.address,
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
        )
        d = tt.callback_deliveries
        values: dict[str, object] = {
            "state": state.value,
            "attempts": attempt.attempt,
            "last_attempt_at": attempt.attempted_at,
            "last_error": attempt.error
            if attempt.error
            else (None if state is DeliveryState.DELIVERED else f"HTTP {attempt.status_code}"),
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if state is not DeliveryState.PENDING:
            values["finished_at"] = attempt.attempted_at
        await self._c.execute(update(d).where(d.c.id == attempt.delivery_id).values(**values))

    async def for_transfer(self, transfer_id: str) -> list[DeliveryReport]:
        d, a = tt.callback_deliveries, tt.callback_attempts
        deliveries = (
            await self._c.execute(select(d).where(d.c.transfer_id == transfer_id).order_by(d.c.id))
        ).all()
        if not deliveries:
            return []
        attempts = (
            await self._c.execute(
                select(a)
                .where(a.c.delivery_id.in_([r.id for r in deliveries]))
                .order_by(a.c.delivery_id, a.c.attempt)
            )
        ).all()
        by_delivery: dict[int, list[CallbackAttempt]] = {}
        for r in attempts:
            by_delivery.setdefault(r.delivery_id, []).append(
                CallbackAttempt(
                    r.delivery_id, r.attempt, r.attempted_at, r.address, r.status_code, r.error, r.duration_ms
                )
            )
        return [
            DeliveryReport(
                id=r.id,
                transfer_id=r.transfer_id,
                url=r.url,
                body=r.body,
                state=DeliveryState(r.state),
                attempts=tuple(by_delivery.get(r.id, ())),
                next_attempt_at=r.next_attempt_at,
                last_error=r.last_error,
            )
            for r in deliveries
        ]
