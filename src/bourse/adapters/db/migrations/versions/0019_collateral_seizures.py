"""collateral seizures: another selected margin asset taken to pay a Cross loss (close, funding,
swap) the settlement asset could not cover, before any deficit is left to the house

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def upgrade() -> None:
    op.create_table(
        "collateral_seizures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("business_key", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("settlement_asset", sa.Text(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("rate", MONEY, nullable=False),
        sa.Column("value", MONEY, nullable=False),
        sa.Column("ledger_tx_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_collateral_seizures_amount")),
        sa.CheckConstraint("rate > 0", name=op.f("ck_collateral_seizures_rate")),
        sa.CheckConstraint("kind IN ('Close', 'Funding', 'Swap')", name=op.f("ck_collateral_seizures_kind")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_collateral_seizures_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["settlement_asset"], ["assets.id"], name=op.f("fk_collateral_seizures_settlement_asset_assets")
        ),
        sa.ForeignKeyConstraint(["asset"], ["assets.id"], name=op.f("fk_collateral_seizures_asset_assets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collateral_seizures")),
        sa.UniqueConstraint("business_key", name=op.f("uq_collateral_seizures_business_key")),
    )
    op.create_index(
        "ix_collateral_seizures_account_id_id", "collateral_seizures", ["account_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_collateral_seizures_account_id_id", table_name="collateral_seizures")
    op.drop_table("collateral_seizures")
