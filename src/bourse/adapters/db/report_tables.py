"""Report tables (migration 0009): report templates and reports.

- ``report_templates`` a report definition with a schedule, owned by one user. ``next_run_at``
  is the next due time (NULL once deleted); the scheduler claims due rows with ``FOR UPDATE SKIP
  LOCKED`` and moves ``next_run_at`` on in the same transaction, so each due time is taken by one
  process. Deleting keeps the row (``deleted_at``/``deleted_by``): reports made from it name it.
  Names are unique per owner among the templates not deleted.
- ``reports`` one run each, owned by one user. ``(template_id, due_at)`` is unique: a template's due
  time makes at most one report, whoever claims it. ``status`` New -> InProgress -> Completed or
  Failed; an InProgress report whose ``lease_until`` passed (its process died) is claimed again,
  ``attempts`` counts the tries. ``file_deleted_at`` is set when the expiry job removed the file.
- ``definition`` holds the source's filters and sorting as the client gave them, as JSON text
  written with exact numbers (``ExactJsonText``): a filter value 0.1 comes back as 0.1.
- ``report_mails`` (migration 0015) the outbox of report mails: one row per report and recipient,
  written with the report's outcome, claimed by the mail job with ``FOR UPDATE SKIP LOCKED`` and
  retried until ``state`` is delivered or failed; ``report_mail_attempts`` records every attempt.
  Deleting a report deletes its mails (the link would lead nowhere).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts


def _exact(value: Any, out: list[str]) -> None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON form")
        out.append(format(value, "f"))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append(("," if i else "") + json.dumps(str(key), ensure_ascii=False) + ":")
            _exact(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _exact(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise TypeError("floats are not stored: numbers are Decimal")
    else:
        out.append(json.dumps(value, ensure_ascii=False))


class ExactJsonText(TypeDecorator[Any]):
    """JSON in a TEXT column; Decimal written as its digits, read back as Decimal (never a float)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        out: list[str] = []
        _exact(value, out)
        return "".join(out)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else json.loads(value, parse_float=Decimal)


_SOURCES = "'Balances', 'AccountBalances', 'Commissions', 'Orders', 'OpenOrders', 'ExternalOrders', 'Trades', 'UnsolicitedTrades', 'Transfers'"
_FORMATS = "'Csv', 'Xlsx'"

report_templates = Table(
    "report_templates",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("owner_uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    Column("name", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_name", Text, nullable=False),
    Column("definition", ExactJsonText, nullable=False),
    Column("notify_emails", ARRAY(Text), nullable=False),
    Column("format", Text, nullable=False),
    _ts("base_date"),
    Column("frequency", Text, nullable=False),
    Column("days_of_week", ARRAY(Text), nullable=False),
    _ts("next_run_at", nullable=True),
    _ts("created_at"),
    Column("created_by", Text, nullable=False),
    _ts("updated_at", nullable=True),
    Column("updated_by", Text),
    _ts("deleted_at", nullable=True),
    Column("deleted_by", Text),
    CheckConstraint(f"source IN ({_SOURCES})", name="source"),
    CheckConstraint(f"format IN ({_FORMATS})", name="format"),
    CheckConstraint("frequency IN ('Daily', 'Weekly', 'Monthly')", name="frequency"),
)
Index(
    "uq_report_templates_owner_name",
    report_templates.c.owner_uid,
    report_templates.c.name,
    unique=True,
    postgresql_where=text("deleted_at IS NULL"),
)
Index(
    "ix_report_templates_due",
    report_templates.c.next_run_at,
    postgresql_where=text("deleted_at IS NULL"),
)
Index("ix_report_templates_owner_uid", report_templates.c.owner_uid)

reports = Table(
    "reports",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("owner_uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("template_id", Uuid(as_uuid=False), ForeignKey("report_templates.id")),
    Column("template_name", Text),
    Column("due_at", DateTime(timezone=True)),
    Column("source", Text, nullable=False),
    Column("source_name", Text, nullable=False),
    Column("definition", ExactJsonText, nullable=False),
    Column("notify_emails", ARRAY(Text), nullable=False),
    Column("format", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_reason", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("lease_until", nullable=True),
    _ts("created_at"),
    _ts("started_at", nullable=True),
    _ts("finished_at", nullable=True),
    _ts("expired_at"),
    _ts("file_deleted_at", nullable=True),
    Column("row_count", BigInteger),
    Column("file_size", BigInteger),
    CheckConstraint(f"source IN ({_SOURCES})", name="source"),
    CheckConstraint(f"format IN ({_FORMATS})", name="format"),
    CheckConstraint("status IN ('New', 'InProgress', 'Completed', 'Failed')", name="status"),
    UniqueConstraint("template_id", "due_at", name="uq_reports_template_id_due_at"),
)
Index("ix_reports_owner_uid_created_at", reports.c.owner_uid, reports.c.created_at)
Index(
    "ix_reports_pending",
    reports.c.created_at,
    postgresql_where=text("status IN ('New', 'InProgress')"),
)
Index(
    "ix_reports_expiring",
    reports.c.expired_at,
    postgresql_where=text("file_deleted_at IS NULL AND status = 'Completed'"),
)

report_mails = Table(
    "report_mails",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("report_id", Uuid(as_uuid=False), ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("next_attempt_at"),
    _ts("created_at"),
    _ts("last_attempt_at", nullable=True),
    _ts("finished_at", nullable=True),
    Column("last_error", Text),
    CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
    UniqueConstraint("report_id", "recipient", name="uq_report_mails_report_id_recipient"),
    Index("ix_report_mails_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
)

report_mail_attempts = Table(
    "report_mail_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("mail_id", BigInteger, ForeignKey("report_mails.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    _ts("attempted_at"),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    UniqueConstraint("mail_id", "attempt", name="uq_report_mail_attempts_mail_id_attempt"),
)
