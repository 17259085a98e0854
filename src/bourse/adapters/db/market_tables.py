"""Market tables: markets, commission profiles and their rules.

``markets`` holds every field of the back-office market (derivatives fields
nullable); the trading calendar and swap settings are JSONB in the front
office's JSON shape. ``commission_rules`` allows one default rule per profile,
one rule per (profile, market) and per (profile, market group); priorities are
unique per profile, checked at commit (DEFERRABLE) so a reorder can swap them
in any order. ``accounts.commission_profile_id`` (tables.py) names each
account's profile, ``default`` unless changed.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

MONEY = Numeric(38, 18, asdecimal=True)


markets = Table(
    "markets",
    metadata,
    Column("market_id", Text, primary_key=True),
    Column("base_asset_id", Text, ForeignKey("assets.id"), nullable=False, index=True),
    Column("quote_asset_id", Text, ForeignKey("assets.id"), nullable=False, index=True),
    Column("display_name", Text, nullable=False),
    Column("full_name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("subtype", Text),
    Column("price_scale", Integer, nullable=False),
    Column("amount_scale", Integer, nullable=False),
    Column("tick_size", MONEY, nullable=False),
    Column("lot_step", MONEY, nullable=False),
    Column("min_amount", MONEY, nullable=False),
    Column("max_base_amount", MONEY),
    Column("min_quote_amount", MONEY),
    Column("price_deviation", MONEY, nullable=False),
    Column("slippage_rate", MONEY, nullable=False),
    Column("status", Text, nullable=False),
    Column("is_otc", Boolean, nullable=False, server_default=text("false")),
    Column("is_hidden", Boolean, nullable=False, server_default=text("false")),
    Column("calendar", JSONB),
    Column("market_group_id", Text, index=True),
    Column("calendar_id", Text),
    Column("is_synchronized", Boolean, nullable=False, server_default=text("false")),
    Column("external_ttl", Integer),
    Column("internal_ttl", Integer),
    Column("trading_session_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("market_data_session_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("lot_size", Integer),
    Column("min_lot_amount", MONEY),
    Column("max_lot_amount", Integer),
    Column("swap_settings", JSONB),
    Column("max_leverage", Integer),
    Column("is_const_leverage", Boolean),
    Column("funding_start_time", Time),
    Column("funding_interval_in_hours", Integer),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("type IN ('Spot', 'Cfd', 'Perpetual')", name="type"),
    CheckConstraint("status IN ('Active', 'Halted', 'CloseOnly')", name="status"),
    CheckConstraint("base_asset_id <> quote_asset_id", name="distinct_assets"),
    CheckConstraint("tick_size > 0 AND lot_step > 0", name="steps_positive"),
    CheckConstraint("min_amount >= 0", name="min_amount"),
    CheckConstraint("price_deviation >= 0 AND price_deviation < 1", name="price_deviation"),
    CheckConstraint("slippage_rate >= 0 AND slippage_rate < 1", name="slippage_rate"),
    CheckConstraint("price_scale BETWEEN 0 AND 18 AND amount_scale BETWEEN 0 AND 18", name="scales"),
)

commission_profiles = Table(
    "commission_profiles",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    _ts("created_at"),
)

commission_rules = Table(
    "commission_rules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("profile_id", Text, ForeignKey("commission_profiles.id"), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("market_id", Text, ForeignKey("markets.market_id")),
    Column("market_group_id", Text),
    Column("fee_type", Text, nullable=False),
    Column("maker_size", MONEY, nullable=False),
    Column("taker_size", MONEY, nullable=False),
    Column("min_fee_rat", MONEY),
    Column("cfd_settings", JSONB),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("fee_type IN ('Percent', 'Fixed')", name="fee_type"),
    CheckConstraint("maker_size >= 0 AND taker_size >= 0", name="sizes"),
    CheckConstraint(
        "(is_default AND market_id IS NULL AND market_group_id IS NULL)"
        " OR (NOT is_default AND (market_id IS NULL) <> (market_group_id IS NULL))",
        name="target",
    ),
    UniqueConstraint(
        "profile_id",
        "priority",
        name="uq_commission_rules_profile_id_priority",
        deferrable=True,
        initially="DEFERRED",
    ),
    Index("uq_commission_rules_one_default", "profile_id", unique=True, postgresql_where=text("is_default")),
    Index(
        "uq_commission_rules_profile_market",
        "profile_id",
        "market_id",
        unique=True,
        postgresql_where=text("market_id IS NOT NULL"),
    ),
    Index(
        "uq_commission_rules_profile_group",
        "profile_id",
        "market_group_id",
        unique=True,
        postgresql_where=text("market_group_id IS NOT NULL"),
    ),
    Index("ix_commission_rules_market_id", "market_id"),
)
