"""minimum fees: the rule's minFeeRAT in the fee's asset, fixed with an order's other fee terms
when it is placed (spot ``orders`` and ``derivative_orders``; NULL: no minimum)

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def upgrade() -> None:
    op.add_column("orders", sa.Column("min_fee", MONEY, nullable=True))
    op.add_column("derivative_orders", sa.Column("min_fee", MONEY, nullable=True))


def downgrade() -> None:
    op.drop_column("derivative_orders", "min_fee")
    op.drop_column("orders", "min_fee")
