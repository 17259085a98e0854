"""trading: orders, executions, trades, client order ids, engine checkpoints

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE order_ids")
    op.create_table(
        "orders",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("client_order_id", sa.Text()),
        sa.Column("fingerprint", sa.LargeBinary()),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("time_in_force", sa.Text(), nullable=False),
        sa.Column("post_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("price", MONEY),
        sa.Column("stop_price", MONEY),
        sa.Column("reserve_price", MONEY),
        sa.Column("quantity", MONEY, nullable=False),
        sa.Column("remaining", MONEY, nullable=False),
        sa.Column("executed_quote", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("commission", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("commission_asset", sa.Text(), nullable=False),
        sa.Column("fee_rule_id", sa.Text()),
        sa.Column("fee_type", sa.Text()),
        sa.Column("maker_fee", MONEY),
        sa.Column("taker_fee", MONEY),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stop_status", sa.Text()),
        sa.Column("source", sa.Text(), server_default="Manual", nullable=False),
        sa.Column("reject_reason", sa.Text()),
        sa.Column("cancel_reason", sa.Text()),
        sa.Column("locked_asset", sa.Text()),
        sa.Column("locked_amount", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("locked_remaining", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("hold_tx_id", sa.BigInteger()),
        sa.Column("engine_seq", sa.BigInteger()),
        _ts("cancellation_date", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("side IN ('Buy', 'Sell')", name=op.f("ck_orders_side")),
        sa.CheckConstraint("type IN ('Market', 'Limit', 'Stop', 'StopLimit')", name=op.f("ck_orders_type")),
        sa.CheckConstraint(
            "time_in_force IN ('Gtc', 'Ioc', 'Fok', 'Gtd')", name=op.f("ck_orders_time_in_force")
        ),
        sa.CheckConstraint(
            "status IN ('Started', 'Placed', 'PartiallyFilled', 'Filled', 'Cancelled', 'Rejected', 'Expired')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint(
            "stop_status IS NULL OR stop_status IN ('WaitingForActivation', 'Activated', 'Cancelled')",
            name=op.f("ck_orders_stop_status"),
        ),
        sa.CheckConstraint(
            "quantity > 0 AND remaining >= 0 AND remaining <= quantity", name=op.f("ck_orders_quantities")
        ),
        sa.CheckConstraint(
            "locked_remaining >= 0 AND locked_remaining <= locked_amount", name=op.f("ck_orders_locked")
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_orders_market_id_markets")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_orders_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "account_id", "client_order_id", name=op.f("uq_orders_account_id_client_order_id")
        ),
    )
    op.create_index("ix_orders_account_id_order_id", "orders", ["account_id", "order_id"])
    op.create_index("ix_orders_account_id_created_at", "orders", ["account_id", "created_at"])
    op.create_index(
        "ix_orders_live_market_id",
        "orders",
        ["market_id"],
        postgresql_where=sa.text("status IN ('Started', 'Placed', 'PartiallyFilled')"),
    )

    op.create_table(
        "order_client_ids",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("client_order_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_order_client_ids_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "client_order_id", name=op.f("pk_order_client_ids")),
    )

    op.create_table(
        "trades",
        sa.Column("trade_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("market_seq", sa.BigInteger(), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("quote_amount", MONEY, nullable=False),
        sa.Column("taker_side", sa.Text(), nullable=False),
        sa.Column("maker_order_id", sa.BigInteger()),
        sa.Column("taker_order_id", sa.BigInteger()),
        _ts("created_at"),
        sa.CheckConstraint("taker_side IN ('Buy', 'Sell')", name=op.f("ck_trades_taker_side")),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_trades_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("trade_id", name=op.f("pk_trades")),
        sa.UniqueConstraint("market_id", "market_seq", name=op.f("uq_trades_market_id_market_seq")),
    )
    op.create_index(
        "ix_trades_market_id_created_at_trade_id", "trades", ["market_id", "created_at", "trade_id"]
    )

    op.create_table(
        "executions",
        sa.Column("execution_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("quote_amount", MONEY, nullable=False),
        sa.Column("commission", MONEY, nullable=False),
        sa.Column("commission_asset", sa.Text(), nullable=False),
        sa.Column("is_maker", sa.Boolean(), nullable=False),
        sa.Column("ledger_tx_id", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_executions_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.trade_id"], name=op.f("fk_executions_trade_id_trades")
        ),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_executions")),
    )
    op.create_index("ix_executions_order_id_execution_id", "executions", ["order_id", "execution_id"])
    op.create_index("ix_executions_account_id_execution_id", "executions", ["account_id", "execution_id"])

    op.create_table(
        "engine_checkpoints",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("state_hash", sa.Text(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("trade_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_price", MONEY),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_engine_checkpoints_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_engine_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("engine_checkpoints")
    op.drop_index("ix_executions_account_id_execution_id", table_name="executions")
    op.drop_index("ix_executions_order_id_execution_id", table_name="executions")
    op.drop_table("executions")
    op.drop_index("ix_trades_market_id_created_at_trade_id", table_name="trades")
    op.drop_table("trades")
    op.drop_table("order_client_ids")
    op.drop_index("ix_orders_live_market_id", table_name="orders")
    op.drop_index("ix_orders_account_id_created_at", table_name="orders")
    op.drop_index("ix_orders_account_id_order_id", table_name="orders")
    op.drop_table("orders")
    op.execute("DROP SEQUENCE order_ids")
