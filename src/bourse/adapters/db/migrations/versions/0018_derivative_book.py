"""derivative order book: what the engine runner of an OrderBook Cfd/Perpetual market stores on
its orders (place in the book, hold, fee terms fixed at placement)

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def upgrade() -> None:
    add = op.add_column
    add(
        "derivative_orders",
        sa.Column("in_book", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    add("derivative_orders", sa.Column("engine_seq", sa.BigInteger(), nullable=True))
    add(
        "derivative_orders",
        sa.Column("post_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    add("derivative_orders", sa.Column("reserve_price", MONEY, nullable=True))
    add("derivative_orders", sa.Column("locked_amount", MONEY, server_default=sa.text("0"), nullable=False))
    add(
        "derivative_orders", sa.Column("locked_remaining", MONEY, server_default=sa.text("0"), nullable=False)
    )
    add("derivative_orders", sa.Column("hold_tx_id", sa.BigInteger(), nullable=True))
    add("derivative_orders", sa.Column("fee_type", sa.Text(), nullable=True))
    add("derivative_orders", sa.Column("fee_size", MONEY, nullable=True))
    add("derivative_orders", sa.Column("cancel_reason", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_derivative_orders_hold"),
        "derivative_orders",
        "locked_amount >= 0 AND locked_remaining >= 0 AND locked_remaining <= locked_amount",
    )
    op.create_index(
        "ix_derivative_orders_book_market_id",
        "derivative_orders",
        ["market_id", "order_id"],
        postgresql_where=sa.text("in_book AND status IN ('Started', 'Placed', 'PartiallyFilled')"),
    )


def downgrade() -> None:
    op.drop_index("ix_derivative_orders_book_market_id", table_name="derivative_orders")
    op.drop_constraint(op.f("ck_derivative_orders_hold"), "derivative_orders", type_="check")
    for name in (
        "cancel_reason",
        "fee_size",
        "fee_type",
        "hold_tx_id",
        "locked_remaining",
        "locked_amount",
        "reserve_price",
        "post_only",
        "engine_seq",
        "in_book",
    ):
        op.drop_column("derivative_orders", name)
