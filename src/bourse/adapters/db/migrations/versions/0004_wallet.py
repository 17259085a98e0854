"""wallet: stored ext-order requests (idempotency and lookup)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ext_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("caller_id", sa.BigInteger(), nullable=False),
        sa.Column("ext_request_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("type IN ('create', 'cancel', 'settlement')", name=op.f("ck_ext_requests_type")),
        sa.CheckConstraint("octet_length(fingerprint) = 32", name=op.f("ck_ext_requests_fingerprint_sha256")),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["service_tokens.id"], name=op.f("fk_ext_requests_caller_id_service_tokens")
        ),
        sa.ForeignKeyConstraint(["uid"], ["users.uid"], name=op.f("fk_ext_requests_uid_users")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_ext_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["currency"], ["assets.id"], name=op.f("fk_ext_requests_currency_assets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ext_requests")),
        sa.UniqueConstraint(
            "caller_id", "ext_request_id", name=op.f("uq_ext_requests_caller_id_ext_request_id")
        ),
    )
    op.create_index("ix_ext_requests_uid_created_at", "ext_requests", ["uid", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ext_requests_uid_created_at", table_name="ext_requests")
    op.drop_table("ext_requests")
