"""Reports: history-server queries run to CSV or XLSX files, now or on a schedule (domain/reports.py).

Who sees what: a report or template belongs to the user who created it. Only that user lists,
reads, downloads, changes, runs or deletes it; anyone else, staff included, gets "not found"
(staff do not share reports: a report holds what its creator's permissions showed them).

Creating asks for manage-reports and the source's own operation (view-trades for Trades, ...);
running asks again for the owner's operations as they are then, so a report made before a role was
taken away fails rather than leaks.

Running: ``work_once`` claims the oldest New report (or one whose process died, up to
``max_attempts`` tries) and streams its query through a server-side cursor into a file, batch by
batch, never holding the rows in memory. The outcome is Completed or Failed with a reason; a failure
raises a ReportFailed staff notification.

Mail: each of ``notifyEmails`` gets one mail with the download link (the link needs the owner's
bearer token, so the mail carries no secret). The mails are an outbox (domain/outbox.py): one row
per report and recipient, written in the transaction that records the outcome, so a report never
ends without them nor gets them twice. ``deliver_mail`` claims due mails (``FOR UPDATE SKIP
LOCKED``, then leased), sends each outside any transaction and records the attempt; a failure is
retried after ``mail_retry``'s backoff, and after the last attempt (or at once when the server
refuses the address for good) the mail is given up and staff get a ReportMailFailed notification
in the same transaction. The worker sends a report's mails right after finishing it; the mail job
retries the rest. Delivery is at least once: a process that dies after the server took a mail but
before recording it sends it again after the lease.

Scheduling: ``schedule_due`` claims due templates (``FOR UPDATE SKIP LOCKED``), makes one report
per due time (``(template, due time)`` is unique besides) and moves each template to its next run
after now, so runs missed while no process was up collapse into one. ``expire_files`` deletes the
files of reports past ``expiredAt``; such a report still lists, but is no longer downloadable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from bourse.domain.errors import BourseError, Conflict, InvalidInput, NotFound, PermissionDenied
from bourse.domain.history import SCHEMAS, FieldSpec, rates_to_root, render_row
from bourse.domain.identity import Operation, Principal
from bourse.domain.notifications import AdminNotificationType, report_mail_given_up
from bourse.domain.order_views import iso_millis
from bourse.domain.outbox import DeliveryState, RetryPolicy
from bourse.domain.reports import (
    XLSX_MAX_ROWS,
    Report,
    ReportFormat,
    ReportMail,
    ReportMailAttempt,
    ReportMailStatus,
    ReportStatus,
    ReportTemplate,
    file_name,
    parse_page,
    parse_report_request,
    parse_template_request,
    report_mail,
    scheduled_report_name,
)
from bourse.domain.values import AssetId, UserId
from bourse.service.history import OPERATIONS
from bourse.service.notifications import NotificationService
from bourse.service.ports import (
    Clock,
    Mailer,
    MailError,
    ReportFiles,
    ReportWriter,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = structlog.get_logger("bourse.reports")

BATCH_ROWS = 2000
SCHEDULE_BATCH = 50
EXPIRE_BATCH = 200
MAIL_BATCH = 20
# After the first failure: 1, 2, 4, 8, 16, 32 min, then 1 h; the 8th failed attempt gives up,
# about two hours after the first: a mail server's restart or a short outage is ridden out.
MAIL_RETRY = RetryPolicy(max_attempts=8, base_delay_seconds=60, max_delay_seconds=3600)
# Longer than the mailer's timeout (30 s) with room to spare: a lease never ends mid-attempt.
MAIL_LEASE = timedelta(minutes=5)


class ReportFailure(Exception):
    """A report that cannot be produced; the message is its ``statusReason``."""


@dataclass(frozen=True, slots=True)
class Download:
    path: Path
    filename: str
    media_type: str


def _report_id(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def _write_batch(writer: ReportWriter, fields: Mapping[str, FieldSpec], batch: list[dict[str, Any]]) -> None:
    writer.write([list(render_row(fields, row).values()) for row in batch])


class ReportService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        files: ReportFiles,
        mailer: Mailer,
        notifications: NotificationService,
        *,
        root_asset: str,
        public_url: str,
        retention: timedelta = timedelta(days=7),
        timeout_seconds: float = 1800.0,
        max_attempts: int = 3,
        batch_rows: int = BATCH_ROWS,
        mail_retry: RetryPolicy = MAIL_RETRY,
        mail_batch: int = MAIL_BATCH,
        mail_lease: timedelta = MAIL_LEASE,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._files = files
        self._mailer = mailer
        self._notifications = notifications
        self._root = AssetId(root_asset)
        self.public_url = public_url.rstrip("/")
        self.retention = retention
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.batch_rows = batch_rows
        self.mail_retry = mail_retry
        self.mail_batch = mail_batch
        self.mail_lease = mail_lease

    # --- reports ------------------------------------------------------------------------------

    async def create(self, principal: Principal, body: object) -> Report:
        principal.require(Operation.MANAGE_REPORTS)
        request = parse_report_request(body)
        principal.require(OPERATIONS[request.definition.kind])
        now = self._clock.now()
        report = Report(
            id=str(uuid.uuid4()),
            owner_uid=int(principal.uid),
            created_by=principal.username,
            name=request.name,
            template_id=None,
            template_name=None,
            definition=request.definition,
            status=ReportStatus.NEW,
            status_reason=None,
            created_at=now,
            expired_at=now + self.retention,
        )
        async with self._uow() as uow:
            await uow.reports.add(report)
            await uow.commit()
        return report

    async def _own(self, principal: Principal, report_id: str) -> Report:
        key = _report_id(report_id)
        report = None
        if key is not None:
            async with self._uow() as uow:
                report = await uow.reports.get(key)
        if report is None or report.owner_uid != principal.uid:
            raise NotFound(f"report {report_id} not found", field="reportId")
        return report

    async def list_reports(
        self, principal: Principal, limit: object = None, offset: object = None
    ) -> list[Report]:
        principal.require(Operation.VIEW_REPORTS)
        page, skip = parse_page(limit, offset)
        async with self._uow() as uow:
            return await uow.reports.list_for_owner(principal.uid, page, skip)

    async def get(self, principal: Principal, report_id: str) -> Report:
        principal.require(Operation.VIEW_REPORTS)
        return await self._own(principal, report_id)

    async def delete(self, principal: Principal, report_id: str) -> None:
        principal.require(Operation.MANAGE_REPORTS)
        report = await self._own(principal, report_id)
        async with self._uow() as uow:
            deleted = await uow.reports.delete(report.id)
            await uow.commit()
        if not deleted:
            raise NotFound(f"report {report_id} not found", field="reportId")
        self._files.delete(report.id, report.definition.format)

    async def download(self, principal: Principal, report_id: str) -> Download:
        principal.require(Operation.VIEW_REPORTS)
        report = await self._own(principal, report_id)
        if report.expired(self._clock.now()):
            raise NotFound(
                f"report {report_id} expired at {iso_millis(report.expired_at)}; its file is deleted",
                field="reportId",
                reason="expired",
            )
        if report.status is not ReportStatus.COMPLETED:
            raise Conflict(
                f"report {report_id} is {report.status.value}; only a Completed report downloads",
                field="reportId",
                status=report.status.value,
            )
        path = self._files.path(report.id, report.definition.format)
        if path is None:
            raise NotFound(f"the file of report {report_id} is gone", field="reportId", reason="missing")
        return Download(path, file_name(report), report.definition.format.media_type)

    def download_url(self, report_id: str) -> str:
        return f"{self.public_url}/api/reports/{report_id}/download"

    # --- templates ------------------------------------------------------------------------------

    async def create_template(self, principal: Principal, body: object) -> ReportTemplate:
        principal.require(Operation.MANAGE_REPORTS)
        request = parse_template_request(body)
        principal.require(OPERATIONS[request.definition.kind])
        now = self._clock.now()
        template = ReportTemplate(
            id=str(uuid.uuid4()),
            owner_uid=int(principal.uid),
            name=request.name,
            definition=request.definition,
            schedule=request.schedule,
            created_at=now,
            created_by=principal.username,
            updated_at=None,
            updated_by=None,
            deleted_at=None,
            deleted_by=None,
            next_run_at=request.schedule.first_at_or_after(now),
        )
        async with self._uow() as uow:
            if not await uow.report_templates.add(template):
                raise Conflict(f"you have a template named {request.name!r} already", field="templateName")
            await uow.commit()
        return template

    async def _own_template(
        self, uow: Any, principal: Principal, template_id: str, *, live: bool
    ) -> ReportTemplate:
        key = _report_id(template_id)
        template = None if key is None else await uow.report_templates.get(key)
        if (
            template is None
            or template.owner_uid != principal.uid
            or (live and template.deleted_at is not None)
        ):
            raise NotFound(f"template {template_id} not found", field="templateId")
        return template

    async def list_templates(self, principal: Principal) -> list[ReportTemplate]:
        principal.require(Operation.VIEW_REPORTS)
        async with self._uow() as uow:
            return await uow.report_templates.list_for_owner(principal.uid)

    async def get_template(self, principal: Principal, template_id: str) -> ReportTemplate:
        """The caller's template, a deleted one too (with ``deletedAt``)."""
        principal.require(Operation.VIEW_REPORTS)
        async with self._uow() as uow:
            return await self._own_template(uow, principal, template_id, live=False)

    async def update_template(self, principal: Principal, template_id: str, body: object) -> ReportTemplate:
        principal.require(Operation.MANAGE_REPORTS)
        request = parse_template_request(body, template_id)
        principal.require(OPERATIONS[request.definition.kind])
        now = self._clock.now()
        async with self._uow() as uow:
            current = await self._own_template(uow, principal, template_id, live=True)
            template = replace(
                current,
                name=request.name,
                definition=request.definition,
                schedule=request.schedule,
                updated_at=now,
                updated_by=principal.username,
                next_run_at=request.schedule.first_at_or_after(now),
            )
            if not await uow.report_templates.update(template):
                raise Conflict(f"you have a template named {request.name!r} already", field="templateName")
            await uow.commit()
        return template

    async def delete_template(self, principal: Principal, template_id: str) -> None:
        principal.require(Operation.MANAGE_REPORTS)
        now = self._clock.now()
        async with self._uow() as uow:
            current = await self._own_template(uow, principal, template_id, live=True)
            await uow.report_templates.update(
                replace(current, deleted_at=now, deleted_by=principal.username, next_run_at=None)
            )
            await uow.commit()

    async def run_template(self, principal: Principal, template_id: str) -> Report:
        """A report from the template now, besides its schedule."""
        principal.require(Operation.MANAGE_REPORTS)
        now = self._clock.now()
        async with self._uow() as uow:
            template = await self._own_template(uow, principal, template_id, live=True)
            principal.require(OPERATIONS[template.definition.kind])
            report = self._from_template(template, now, due=None)
            await uow.reports.add(report)
            await uow.commit()
        return report

    def _from_template(self, template: ReportTemplate, now: datetime, due: datetime | None) -> Report:
        return Report(
            id=str(uuid.uuid4()),
            owner_uid=template.owner_uid,
            created_by=template.created_by,
            name=scheduled_report_name(template.name, due or now),
            template_id=template.id,
            template_name=template.name,
            definition=template.definition,
            status=ReportStatus.NEW,
            status_reason=None,
            created_at=now,
            expired_at=now + self.retention,
            due_at=due,
        )

    # --- jobs -----------------------------------------------------------------------------------

    async def schedule_due(self) -> int:
        """One report for each template due now; how many templates were due."""
        now = self._clock.now()
        async with self._uow() as uow:
            due = await uow.report_templates.claim_due(now, SCHEDULE_BATCH)
            for template in due:
                assert template.next_run_at is not None
                at = template.schedule.latest_due(template.next_run_at, now)
                await uow.reports.add(self._from_template(template, now, due=at))
                await uow.report_templates.set_next_run(
                    template.id, template.schedule.next_after(max(at, now))
                )
            await uow.commit()
        return len(due)

    async def claim(self) -> Report | None:
        """The next report to run, now InProgress (leased to this process for the timeout)."""
        now = self._clock.now()
        lease = timedelta(seconds=self.timeout_seconds + 60)
        async with self._uow() as uow:
            report = await uow.reports.claim_next(now, now + lease)
            await uow.commit()
        return report

    async def work_once(self) -> bool:
        """Run one pending report; False when there was none."""
        report = await self.claim()
        if report is None:
            return False
        await self.process(report)
        return True

    async def process(self, report: Report) -> Report:
        """Produce a claimed report's file and record the outcome; then notify. The report as it ends."""
        rows: int | None = None
        size: int | None = None
        reason: str | None
        try:
            if report.attempts > self.max_attempts:
                raise ReportFailure(
                    f"gave up after {self.max_attempts} attempts (the process running it stopped)"
                )
            try:
                rows, size = await asyncio.wait_for(self._produce(report), self.timeout_seconds)
            except asyncio.CancelledError:
                # The process is stopping: another one takes the report over now, not after the lease.
                await asyncio.shield(self._release(report))
                raise
        except ReportFailure as failure:
            outcome, reason = ReportStatus.FAILED, str(failure)
        except BourseError as error:
            outcome, reason = ReportStatus.FAILED, error.message
        except TimeoutError:
            outcome, reason = ReportStatus.FAILED, f"the report took longer than {self.timeout_seconds:g} s"
        except Exception as error:
            log.exception("report failed", report_id=report.id)
            outcome, reason = ReportStatus.FAILED, f"internal error ({type(error).__name__})"
        else:
            outcome, reason = ReportStatus.COMPLETED, None
        done = replace(report, status=outcome, status_reason=reason, row_count=rows, file_size=size)
        async with self._uow() as uow:
            now = self._clock.now()
            recorded = await uow.reports.finish(report, outcome, reason, now, rows, size)
            if recorded:
                await self._enqueue_mail(uow, done, now)
            await uow.commit()
        if not recorded:
            # Deleted meanwhile, or claimed again by another process: this run's file is not wanted.
            if outcome is ReportStatus.COMPLETED:
                async with self._uow() as uow:
                    still = await uow.reports.get(report.id)
                if still is None:
                    self._files.delete(report.id, report.definition.format)
            return report
        if outcome is ReportStatus.FAILED:
            await self._raise_failed(done)
        if done.definition.notify_emails:
            try:
                await self.deliver_mail()
            except Exception:
                # The mails are stored: the mail job tries them again.
                log.exception("report mail delivery failed", report_id=report.id)
        return done

    async def _release(self, report: Report) -> None:
        async with self._uow() as uow:
            await uow.reports.release(report)
            await uow.commit()

    async def _owner(self, uid: int) -> Principal:
        async with self._uow() as uow:
            user = await uow.users.get(UserId(uid))
            roles = await uow.users.roles(UserId(uid)) if user is not None else frozenset()
        if user is None or not user.is_active:
            raise ReportFailure("the report's owner is blocked or gone")
        return Principal.of(user.uid, user.username, roles)

    async def _produce(self, report: Report) -> tuple[int, int]:
        owner = await self._owner(report.owner_uid)
        definition = report.definition
        try:
            owner.require(Operation.MANAGE_REPORTS)
            owner.require(OPERATIONS[definition.kind])
        except PermissionDenied as denied:
            raise ReportFailure(f"the owner may no longer run it: {denied.message}") from None
        try:
            query = definition.query()
        except InvalidInput as invalid:
            raise ReportFailure(f"its query is no longer valid: {invalid.message}") from None
        fields = SCHEMAS[query.kind].fields
        writer: ReportWriter = self._files.create(report.id, definition.format, list(fields))
        count = 0
        # Rendering and writing a batch happen in a thread (the API keeps answering) while the next
        # batch is fetched; at most one batch is being written and one fetched.
        writing: asyncio.Future[None] | None = None
        try:
            async with self._uow() as uow:
                await uow.history.read_only(int(self.timeout_seconds * 1000))
                prices = await uow.history.last_prices()
                rates = rates_to_root(self._root, await uow.history.asset_ids(), prices)
                async for batch in uow.report_rows.stream(query, rates, self.batch_rows):
                    count += len(batch)
                    if definition.format is ReportFormat.XLSX and count > XLSX_MAX_ROWS:
                        raise ReportFailure(
                            f"more than {XLSX_MAX_ROWS} rows do not fit a spreadsheet; use Csv or narrow the filters"
                        )
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(asyncio.to_thread(_write_batch, writer, fields, batch))
            if writing is not None:
                await writing
                writing = None
            size = await asyncio.to_thread(writer.finish)
        except BaseException:
            if writing is not None:
                # A thread cannot be cancelled: let it finish before the file goes.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(writing)
            writer.abort()
            raise
        return count, size

    async def _raise_failed(self, report: Report) -> None:
        try:
            await self._notifications.raise_admin(
                AdminNotificationType.REPORT_FAILED,
                f"Report failed: {report.name}",
                f"Report {report.id} of {report.created_by} failed: {report.status_reason}",
                {
                    "reportId": report.id,
                    "reportName": report.name,
                    "templateId": report.template_id,
                    "createdBy": report.created_by,
                    "reason": report.status_reason,
                },
                dedupe_key=f"report-failed:{report.id}",
            )
        except Exception:
            log.exception("could not raise the ReportFailed notification", report_id=report.id)

    # --- mail ---------------------------------------------------------------------------------

    async def _enqueue_mail(self, uow: UnitOfWork, report: Report, now: datetime) -> None:
        recipients = report.definition.notify_emails
        if not recipients:
            return
        if not self._mailer.enabled:
            log.warning("mail is off (BOURSE_SMTP_HOST unset): report mail not sent", report_id=report.id)
            return
        text = report_mail(report, self.download_url(report.id))
        await uow.report_mails.enqueue(report.id, recipients, text.subject, text.body, now)

    async def deliver_mail(self) -> int:
        """Attempt every report mail due now (up to one batch); how many were attempted."""
        now = self._clock.now()
        async with self._uow() as uow:
            claimed = await uow.report_mails.claim_due(now, now + self.mail_lease, self.mail_batch)
            await uow.commit()
        if claimed:
            await asyncio.gather(*(self._send(mail) for mail in claimed))
        return len(claimed)

    async def mail_deliveries(self, report_id: str) -> list[ReportMailStatus]:
        """The report's mails with their attempts (operators and tests; no owner check)."""
        async with self._uow() as uow:
            return await uow.report_mails.for_report(report_id)

    async def _send(self, mail: ReportMail) -> None:
        attempted_at = self._clock.now()
        started = time.perf_counter()
        error: MailError | None = None
        try:
            await self._mailer.send([mail.recipient], mail.subject, mail.body)
        except MailError as failure:
            error = failure
        duration_ms = int((time.perf_counter() - started) * 1000)

        attempt_no = mail.attempts + 1
        next_at = None
        if error is None:
            state = DeliveryState.DELIVERED
        else:
            delay = None if error.permanent else self.mail_retry.delay_after(attempt_no)
            if delay is None:
                state = DeliveryState.FAILED
            else:
                state = DeliveryState.PENDING
                next_at = self._clock.now() + timedelta(seconds=delay)
        attempt = ReportMailAttempt(
            mail.id, attempt_no, attempted_at, None if error is None else str(error), duration_ms
        )
        async with self._uow() as uow:
            recorded = await uow.report_mails.record_attempt(attempt, state, next_at)
            if recorded and state is DeliveryState.FAILED:
                # Nothing retries it after this: staff hear of it, in the same transaction.
                await uow.notifications.add_admin(
                    report_mail_given_up(
                        mail.id,
                        mail.report_id,
                        mail.recipient,
                        mail.subject,
                        attempt_no,
                        str(error),
                        self._clock.now(),
                    )
                )
            await uow.commit()
        if error is not None:
            log.warning(
                "report mail not sent",
                report_id=mail.report_id,
                mail_id=mail.id,
                attempt=attempt_no,
                state=state.value,
                error=str(error),
            )

    async def expire_files(self) -> int:
        """Delete the files of reports past their ``expiredAt``; how many."""
        now = self._clock.now()
        async with self._uow() as uow:
            expired = await uow.reports.expired_files(now, EXPIRE_BATCH)
            for report in expired:
                self._files.delete(report.id, report.definition.format)
            await uow.reports.mark_files_deleted([r.id for r in expired], now)
            await uow.commit()
        return len(expired)
