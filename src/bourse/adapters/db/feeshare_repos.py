"""Repositories for merchants and OTC fee sharing records (tables in feeshare_tables.py).

A record's stage only moves forward through conditional UPDATEs (``WHERE status = ...``):
of two runs racing on one record exactly one moves it, the other sees it done.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import feeshare_tables as ft
from bourse.adapters.db import tables as t
from bourse.domain.errors import Conflict, NotFound
from bourse.domain.feeshare import (
    BillingStatus,
    FeeShareRecord,
    Merchant,
    MerchantUser,
    RecordQuery,
    ShareTerms,
    Statistic,
    statistic,
)
from bourse.domain.values import AssetId, UserId

_m, _mu, _r = ft.merchants, ft.merchant_users, ft.feeshare_records


def _terms_values(terms: ShareTerms) -> dict[str, Any]:
    return {
        "income_divide_rate": terms.income_rate,
        "volume_divide_rate": terms.volume_rate,
        "max_divide_rate": terms.max_rate,
        "rate_symbol": terms.rate_symbol,
    }


def _terms(row: Any) -> ShareTerms:
    return ShareTerms(
        income_rate=row.income_divide_rate,
        volume_rate=row.volume_divide_rate,
        max_rate=row.max_divide_rate,
        rate_symbol=AssetId(row.rate_symbol),
    )


def _merchant(row: Any) -> Merchant:
    return Merchant(row.company_id, row.name, _terms(row), row.created_at, row.updated_at)


class SqlMerchantRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, merchant: Merchant) -> None:
        stmt = (
            insert(_m)
            .values(
                company_id=merchant.company_id,
                name=merchant.name,
                created_at=merchant.created_at,
                updated_at=merchant.updated_at,
                **_terms_values(merchant.terms),
            )
            .on_conflict_do_nothing(index_elements=["company_id"])
            .returning(_m.c.company_id)
        )
        if (await self._c.execute(stmt)).first() is None:
            raise Conflict(f"merchant {merchant.company_id} exists", field="companyId")

    async def get(self, company_id: int, *, for_update: bool = False) -> Merchant | None:
        stmt = select(_m).where(_m.c.company_id == company_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _merchant(row)

    async def list(self) -> builtins.list[Merchant]:
        rows = (await self._c.execute(select(_m).order_by(_m.c.company_id))).all()
        return [_merchant(r) for r in rows]

    async def update(self, merchant: Merchant) -> None:
        result = await self._c.execute(
            update(_m)
            .where(_m.c.company_id == merchant.company_id)
            .values(name=merchant.name, updated_at=merchant.updated_at, **_terms_values(merchant.terms))
        )
        if result.rowcount != 1:
            raise NotFound(f"merchant {merchant.company_id} not found", field="companyId")

    async def assign_user(self, uid: UserId, company_id: int, at: datetime) -> int:
        await self._c.execute(
            insert(_mu)
            .values(uid=uid, company_id=company_id, assigned_at=at)
            .on_conflict_do_nothing(index_elements=["uid"])
        )
        current = (await self._c.execute(select(_mu.c.company_id).where(_mu.c.uid == uid))).scalar_one()
        return int(current)

    async def unassign_user(self, uid: UserId, company_id: int) -> bool:
        result = await self._c.execute(
            delete(_mu).where(and_(_mu.c.uid == uid, _mu.c.company_id == company_id))
        )
        return result.rowcount == 1

    async def users(self, company_id: int) -> builtins.list[MerchantUser]:
        rows = (
            await self._c.execute(
                select(_mu.c.uid, t.users.c.username, _mu.c.company_id, _mu.c.assigned_at)
                .select_from(_mu.join(t.users, t.users.c.uid == _mu.c.uid))
                .where(_mu.c.company_id == company_id)
                .order_by(_mu.c.uid)
            )
        ).all()
        return [MerchantUser(UserId(r.uid), r.username, r.company_id, r.assigned_at) for r in rows]


# Per trade and merchant: the trade's volume once, the fees that merchant's users paid on it in
# the coin, and whether every side of the trade was that merchant's (self-dealing). Executions
# are found by market and time (ix_executions_market_id_created_at).
_STATISTICS = text(
    """
WITH ex AS (
    SELECT e.trade_id, e.quote_amount, e.commission, e.commission_asset,
           m.quote_asset_id AS coin, mu.company_id
      FROM executions e
      JOIN markets m ON m.market_id = e.market_id
      JOIN accounts a ON a.account_id = e.account_id
      LEFT JOIN merchant_users mu ON mu.uid = a.uid
     WHERE m.is_otc AND e.created_at >= :start AND e.created_at < :end
),
sides AS (
    SELECT trade_id, count(*) AS sides FROM ex GROUP BY trade_id
),
per_trade AS (
    SELECT trade_id, coin, company_id, max(quote_amount) AS volume, count(*) AS sides,
           sum(CASE WHEN commission_asset = coin THEN commission ELSE 0 END) AS fee
      FROM ex
     WHERE company_id IS NOT NULL
     GROUP BY trade_id, coin, company_id
)
SELECT p.company_id, p.coin,
       sum(p.volume) AS value_all,
       sum(CASE WHEN s.sides >= 2 AND p.sides = s.sides THEN p.volume ELSE 0 END) AS value_sub,
       sum(p.fee) AS fee
  FROM per_trade p JOIN sides s USING (trade_id)
 GROUP BY p.company_id, p.coin
 ORDER BY p.company_id, p.coin
"""
)

_PRICE = text(
    """
SELECT t.price, t.created_at
  FROM trades t JOIN markets m ON m.market_id = t.market_id
 WHERE m.base_asset_id = :base AND m.quote_asset_id = :quote AND t.created_at < :before
 ORDER BY t.created_at DESC, t.trade_id DESC
 LIMIT 1
"""
)


def _record(row: Any) -> FeeShareRecord:
    return FeeShareRecord(
        id=row.id,
        company_id=row.company_id,
        coin=AssetId(row.coin),
        item_date=row.item_date,
        status=BillingStatus(row.status),
        value_all=row.value_all,
        value_sub=row.value_sub,
        fee=row.fee_value,
        terms=_terms(row),
        share=row.share,
        change_rate=row.change_rate,
        convert_value=row.convert_value,
        fingerprint=row.fingerprint,
        remark=row.remark,
        settle_tx_id=row.settle_tx_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        count_time=row.count_time,
        rate_time=row.rate_time,
    )


class SqlFeeShareRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def statistics(self, start: datetime, end: datetime) -> list[Statistic]:
        rows = (await self._c.execute(_STATISTICS, {"start": start, "end": end})).all()
        return [statistic(r.company_id, r.coin, r.value_all, r.value_sub, r.fee) for r in rows]

    async def add_statistics(
        self, day: date, rows: Sequence[tuple[Statistic, ShareTerms]], at: datetime
    ) -> int:
        if not rows:
            return 0
        values = [
            {
                "company_id": s.company_id,
                "coin": s.coin,
                "item_date": day,
                "status": int(BillingStatus.STATISTIC),
                "value_all": s.value_all,
                "value_sub": s.value_sub,
                "fee_value": s.fee,
                **_terms_values(terms),
                "created_at": at,
                "updated_at": at,
                "count_time": at,
                "rate_time": at,
            }
            for s, terms in rows
        ]
        stmt = (
            insert(_r)
            .values(values)
            .on_conflict_do_nothing(index_elements=["company_id", "coin", "item_date"])
            .returning(_r.c.id)
        )
        return len((await self._c.execute(stmt)).all())

    async def day_records(self, day: date, status: BillingStatus | None = None) -> list[FeeShareRecord]:
        stmt = select(_r).where(_r.c.item_date == day).order_by(_r.c.id)
        if status is not None:
            stmt = stmt.where(_r.c.status == int(status))
        return [_record(r) for r in (await self._c.execute(stmt)).all()]

    async def get(self, record_id: int, *, for_update: bool = False) -> FeeShareRecord | None:
        stmt = select(_r).where(_r.c.id == record_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _record(row)

    async def save_calculated(self, record: FeeShareRecord) -> bool:
        result = await self._c.execute(
            update(_r)
            .where(and_(_r.c.id == record.id, _r.c.status == int(BillingStatus.STATISTIC)))
            .values(
                status=int(BillingStatus.CALCULATED),
                share=record.share,
                change_rate=record.change_rate,
                convert_value=record.convert_value,
                fingerprint=record.fingerprint,
                remark=record.remark,
                updated_at=record.updated_at,
                count_time=record.count_time,
                rate_time=record.rate_time,
            )
        )
        return result.rowcount == 1

    async def set_remark(self, record_id: int, remark: str, at: datetime) -> None:
        await self._c.execute(update(_r).where(_r.c.id == record_id).values(remark=remark, updated_at=at))

    async def mark_settled(self, record_id: int, tx_id: int | None, at: datetime) -> bool:
        result = await self._c.execute(
            update(_r)
            .where(and_(_r.c.id == record_id, _r.c.status == int(BillingStatus.CALCULATED)))
            .values(status=int(BillingStatus.SETTLED), settle_tx_id=tx_id, updated_at=at)
        )
        return result.rowcount == 1

    async def latest_price(
        self, base: AssetId, quote: AssetId, before: datetime
    ) -> tuple[Decimal, datetime] | None:
        row = (await self._c.execute(_PRICE, {"base": base, "quote": quote, "before": before})).first()
        return None if row is None else (row.price, row.created_at)

    async def query(self, company_id: int, query: RecordQuery) -> tuple[int, list[FeeShareRecord]]:
        where = [
            _r.c.company_id == company_id,
            _r.c.item_date >= query.first_day,
            _r.c.item_date <= query.last_day,
        ]
        if query.coin is not None:
            where.append(func.upper(_r.c.coin) == query.coin.upper())
        if query.status is not None:
            where.append(_r.c.status == int(query.status))
        count = await self._c.scalar(select(func.count()).select_from(_r).where(*where))
        rows = (
            await self._c.execute(
                select(_r)
                .where(*where)
                .order_by(_r.c.item_date.desc(), _r.c.id.desc())
                .limit(query.page_size)
                .offset(query.offset)
            )
        ).all()
        return int(count or 0), [_record(r) for r in rows]

    async def last_run(self) -> date | None:
        value = await self._c.scalar(select(func.max(ft.feeshare_runs.c.item_date)))
        return value if isinstance(value, date) else None

    async def complete_run(self, day: date, records: int, settled: int, refused: int, at: datetime) -> None:
        runs = ft.feeshare_runs
        stmt = insert(runs).values(
            item_date=day, records=records, settled=settled, refused=refused, completed_at=at
        )
        await self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=["item_date"],
                set_={"records": records, "settled": settled, "refused": refused, "completed_at": at},
            )
        )
