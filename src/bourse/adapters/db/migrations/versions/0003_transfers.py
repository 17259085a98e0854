"""transfers and callback deliveries

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "transfers",
        sa.Column("transfer_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("deduplication_id", sa.Text(), nullable=False),
        sa.Column("asset_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("hold_id", sa.BigInteger(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_transfers")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_transfers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_transfers_asset_id_assets")),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_transfers_hold_id_holds")),
        sa.UniqueConstraint(
            "account_id", "deduplication_id", name="uq_transfers_account_id_deduplication_id"
        ),
        sa.CheckConstraint("type IN ('Deposit', 'Withdrawal')", name=op.f("ck_transfers_type")),
        sa.CheckConstraint(
            "status IN ('Pending', 'Completed', 'Cancelled', 'Failed')", name=op.f("ck_transfers_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transfers_positive")),
    )
    op.create_index("ix_transfers_account_id_seq", "transfers", ["account_id", "seq"])
    op.create_table(
        "callback_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transfer_id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("next_attempt_at"),
        _ts("created_at"),
        _ts("last_attempt_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_deliveries")),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.transfer_id"],
            name=op.f("fk_callback_deliveries_transfer_id_transfers"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name=op.f("ck_callback_deliveries_state")
        ),
    )
    op.create_index(
        "ix_callback_deliveries_due",
        "callback_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index("ix_callback_deliveries_transfer_id_id", "callback_deliveries", ["transfer_id", "id"])
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _ts("attempted_at"),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["callback_deliveries.id"],
            name=op.f("fk_callback_attempts_delivery_id_callback_deliveries"),
        ),
        sa.UniqueConstraint("delivery_id", "attempt", name="uq_callback_attempts_delivery_id_attempt"),
    )


def downgrade() -> None:
    op.drop_table("callback_attempts")
    op.drop_index("ix_callback_deliveries_transfer_id_id", table_name="callback_deliveries")
    op.drop_index("ix_callback_deliveries_due", table_name="callback_deliveries")
    op.drop_table("callback_deliveries")
    op.drop_index("ix_transfers_account_id_seq", table_name="transfers")
    op.drop_table("transfers")
