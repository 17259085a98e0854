"""pricing: market price sources, dealer quotes, mark prices, funding rates, circuit breaker state

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _market_fk(table: str, column: str = "market_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["markets.market_id"], name=op.f(f"fk_{table}_{column}_markets"))


def upgrade() -> None:
    op.create_table(
        "market_pricing",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("execution_mode", sa.Text(), nullable=False),
        sa.Column("source_kind", sa.Text(), nullable=True),
        sa.Column("source_market_id", sa.Text(), nullable=True),
        sa.Column("exchange", sa.Text(), nullable=True),
        sa.Column("symbol", sa.Text(), nullable=True),
        sa.Column("manual_bid", MONEY, nullable=True),
        sa.Column("manual_ask", MONEY, nullable=True),
        sa.Column("markup_rate", MONEY, nullable=False),
        sa.Column("stale_after_seconds", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.CheckConstraint(
            "execution_mode IN ('OrderBook', 'Dealer')", name=op.f("ck_market_pricing_execution_mode")
        ),
        sa.CheckConstraint(
            "(source_kind IS NULL AND source_market_id IS NULL AND exchange IS NULL AND symbol IS NULL"
            " AND manual_bid IS NULL AND manual_ask IS NULL)"
            " OR (source_kind = 'Market' AND source_market_id IS NOT NULL AND exchange IS NULL"
            " AND symbol IS NULL AND manual_bid IS NULL AND manual_ask IS NULL)"
            " OR (source_kind = 'Ccxt' AND source_market_id IS NULL AND exchange IS NOT NULL"
            " AND symbol IS NOT NULL AND manual_bid IS NULL AND manual_ask IS NULL)"
            " OR (source_kind = 'Manual' AND source_market_id IS NULL AND exchange IS NULL AND symbol IS NULL"
            " AND manual_bid > 0 AND manual_ask >= manual_bid)",
            name=op.f("ck_market_pricing_source"),
        ),
        sa.CheckConstraint(
            "execution_mode <> 'Dealer' OR source_kind IS NOT NULL",
            name=op.f("ck_market_pricing_dealer_source"),
        ),
        sa.CheckConstraint(
            "markup_rate >= 0 AND markup_rate < 0.5", name=op.f("ck_market_pricing_markup_rate")
        ),
        sa.CheckConstraint(
            "stale_after_seconds BETWEEN 1 AND 86400", name=op.f("ck_market_pricing_stale_after_seconds")
        ),
        _market_fk("market_pricing"),
        _market_fk("market_pricing", "source_market_id"),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_market_pricing")),
    )
    op.create_table(
        "market_prices",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("raw_bid", MONEY, nullable=True),
        sa.Column("raw_ask", MONEY, nullable=True),
        _ts("quoted_at", nullable=True),
        sa.Column("mark", MONEY, nullable=True),
        sa.Column("index_price", MONEY, nullable=True),
        _ts("marked_at", nullable=True),
        _ts("first_marked_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("error_at", nullable=True),
        _ts("funding_through", nullable=True),
        _market_fk("market_prices"),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_market_prices")),
    )
    op.create_table(
        "funding_rates",
        sa.Column("market_id", sa.Text(), nullable=False),
        _ts("applied_at"),
        sa.Column("interval_hours", sa.Integer(), nullable=False),
        sa.Column("rate", MONEY, nullable=False),
        sa.Column("mark", MONEY, nullable=False),
        sa.Column("index_price", MONEY, nullable=False),
        sa.CheckConstraint("interval_hours >= 1", name=op.f("ck_funding_rates_interval_hours")),
        sa.CheckConstraint("mark > 0 AND index_price > 0", name=op.f("ck_funding_rates_prices")),
        _market_fk("funding_rates"),
        sa.PrimaryKeyConstraint("market_id", "applied_at", name="pk_funding_rates"),
    )
    op.create_table(
        "pricing_halts",
        sa.Column("market_id", sa.Text(), nullable=False),
        _ts("stale_since", nullable=True),
        _ts("stale_halted_at", nullable=True),
        sa.Column("breaker_from_trade_id", sa.BigInteger(), nullable=True),
        _ts("breaker_tripped_at", nullable=True),
        _market_fk("pricing_halts"),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_pricing_halts")),
    )


def downgrade() -> None:
    op.drop_table("pricing_halts")
    op.drop_table("funding_rates")
    op.drop_table("market_prices")
    op.drop_table("market_pricing")
