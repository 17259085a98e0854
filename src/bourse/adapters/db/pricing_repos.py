"""The pricing repository (tables in pricing_tables.py; reads ``orders`` and ``trades``).

Upserts keep one row per market for settings, prices and halt state. Funding rates are inserted
``ON CONFLICT DO NOTHING`` on their key, so two runs storing one funding time store it once.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import derivatives_tables as dt
from bourse.adapters.db import pricing_tables as pt
from bourse.adapters.db import trading_tables as tt
from bourse.domain.circuit_breaker import TradePoint
from bourse.domain.pricing import (
    ExecutionMode,
    FundingPage,
    FundingQuery,
    FundingRate,
    HaltState,
    MarkPrice,
    PriceSource,
    PricingSettings,
    SourceKind,
    StoredPrices,
)

_s, _p, _f, _h = pt.market_pricing, pt.market_prices, pt.funding_rates, pt.pricing_halts
_mh = pt.mark_history
_o, _t = tt.orders, tt.trades
_do = dt.derivative_orders

# Orders that rest on the book: live limit orders (a stop-limit once activated).
_RESTING = and_(
    _o.c.status.in_(("Placed", "PartiallyFilled")),
    _o.c.type.in_(("Limit", "StopLimit")),
    _o.c.price.is_not(None),
    or_(_o.c.stop_status.is_(None), _o.c.stop_status == "Activated"),
)


def _settings(row: Any) -> PricingSettings:
    source = None
    if row.source_kind is not None:
        source = PriceSource(
            SourceKind(row.source_kind),
            market_id=row.source_market_id,
            exchange=row.exchange,
            symbol=row.symbol,
            bid=row.manual_bid,
            ask=row.manual_ask,
        )
    return PricingSettings(
        row.market_id,
        ExecutionMode(row.execution_mode),
        source,
        row.markup_rate,
        row.stale_after_seconds,
        row.updated_at,
    )


def _prices(row: Any) -> StoredPrices:
    return StoredPrices(
        row.market_id,
        row.raw_bid,
        row.raw_ask,
        row.quoted_at,
        row.mark,
        row.index_price,
        row.marked_at,
        row.first_marked_at,
        row.error,
        row.error_at,
        row.funding_through,
    )


def _rate(row: Any) -> FundingRate:
    return FundingRate(row.market_id, row.applied_at, row.interval_hours, row.rate, row.mark, row.index_price)


def _halt(row: Any) -> HaltState:
    return HaltState(
        row.market_id, row.stale_since, row.stale_halted_at, row.breaker_from_trade_id, row.breaker_tripped_at
    )


class SqlPricingRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    # --- settings ------------------------------------------------------------------------------

    async def get_settings(self, market_id: str) -> PricingSettings | None:
        row = (await self._c.execute(select(_s).where(_s.c.market_id == market_id))).first()
        return None if row is None else _settings(row)

    async def list_settings(self) -> builtins.list[PricingSettings]:
        rows = await self._c.execute(select(_s).order_by(_s.c.market_id))
        return [_settings(r) for r in rows]

    async def put_settings(self, settings: PricingSettings) -> None:
        source = settings.source
        values = {
            "execution_mode": settings.execution_mode.value,
            "source_kind": None if source is None else source.kind.value,
            "source_market_id": None if source is None else source.market_id,
            "exchange": None if source is None else source.exchange,
            "symbol": None if source is None else source.symbol,
            "manual_bid": None if source is None else source.bid,
            "manual_ask": None if source is None else source.ask,
            "markup_rate": settings.markup_rate,
            "stale_after_seconds": settings.stale_after_seconds,
            "updated_at": settings.updated_at,
        }
        stmt = insert(_s).values(market_id=settings.market_id, **values)
        await self._c.execute(stmt.on_conflict_do_update(index_elements=[_s.c.market_id], set_=values))

    # --- prices --------------------------------------------------------------------------------

    async def prices(self, market_id: str, *, for_update: bool = False) -> StoredPrices | None:
        stmt = select(_p).where(_p.c.market_id == market_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _prices(row)

    async def prices_of(self, market_ids: Sequence[str]) -> dict[str, StoredPrices]:
        if not market_ids:
            return {}
        rows = await self._c.execute(select(_p).where(_p.c.market_id.in_(list(market_ids))))
        return {r.market_id: _prices(r) for r in rows}

    async def save_prices(self, prices: StoredPrices) -> None:
        values = {
            "raw_bid": prices.raw_bid,
            "raw_ask": prices.raw_ask,
            "quoted_at": prices.quoted_at,
            "mark": prices.mark,
            "index_price": prices.index,
            "marked_at": prices.marked_at,
            "first_marked_at": prices.first_marked_at,
            "error": prices.error,
            "error_at": prices.error_at,
        }
        # funding_through belongs to the funding run (set_funding_through): never written here.
        stmt = insert(_p).values(market_id=prices.market_id, **values)
        await self._c.execute(stmt.on_conflict_do_update(index_elements=[_p.c.market_id], set_=values))

    async def set_funding_through(self, market_id: str, at: datetime) -> None:
        await self._c.execute(update(_p).where(_p.c.market_id == market_id).values(funding_through=at))

    async def book_top(self, market_id: str) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
        mine = and_(_o.c.market_id == market_id, _RESTING)
        # A derivative OrderBook market's book holds derivative orders (engine_seq: resting).
        book = and_(_do.c.market_id == market_id, _do.c.in_book, _do.c.engine_seq.is_not(None))
        bid = func.greatest(
            select(func.max(_o.c.price)).where(mine, _o.c.side == "Buy").scalar_subquery(),
            select(func.max(_do.c.price)).where(book, _do.c.side == "Buy").scalar_subquery(),
        )
        ask = func.least(
            select(func.min(_o.c.price)).where(mine, _o.c.side == "Sell").scalar_subquery(),
            select(func.min(_do.c.price)).where(book, _do.c.side == "Sell").scalar_subquery(),
        )
        last = (
            select(_t.c.price)
            .where(_t.c.market_id == market_id)
            .order_by(_t.c.market_seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        row = (await self._c.execute(select(bid.label("bid"), ask.label("ask"), last.label("last")))).one()
        return row.bid, row.ask, row.last

    # --- funding rates -------------------------------------------------------------------------

    async def add_funding_rate(self, rate: FundingRate) -> bool:
        stmt = (
            insert(_f)
            .values(
                market_id=rate.market_id,
                applied_at=rate.applied_at,
                interval_hours=rate.interval_hours,
                rate=rate.rate,
                mark=rate.mark,
                index_price=rate.index,
            )
            .on_conflict_do_nothing(index_elements=[_f.c.market_id, _f.c.applied_at])
            .returning(_f.c.market_id)
        )
        return (await self._c.execute(stmt)).first() is not None

    async def add_marks_at(self, marks: Sequence[MarkPrice]) -> None:
        if not marks:
            return
        stmt = insert(_mh).values(
            [{"market_id": m.market_id, "at": m.at, "mark": m.mark, "index_price": m.index} for m in marks]
        )
        await self._c.execute(stmt.on_conflict_do_nothing(index_elements=[_mh.c.market_id, _mh.c.at]))

    async def mark_at(self, market_id: str, at: datetime) -> MarkPrice | None:
        row = (await self._c.execute(select(_mh).where(_mh.c.market_id == market_id, _mh.c.at == at))).first()
        return None if row is None else MarkPrice(row.market_id, row.mark, row.index_price, row.at)

    async def last_funding_time(self, market_id: str) -> datetime | None:
        value: datetime | None = await self._c.scalar(
            select(func.max(_f.c.applied_at)).where(_f.c.market_id == market_id)
        )
        return value

    async def funding_rates(self, market_id: str, query: FundingQuery) -> FundingPage:
        stmt: Select[Any] = select(_f).where(_f.c.market_id == market_id)
        if query.before is not None:
            stmt = stmt.where(_f.c.applied_at < query.before)
        # One row more than the page tells whether there is more.
        rows = list(await self._c.execute(stmt.order_by(_f.c.applied_at.desc()).limit(query.limit + 1)))
        return FundingPage([_rate(r) for r in rows[: query.limit]], len(rows) > query.limit)

    async def funding_rates_after(
        self, market_id: str, after: datetime | None, limit: int
    ) -> builtins.list[FundingRate]:
        stmt: Select[Any] = select(_f).where(_f.c.market_id == market_id)
        if after is not None:
            stmt = stmt.where(_f.c.applied_at > after)
        rows = await self._c.execute(stmt.order_by(_f.c.applied_at).limit(limit))
        return [_rate(r) for r in rows]

    # --- halts ---------------------------------------------------------------------------------

    async def halt_state(self, market_id: str, *, for_update: bool = False) -> HaltState | None:
        stmt = select(_h).where(_h.c.market_id == market_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _halt(row)

    async def save_halt_state(self, state: HaltState) -> None:
        values = {
            "stale_since": state.stale_since,
            "stale_halted_at": state.stale_halted_at,
            "breaker_from_trade_id": state.breaker_from_trade_id,
            "breaker_tripped_at": state.breaker_tripped_at,
        }
        stmt = insert(_h).values(market_id=state.market_id, **values)
        await self._c.execute(stmt.on_conflict_do_update(index_elements=[_h.c.market_id], set_=values))

    async def trade_window(
        self, market_id: str, since: datetime, from_trade_id: int
    ) -> builtins.list[TradePoint]:
        window = and_(_t.c.market_id == market_id, _t.c.created_at >= since, _t.c.trade_id >= from_trade_id)
        cols = (_t.c.trade_id, _t.c.price, _t.c.created_at)
        first = select(*cols).where(window).order_by(_t.c.trade_id).limit(1)
        low = select(*cols).where(window).order_by(_t.c.price, _t.c.trade_id).limit(1)
        high = select(*cols).where(window).order_by(_t.c.price.desc(), _t.c.trade_id).limit(1)
        stmt = first.subquery().select().union(low.subquery().select(), high.subquery().select())
        rows = await self._c.execute(stmt)
        points = {r.trade_id: TradePoint(int(r.trade_id), r.price, r.created_at) for r in rows}
        return [points[k] for k in sorted(points)]

    async def last_trade_id(self, market_id: str) -> int | None:
        value = await self._c.scalar(
            select(_t.c.trade_id).where(_t.c.market_id == market_id).order_by(_t.c.market_seq.desc()).limit(1)
        )
        return None if value is None else int(value)
