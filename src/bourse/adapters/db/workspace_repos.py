"""Repositories for the trader workspace, notifications and price alerts (workspace_tables.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import workspace_tables as wt
from bourse.adapters.db.trading_tables import trades
from bourse.domain.notifications import (
    FiredAlert,
    NewAdminNotification,
    NewTraderNotification,
    Notification,
    NotificationQuery,
    PriceAlert,
    PriceCondition,
    Trade,
)
from bourse.domain.values import AccountId, UserId, normalized
from bourse.domain.workspace import Layout, Template, Theme, UiSettings, parse_tabs, tabs_json


async def _advisory_lock(conn: AsyncConnection, key: str) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


# --- workspace --------------------------------------------------------------------------------


def _layout(row: Any) -> Layout:
    m = row._mapping
    # Stored JSON was validated on the way in; parsing it again gives the typed view.
    return Layout(m["layout_id"], m["name"], parse_tabs(m["tabs"]))


class SqlWorkspaceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def lock_user(self, uid: UserId) -> None:
        await _advisory_lock(self._c, f"bourse.workspace:{uid}")

    async def settings(self, uid: UserId) -> UiSettings | None:
        s = wt.ui_settings
        row = (await self._c.execute(select(s).where(s.c.uid == uid))).first()
        if row is None:
            return None
        m = row._mapping
        return UiSettings(
            selected_layout_id=m["selected_layout_id"],
            is_introduction_tour_completed=m["is_introduction_tour_completed"],
            is_24h_time_format_used=m["is_24h_time_format_used"],
            theme=Theme(m["theme"]),
        )

    async def save_settings(self, uid: UserId, settings: UiSettings, at: datetime) -> None:
        values = {
            "selected_layout_id": settings.selected_layout_id,
            "is_introduction_tour_completed": settings.is_introduction_tour_completed,
            "is_24h_time_format_used": settings.is_24h_time_format_used,
            "theme": settings.theme.value,
            "updated_at": at,
        }
        stmt = pg_insert(wt.ui_settings).values(uid=uid, **values)
        await self._c.execute(stmt.on_conflict_do_update(index_elements=["uid"], set_=values))

    async def layouts(self, uid: UserId) -> list[Layout]:
        lt = wt.ui_layouts
        rows = await self._c.execute(
            select(lt).where(lt.c.uid == uid).order_by(lt.c.position, lt.c.created_at, lt.c.layout_id)
        )
        return [_layout(r) for r in rows]

    async def layout(self, uid: UserId, layout_id: str) -> Layout | None:
        lt = wt.ui_layouts
        row = (
            await self._c.execute(select(lt).where(and_(lt.c.uid == uid, lt.c.layout_id == layout_id)))
        ).first()
        return _layout(row) if row else None

    async def add_layout(self, uid: UserId, layout: Layout, at: datetime) -> bool:
        lt = wt.ui_layouts
        position = (
            select(func.coalesce(func.max(lt.c.position) + 1, 0)).where(lt.c.uid == uid).scalar_subquery()
        )
        stmt = (
            pg_insert(lt)
            .values(
                uid=uid,
                layout_id=layout.id,
                name=layout.name,
                position=position,
                tabs=tabs_json(layout.tabs),
                created_at=at,
                updated_at=at,
            )
            .on_conflict_do_nothing(index_elements=["uid", "layout_id"])
        )
        return (await self._c.execute(stmt)).rowcount == 1

    async def update_layout(self, uid: UserId, layout: Layout, at: datetime) -> bool:
        lt = wt.ui_layouts
        result = await self._c.execute(
            update(lt)
            .where(and_(lt.c.uid == uid, lt.c.layout_id == layout.id))
            .values(name=layout.name, tabs=tabs_json(layout.tabs), updated_at=at)
        )
        return result.rowcount == 1

    async def delete_layout(self, uid: UserId, layout_id: str) -> bool:
        lt = wt.ui_layouts
        result = await self._c.execute(delete(lt).where(and_(lt.c.uid == uid, lt.c.layout_id == layout_id)))
        return result.rowcount == 1

    async def set_order(self, uid: UserId, layout_ids: Sequence[str], at: datetime) -> None:
        lt = wt.ui_layouts
        for position, layout_id in enumerate(layout_ids):
            await self._c.execute(
                update(lt)
                .where(and_(lt.c.uid == uid, lt.c.layout_id == layout_id))
                .values(position=position, updated_at=at)
            )

    async def templates(self) -> list[Template]:
        tt = wt.ui_templates
        rows = await self._c.execute(select(tt).order_by(tt.c.position, tt.c.template_id))
        return [Template(r.template_id, r.name, r.is_default, parse_tabs(r.tabs)) for r in rows]


# --- notifications ----------------------------------------------------------------------------


def _page(stmt: Any, table: Any, query: NotificationQuery) -> Any:
    c = table.c
    if query.last_id is not None:
        stmt = stmt.where(c.id < query.last_id)
    if query.types:
        stmt = stmt.where(c.type.in_(query.types))
    if query.created_from is not None:
        stmt = stmt.where(c.created_at >= query.created_from)
    if query.created_before is not None:
        stmt = stmt.where(c.created_at < query.created_before)
    return stmt.order_by(c.id.desc()).limit(query.limit)


def _trader_scope(uid: UserId, account_id: AccountId | None) -> Any:
    n = wt.trader_notifications.c
    if account_id is None:
        return n.uid == uid
    return and_(n.uid == uid, or_(n.account_id.is_(None), n.account_id == account_id))


def _trader(row: Any) -> Notification:
    m = row._mapping
    return Notification(
        id=m["id"],
        type=m["type"],
        title=m["title"],
        body=m["body"],
        data=m["data"],
        is_read=m["read_at"] is not None,
        created_at=m["created_at"],
        account_id=AccountId(m["account_id"]) if m["account_id"] else None,
    )


class SqlNotificationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    # admin

    async def add_admin(self, notification: NewAdminNotification) -> int | None:
        n = notification
        stmt = (
            pg_insert(wt.admin_notifications)
            .values(
                type=n.type.value,
                title=n.title,
                body=n.body,
                data=dict(n.data),
                dedupe_key=n.dedupe_key,
                created_at=n.created_at,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(wt.admin_notifications.c.id)
        )
        return (await self._c.execute(stmt)).scalar_one_or_none()

    def _read_by(self, reader: UserId) -> Any:
        r = wt.admin_notification_reads.c
        return exists().where(and_(r.notification_id == wt.admin_notifications.c.id, r.uid == reader))

    async def list_admin(self, reader: UserId, query: NotificationQuery) -> list[Notification]:
        a = wt.admin_notifications
        is_read = self._read_by(reader)
        stmt = select(a, is_read.label("is_read"))
        if query.unread_only:
            stmt = stmt.where(~is_read)
        rows = await self._c.execute(_page(stmt, a, query))
        return [Notification(r.id, r.type, r.title, r.body, r.data, r.is_read, r.created_at) for r in rows]

    async def admin_unread(self, reader: UserId) -> int:
        a = wt.admin_notifications
        stmt = select(func.count()).select_from(a).where(~self._read_by(reader))
        return int((await self._c.execute(stmt)).scalar_one())

    async def admin_existing(self, ids: Sequence[int]) -> set[int]:
        a = wt.admin_notifications
        rows = await self._c.execute(select(a.c.id).where(a.c.id.in_(list(ids))))
        return {r.id for r in rows}

    async def mark_admin_read(self, reader: UserId, ids: Sequence[int] | None, at: datetime) -> int:
        a = wt.admin_notifications
        source = select(a.c.id, literal(reader), literal(at))
        if ids is not None:
            source = source.where(a.c.id.in_(list(ids)))
        stmt = (
            pg_insert(wt.admin_notification_reads)
            .from_select(["notification_id", "uid", "read_at"], source)
            .on_conflict_do_nothing(index_elements=["uid", "notification_id"])
        )
        return (await self._c.execute(stmt)).rowcount

    # trader

    async def add_trader(self, notifications: Sequence[NewTraderNotification]) -> list[Notification]:
        if not notifications:
            return []
        tn = wt.trader_notifications
        rows = await self._c.execute(
            insert(tn).returning(tn, sort_by_parameter_order=True),
            [
                {
                    "uid": n.uid,
                    "account_id": n.account_id,
                    "type": n.type.value,
                    "title": n.title,
                    "body": n.body,
                    "data": dict(n.data),
                    "created_at": n.created_at,
                }
                for n in notifications
            ],
        )
        return [_trader(r) for r in rows]

    async def list_trader(
        self, uid: UserId, account_id: AccountId | None, query: NotificationQuery
    ) -> list[Notification]:
        tn = wt.trader_notifications
        stmt = select(tn).where(_trader_scope(uid, account_id))
        if query.unread_only:
            stmt = stmt.where(tn.c.read_at.is_(None))
        return [_trader(r) for r in await self._c.execute(_page(stmt, tn, query))]

    async def trader_unread(self, uid: UserId, account_id: AccountId | None) -> int:
        tn = wt.trader_notifications
        stmt = (
            select(func.count())
            .select_from(tn)
            .where(and_(_trader_scope(uid, account_id), tn.c.read_at.is_(None)))
        )
        return int((await self._c.execute(stmt)).scalar_one())

    async def trader_existing(
        self, uid: UserId, account_id: AccountId | None, ids: Sequence[int]
    ) -> set[int]:
        tn = wt.trader_notifications
        rows = await self._c.execute(
            select(tn.c.id).where(and_(_trader_scope(uid, account_id), tn.c.id.in_(list(ids))))
        )
        return {r.id for r in rows}

    async def mark_trader_read(
        self, uid: UserId, account_id: AccountId | None, ids: Sequence[int] | None, at: datetime
    ) -> int:
        tn = wt.trader_notifications
        stmt = (
            update(tn).where(and_(_trader_scope(uid, account_id), tn.c.read_at.is_(None))).values(read_at=at)
        )
        if ids is not None:
            stmt = stmt.where(tn.c.id.in_(list(ids)))
        return (await self._c.execute(stmt)).rowcount


# --- price alerts -----------------------------------------------------------------------------


def _alert(m: Any) -> PriceAlert:
    return PriceAlert(
        id=m["id"],
        uid=UserId(m["uid"]),
        account_id=AccountId(m["account_id"]),
        market_id=m["market_id"],
        price=normalized(Decimal(m["price"])),
        condition=PriceCondition(m["condition"]),
        after_trade_id=m["after_trade_id"],
        created_at=m["created_at"],
    )


# One statement decides and marks: an alert fires at the first of the given trades (by id) that is
# later than its arming trade and crosses its price. Under READ COMMITTED a concurrent run that
# waits on the row lock re-checks ``fired_at IS NULL`` and skips the row, so no alert fires twice.
_FIRE = text(
    """
    WITH t AS (
        SELECT * FROM unnest(CAST(:trade_ids AS bigint[]), CAST(:prices AS numeric[])) AS t(trade_id, price)
    ),
    hit AS (
        SELECT DISTINCT ON (a.id) a.id, t.trade_id, t.price
        FROM price_alerts a
        JOIN t ON t.trade_id > a.after_trade_id
              AND ((a.condition = 'Gte' AND t.price >= a.price) OR (a.condition = 'Lte' AND t.price <= a.price))
        WHERE a.market_id = :market_id AND a.fired_at IS NULL
        ORDER BY a.id, t.trade_id
    ),
    fired AS (
        UPDATE price_alerts a
        SET fired_at = :at, fired_trade_id = hit.trade_id, fired_price = hit.price
        FROM hit
        WHERE a.id = hit.id AND a.fired_at IS NULL
        RETURNING a.id, a.uid, a.account_id, a.market_id, a.price, a.condition, a.after_trade_id,
                  a.created_at, a.fired_trade_id, a.fired_price
    )
    SELECT fired.*, acc.name AS account_name
    FROM fired JOIN accounts acc ON acc.account_id = fired.account_id
    ORDER BY fired.fired_trade_id, fired.id
    """
)


class SqlPriceAlertRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def lock_account(self, account_id: AccountId) -> None:
        await _advisory_lock(self._c, f"bourse.price_alerts:{account_id}")

    async def add(
        self,
        uid: UserId,
        account_id: AccountId,
        market_id: str,
        price: Decimal,
        condition: PriceCondition,
        at: datetime,
    ) -> PriceAlert:
        tr = trades.c
        last = (
            select(tr.trade_id)
            .where(tr.market_id == market_id)
            .order_by(tr.created_at.desc(), tr.trade_id.desc())
            .limit(1)
            .scalar_subquery()
        )
        pa = wt.price_alerts
        row = (
            await self._c.execute(
                insert(pa)
                .values(
                    uid=uid,
                    account_id=account_id,
                    market_id=market_id,
                    price=price,
                    condition=condition.value,
                    after_trade_id=func.coalesce(last, 0),
                    created_at=at,
                )
                .returning(pa)
            )
        ).one()
        return _alert(row._mapping)

    async def count_active(self, account_id: AccountId) -> int:
        pa = wt.price_alerts.c
        stmt = select(func.count()).where(and_(pa.account_id == account_id, pa.fired_at.is_(None)))
        return int((await self._c.execute(stmt)).scalar_one())

    async def active(self, account_id: AccountId, market_ids: Sequence[str] | None) -> list[PriceAlert]:
        pa = wt.price_alerts
        stmt = select(pa).where(and_(pa.c.account_id == account_id, pa.c.fired_at.is_(None)))
        if market_ids is not None:
            stmt = stmt.where(pa.c.market_id.in_(list(market_ids)))
        rows = await self._c.execute(stmt.order_by(pa.c.market_id, pa.c.id))
        return [_alert(r._mapping) for r in rows]

    async def active_markets(self, account_id: AccountId) -> list[str]:
        pa = wt.price_alerts.c
        rows = await self._c.execute(
            select(pa.market_id)
            .where(and_(pa.account_id == account_id, pa.fired_at.is_(None)))
            .distinct()
            .order_by(pa.market_id)
        )
        return [r.market_id for r in rows]

    async def delete(self, account_id: AccountId, ids: Sequence[int]) -> list[PriceAlert]:
        pa = wt.price_alerts
        rows = await self._c.execute(
            delete(pa).where(and_(pa.c.account_id == account_id, pa.c.id.in_(list(ids)))).returning(*pa.c)
        )
        return sorted((_alert(r._mapping) for r in rows), key=lambda a: a.id)

    async def fire(self, market_id: str, trades_: Sequence[Trade], at: datetime) -> list[FiredAlert]:
        if not trades_:
            return []
        rows = await self._c.execute(
            _FIRE,
            {
                "trade_ids": [tr.trade_id for tr in trades_],
                "prices": [tr.price for tr in trades_],
                "market_id": market_id,
                "at": at,
            },
        )
        fired = [
            FiredAlert(
                _alert(r._mapping), r.fired_trade_id, normalized(Decimal(r.fired_price)), r.account_name
            )
            for r in rows
        ]
        last = max(tr.trade_id for tr in trades_)
        progress = wt.price_alert_progress
        stmt = pg_insert(progress).values(market_id=market_id, last_trade_id=last, updated_at=at)
        await self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=["market_id"],
                set_={
                    "last_trade_id": func.greatest(progress.c.last_trade_id, stmt.excluded.last_trade_id),
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )
        return fired

    async def catch_up_from(self) -> dict[str, int]:
        pa, pr = wt.price_alerts.c, wt.price_alert_progress.c
        start = func.greatest(func.min(pa.after_trade_id), func.coalesce(func.max(pr.last_trade_id), 0))
        rows = await self._c.execute(
            select(pa.market_id, start.label("start"))
            .select_from(wt.price_alerts.outerjoin(wt.price_alert_progress, pr.market_id == pa.market_id))
            .where(pa.fired_at.is_(None))
            .group_by(pa.market_id)
        )
        return {r.market_id: int(r.start) for r in rows}
