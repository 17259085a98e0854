"""feeshare: merchants, their users, daily OTC fee sharing records, completed runs

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(48, 16)
RATE = sa.Numeric(18, 16)


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("company_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("income_divide_rate", RATE, nullable=False),
        sa.Column("volume_divide_rate", RATE, nullable=False),
        sa.Column("max_divide_rate", RATE, nullable=False),
        sa.Column("rate_symbol", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("company_id > 0", name=op.f("ck_merchants_company_id")),
        sa.CheckConstraint(
            "income_divide_rate BETWEEN 0 AND 1 AND volume_divide_rate BETWEEN 0 AND 1"
            " AND max_divide_rate BETWEEN 0 AND 1",
            name=op.f("ck_merchants_rates"),
        ),
        sa.ForeignKeyConstraint(["rate_symbol"], ["assets.id"], name=op.f("fk_merchants_rate_symbol_assets")),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_merchants")),
    )
    op.create_table(
        "merchant_users",
        sa.Column("uid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        _ts("assigned_at"),
        sa.ForeignKeyConstraint(["uid"], ["users.uid"], name=op.f("fk_merchant_users_uid_users")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["merchants.company_id"], name=op.f("fk_merchant_users_company_id_merchants")
        ),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_merchant_users")),
    )
    op.create_index(op.f("ix_merchant_users_company_id"), "merchant_users", ["company_id"])
    op.create_table(
        "feeshare_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("coin", sa.Text(), nullable=False),
        sa.Column("item_date", sa.Date(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("value_all", AMOUNT, nullable=False),
        sa.Column("value_sub", AMOUNT, nullable=False),
        sa.Column("fee_value", AMOUNT, nullable=False),
        sa.Column("income_divide_rate", RATE, nullable=False),
        sa.Column("volume_divide_rate", RATE, nullable=False),
        sa.Column("max_divide_rate", RATE, nullable=False),
        sa.Column("rate_symbol", sa.Text(), nullable=False),
        sa.Column("share", AMOUNT, server_default=sa.text("0"), nullable=False),
        sa.Column("change_rate", AMOUNT, server_default=sa.text("0"), nullable=False),
        sa.Column("convert_value", AMOUNT, server_default=sa.text("0"), nullable=False),
        sa.Column("fingerprint", sa.Text(), server_default="", nullable=False),
        sa.Column("remark", sa.Text(), server_default="", nullable=False),
        sa.Column("settle_tx_id", sa.BigInteger(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("count_time"),
        _ts("rate_time"),
        sa.CheckConstraint("status IN (0, 1, 3)", name=op.f("ck_feeshare_records_status")),
        sa.CheckConstraint("status = 3 OR settle_tx_id IS NULL", name=op.f("ck_feeshare_records_settled_tx")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["merchants.company_id"], name=op.f("fk_feeshare_records_company_id_merchants")
        ),
        sa.ForeignKeyConstraint(["coin"], ["assets.id"], name=op.f("fk_feeshare_records_coin_assets")),
        sa.ForeignKeyConstraint(
            ["settle_tx_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_feeshare_records_settle_tx_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeshare_records")),
        sa.UniqueConstraint(
            "company_id", "coin", "item_date", name="uq_feeshare_records_company_id_coin_item_date"
        ),
    )
    op.create_index(
        "ix_feeshare_records_company_id_item_date", "feeshare_records", ["company_id", "item_date", "id"]
    )
    op.create_index("ix_feeshare_records_item_date_status", "feeshare_records", ["item_date", "status"])
    op.create_table(
        "feeshare_runs",
        sa.Column("item_date", sa.Date(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("settled", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        _ts("completed_at"),
        sa.PrimaryKeyConstraint("item_date", name=op.f("pk_feeshare_runs")),
    )


def downgrade() -> None:
    op.drop_table("feeshare_runs")
    op.drop_index("ix_feeshare_records_item_date_status", table_name="feeshare_records")
    op.drop_index("ix_feeshare_records_company_id_item_date", table_name="feeshare_records")
    op.drop_table("feeshare_records")
    op.drop_index(op.f("ix_merchant_users_company_id"), table_name="merchant_users")
    op.drop_table("merchant_users")
    op.drop_table("merchants")
