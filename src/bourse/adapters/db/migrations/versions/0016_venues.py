"""venues: external venues (paper, ccxt), per-market hedge settings, external (hedge) orders

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)
STATUSES = "('New', 'Sent', 'Acknowledged', 'PartiallyFilled', 'Filled', 'Rejected', 'Cancelled', 'TimedOut')"
UNFINISHED = "('New', 'Sent', 'Acknowledged', 'PartiallyFilled')"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "venues",
        sa.Column("venue_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("exchange", sa.Text(), nullable=True),
        sa.Column("sandbox", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("credentials_enc", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("venue_id", name=op.f("pk_venues")),
        sa.CheckConstraint("kind IN ('Paper', 'Ccxt')", name=op.f("ck_venues_kind")),
        sa.CheckConstraint(
            "(kind = 'Paper' AND exchange IS NULL AND credentials_enc IS NULL)"
            " OR (kind = 'Ccxt' AND exchange IS NOT NULL AND credentials_enc IS NOT NULL)",
            name=op.f("ck_venues_kind_fields"),
        ),
    )
    op.create_table(
        "market_hedging",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("venue_id", sa.Text(), nullable=False),
        sa.Column("venue_symbol", sa.Text(), nullable=False),
        sa.Column("hedge_ratio", MONEY, nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_market_hedging")),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_market_hedging_market_id_markets")
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venues.venue_id"], name=op.f("fk_market_hedging_venue_id_venues")
        ),
        sa.CheckConstraint(
            "hedge_ratio >= 0 AND hedge_ratio <= 1", name=op.f("ck_market_hedging_hedge_ratio")
        ),
        sa.CheckConstraint(
            "timeout_seconds BETWEEN 1 AND 86400", name=op.f("ck_market_hedging_timeout_seconds")
        ),
    )
    op.create_table(
        "external_orders",
        sa.Column("external_order_id", sa.Text(), nullable=False),
        sa.Column("venue_id", sa.Text(), nullable=False),
        sa.Column("venue_symbol", sa.Text(), nullable=False),
        sa.Column("lp_order_id", sa.Text(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("position_execution_id", sa.BigInteger(), nullable=True),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), server_default=sa.text("'Market'"), nullable=False),
        sa.Column("time_in_force", sa.Text(), server_default=sa.text("'Ioc'"), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("price", MONEY, nullable=True),
        sa.Column("reference_price", MONEY, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("filled", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("average_price", MONEY, nullable=True),
        sa.Column("commission", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("commission_asset", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
        _ts("updated_at"),
        _ts("timeout_at"),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("external_order_id", name=op.f("pk_external_orders")),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venues.venue_id"], name=op.f("fk_external_orders_venue_id_venues")
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_external_orders_market_id_markets")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_external_orders_account_id_accounts")
        ),
        sa.UniqueConstraint("order_id", name="uq_external_orders_order_id"),
        sa.CheckConstraint("side IN ('Buy', 'Sell')", name=op.f("ck_external_orders_side")),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_external_orders_status")),
        sa.CheckConstraint(
            "amount > 0 AND filled >= 0 AND filled <= amount", name=op.f("ck_external_orders_amounts")
        ),
    )
    op.create_index(
        "ix_external_orders_unfinished",
        "external_orders",
        ["timeout_at"],
        postgresql_where=sa.text(f"status IN {UNFINISHED}"),
    )
    op.create_index("ix_external_orders_created_at", "external_orders", ["created_at"])
    op.create_index("ix_external_orders_account_id", "external_orders", ["account_id"])


def downgrade() -> None:
    op.drop_table("external_orders")
    op.drop_table("market_hedging")
    op.drop_table("venues")
