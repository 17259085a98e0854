"""Repositories for reports, report templates and report mails (report_tables.py), and the streamed
history rows a report is written from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import report_tables as rt
from bourse.adapters.db.history_queries import sorted_rows
from bourse.domain.history import HistoryQuery, Rates
from bourse.domain.outbox import DeliveryState
from bourse.domain.reports import (
    DayOfWeek,
    Definition,
    Frequency,
    Report,
    ReportFormat,
    ReportMail,
    ReportMailAttempt,
    ReportMailStatus,
    ReportSource,
    ReportStatus,
    ReportTemplate,
    Schedule,
)
from bourse.domain.values import UserId

_R = rt.reports
_T = rt.report_templates
_M = rt.report_mails
_A = rt.report_mail_attempts


def _definition(m: Any) -> Definition:
    stored = m["definition"]
    return Definition(
        ReportSource(m["source"]),
        m["source_name"],
        tuple(stored.get("filters") or ()),
        stored.get("sorting"),
        ReportFormat(m["format"]),
        tuple(m["notify_emails"]),
    )


def _definition_values(d: Definition) -> dict[str, Any]:
    return {
        "source": d.source.value,
        "source_name": d.source_name,
        "definition": {"filters": list(d.filters), "sorting": d.sorting},
        "notify_emails": list(d.notify_emails),
        "format": d.format.value,
    }


def _report(row: Any) -> Report:
    m = row._mapping
    return Report(
        id=str(m["id"]),
        owner_uid=int(m["owner_uid"]),
        created_by=m["created_by"],
        name=m["name"],
        template_id=None if m["template_id"] is None else str(m["template_id"]),
        template_name=m["template_name"],
        definition=_definition(m),
        status=ReportStatus(m["status"]),
        status_reason=m["status_reason"],
        created_at=m["created_at"],
        expired_at=m["expired_at"],
        due_at=m["due_at"],
        row_count=m["row_count"],
        file_size=m["file_size"],
        attempts=int(m["attempts"]),
    )


def _template(row: Any) -> ReportTemplate:
    m = row._mapping
    return ReportTemplate(
        id=str(m["id"]),
        owner_uid=int(m["owner_uid"]),
        name=m["name"],
        definition=_definition(m),
        schedule=Schedule(
            m["base_date"], Frequency(m["frequency"]), tuple(DayOfWeek(d) for d in m["days_of_week"])
        ),
        created_at=m["created_at"],
        created_by=m["created_by"],
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
        deleted_at=m["deleted_at"],
        deleted_by=m["deleted_by"],
        next_run_at=m["next_run_at"],
    )


class SqlReportRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, report: Report) -> bool:
        stmt = (
            pg_insert(_R)
            .values(
                id=report.id,
                owner_uid=report.owner_uid,
                created_by=report.created_by,
                name=report.name,
                template_id=report.template_id,
                template_name=report.template_name,
                due_at=report.due_at,
                status=report.status.value,
                status_reason=report.status_reason,
                created_at=report.created_at,
                expired_at=report.expired_at,
                **_definition_values(report.definition),
            )
            .on_conflict_do_nothing(index_elements=["template_id", "due_at"])
            .returning(_R.c.id)
        )
        return (await self._c.execute(stmt)).first() is not None

    async def get(self, report_id: str) -> Report | None:
        row = (await self._c.execute(select(_R).where(_R.c.id == report_id))).first()
        return None if row is None else _report(row)

    async def list_for_owner(self, uid: UserId, limit: int, offset: int) -> list[Report]:
        rows = await self._c.execute(
            select(_R)
            .where(_R.c.owner_uid == int(uid))
            .order_by(_R.c.created_at.desc(), _R.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_report(r) for r in rows]

    async def delete(self, report_id: str) -> bool:
        result = await self._c.execute(delete(_R).where(_R.c.id == report_id).returning(_R.c.id))
        return result.first() is not None

    async def claim_next(self, now: datetime, lease_until: datetime) -> Report | None:
        pending = (
            select(_R.c.id)
            .where(
                or_(
                    _R.c.status == ReportStatus.NEW.value,
                    and_(_R.c.status == ReportStatus.IN_PROGRESS.value, _R.c.lease_until < now),
                )
            )
            .order_by(_R.c.created_at, _R.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = (
            await self._c.execute(
                update(_R)
                .where(_R.c.id == pending)
                .values(
                    status=ReportStatus.IN_PROGRESS.value,
                    attempts=_R.c.attempts + 1,
                    lease_until=lease_until,
                    started_at=now,
                )
                .returning(*_R.c)
            )
        ).first()
        return None if row is None else _report(row)

    async def finish(
        self,
        report: Report,
        status: ReportStatus,
        reason: str | None,
        now: datetime,
        row_count: int | None = None,
        file_size: int | None = None,
    ) -> bool:
        result = await self._c.execute(
            update(_R)
            .where(
                _R.c.id == report.id,
                _R.c.status == ReportStatus.IN_PROGRESS.value,
                _R.c.attempts == report.attempts,
            )
            .values(
                status=status.value,
                status_reason=reason,
                finished_at=now,
                lease_until=None,
                row_count=row_count,
                file_size=file_size,
            )
            .returning(_R.c.id)
        )
        return result.first() is not None

    async def release(self, report: Report) -> None:
        await self._c.execute(
            update(_R)
            .where(
                _R.c.id == report.id,
                _R.c.status == ReportStatus.IN_PROGRESS.value,
                _R.c.attempts == report.attempts,
            )
            .values(status=ReportStatus.NEW.value, lease_until=None)
        )

    async def expired_files(self, now: datetime, limit: int) -> list[Report]:
        rows = await self._c.execute(
            select(_R)
            .where(
                _R.c.status == ReportStatus.COMPLETED.value,
                _R.c.file_deleted_at.is_(None),
                _R.c.expired_at <= now,
            )
            .order_by(_R.c.expired_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_report(r) for r in rows]

    async def mark_files_deleted(self, report_ids: Sequence[str], now: datetime) -> None:
        if report_ids:
            await self._c.execute(update(_R).where(_R.c.id.in_(list(report_ids))).values(file_deleted_at=now))


class SqlReportTemplateRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    @staticmethod
    def _values(t: ReportTemplate) -> dict[str, Any]:
        return {
            "name": t.name,
            "base_date": t.schedule.base_date,
            "frequency": t.schedule.frequency.value,
            "days_of_week": [d.value for d in t.schedule.days_of_week],
            "next_run_at": t.next_run_at,
            **_definition_values(t.definition),
        }

    async def _unique(self, stmt: Any) -> bool:
        # A savepoint: a name clash leaves the unit of work usable.
        try:
            async with self._c.begin_nested():
                await self._c.execute(stmt)
        except IntegrityError as error:
            if "uq_report_templates_owner_name" in str(error.orig):
                return False
            raise
        return True

    async def add(self, template: ReportTemplate) -> bool:
        return await self._unique(
            insert(_T).values(
                id=template.id,
                owner_uid=template.owner_uid,
                created_at=template.created_at,
                created_by=template.created_by,
                **self._values(template),
            )
        )

    async def get(self, template_id: str) -> ReportTemplate | None:
        row = (await self._c.execute(select(_T).where(_T.c.id == template_id))).first()
        return None if row is None else _template(row)

    async def list_for_owner(self, uid: UserId) -> list[ReportTemplate]:
        rows = await self._c.execute(
            select(_T)
            .where(_T.c.owner_uid == int(uid), _T.c.deleted_at.is_(None))
            .order_by(_T.c.name, _T.c.id)
        )
        return [_template(r) for r in rows]

    async def update(self, template: ReportTemplate) -> bool:
        return await self._unique(
            update(_T)
            .where(_T.c.id == template.id)
            .values(
                updated_at=template.updated_at,
                updated_by=template.updated_by,
                deleted_at=template.deleted_at,
                deleted_by=template.deleted_by,
                **self._values(template),
            )
        )

    async def claim_due(self, now: datetime, limit: int) -> list[ReportTemplate]:
        rows = await self._c.execute(
            select(_T)
            .where(_T.c.deleted_at.is_(None), _T.c.next_run_at <= now)
            .order_by(_T.c.next_run_at, _T.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_template(r) for r in rows]

    async def set_next_run(self, template_id: str, next_run_at: datetime | None) -> None:
        await self._c.execute(update(_T).where(_T.c.id == template_id).values(next_run_at=next_run_at))


class SqlReportMailRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def enqueue(
        self, report_id: str, recipients: Sequence[str], subject: str, body: str, now: datetime
    ) -> None:
        if not recipients:
            return
        await self._c.execute(
            pg_insert(_M)
            .values(
                [
                    {
                        "report_id": report_id,
                        "recipient": recipient,
                        "subject": subject,
                        "body": body,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for recipient in dict.fromkeys(recipients)
                ]
            )
            .on_conflict_do_nothing(index_elements=["report_id", "recipient"])
        )

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[ReportMail]:
        rows = (
            await self._c.execute(
                select(_M.c.id, _M.c.report_id, _M.c.recipient, _M.c.subject, _M.c.body, _M.c.attempts)
                .where(_M.c.state == DeliveryState.PENDING.value, _M.c.next_attempt_at <= now)
                .order_by(_M.c.next_attempt_at, _M.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        # The lease: a worker that dies mid-attempt leaves the mail due again after it.
        await self._c.execute(
            update(_M).where(_M.c.id.in_([r.id for r in rows])).values(next_attempt_at=lease_until)
        )
        return [ReportMail(r.id, str(r.report_id), r.recipient, r.subject, r.body, r.attempts) for r in rows]

    async def record_attempt(
        self, attempt: ReportMailAttempt, state: DeliveryState, next_attempt_at: datetime | None
    ) -> bool:
        values: dict[str, object] = {
            "state": state.value,
            "attempts": attempt.attempt,
            "last_attempt_at": attempt.attempted_at,
            "last_error": attempt.error,
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if state is not DeliveryState.PENDING:
            values["finished_at"] = attempt.attempted_at
        # The mail row first: if its report was deleted meanwhile (and the mail with it), there is
        # nothing to record the attempt against.
        moved = await self._c.execute(
            update(_M).where(_M.c.id == attempt.mail_id).values(**values).returning(_M.c.id)
        )
        if moved.first() is None:
            return False
        await self._c.execute(
            insert(_A).values(
                mail_id=attempt.mail_id,
                attempt=attempt.attempt,
                attempted_at=attempt.attempted_at,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
        )
        return True

    async def for_report(self, report_id: str) -> list[ReportMailStatus]:
        mails = (await self._c.execute(select(_M).where(_M.c.report_id == report_id).order_by(_M.c.id))).all()
        if not mails:
            return []
        rows = await self._c.execute(
            select(_A).where(_A.c.mail_id.in_([m.id for m in mails])).order_by(_A.c.mail_id, _A.c.attempt)
        )
        attempts: dict[int, list[ReportMailAttempt]] = {}
        for a in rows:
            attempts.setdefault(a.mail_id, []).append(
                ReportMailAttempt(a.mail_id, a.attempt, a.attempted_at, a.error, a.duration_ms)
            )
        return [
            ReportMailStatus(
                id=m.id,
                report_id=str(m.report_id),
                recipient=m.recipient,
                state=DeliveryState(m.state),
                attempts=tuple(attempts.get(m.id, ())),
                next_attempt_at=m.next_attempt_at,
                last_error=m.last_error,
            )
            for m in mails
        ]


class SqlReportRows:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def stream(
        self, query: HistoryQuery, rates: Rates, batch: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        # The history server's own statement (the same filters, sort and RAT conversion as its
        # pages), run here through a cursor instead of as one page.
        stmt = sorted_rows(query, rates)
        # Every row will be read: plan for the whole result (hash joins, one sort), not for the
        # first rows of a cursor (index lookups row by row), which PostgreSQL assumes by default.
        await self._c.execute(select(func.set_config("cursor_tuple_fraction", "1", True)))
        result = await self._c.stream(stmt.execution_options(yield_per=batch))
        try:
            async for rows in result.mappings().partitions(batch):
                yield [dict(r) for r in rows]
        finally:
            await result.close()
