"""engine checkpoints count their market's committed batches: a runner that reads balances while
its previous batch is still committing learns from the same snapshot whether that batch is in it

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "engine_checkpoints", sa.Column("batches", sa.BigInteger(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("engine_checkpoints", "batches")
