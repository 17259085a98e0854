"""Reports (brokerage ``/api/reports``): a history-server query run to a file, once or on a schedule.

A report names its *source* (which history-server query it runs), that query's filters and sort,
a file format and who is told when it is done. Its filters and sort are validated by the history
server's own rules (``domain.history.parse_query``), so a report accepts exactly what the query's
endpoint accepts. A report moves New -> InProgress -> Completed or Failed (with a reason); a
completed report can be downloaded until ``expiredAt``.

A template is a report definition with a schedule (Daily, Weekly, Monthly) that the scheduler
turns into a report at each due time. Times are UTC; every run is at the time of day of the
schedule's ``baseDate``.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bourse.domain.errors import InvalidInput
from bourse.domain.history import HistoryQuery, QueryKind, parse_query
from bourse.domain.identity import EMAIL_RE
from bourse.domain.order_views import iso_millis
from bourse.domain.outbox import DeliveryState
from bourse.domain.trading import parse_time

MAX_NAME = 200
MAX_EMAILS = 20
MAX_EMAIL_LENGTH = 254
DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Excel's sheet holds 1,048,576 rows; one is the header.
XLSX_MAX_ROWS = 1_048_575


class ReportSource(StrEnum):
    BALANCES = "Balances"
    ACCOUNT_BALANCES = "AccountBalances"
    COMMISSIONS = "Commissions"
    ORDERS = "Orders"
    OPEN_ORDERS = "OpenOrders"
    EXTERNAL_ORDERS = "ExternalOrders"
    TRADES = "Trades"
    UNSOLICITED_TRADES = "UnsolicitedTrades"
    TRANSFERS = "Transfers"


class ReportFormat(StrEnum):
    CSV = "Csv"
    XLSX = "Xlsx"

    @property
    def extension(self) -> str:
        return "csv" if self is ReportFormat.CSV else "xlsx"

    @property
    def media_type(self) -> str:
        if self is ReportFormat.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ReportStatus(StrEnum):
    NEW = "New"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"


class Frequency(StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"
    MONTHLY = "Monthly"


class DayOfWeek(StrEnum):
    # Python's weekday() order: Monday is 0.
    MONDAY = "Monday"
    TUESDAY = "Tuesday"
    WEDNESDAY = "Wednesday"
    THURSDAY = "Thursday"
    FRIDAY = "Friday"
    SATURDAY = "Saturday"
    SUNDAY = "Sunday"

    @property
    def weekday(self) -> int:
        return list(DayOfWeek).index(self)


# The history-server route each source runs (``sourceName``); the first is the default.
SOURCE_NAMES: Mapping[ReportSource, tuple[tuple[str, QueryKind], ...]] = {
    ReportSource.BALANCES: (("users/balances", QueryKind.BALANCES),),
    ReportSource.ACCOUNT_BALANCES: (("accounts/balances", QueryKind.ACCOUNT_BALANCES),),
    ReportSource.COMMISSIONS: (
        ("commissions/accounts-assets", QueryKind.COMMISSIONS_ACCOUNTS_ASSETS),
        ("commissions/users-assets", QueryKind.COMMISSIONS_USERS_ASSETS),
        ("commissions/users", QueryKind.COMMISSIONS_USERS),
        ("commissions/accounts", QueryKind.COMMISSIONS_ACCOUNTS),
        ("commissions/assets", QueryKind.COMMISSIONS_ASSETS),
    ),
    ReportSource.ORDERS: (("orders", QueryKind.ORDERS),),
    ReportSource.OPEN_ORDERS: (("open-orders", QueryKind.OPEN_ORDERS),),
    ReportSource.EXTERNAL_ORDERS: (("external-orders", QueryKind.EXTERNAL_ORDERS),),
    ReportSource.TRADES: (("trades", QueryKind.TRADES),),
    ReportSource.UNSOLICITED_TRADES: (("unsolicited-trades", QueryKind.UNSOLICITED_TRADES),),
    ReportSource.TRANSFERS: (("transfers", QueryKind.TRANSFERS),),
}


@dataclass(frozen=True, slots=True)
class Definition:
    """What a report runs: the source, the history query's filters and sort as the client gave them
    (echoed back as given), and where it goes."""

    source: ReportSource
    source_name: str
    filters: tuple[Any, ...]
    sorting: Mapping[str, Any] | None
    format: ReportFormat
    notify_emails: tuple[str, ...]

    @property
    def kind(self) -> QueryKind:
        return dict(SOURCE_NAMES[self.source])[self.source_name]

    def query(self) -> HistoryQuery:
        """The validated history query (limit and offset aside: a report has every row)."""
        return history_query(self.kind, self.filters, self.sorting)


@dataclass(frozen=True, slots=True)
class Schedule:
    base_date: datetime
    frequency: Frequency
    days_of_week: tuple[DayOfWeek, ...] = ()

    def _days(self) -> frozenset[int]:
        if self.days_of_week:
            return frozenset(d.weekday for d in self.days_of_week)
        if self.frequency is Frequency.WEEKLY:
            return frozenset({self.base_date.weekday()})
        return frozenset(range(7))

    def first_at_or_after(self, moment: datetime) -> datetime:
        """The first run at or after ``moment`` (never before ``baseDate``)."""
        start = max(moment.astimezone(UTC), self.base_date)
        at = self.base_date.timetz()
        if self.frequency is Frequency.MONTHLY:
            year, month = start.year, start.month
            while True:
                day = min(self.base_date.day, calendar.monthrange(year, month)[1])
                candidate = datetime.combine(date(year, month, day), at)
                if candidate >= start:
                    return candidate
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        days = self._days()
        candidate = datetime.combine(start.date(), at)
        for _ in range(15):
            if candidate >= start and candidate.weekday() in days:
                return candidate
            candidate += timedelta(days=1)
        raise AssertionError("a weekly schedule has a run within two weeks")  # pragma: no cover

    def next_after(self, moment: datetime) -> datetime:
        return self.first_at_or_after(moment + timedelta(microseconds=1))

    def latest_due(self, due: datetime, now: datetime) -> datetime:
        """Of the runs from ``due`` up to ``now``, the last one: runs missed while no process was up
        collapse into it."""
        latest = due
        for _ in range(10_000):
            following = self.next_after(latest)
            if following > now:
                break
            latest = following
        return latest


@dataclass(frozen=True, slots=True)
class Report:
    id: str
    owner_uid: int
    created_by: str
    name: str
    template_id: str | None
    template_name: str | None
    definition: Definition
    status: ReportStatus
    status_reason: str | None
    created_at: datetime
    expired_at: datetime
    due_at: datetime | None = None
    row_count: int | None = None
    file_size: int | None = None
    attempts: int = 0

    def expired(self, now: datetime) -> bool:
        return self.expired_at <= now


@dataclass(frozen=True, slots=True)
class ReportTemplate:
    id: str
    owner_uid: int
    name: str
    definition: Definition
    schedule: Schedule
    created_at: datetime
    created_by: str
    updated_at: datetime | None
    updated_by: str | None
    deleted_at: datetime | None
    deleted_by: str | None
    next_run_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReportRequest:
    name: str
    definition: Definition


@dataclass(frozen=True, slots=True)
class TemplateRequest:
    name: str
    definition: Definition
    schedule: Schedule


# --- parsing --------------------------------------------------------------------------------------

_REPORT_KEYS = frozenset(
    {"reportName", "source", "sourceName", "notifyEmails", "filters", "sorting", "format"}
)
_TEMPLATE_KEYS = frozenset(
    {"templateName", "source", "sourceName", "schedule", "notifyEmails", "filters", "sorting", "format"}
)


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    return body


def _no_unknown(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise InvalidInput(f"{field} must be a text of 1 to {MAX_NAME} characters", field=field)
    return value.strip()


def _enum(kind: type[StrEnum], value: object, field: str) -> Any:
    choices = ", ".join(e.value for e in kind)
    if not isinstance(value, str):
        raise InvalidInput(f"{field} is required: one of {choices}", field=field)
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{field} must be one of {choices}", field=field) from None


def _emails(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_EMAILS:
        raise InvalidInput(
            f"notifyEmails must be a list of at most {MAX_EMAILS} addresses", field="notifyEmails"
        )
    out: list[str] = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, str)
            or len(item) > MAX_EMAIL_LENGTH
            or not EMAIL_RE.match(item)
            or any(c in item for c in '\r\n,;<>"')
        ):
            raise InvalidInput(f"notifyEmails[{i}] is not an e-mail address", field=f"notifyEmails[{i}]")
        if item not in out:
            out.append(item)
    return tuple(out)


def history_query(kind: QueryKind, filters: Sequence[Any], sorting: Mapping[str, Any] | None) -> HistoryQuery:
    body: dict[str, Any] = {"filters": list(filters)}
    if sorting is not None:
        body["sort"] = dict(sorting)
    try:
        return parse_query(kind, body)
    except InvalidInput as error:
        # The history server says "sort"; a report's body says "sorting".
        field = str(error.details.get("field", ""))
        if field.startswith("sort"):
            raise InvalidInput(
                error.message.replace("sort", "sorting", 1), field="sorting" + field[4:]
            ) from None
        raise


def _definition(body: Mapping[str, Any]) -> Definition:
    source: ReportSource = _enum(ReportSource, body.get("source"), "source")
    names = SOURCE_NAMES[source]
    raw_name = body.get("sourceName")
    if raw_name is None or raw_name == "":
        source_name = names[0][0]
    elif isinstance(raw_name, str) and raw_name in dict(names):
        source_name = raw_name
    else:
        raise InvalidInput(
            f"sourceName of {source.value} must be one of {', '.join(n for n, _ in names)}",
            field="sourceName",
        )
    report_format: ReportFormat = _enum(ReportFormat, body.get("format"), "format")
    filters = body.get("filters")
    if filters is None:
        filters = []
    if not isinstance(filters, list):
        raise InvalidInput("filters must be a list", field="filters")
    sorting = body.get("sorting")
    if sorting is not None and not isinstance(sorting, Mapping):
        raise InvalidInput("sorting must be an object", field="sorting")
    definition = Definition(
        source,
        source_name,
        tuple(filters),
        dict(sorting) if sorting is not None else None,
        report_format,
        _emails(body.get("notifyEmails")),
    )
    definition.query()  # the history server's validation: unknown fields and bad values are 400
    return definition


def parse_report_request(body: object) -> ReportRequest:
    data = _object(body)
    _no_unknown(data, _REPORT_KEYS)
    return ReportRequest(_name(data.get("reportName"), "reportName"), _definition(data))


def parse_schedule(value: object) -> Schedule:
    if not isinstance(value, Mapping):
        raise InvalidInput("schedule must be an object with baseDate and frequency", field="schedule")
    _no_unknown(value, frozenset({"baseDate", "frequency", "daysOfWeek"}))
    base = parse_time(value.get("baseDate"), "schedule.baseDate")
    frequency: Frequency = _enum(Frequency, value.get("frequency"), "schedule.frequency")
    raw_days = value.get("daysOfWeek")
    if raw_days is None:
        raw_days = []
    if not isinstance(raw_days, list) or len(raw_days) > 7:
        raise InvalidInput("schedule.daysOfWeek must be a list of days", field="schedule.daysOfWeek")
    days: list[DayOfWeek] = []
    for i, raw in enumerate(raw_days):
        day: DayOfWeek = _enum(DayOfWeek, raw, f"schedule.daysOfWeek[{i}]")
        if day not in days:
            days.append(day)
    if frequency is Frequency.MONTHLY and days:
        raise InvalidInput(
            "a Monthly schedule runs on baseDate's day of the month; daysOfWeek must be empty",
            field="schedule.daysOfWeek",
        )
    days.sort(key=lambda d: d.weekday)
    return Schedule(base, frequency, tuple(days))


def parse_template_request(body: object, template_id: str | None = None) -> TemplateRequest:
    data = _object(body)
    allowed = _TEMPLATE_KEYS | {"templateId"} if template_id is not None else _TEMPLATE_KEYS
    _no_unknown(data, allowed)
    given = data.get("templateId")
    if template_id is not None and given is not None and str(given).lower() != template_id.lower():
        raise InvalidInput("templateId differs from the one in the path", field="templateId")
    name = _name(data.get("templateName"), "templateName")
    definition = _definition(data)
    return TemplateRequest(name, definition, parse_schedule(data.get("schedule")))


def parse_page(limit: object, offset: object) -> tuple[int, int]:
    def number(value: object, field: str, default: int, low: int, high: int) -> int:
        if value is None:
            return default
        text = str(value)
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise InvalidInput(f"{field} must be a whole number from {low} to {high}", field=field)
        return int(text)

    return number(limit, "limit", DEFAULT_PAGE, 1, MAX_PAGE), number(offset, "offset", 0, 0, 10**9)


def scheduled_report_name(template_name: str, due: datetime) -> str:
    return f"{template_name} {due.astimezone(UTC):%Y-%m-%d %H:%M}"[:MAX_NAME]


def file_name(report: Report) -> str:
    """A download's file name: the report's name in safe characters, and the format's extension."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in report.name)
    return f"{safe.strip('._') or 'report'}.{report.definition.format.extension}"


# --- mail -------------------------------------------------------------------------------------------
#
# When a report ends, each of its ``notifyEmails`` gets one mail, written to an outbox (one row per
# report and recipient) in the transaction that records the outcome, and sent by the report jobs
# with retries (domain/outbox.py): a mail server that is down delays the mail, it does not lose it.


@dataclass(frozen=True, slots=True)
class MailText:
    subject: str
    body: str


def report_mail(report: Report, download_url: str) -> MailText:
    """The mail about a report that ended (Completed or Failed); the link needs the owner's sign-in."""
    if report.status is ReportStatus.COMPLETED:
        return MailText(
            f"Report ready: {report.name}",
            f'The report "{report.name}" ({report.definition.source.value}, '
            f"{report.definition.format.value}, {report.row_count} rows) is ready.\n\n"
            f"Download: {download_url}\n\n"
            f"The link asks for {report.created_by}'s sign-in (a bearer token). "
            f"It works until {iso_millis(report.expired_at)}.\n",
        )
    return MailText(
        f"Report failed: {report.name}", f'The report "{report.name}" failed: {report.status_reason}\n'
    )


@dataclass(frozen=True, slots=True)
class ReportMail:
    """One recipient's mail about one report, waiting to be (re)sent."""

    id: int
    report_id: str
    recipient: str
    subject: str
    body: str
    attempts: int


@dataclass(frozen=True, slots=True)
class ReportMailAttempt:
    mail_id: int
    attempt: int
    attempted_at: datetime
    error: str | None  # None: the server accepted the mail
    duration_ms: int


@dataclass(frozen=True, slots=True)
class ReportMailStatus:
    """Where one recipient's mail stands, with its attempts, for operators and tests."""

    id: int
    report_id: str
    recipient: str
    state: DeliveryState
    attempts: tuple[ReportMailAttempt, ...]
    next_attempt_at: datetime
    last_error: str | None


# --- JSON -------------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_millis(moment)


def _definition_json(d: Definition) -> dict[str, Any]:
    return {
        "source": d.source.value,
        "sourceName": d.source_name,
        "filters": list(d.filters),
        "sorting": dict(d.sorting) if d.sorting is not None else None,
    }


def report_json(r: Report) -> dict[str, Any]:
    d = r.definition
    return {
        "id": r.id,
        "reportName": r.name,
        "templateName": r.template_name,
        "templateId": r.template_id,
        **_definition_json(d),
        "createdAt": _iso(r.created_at),
        "expiredAt": _iso(r.expired_at),
        "statusType": r.status.value,
        "statusReason": r.status_reason,
        "createdBy": r.created_by,
        "notifyEmails": list(d.notify_emails),
        "format": d.format.value,
    }


def schedule_json(s: Schedule) -> dict[str, Any]:
    return {
        "baseDate": _iso(s.base_date),
        "frequency": s.frequency.value,
        "daysOfWeek": [d.value for d in s.days_of_week],
    }


def template_json(t: ReportTemplate) -> dict[str, Any]:
    d = t.definition
    return {
        "id": t.id,
        "templateName": t.name,
        "source": d.source.value,
        "sourceName": d.source_name,
        "schedule": schedule_json(t.schedule),
        "filters": list(d.filters),
        "sorting": dict(d.sorting) if d.sorting is not None else None,
        "notifyEmails": list(d.notify_emails),
        "createdAt": _iso(t.created_at),
        "createdBy": t.created_by,
        "updatedAt": _iso(t.updated_at),
        "updatedBy": t.updated_by,
        "deletedAt": _iso(t.deleted_at),
        "deletedBy": t.deleted_by,
        "format": d.format.value,
    }
