"""The venue repository (tables in venue_tables.py): venues, hedge settings, external orders.

External orders are inserted ``ON CONFLICT (order_id) DO NOTHING``, so one derivative order's fill
is hedged once even if it were enqueued twice; the job claims work ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import venue_tables as vt
from bourse.domain.orders import Side
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.domain.venues import (
    ExternalOrder,
    ExternalOrderStatus,
    HedgeSettings,
    PaperMode,
    PaperSettings,
    VenueConfig,
    VenueKind,
)

_v, _h, _x = vt.venues, vt.market_hedging, vt.external_orders


def _venue(row: Any) -> VenueConfig:
    paper = None
    if row.kind == VenueKind.PAPER.value:
        s = row.settings or {}
        paper = PaperSettings(
            PaperMode(s.get("mode", PaperMode.FILL.value)),
            int(s.get("latencyMs", 0)),
            Decimal(s.get("feeRate", "0")),
        )
    return VenueConfig(
        venue_id=row.venue_id,
        kind=VenueKind(row.kind),
        name=row.name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        enabled=row.enabled,
        exchange=row.exchange,
        sandbox=row.sandbox,
        paper=paper,
        credentials_enc=row.credentials_enc,
    )


def _venue_values(v: VenueConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if v.paper is not None:
        settings = {
            "mode": v.paper.mode.value,
            "latencyMs": v.paper.latency_ms,
            "feeRate": format(v.paper.fee_rate, "f"),
        }
    return {
        "venue_id": v.venue_id,
        "kind": v.kind.value,
        "name": v.name,
        "enabled": v.enabled,
        "exchange": v.exchange,
        "sandbox": v.sandbox,
        "settings": settings,
        "credentials_enc": v.credentials_enc,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
    }


def _hedging(row: Any) -> HedgeSettings:
    return HedgeSettings(
        row.market_id,
        row.venue_id,
        row.venue_symbol,
        row.hedge_ratio.normalize() + 0,
        row.timeout_seconds,
        row.enabled,
        row.updated_at,
    )


def _order(row: Any) -> ExternalOrder:
    return ExternalOrder(
        external_order_id=row.external_order_id,
        venue_id=row.venue_id,
        venue_symbol=row.venue_symbol,
        order_id=int(row.order_id),
        position_execution_id=row.position_execution_id,
        market_id=row.market_id,
        account_id=AccountId(row.account_id),
        uid=UserId(int(row.uid)),
        side=Side(row.side),
        amount=row.amount,
        status=ExternalOrderStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        timeout_at=row.timeout_at,
        reference_price=row.reference_price,
        lp_order_id=row.lp_order_id,
        filled=row.filled,
        average_price=row.average_price,
        commission=row.commission,
        commission_asset=None if row.commission_asset is None else AssetId(row.commission_asset),
        sent_at=row.sent_at,
        attempts=row.attempts,
        last_error=row.last_error,
    )


def _changing(o: ExternalOrder) -> dict[str, Any]:
    return {
        "lp_order_id": o.lp_order_id,
        "status": o.status.value,
        "filled": o.filled,
        "average_price": o.average_price,
        "commission": o.commission,
        "commission_asset": o.commission_asset,
        "sent_at": o.sent_at,
        "updated_at": o.updated_at,
        "attempts": o.attempts,
        "last_error": o.last_error,
    }


class SqlVenueRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    # --- venues ---

    async def add_venue(self, venue: VenueConfig) -> bool:
        stmt = insert(_v).values(**_venue_values(venue)).on_conflict_do_nothing(index_elements=["venue_id"])
        return (await self._c.execute(stmt)).rowcount == 1

    async def get_venue(self, venue_id: str, *, for_update: bool = False) -> VenueConfig | None:
        stmt = select(_v).where(_v.c.venue_id == venue_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _venue(row)

    async def list_venues(self) -> builtins.list[VenueConfig]:
        return [_venue(r) for r in await self._c.execute(select(_v).order_by(_v.c.venue_id))]

    async def save_venue(self, venue: VenueConfig) -> None:
        values = _venue_values(venue)
        del values["venue_id"]
        await self._c.execute(update(_v).where(_v.c.venue_id == venue.venue_id).values(**values))

    async def delete_venue(self, venue_id: str) -> bool:
        return (await self._c.execute(delete(_v).where(_v.c.venue_id == venue_id))).rowcount == 1

    async def venue_in_use(self, venue_id: str) -> bool:
        hedged = exists().where(_h.c.venue_id == venue_id)
        # Every external order keeps its venue (the history shows it), finished or not.
        ordered = exists().where(_x.c.venue_id == venue_id)
        return bool((await self._c.execute(select(or_(hedged, ordered)))).scalar_one())

    # --- hedge settings ---

    async def get_hedging(self, market_id: str) -> HedgeSettings | None:
        row = (await self._c.execute(select(_h).where(_h.c.market_id == market_id))).first()
        return None if row is None else _hedging(row)

    async def put_hedging(self, settings: HedgeSettings) -> None:
        values = {
            "market_id": settings.market_id,
            "venue_id": settings.venue_id,
            "venue_symbol": settings.venue_symbol,
            "hedge_ratio": settings.ratio,
            "timeout_seconds": settings.timeout_seconds,
            "enabled": settings.enabled,
            "updated_at": settings.updated_at,
        }
        stmt = insert(_h).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["market_id"], set_={k: stmt.excluded[k] for k in values if k != "market_id"}
        )
        await self._c.execute(stmt)

    # --- external orders ---

    async def add_external_order(self, order: ExternalOrder) -> bool:
        values = {
            "external_order_id": order.external_order_id,
            "venue_id": order.venue_id,
            "venue_symbol": order.venue_symbol,
            "order_id": order.order_id,
            "position_execution_id": order.position_execution_id,
            "market_id": order.market_id,
            "account_id": order.account_id,
            "uid": int(order.uid),
            "side": order.side.value,
            "amount": order.amount,
            "reference_price": order.reference_price,
            "created_at": order.created_at,
            "timeout_at": order.timeout_at,
            **_changing(order),
        }
        stmt = insert(_x).values(**values).on_conflict_do_nothing(index_elements=["order_id"])
        return (await self._c.execute(stmt)).rowcount == 1

    async def get_external_order(
        self, external_order_id: str, *, for_update: bool = False
    ) -> ExternalOrder | None:
        stmt = select(_x).where(_x.c.external_order_id == external_order_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _order(row)

    async def save_external_order(self, order: ExternalOrder) -> None:
        await self._c.execute(
            update(_x).where(_x.c.external_order_id == order.external_order_id).values(**_changing(order))
        )

    async def external_orders_of(self, order_id: int) -> builtins.list[ExternalOrder]:
        rows = await self._c.execute(select(_x).where(_x.c.order_id == order_id))
        return [_order(r) for r in rows]

    async def claim_external_orders(
        self, statuses: Sequence[ExternalOrderStatus], limit: int, *, due_before: datetime | None = None
    ) -> builtins.list[ExternalOrder]:
        stmt = select(_x).where(_x.c.status.in_([s.value for s in statuses]))
        if due_before is not None:
            stmt = stmt.where(_x.c.timeout_at <= due_before)
        stmt = stmt.order_by(_x.c.timeout_at, _x.c.external_order_id).limit(limit)
        stmt = stmt.with_for_update(skip_locked=True)
        return [_order(r) for r in await self._c.execute(stmt)]
