"""Candles, market-data progress, and the read side of the trading engine's trades table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, column, select, table
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db.marketdata_tables import candles, marketdata_progress
from bourse.domain.marketdata import Candle, Interval, TradeTick

# The trades table belongs to the trading engine (migration 0006); market data only reads the
# columns the exchange contract fixes, so it names just those.
trades = table(
    "trades",
    column("trade_id"),
    column("market_id"),
    column("price"),
    column("amount"),
    column("quote_amount"),
    column("taker_side"),
    column("created_at"),
)

# Upserting more rows than this per statement gains nothing and risks the bind-parameter limit.
UPSERT_CHUNK = 1000


def _candle(row: Any) -> Candle:
    m = row._mapping
    return Candle(
        market_id=m["market_id"],
        interval=Interval(m["interval"]),
        start=m["start"],
        open=m["open"],
        high=m["high"],
        low=m["low"],
        close=m["close"],
        base_volume=m["base_volume"],
        quote_volume=m["quote_volume"],
        trades=m["trades"],
        last_trade_id=m["last_trade_id"],
    )


def _tick(row: Any) -> TradeTick:
    m = row._mapping
    return TradeTick(
        market_id=m["market_id"],
        trade_id=m["trade_id"],
        price=Decimal(m["price"]),
        amount=Decimal(m["amount"]),
        quote_amount=Decimal(m["quote_amount"]),
        taker_side=m["taker_side"],
        at=m["created_at"],
    )


def _row(c: Candle) -> dict[str, object]:
    return {
        "market_id": c.market_id,
        "interval": c.interval.value,
        "start": c.start,
        "open": c.open,
        "high": c.high,
        "low": c.low,
        "close": c.close,
        "base_volume": c.base_volume,
        "quote_volume": c.quote_volume,
        "trades": c.trades,
        "last_trade_id": c.last_trade_id,
    }


class SqlMarketDataRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def upsert_candles(self, items: Sequence[Candle]) -> None:
        rows = [_row(c) for c in items]
        for i in range(0, len(rows), UPSERT_CHUNK):
            stmt = pg_insert(candles).values(rows[i : i + UPSERT_CHUNK])
            excluded = stmt.excluded
            # The in-memory candle folded every trade up to its last_trade_id; it replaces the row
            # unless the row already covers a later trade (another writer got further).
            await self._c.execute(
                stmt.on_conflict_do_update(
                    index_elements=["market_id", "interval", "start"],
                    set_={
                        name: excluded[name]
                        for name in (
                            "open",
                            "high",
                            "low",
                            "close",
                            "base_volume",
                            "quote_volume",
                            "trades",
                            "last_trade_id",
                        )
                    },
                    where=candles.c.last_trade_id < excluded.last_trade_id,
                )
            )

    async def candles(
        self, market_id: str, interval: Interval, first_start: datetime, to: datetime
    ) -> list[Candle]:
        c = candles.c
        rows = await self._c.execute(
            select(candles)
            .where(
                and_(
                    c.market_id == market_id,
                    c.interval == interval.value,
                    c.start >= first_start,
                    c.start <= to,
                )
            )
            .order_by(c.start)
        )
        return [_candle(r) for r in rows]

    async def candle(self, market_id: str, interval: Interval, start: datetime) -> Candle | None:
        c = candles.c
        row = (
            await self._c.execute(
                select(candles).where(
                    and_(c.market_id == market_id, c.interval == interval.value, c.start == start)
                )
            )
        ).first()
        return _candle(row) if row else None

    async def latest_candles(self, market_id: str) -> list[Candle]:
        c = candles.c
        rows = await self._c.execute(
            select(candles)
            .where(c.market_id == market_id)
            .order_by(c.interval, c.start.desc())
            .ext(distinct_on(c.interval))
        )
        return [_candle(r) for r in rows]

    async def progress(self, market_id: str) -> int:
        p = marketdata_progress.c
        value = (await self._c.execute(select(p.last_trade_id).where(p.market_id == market_id))).scalar()
        return int(value) if value is not None else 0

    async def set_progress(self, market_id: str, last_trade_id: int, at: datetime) -> None:
        stmt = pg_insert(marketdata_progress).values(
            market_id=market_id, last_trade_id=last_trade_id, updated_at=at
        )
        await self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=["market_id"],
                set_={"last_trade_id": stmt.excluded.last_trade_id, "updated_at": stmt.excluded.updated_at},
                where=marketdata_progress.c.last_trade_id < stmt.excluded.last_trade_id,
            )
        )

    async def trades_after(self, market_id: str, trade_id: int, limit: int) -> list[TradeTick]:
        t = trades.c
        rows = await self._c.execute(
            select(trades)
            .where(and_(t.market_id == market_id, t.trade_id > trade_id))
            .order_by(t.trade_id)
            .limit(limit)
        )
        return [_tick(r) for r in rows]

    async def recent_trades(self, market_id: str, limit: int) -> list[TradeTick]:
        t = trades.c
        rows = await self._c.execute(
            select(trades)
            .where(t.market_id == market_id)
            .order_by(t.created_at.desc(), t.trade_id.desc())
            .limit(limit)
        )
        return [_tick(r) for r in rows]
