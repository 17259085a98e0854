"""Repositories for the back office's category tree, market files and account groups
(tables in backoffice_tables.py)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import backoffice_tables as bt
from bourse.adapters.db import market_tables as mt
from bourse.adapters.db import tables as t
from bourse.domain.account_groups import AccountGroup
from bourse.domain.categories import CategoryRow, CategoryTree, MarketRef, build_tree
from bourse.domain.errors import Conflict, InvalidInput, NotFound
from bourse.domain.market_files import (
    FileFormat,
    FileKind,
    FileStatus,
    MarketFile,
    Progress,
    RowError,
)
from bourse.domain.values import AccountId, UserId
from bourse.service.ports import ClaimedFile


def _sqlstate(e: DBAPIError) -> str:
    cause = getattr(e.orig, "__cause__", None)
    pg = cause if cause is not None and hasattr(cause, "sqlstate") else e.orig
    return str(getattr(pg, "sqlstate", "") or "")


# --- categories ---------------------------------------------------------------------------------


class SqlCategoryRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def lock(self) -> None:
        # Replacements take turns; readers keep seeing the previous tree until the new one commits.
        await self._c.execute(text("LOCK TABLE market_categories IN SHARE ROW EXCLUSIVE MODE"))

    async def tree(self) -> CategoryTree:
        c, cm, m = bt.market_categories, bt.market_category_markets, mt.markets
        categories = (await self._c.execute(select(c.c.id, c.c.parent_id, c.c.name, c.c.position))).all()
        links = (
            await self._c.execute(
                select(cm.c.category_id, m.c.market_id, m.c.display_name, m.c.full_name, m.c.is_hidden)
                .select_from(cm.join(m, m.c.market_id == cm.c.market_id))
                .order_by(cm.c.category_id, cm.c.position)
            )
        ).all()
        markets: dict[str, list[str]] = {}
        refs: dict[str, MarketRef] = {}
        for link in links:
            markets.setdefault(link.category_id, []).append(link.market_id)
            refs[link.market_id] = MarketRef(
                link.market_id, link.display_name, link.full_name, link.is_hidden
            )
        rows = [
            CategoryRow(r.id, r.parent_id, r.name, r.position, tuple(markets.get(r.id, ())))
            for r in categories
        ]
        return CategoryTree(build_tree(rows), refs)

    async def existing_markets(self, market_ids: Sequence[str]) -> set[str]:
        if not market_ids:
            return set()
        m = mt.markets
        rows = await self._c.execute(select(m.c.market_id).where(m.c.market_id.in_(list(market_ids))))
        return {r.market_id for r in rows}

    async def replace(self, rows: Sequence[CategoryRow], at: datetime) -> None:
        c, cm = bt.market_categories, bt.market_category_markets
        await self._c.execute(delete(c))  # their markets go with them (ON DELETE CASCADE)
        if not rows:
            return
        await self._c.execute(
            insert(c),
            [
                {
                    "id": r.id,
                    "parent_id": r.parent_id,
                    "name": r.name,
                    "position": r.position,
                    "updated_at": at,
                }
                for r in rows
            ],
        )
        links = [
            {"category_id": r.id, "market_id": market_id, "position": i}
            for r in rows
            for i, market_id in enumerate(r.markets)
        ]
        if links:
            try:
                async with self._c.begin_nested():
                    await self._c.execute(insert(cm), links)
            except DBAPIError as e:
                if _sqlstate(e) == "23503":
                    raise InvalidInput(
                        "a category names a market that does not exist", field="categories"
                    ) from e
                raise


# --- market files -------------------------------------------------------------------------------


def _errors_json(errors: Sequence[RowError]) -> list[dict[str, Any]]:
    return [{"row": e.row, "field": e.field, "message": e.message} for e in errors]


def _errors(value: Sequence[dict[str, Any]]) -> tuple[RowError, ...]:
    return tuple(RowError(int(e["row"]), e.get("field"), str(e["message"])) for e in value)


_FILE_COLUMNS = [c for c in bt.market_files.c if c.name != "content"]


def _file(row: Any) -> MarketFile:
    r = row._mapping
    return MarketFile(
        id=str(r["id"]),
        kind=FileKind(r["kind"]),
        format=FileFormat(r["format"]),
        status=FileStatus(r["status"]),
        file_name=r["file_name"],
        requested_by=r["requested_by"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        created=r["created"],
        updated=r["updated"],
        unchanged=r["unchanged"],
        row_errors=_errors(r["row_errors"]),
        error=r["error"],
    )


class SqlMarketFileRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, file: MarketFile, content: bytes | None, uid: UserId, request_id: str | None) -> None:
        await self._c.execute(
            insert(bt.market_files).values(
                id=file.id,
                kind=file.kind.value,
                format=file.format.value,
                status=file.status.value,
                file_name=file.file_name,
                content=content,
                requested_by_uid=uid,
                requested_by=file.requested_by,
                request_id=request_id,
                created_at=file.created_at,
                updated_at=file.updated_at,
            )
        )

    async def get(self, file_id: str) -> MarketFile | None:
        row = (await self._c.execute(select(*_FILE_COLUMNS).where(bt.market_files.c.id == file_id))).first()
        return _file(row) if row else None

    async def content(self, file_id: str) -> bytes | None:
        f = bt.market_files
        row = (await self._c.execute(select(f.c.content).where(f.c.id == file_id))).first()
        return None if row is None or row.content is None else bytes(row.content)

    async def claim(self, now: datetime, lease_until: datetime, token: str) -> ClaimedFile | None:
        f = bt.market_files
        row = (
            await self._c.execute(
                select(f)
                .where(
                    and_(
                        f.c.status == FileStatus.IN_PROCESS.value,
                        or_(f.c.lease_until.is_(None), f.c.lease_until <= now),
                    )
                )
                .order_by(f.c.created_at, f.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if row is None:
            return None
        # The lease: a worker that dies mid-file leaves it to be claimed again once the lease ends.
        await self._c.execute(
            update(f)
            .where(f.c.id == row.id)
            .values(lease_token=token, lease_until=lease_until, attempts=f.c.attempts + 1)
        )
        return ClaimedFile(
            file=_file(row),
            content=b"" if row.content is None else bytes(row.content),
            token=token,
            attempts=row.attempts + 1,
            progress=Progress(row.next_row, row.created, row.updated, row.unchanged, _errors(row.row_errors)),
            requested_by_uid=UserId(row.requested_by_uid),
            request_id=row.request_id,
        )

    async def save(
        self, file_id: str, token: str, progress: Progress, lease_until: datetime, now: datetime
    ) -> bool:
        f = bt.market_files
        result = await self._c.execute(
            update(f)
            .where(
                and_(f.c.id == file_id, f.c.lease_token == token, f.c.status == FileStatus.IN_PROCESS.value)
            )
            .values(
                next_row=progress.next_row,
                created=progress.created,
                updated=progress.updated,
                unchanged=progress.unchanged,
                row_errors=_errors_json(progress.row_errors),
                lease_until=lease_until,
                updated_at=now,
            )
        )
        return bool(result.rowcount == 1)

    async def finish(
        self,
        file_id: str,
        token: str,
        status: FileStatus,
        progress: Progress,
        error: str | None,
        now: datetime,
        *,
        content: bytes | None = None,
    ) -> bool:
        f = bt.market_files
        values: dict[str, Any] = {
            "status": status.value,
            "next_row": progress.next_row,
            "created": progress.created,
            "updated": progress.updated,
            "unchanged": progress.unchanged,
            "row_errors": _errors_json(progress.row_errors),
            "error": error,
            "lease_token": None,
            "lease_until": None,
            "updated_at": now,
        }
        if content is not None:
            values["content"] = content
        result = await self._c.execute(
            update(f)
            .where(
                and_(f.c.id == file_id, f.c.lease_token == token, f.c.status == FileStatus.IN_PROCESS.value)
            )
            .values(**values)
        )
        return bool(result.rowcount == 1)


# --- account groups -----------------------------------------------------------------------------


def _group(row: Any) -> AccountGroup:
    level: Decimal = row.margin_call_level
    return AccountGroup(row.id, row.name, level.normalize(), row.stop_out_level.normalize())


class SqlAccountGroupRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, group: AccountGroup, at: datetime) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(
                    insert(bt.account_groups).values(
                        id=group.id,
                        name=group.name,
                        margin_call_level=group.margin_call_level,
                        stop_out_level=group.stop_out_level,
                        created_at=at,
                        updated_at=at,
                    )
                )
        except DBAPIError as e:
            if _sqlstate(e) == "23505":
                raise Conflict(f"account group {group.id} exists", field="id") from e
            raise

    async def get(self, group_id: str, *, for_update: bool = False) -> AccountGroup | None:
        g = bt.account_groups
        stmt = select(g).where(g.c.id == group_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return _group(row) if row else None

    async def list(self) -> builtins.list[AccountGroup]:
        g = bt.account_groups
        return [_group(r) for r in await self._c.execute(select(g).order_by(g.c.id))]

    async def update(self, group: AccountGroup, at: datetime) -> None:
        g = bt.account_groups
        result = await self._c.execute(
            update(g)
            .where(g.c.id == group.id)
            .values(
                name=group.name,
                margin_call_level=group.margin_call_level,
                stop_out_level=group.stop_out_level,
                updated_at=at,
            )
        )
        if result.rowcount != 1:
            raise NotFound(f"account group {group.id} not found", field="accountGroupId")

    async def group_of_account(self, account_id: AccountId) -> str | None:
        a = t.accounts
        row = (
            await self._c.execute(select(a.c.account_group_id).where(a.c.account_id == str(account_id)))
        ).first()
        return None if row is None else str(row[0])

    async def set_account_group(self, account_id: AccountId, group_id: str) -> bool:
        a = t.accounts
        result = await self._c.execute(
            update(a).where(a.c.account_id == str(account_id)).values(account_group_id=group_id)
        )
        return bool(result.rowcount == 1)
