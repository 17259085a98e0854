"""Venue tables (migration 0016): external venues, per-market hedge settings, external orders.

- ``venues``: one row per venue an operator set up: its kind (Paper, Ccxt), the ccxt exchange id,
  the paper venue's behaviour, and the API keys as the cipher's text (never in the clear).
- ``market_hedging``: per Dealer market, which venue and symbol its fills are hedged on, the
  hedge ratio and the timeout.
- ``external_orders``: one hedge order per hedged derivative order fill, written in the fill's own
  transaction (the outbox the hedging job sends from). ``order_id`` is unique: a fill is hedged
  once. ``external_order_id`` is also the client order id at the venue.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

MONEY = Numeric(38, 18, asdecimal=True)
EXTERNAL_STATUSES = (
    "New",
    "Sent",
    "Acknowledged",
    "PartiallyFilled",
    "Filled",
    "Rejected",
    "Cancelled",
    "TimedOut",
)
UNFINISHED = ("New", "Sent", "Acknowledged", "PartiallyFilled")

venues = Table(
    "venues",
    metadata,
    Column("venue_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("exchange", Text),
    Column("sandbox", Boolean, nullable=False, server_default=text("false")),
    # Paper: {"mode", "latencyMs", "feeRate"}; nothing secret.
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("credentials_enc", Text),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("kind IN ('Paper', 'Ccxt')", name="kind"),
    CheckConstraint(
        "(kind = 'Paper' AND exchange IS NULL AND credentials_enc IS NULL)"
        " OR (kind = 'Ccxt' AND exchange IS NOT NULL AND credentials_enc IS NOT NULL)",
        name="kind_fields",
    ),
)

market_hedging = Table(
    "market_hedging",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), primary_key=True),
    Column("venue_id", Text, ForeignKey("venues.venue_id"), nullable=False),
    Column("venue_symbol", Text, nullable=False),
    Column("hedge_ratio", MONEY, nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    _ts("updated_at"),
    CheckConstraint("hedge_ratio >= 0 AND hedge_ratio <= 1", name="hedge_ratio"),
    CheckConstraint("timeout_seconds BETWEEN 1 AND 86400", name="timeout_seconds"),
)

external_orders = Table(
    "external_orders",
    metadata,
    Column("external_order_id", Text, primary_key=True),
    Column("venue_id", Text, ForeignKey("venues.venue_id"), nullable=False),
    Column("venue_symbol", Text, nullable=False),
    Column("lp_order_id", Text),
    # The derivative order (its fill) and the fill's first position execution; plain columns, as
    # the derivative tables are another storage concern.
    Column("order_id", BigInteger, nullable=False),
    Column("position_execution_id", BigInteger),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("side", Text, nullable=False),
    Column("type", Text, nullable=False, server_default=text("'Market'")),
    Column("time_in_force", Text, nullable=False, server_default=text("'Ioc'")),
    Column("amount", MONEY, nullable=False),
    Column("price", MONEY),  # a limit price; hedges are market orders, so NULL
    Column("reference_price", MONEY, nullable=False),
    Column("status", Text, nullable=False),
    Column("filled", MONEY, nullable=False, server_default=text("0")),
    Column("average_price", MONEY),
    Column("commission", MONEY, nullable=False, server_default=text("0")),
    Column("commission_asset", Text),
    _ts("created_at"),
    _ts("sent_at", nullable=True),
    _ts("updated_at"),
    _ts("timeout_at"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    UniqueConstraint("order_id", name="uq_external_orders_order_id"),
    CheckConstraint("side IN ('Buy', 'Sell')", name="side"),
    CheckConstraint(f"status IN {EXTERNAL_STATUSES!r}", name="status"),
    CheckConstraint("amount > 0 AND filled >= 0 AND filled <= amount", name="amounts"),
    # The job's two scans: unfinished orders by time; the history server's default sort.
    Index(
        "ix_external_orders_unfinished",
        "timeout_at",
        postgresql_where=text(f"status IN {UNFINISHED!r}"),
    ),
    Index("ix_external_orders_created_at", "created_at"),
    Index("ix_external_orders_account_id", "account_id"),
)
