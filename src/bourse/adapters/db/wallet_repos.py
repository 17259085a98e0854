"""The stored ext-order requests of the seamless wallet."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db.wallet_tables import ext_requests as t
from bourse.domain.errors import InProgress
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.domain.wallet import ExtRequestType
from bourse.service.ports import ExtRequestRecord

# How long a request waits for a concurrent one with the same extRequestId to finish
# before answering "in progress" rather than holding the caller's connection.
DUPLICATE_WAIT_MS = 5000
_LOCK_NOT_AVAILABLE = "55P03"


def _record(row: object) -> ExtRequestRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return ExtRequestRecord(
        caller_id=m["caller_id"],
        ext_request_id=m["ext_request_id"],
        type=ExtRequestType(m["type"]),
        uid=UserId(m["uid"]),
        account_id=AccountId(m["account_id"]),
        currency=AssetId(m["currency"]),
        request=m["request"],
        fingerprint=bytes(m["fingerprint"]),
        response=m["response"],
        created_at=m["created_at"],
    )


def _sqlstate(error: DBAPIError) -> str | None:
    # SQLAlchemy's asyncpg adapter keeps the driver's exception (with sqlstate) as the cause.
    orig = error.orig
    cause = getattr(orig, "__cause__", None)
    return (
        getattr(cause, "sqlstate", None) or getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    )


class SqlExtRequestRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def get(self, caller_id: int, ext_request_id: str) -> ExtRequestRecord | None:
        row = (
            await self._c.execute(
                select(t).where(t.c.caller_id == caller_id, t.c.ext_request_id == ext_request_id)
            )
        ).first()
        return _record(row) if row else None

    async def reserve(self, record: ExtRequestRecord) -> bool:
        stmt = (
            pg_insert(t)
            .values(
                caller_id=record.caller_id,
                ext_request_id=record.ext_request_id,
                type=record.type.value,
                uid=record.uid,
                account_id=record.account_id,
                currency=record.currency,
                request=dict(record.request),
                fingerprint=record.fingerprint,
                response=dict(record.response),
                created_at=record.created_at,
            )
            .on_conflict_do_nothing(index_elements=[t.c.caller_id, t.c.ext_request_id])
            .returning(t.c.id)
        )
        await self._c.exec_driver_sql(f"SET LOCAL lock_timeout = {int(DUPLICATE_WAIT_MS)}")
        try:
            inserted = (await self._c.execute(stmt)).first()
        except DBAPIError as e:
            if _sqlstate(e) == _LOCK_NOT_AVAILABLE:
                raise InProgress(
                    "a request with this extRequestId is still being processed",
                    extRequestId=record.ext_request_id,
                ) from e
            raise
        await self._c.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
        return inserted is not None
