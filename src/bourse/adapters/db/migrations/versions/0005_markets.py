"""markets: markets, commission profiles and rules, account commission profile

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "markets",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("base_asset_id", sa.Text(), nullable=False),
        sa.Column("quote_asset_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("subtype", sa.Text(), nullable=True),
        sa.Column("price_scale", sa.Integer(), nullable=False),
        sa.Column("amount_scale", sa.Integer(), nullable=False),
        sa.Column("tick_size", MONEY, nullable=False),
        sa.Column("lot_step", MONEY, nullable=False),
        sa.Column("min_amount", MONEY, nullable=False),
        sa.Column("max_base_amount", MONEY, nullable=True),
        sa.Column("min_quote_amount", MONEY, nullable=True),
        sa.Column("price_deviation", MONEY, nullable=False),
        sa.Column("slippage_rate", MONEY, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("is_otc", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_hidden", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("calendar", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("market_group_id", sa.Text(), nullable=True),
        sa.Column("calendar_id", sa.Text(), nullable=True),
        sa.Column("is_synchronized", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("external_ttl", sa.Integer(), nullable=True),
        sa.Column("internal_ttl", sa.Integer(), nullable=True),
        sa.Column(
            "trading_session_ids", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column(
            "market_data_session_ids",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("lot_size", sa.Integer(), nullable=True),
        sa.Column("min_lot_amount", MONEY, nullable=True),
        sa.Column("max_lot_amount", sa.Integer(), nullable=True),
        sa.Column("swap_settings", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("max_leverage", sa.Integer(), nullable=True),
        sa.Column("is_const_leverage", sa.Boolean(), nullable=True),
        sa.Column("funding_start_time", sa.Time(), nullable=True),
        sa.Column("funding_interval_in_hours", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("type IN ('Spot', 'Cfd', 'Perpetual')", name=op.f("ck_markets_type")),
        sa.CheckConstraint("status IN ('Active', 'Halted', 'CloseOnly')", name=op.f("ck_markets_status")),
        sa.CheckConstraint("base_asset_id <> quote_asset_id", name=op.f("ck_markets_distinct_assets")),
        sa.CheckConstraint("tick_size > 0 AND lot_step > 0", name=op.f("ck_markets_steps_positive")),
        sa.CheckConstraint("min_amount >= 0", name=op.f("ck_markets_min_amount")),
        sa.CheckConstraint(
            "price_deviation >= 0 AND price_deviation < 1", name=op.f("ck_markets_price_deviation")
        ),
        sa.CheckConstraint("slippage_rate >= 0 AND slippage_rate < 1", name=op.f("ck_markets_slippage_rate")),
        sa.CheckConstraint(
            "price_scale BETWEEN 0 AND 18 AND amount_scale BETWEEN 0 AND 18", name=op.f("ck_markets_scales")
        ),
        sa.ForeignKeyConstraint(
            ["base_asset_id"], ["assets.id"], name=op.f("fk_markets_base_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["quote_asset_id"], ["assets.id"], name=op.f("fk_markets_quote_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_markets")),
    )
    op.create_index("ix_markets_base_asset_id", "markets", ["base_asset_id"])
    op.create_index("ix_markets_quote_asset_id", "markets", ["quote_asset_id"])
    op.create_index("ix_markets_market_group_id", "markets", ["market_group_id"])

    op.create_table(
        "commission_profiles",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_profiles")),
    )
    op.create_table(
        "commission_rules",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("profile_id", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=True),
        sa.Column("market_group_id", sa.Text(), nullable=True),
        sa.Column("fee_type", sa.Text(), nullable=False),
        sa.Column("maker_size", MONEY, nullable=False),
        sa.Column("taker_size", MONEY, nullable=False),
        sa.Column("min_fee_rat", MONEY, nullable=True),
        sa.Column("cfd_settings", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("fee_type IN ('Percent', 'Fixed')", name=op.f("ck_commission_rules_fee_type")),
        sa.CheckConstraint("maker_size >= 0 AND taker_size >= 0", name=op.f("ck_commission_rules_sizes")),
        sa.CheckConstraint(
            "(is_default AND market_id IS NULL AND market_group_id IS NULL)"
            " OR (NOT is_default AND (market_id IS NULL) <> (market_group_id IS NULL))",
            name=op.f("ck_commission_rules_target"),
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["commission_profiles.id"],
            name=op.f("fk_commission_rules_profile_id_commission_profiles"),
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_commission_rules_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_rules")),
        # Checked at commit, so a reorder may pass through duplicate priorities.
        sa.UniqueConstraint(
            "profile_id",
            "priority",
            name="uq_commission_rules_profile_id_priority",
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    op.create_index(
        "uq_commission_rules_one_default",
        "commission_rules",
        ["profile_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_index(
        "uq_commission_rules_profile_market",
        "commission_rules",
        ["profile_id", "market_id"],
        unique=True,
        postgresql_where=sa.text("market_id IS NOT NULL"),
    )
    op.create_index(
        "uq_commission_rules_profile_group",
        "commission_rules",
        ["profile_id", "market_group_id"],
        unique=True,
        postgresql_where=sa.text("market_group_id IS NOT NULL"),
    )
    op.create_index("ix_commission_rules_market_id", "commission_rules", ["market_id"])

    # The profile every account starts with: one default rule, 0.1% maker and taker.
    op.execute("INSERT INTO commission_profiles (id, name, created_at) VALUES ('default', 'Default', now())")
    op.execute(
        "INSERT INTO commission_rules (id, profile_id, priority, is_default, fee_type, maker_size, taker_size,"
        " created_at, updated_at)"
        " VALUES ('default', 'default', 1, true, 'Percent', 0.1, 0.1, now(), now())"
    )
    op.add_column(
        "accounts",
        sa.Column("commission_profile_id", sa.Text(), server_default="default", nullable=False),
    )
    op.create_foreign_key(
        op.f("fk_accounts_commission_profile_id_commission_profiles"),
        "accounts",
        "commission_profiles",
        ["commission_profile_id"],
        ["id"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_accounts_commission_profile_id_commission_profiles"), "accounts", type_="foreignkey"
    )
    op.drop_column("accounts", "commission_profile_id")
    op.drop_index("ix_commission_rules_market_id", table_name="commission_rules")
    op.drop_index("uq_commission_rules_profile_group", table_name="commission_rules")
    op.drop_index("uq_commission_rules_profile_market", table_name="commission_rules")
    op.drop_index("uq_commission_rules_one_default", table_name="commission_rules")
    op.drop_table("commission_rules")
    op.drop_table("commission_profiles")
    op.drop_index("ix_markets_market_group_id", table_name="markets")
    op.drop_index("ix_markets_quote_asset_id", table_name="markets")
    op.drop_index("ix_markets_base_asset_id", table_name="markets")
    op.drop_table("markets")
