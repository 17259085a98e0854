"""report mail outbox: one mail per report and recipient, retried with backoff, and its attempts

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "report_mails",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("report_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("next_attempt_at"),
        _ts("created_at"),
        _ts("last_attempt_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_mails")),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_mails_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name=op.f("ck_report_mails_state")),
        sa.UniqueConstraint("report_id", "recipient", name="uq_report_mails_report_id_recipient"),
    )
    op.create_index(
        "ix_report_mails_due",
        "report_mails",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "report_mail_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mail_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _ts("attempted_at"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_mail_attempts")),
        sa.ForeignKeyConstraint(
            ["mail_id"],
            ["report_mails.id"],
            name=op.f("fk_report_mail_attempts_mail_id_report_mails"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("mail_id", "attempt", name="uq_report_mail_attempts_mail_id_attempt"),
    )


def downgrade() -> None:
    op.drop_table("report_mail_attempts")
    op.drop_index("ix_report_mails_due", table_name="report_mails")
    op.drop_table("report_mails")
