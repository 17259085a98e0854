"""The stored ext-order requests of the seamless wallet."""

from __future__ import annotations

import json

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db.wallet_tables import ext_requests as t
from bourse.domain.errors import InProgress
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.domain.wallet import ExtRequestType
from bourse.service.ports import ExtRequestRecord, WalletLookup

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

    async def lookup(self, caller_id: int, ext_request_id: str, username: str, currency: str) -> WalletLookup:
        row = (
            await self._c.execute(
                _LOOKUP,
                {
                    "caller_id": caller_id,
                    "ext_request_id": ext_request_id,
                    "username": username,
                    "currency": currency,
                },
            )
        ).one()
        return WalletLookup(
            stored=None if row.caller_id is None else _record(row),
            uid=None if row.user_uid is None else UserId(row.user_uid),
            user_active=bool(row.user_active),
            account_id=None if row.default_account is None else AccountId(row.default_account),
            asset_scale=row.asset_scale,
        )

    async def reserve(self, record: ExtRequestRecord) -> bool:
        params = {
            "wait": str(int(DUPLICATE_WAIT_MS)),
            "caller_id": record.caller_id,
            "ext_request_id": record.ext_request_id,
            "type": record.type.value,
            "uid": record.uid,
            "account_id": record.account_id,
            "currency": record.currency,
            "request": json.dumps(dict(record.request)),
            "fingerprint": record.fingerprint,
            "response": json.dumps(dict(record.response)),
            "created_at": record.created_at,
        }
        try:
            inserted = (await self._c.execute(_RESERVE, params)).first()
        except DBAPIError as e:
            if _sqlstate(e) == _LOCK_NOT_AVAILABLE:
                raise InProgress(
                    "a request with this extRequestId is still being processed",
                    extRequestId=record.ext_request_id,
                ) from e
            raise
        return inserted is not None


# Everything a request needs to know before it moves money, in one round trip instead of four:
# the stored request (a repeat), the user, the user's default account (one at most, by a unique
# index) and the currency. Each part is NULL when missing; the one-row ``one`` keeps the row.
_LOOKUP = text(
    """
    SELECT r.caller_id, r.ext_request_id, r.type, r.uid, r.account_id, r.currency, r.request,
           r.fingerprint, r.response, r.created_at,
           u.uid AS user_uid, u.is_active AS user_active, a.account_id AS default_account,
           s.scale AS asset_scale
      FROM (SELECT 1) AS one
      LEFT JOIN ext_requests r ON r.caller_id = :caller_id AND r.ext_request_id = :ext_request_id
      LEFT JOIN users u ON u.username = :username
      LEFT JOIN accounts a ON a.uid = u.uid AND a.is_default
      LEFT JOIN assets s ON s.id = :currency
    """
)

# One round trip: bound the wait for a concurrent twin's transaction (lock_timeout, local to
# this transaction), insert unless the key exists, and put the previous lock_timeout back.
# The CTE runs before the row is inserted, RETURNING after; when nothing is inserted the
# bound stays for the rest of this transaction, which then only reads the stored row.
_RESERVE = text(
    """
    WITH bound AS MATERIALIZED (
        SELECT current_setting('lock_timeout') AS previous, set_config('lock_timeout', :wait, true) AS applied
    )
    INSERT INTO ext_requests
        (caller_id, ext_request_id, type, uid, account_id, currency, request, fingerprint, response, created_at)
    SELECT :caller_id, :ext_request_id, :type, :uid, :account_id, :currency,
           CAST(:request AS jsonb), :fingerprint, CAST(:response AS jsonb), :created_at
      FROM bound
    ON CONFLICT (caller_id, ext_request_id) DO NOTHING
    RETURNING id, set_config('lock_timeout', (SELECT previous FROM bound), true)
    """
)
