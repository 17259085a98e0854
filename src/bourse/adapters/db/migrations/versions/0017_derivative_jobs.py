"""derivative jobs: mark history at funding moments and 00:00 UTC, the funding and swap jobs'
cursors, and an index to find the positions that were open at a past moment

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "mark_history",
        sa.Column("market_id", sa.Text(), nullable=False),
        _ts("at"),
        sa.Column("mark", MONEY, nullable=False),
        sa.Column("index_price", MONEY, nullable=True),
        sa.CheckConstraint("mark > 0", name=op.f("ck_mark_history_mark")),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_mark_history_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("market_id", "at", name="pk_mark_history"),
    )
    op.create_table(
        "derivative_job_cursors",
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        _ts("through"),
        _ts("updated_at"),
        sa.CheckConstraint("job IN ('Funding', 'Swap')", name=op.f("ck_derivative_job_cursors_job")),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_derivative_job_cursors_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("job", "market_id", name=op.f("pk_derivative_job_cursors")),
    )
    op.create_index("ix_positions_market_id_closed_at", "positions", ["market_id", "closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_positions_market_id_closed_at", table_name="positions")
    op.drop_table("derivative_job_cursors")
    op.drop_table("mark_history")
