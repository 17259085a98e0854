"""reports: report templates, report runs, history indexes

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = (
    "'Balances', 'AccountBalances', 'Commissions', 'Orders', 'OpenOrders', 'ExternalOrders', "
    "'Trades', 'UnsolicitedTrades', 'Transfers'"
)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "report_templates",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("owner_uid", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("notify_emails", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        _ts("base_date"),
        sa.Column("frequency", sa.Text(), nullable=False),
        sa.Column("days_of_week", postgresql.ARRAY(sa.Text()), nullable=False),
        _ts("next_run_at", nullable=True),
        _ts("created_at"),
        sa.Column("created_by", sa.Text(), nullable=False),
        _ts("updated_at", nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        _ts("deleted_at", nullable=True),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.CheckConstraint(f"source IN ({SOURCES})", name=op.f("ck_report_templates_source")),
        sa.CheckConstraint("format IN ('Csv', 'Xlsx')", name=op.f("ck_report_templates_format")),
        sa.CheckConstraint(
            "frequency IN ('Daily', 'Weekly', 'Monthly')", name=op.f("ck_report_templates_frequency")
        ),
        sa.ForeignKeyConstraint(
            ["owner_uid"], ["users.uid"], name=op.f("fk_report_templates_owner_uid_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_templates")),
    )
    op.create_index(
        "uq_report_templates_owner_name",
        "report_templates",
        ["owner_uid", "name"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_report_templates_due",
        "report_templates",
        ["next_run_at"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index("ix_report_templates_owner_uid", "report_templates", ["owner_uid"])

    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("owner_uid", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("template_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("template_name", sa.Text(), nullable=True),
        _ts("due_at", nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("notify_emails", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("lease_until", nullable=True),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("expired_at"),
        _ts("file_deleted_at", nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"source IN ({SOURCES})", name=op.f("ck_reports_source")),
        sa.CheckConstraint("format IN ('Csv', 'Xlsx')", name=op.f("ck_reports_format")),
        sa.CheckConstraint(
            "status IN ('New', 'InProgress', 'Completed', 'Failed')", name=op.f("ck_reports_status")
        ),
        sa.ForeignKeyConstraint(["owner_uid"], ["users.uid"], name=op.f("fk_reports_owner_uid_users")),
        sa.ForeignKeyConstraint(
            ["template_id"], ["report_templates.id"], name=op.f("fk_reports_template_id_report_templates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("template_id", "due_at", name="uq_reports_template_id_due_at"),
    )
    op.create_index("ix_reports_owner_uid_created_at", "reports", ["owner_uid", "created_at"])
    op.create_index(
        "ix_reports_pending",
        "reports",
        ["created_at"],
        postgresql_where=sa.text("status IN ('New', 'InProgress')"),
    )
    op.create_index(
        "ix_reports_expiring",
        "reports",
        ["expired_at"],
        postgresql_where=sa.text("file_deleted_at IS NULL AND status = 'Completed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_reports_expiring", table_name="reports")
    op.drop_index("ix_reports_pending", table_name="reports")
    op.drop_index("ix_reports_owner_uid_created_at", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_report_templates_owner_uid", table_name="report_templates")
    op.drop_index("ix_report_templates_due", table_name="report_templates")
    op.drop_index("uq_report_templates_owner_name", table_name="report_templates")
    op.drop_table("report_templates")
