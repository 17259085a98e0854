"""marketdata: candles per market and interval, and how far the trades were folded into them

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INTERVALS = "interval IN ('1m', '5m', '15m', '1h', '4h', '1d', '1w', '1M')"


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Numeric(), nullable=False),
        sa.Column("high", sa.Numeric(), nullable=False),
        sa.Column("low", sa.Numeric(), nullable=False),
        sa.Column("close", sa.Numeric(), nullable=False),
        sa.Column("base_volume", sa.Numeric(), nullable=False),
        sa.Column("quote_volume", sa.Numeric(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(INTERVALS, name=op.f("ck_candles_interval")),
        sa.CheckConstraint(
            "low <= open AND low <= close AND open <= high AND close <= high", name=op.f("ck_candles_ohlc")
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_candles_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("market_id", "interval", "start", name=op.f("pk_candles")),
    )
    op.create_table(
        "marketdata_progress",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_marketdata_progress_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_marketdata_progress")),
    )


def downgrade() -> None:
    op.drop_table("marketdata_progress")
    op.drop_table("candles")
