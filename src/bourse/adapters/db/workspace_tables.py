"""Workspace tables: UI settings, layouts and templates; notifications; price alerts.

- ``ui_settings`` one row per user once they changed anything (defaults otherwise).
  A user's workspace writes take turns on a transaction-level advisory lock, so the
  layout limit and positions hold under concurrent requests.
- ``ui_layouts`` keyed by (uid, layout_id): ids are the client's, unique per user,
  never shared. ``tabs`` is the validated JSON (domain/workspace.py).
- ``ui_templates`` seeded by migration 0008; at most one ``is_default``.
- ``trader_notifications`` belong to one user (``account_id`` null: about the user).
- ``admin_notifications`` one shared staff inbox; ``admin_notification_reads`` the
  read marks of each staff user; ``dedupe_key`` makes raising idempotent.
- ``price_alerts`` fire once: ``fired_at`` is set by one ``UPDATE ... WHERE fired_at IS
  NULL``, which a second process waiting on the row lock re-checks and skips.
  ``price_alert_progress`` is the last trade id of each market checked against the
  alerts, where catching up after a restart starts.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

MONEY = Numeric(38, 18, asdecimal=True)


ui_settings = Table(
    "ui_settings",
    metadata,
    Column("uid", BigInteger, ForeignKey("users.uid"), primary_key=True),
    Column("selected_layout_id", Text),
    Column("is_introduction_tour_completed", Boolean, nullable=False, server_default=text("false")),
    Column("is_24h_time_format_used", Boolean, nullable=False, server_default=text("true")),
    Column("theme", Text, nullable=False, server_default="Dark"),
    _ts("updated_at"),
    CheckConstraint("theme IN ('Light', 'Dark')", name="theme"),
)

ui_layouts = Table(
    "ui_layouts",
    metadata,
    Column("uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    Column("layout_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("tabs", JSONB, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    PrimaryKeyConstraint("uid", "layout_id", name="pk_ui_layouts"),
)

ui_templates = Table(
    "ui_templates",
    metadata,
    Column("template_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    Column("position", Integer, nullable=False),
    Column("tabs", JSONB, nullable=False),
    Index("uq_ui_templates_one_default", "is_default", unique=True, postgresql_where=text("is_default")),
)

trader_notifications = Table(
    "trader_notifications",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    Column("account_id", Text, ForeignKey("accounts.account_id")),
    Column("type", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    _ts("created_at"),
    _ts("read_at", nullable=True),
    Index("ix_trader_notifications_uid_id", "uid", "id"),
    Index("ix_trader_notifications_unread", "uid", postgresql_where=text("read_at IS NULL")),
)

admin_notifications = Table(
    "admin_notifications",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("type", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("dedupe_key", Text, unique=True),
    _ts("created_at"),
    Index("ix_admin_notifications_created_at", "created_at"),
)

admin_notification_reads = Table(
    "admin_notification_reads",
    metadata,
    Column(
        "notification_id",
        BigInteger,
        ForeignKey("admin_notifications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    _ts("read_at"),
    PrimaryKeyConstraint("uid", "notification_id", name="pk_admin_notification_reads"),
)

price_alerts = Table(
    "price_alerts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("price", MONEY, nullable=False),
    Column("condition", Text, nullable=False),
    Column("after_trade_id", BigInteger, nullable=False),
    _ts("created_at"),
    _ts("fired_at", nullable=True),
    Column("fired_trade_id", BigInteger),
    Column("fired_price", MONEY),
    CheckConstraint("condition IN ('Gte', 'Lte')", name="condition"),
    CheckConstraint("price > 0", name="positive"),
    Index("ix_price_alerts_active_market", "market_id", "price", postgresql_where=text("fired_at IS NULL")),
    Index("ix_price_alerts_account_id_market_id", "account_id", "market_id"),
)

price_alert_progress = Table(
    "price_alert_progress",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), primary_key=True),
    Column("last_trade_id", BigInteger, nullable=False),
    _ts("updated_at"),
)
