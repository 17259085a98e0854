"""derivatives: positions, derivative orders, position executions, margin assets, funding and swap payments, deficits

Position ids come from their own sequence; derivative order ids from ``order_ids``
(shared with spot orders) and position execution ids from the spot executions'
identity sequence, so the v4 order and execution lists page through one id space.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE position_ids")
    op.create_table(
        "margin_ratios",
        sa.Column("asset_id", sa.Text(), nullable=False),
        sa.Column("ratio", MONEY, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ratio > 0 AND ratio <= 1", name=op.f("ck_margin_ratios_ratio")),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name=op.f("fk_margin_ratios_asset_id_assets")),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_margin_ratios")),
    )
    op.create_table(
        "account_margin_assets",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("asset_id", sa.Text(), nullable=False),
        sa.Column("is_selected", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_account_margin_assets_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_account_margin_assets_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("account_id", "asset_id", name=op.f("pk_account_margin_assets")),
    )
    op.create_table(
        "deficits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("business_key", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('Close', 'Funding', 'Swap')", name=op.f("ck_deficits_kind")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_deficits_amount")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_deficits_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["asset"], ["assets.id"], name=op.f("fk_deficits_asset_assets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deficits")),
        sa.UniqueConstraint("business_key", name=op.f("uq_deficits_business_key")),
    )
    op.create_index("ix_deficits_account_id_id", "deficits", ["account_id", "id"], unique=False)
    op.create_index("ix_deficits_created_at", "deficits", ["created_at"], unique=False)
    op.create_table(
        "derivative_orders",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("client_order_id", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=True),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("time_in_force", sa.Text(), nullable=False),
        sa.Column("lots", MONEY, nullable=False),
        sa.Column("remaining_lots", MONEY, nullable=False),
        sa.Column("price", MONEY, nullable=True),
        sa.Column("activation_price", MONEY, nullable=True),
        sa.Column("leverage", sa.Integer(), nullable=False),
        sa.Column("margin_type", sa.Text(), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stop_status", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), server_default="Manual", nullable=False),
        sa.Column("reason", sa.Text(), server_default="Trader", nullable=False),
        sa.Column("tp_price", MONEY, nullable=True),
        sa.Column("sl_price", MONEY, nullable=True),
        sa.Column("sl_limit_price", MONEY, nullable=True),
        sa.Column("sl_trailing", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("sl_trailing_rate", MONEY, nullable=True),
        sa.Column("executed_base", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("executed_quote", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("commission", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("commission_asset", sa.Text(), nullable=False),
        sa.Column("realized_pnl", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("cancellation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "margin_type IN ('Cross', 'Isolated')", name=op.f("ck_derivative_orders_margin_type")
        ),
        sa.CheckConstraint(
            "reason IN ('Trader', 'TakeProfit', 'StopLoss', 'TrailingStop', 'StopOut')",
            name=op.f("ck_derivative_orders_reason"),
        ),
        sa.CheckConstraint("side IN ('Buy', 'Sell')", name=op.f("ck_derivative_orders_side")),
        sa.CheckConstraint(
            "source IN ('Manual', 'TakeProfit', 'StopLoss', 'TrailingStop', 'StopOut')",
            name=op.f("ck_derivative_orders_source"),
        ),
        sa.CheckConstraint(
            "status IN ('Started', 'Placed', 'PartiallyFilled', 'Filled', 'Cancelled', 'Rejected', 'Expired')",
            name=op.f("ck_derivative_orders_status"),
        ),
        sa.CheckConstraint(
            "stop_status IS NULL OR stop_status IN ('WaitingForActivation', 'Activated', 'Cancelled')",
            name=op.f("ck_derivative_orders_stop_status"),
        ),
        sa.CheckConstraint(
            "time_in_force IN ('Gtc', 'Ioc', 'Fok', 'Gtd')", name=op.f("ck_derivative_orders_time_in_force")
        ),
        sa.CheckConstraint(
            "type IN ('Market', 'Limit', 'Stop', 'StopLimit')", name=op.f("ck_derivative_orders_type")
        ),
        sa.CheckConstraint("leverage >= 1", name=op.f("ck_derivative_orders_leverage")),
        sa.CheckConstraint(
            "lots > 0 AND remaining_lots >= 0 AND remaining_lots <= lots",
            name=op.f("ck_derivative_orders_lots"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_derivative_orders_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_derivative_orders_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_derivative_orders")),
        sa.UniqueConstraint(
            "account_id", "client_order_id", name="uq_derivative_orders_account_id_client_order_id"
        ),
    )
    op.create_index(
        "ix_derivative_orders_account_id_created_at",
        "derivative_orders",
        ["account_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_derivative_orders_account_id_order_id",
        "derivative_orders",
        ["account_id", "order_id"],
        unique=False,
    )
    op.create_index(
        "ix_derivative_orders_live_market_id",
        "derivative_orders",
        ["market_id"],
        unique=False,
        postgresql_where=sa.text("status IN ('Started', 'Placed', 'PartiallyFilled')"),
    )
    op.create_table(
        "margin_call_states",
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_margin_call_states_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "scope", name=op.f("pk_margin_call_states")),
    )
    op.create_table(
        "positions",
        sa.Column("position_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("lots", MONEY, nullable=False),
        sa.Column("entry_price", MONEY, nullable=False),
        sa.Column("leverage", sa.Integer(), nullable=False),
        sa.Column("margin_type", sa.Text(), nullable=False),
        sa.Column("margin", MONEY, nullable=False),
        sa.Column("realized_pnl", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("open_order_id", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("margin_type IN ('Cross', 'Isolated')", name=op.f("ck_positions_margin_type")),
        sa.CheckConstraint("side IN ('Long', 'Short')", name=op.f("ck_positions_side")),
        sa.CheckConstraint("leverage >= 1", name=op.f("ck_positions_leverage")),
        sa.CheckConstraint(
            "lots >= 0 AND margin >= 0 AND entry_price > 0", name=op.f("ck_positions_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_positions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_positions_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("position_id", name=op.f("pk_positions")),
    )
    op.create_index(
        "ix_positions_account_id_position_id", "positions", ["account_id", "position_id"], unique=False
    )
    op.create_index(
        "ix_positions_open_account_id_market_id",
        "positions",
        ["account_id", "market_id"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_positions_open_market_id",
        "positions",
        ["market_id"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "funding_payments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("rate", MONEY, nullable=False),
        sa.Column("mark", MONEY, nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("deficit", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("ledger_tx_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ledger_tx_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_funding_payments_ledger_tx_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.position_id"], name=op.f("fk_funding_payments_position_id_positions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_payments")),
        sa.UniqueConstraint(
            "market_id", "applied_at", "position_id", name="uq_funding_payments_business_key"
        ),
    )
    op.create_index(
        "ix_funding_payments_account_id_applied_at",
        "funding_payments",
        ["account_id", "applied_at"],
        unique=False,
    )
    op.create_index("ix_funding_payments_position_id", "funding_payments", ["position_id"], unique=False)
    op.create_table(
        "position_executions",
        sa.Column(
            "execution_id",
            sa.BigInteger(),
            server_default=sa.text("nextval('executions_execution_id_seq'::regclass)"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lots", MONEY, nullable=False),
        sa.Column("base_amount", MONEY, nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("raw_price", MONEY, nullable=False),
        sa.Column("markup", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("fee", MONEY, nullable=False),
        sa.Column("fee_asset", sa.Text(), nullable=False),
        sa.Column("realized_pnl", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("closed_lots", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("entry_price", MONEY, nullable=False),
        sa.Column("rate_to_rat", MONEY, nullable=True),
        sa.Column("ledger_tx_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("side IN ('Buy', 'Sell')", name=op.f("ck_position_executions_side")),
        sa.CheckConstraint(
            "closed_lots >= 0 AND closed_lots <= lots", name=op.f("ck_position_executions_closed_lots")
        ),
        sa.CheckConstraint(
            "lots > 0 AND base_amount > 0 AND price > 0 AND fee >= 0",
            name=op.f("ck_position_executions_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_tx_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_position_executions_ledger_tx_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["derivative_orders.order_id"],
            name=op.f("fk_position_executions_order_id_derivative_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.position_id"],
            name=op.f("fk_position_executions_position_id_positions"),
        ),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_position_executions")),
    )
    op.create_index(
        "ix_position_executions_account_id_execution_id",
        "position_executions",
        ["account_id", "execution_id"],
        unique=False,
    )
    op.create_index(
        "ix_position_executions_closes_account_id_order_id",
        "position_executions",
        ["account_id", "order_id"],
        unique=False,
        postgresql_where=sa.text("closed_lots > 0"),
    )
    op.create_index("ix_position_executions_created_at", "position_executions", ["created_at"], unique=False)
    op.create_index(
        "ix_position_executions_order_id_execution_id",
        "position_executions",
        ["order_id", "execution_id"],
        unique=False,
    )
    op.create_index(
        "ix_position_executions_position_id_execution_id",
        "position_executions",
        ["position_id", "execution_id"],
        unique=False,
    )
    op.create_table(
        "position_stop_losses",
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("limit_price", MONEY, nullable=True),
        sa.Column("trailing_rate", MONEY, nullable=True),
        sa.Column("best_mark", MONEY, nullable=True),
        sa.CheckConstraint("price > 0", name=op.f("ck_position_stop_losses_price")),
        sa.CheckConstraint(
            "trailing_rate IS NULL OR (trailing_rate > 0 AND trailing_rate < 1)",
            name=op.f("ck_position_stop_losses_trailing_rate"),
        ),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.position_id"],
            name=op.f("fk_position_stop_losses_position_id_positions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("position_id", name=op.f("pk_position_stop_losses")),
    )
    op.create_table(
        "position_take_profits",
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("lots", MONEY, nullable=False),
        sa.Column("done", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint("price > 0 AND lots > 0", name=op.f("ck_position_take_profits_amounts")),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.position_id"],
            name=op.f("fk_position_take_profits_position_id_positions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("position_id", "level", name=op.f("pk_position_take_profits")),
    )
    op.create_table(
        "swap_payments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("deficit", MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("ledger_tx_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ledger_tx_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_swap_payments_ledger_tx_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.position_id"], name=op.f("fk_swap_payments_position_id_positions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_swap_payments")),
        sa.UniqueConstraint("position_id", "day", name="uq_swap_payments_position_id_day"),
    )
    op.create_index("ix_swap_payments_account_id_day", "swap_payments", ["account_id", "day"], unique=False)
    op.create_index("ix_swap_payments_market_id_day", "swap_payments", ["market_id", "day"], unique=False)


def downgrade() -> None:
    op.drop_table("swap_payments")
    op.drop_table("position_take_profits")
    op.drop_table("position_stop_losses")
    op.drop_table("position_executions")
    op.drop_table("funding_payments")
    op.drop_table("positions")
    op.drop_table("margin_call_states")
    op.drop_table("derivative_orders")
    op.drop_table("deficits")
    op.drop_table("account_margin_assets")
    op.drop_table("margin_ratios")
    op.execute("DROP SEQUENCE position_ids")
