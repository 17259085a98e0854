"""workspace: notifications, price alerts, UI settings, layouts and templates

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tab(tab_id: str, x: int, y: int, cols: int, rows: int, *widgets: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": tab_id,
        "selectedWidgetId": widgets[0][0],
        "sizes": {"x": x, "y": y, "cols": cols, "rows": rows, "layerIndex": 0},
        "widgets": [{"id": wid, "type": kind} for wid, kind in widgets],
    }


# The platform's templates (a 12-column grid); a new trader starts from the default one.
TEMPLATES = [
    {
        "template_id": "standard",
        "name": "Standard",
        "is_default": True,
        "position": 0,
        "tabs": [
            _tab("markets", 0, 0, 3, 8, ("favorites", "BbpFavorites"), ("markets", "Markets")),
            _tab("chart", 3, 0, 6, 5, ("chart", "Chart")),
            _tab("book", 9, 0, 3, 5, ("orderbook", "OrderBook"), ("trades", "Trades")),
            _tab(
                "orders",
                3,
                5,
                6,
                3,
                ("open-orders", "OpenOrders"),
                ("order-history", "OrderHistory"),
                ("trade-history", "TradeHistory"),
                ("balances", "Balances"),
            ),
            _tab("form", 9, 5, 3, 3, ("order-form", "OrderForm")),
        ],
    },
    {
        "template_id": "compact",
        "name": "Compact",
        "is_default": False,
        "position": 1,
        "tabs": [
            _tab("chart", 0, 0, 8, 6, ("chart", "Chart")),
            _tab("trade", 8, 0, 4, 6, ("order-form", "OrderForm"), ("orderbook", "OrderBook")),
            _tab("orders", 0, 6, 12, 2, ("open-orders", "OpenOrders"), ("balances", "Balances")),
        ],
    },
    {
        "template_id": "market-watch",
        "name": "Market watch",
        "is_default": False,
        "position": 2,
        "tabs": [
            _tab(
                "watch",
                0,
                0,
                4,
                8,
                ("favorites", "BbpFavorites"),
                ("markets", "Markets"),
                ("ticker", "Ticker"),
            ),
            _tab("chart", 4, 0, 8, 8, ("chart", "Chart"), ("trades", "Trades")),
        ],
    },
]


def upgrade() -> None:
    op.create_table(
        "ui_settings",
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("selected_layout_id", sa.Text(), nullable=True),
        sa.Column(
            "is_introduction_tour_completed", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("is_24h_time_format_used", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("theme", sa.Text(), server_default="Dark", nullable=False),
        _ts("updated_at"),
        sa.CheckConstraint("theme IN ('Light', 'Dark')", name=op.f("ck_ui_settings_theme")),
        sa.ForeignKeyConstraint(["uid"], ["users.uid"], name=op.f("fk_ui_settings_uid_users")),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_ui_settings")),
    )
    op.create_table(
        "ui_layouts",
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("layout_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tabs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["uid"], ["users.uid"], name=op.f("fk_ui_layouts_uid_users")),
        sa.PrimaryKeyConstraint("uid", "layout_id", name="pk_ui_layouts"),
    )
    templates = op.create_table(
        "ui_templates",
        sa.Column("template_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tabs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("template_id", name=op.f("pk_ui_templates")),
    )
    op.create_index(
        "uq_ui_templates_one_default",
        "ui_templates",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.bulk_insert(templates, TEMPLATES)

    op.create_table(
        "trader_notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _ts("created_at"),
        _ts("read_at", nullable=True),
        sa.ForeignKeyConstraint(["uid"], ["users.uid"], name=op.f("fk_trader_notifications_uid_users")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_trader_notifications_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trader_notifications")),
    )
    op.create_index("ix_trader_notifications_uid_id", "trader_notifications", ["uid", "id"])
    op.create_index(
        "ix_trader_notifications_unread",
        "trader_notifications",
        ["uid"],
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_table(
        "admin_notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_admin_notifications_dedupe_key")),
    )
    op.create_index("ix_admin_notifications_created_at", "admin_notifications", ["created_at"])
    op.create_table(
        "admin_notification_reads",
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        _ts("read_at"),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["admin_notifications.id"],
            ondelete="CASCADE",
            name=op.f("fk_admin_notification_reads_notification_id_admin_notifications"),
        ),
        sa.ForeignKeyConstraint(["uid"], ["users.uid"], name=op.f("fk_admin_notification_reads_uid_users")),
        sa.PrimaryKeyConstraint("uid", "notification_id", name="pk_admin_notification_reads"),
    )

    op.create_table(
        "price_alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("after_trade_id", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        _ts("fired_at", nullable=True),
        sa.Column("fired_trade_id", sa.BigInteger(), nullable=True),
        sa.Column("fired_price", MONEY, nullable=True),
        sa.CheckConstraint("condition IN ('Gte', 'Lte')", name=op.f("ck_price_alerts_condition")),
        sa.CheckConstraint("price > 0", name=op.f("ck_price_alerts_positive")),
        sa.ForeignKeyConstraint(["uid"], ["users.uid"], name=op.f("fk_price_alerts_uid_users")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_price_alerts_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_price_alerts_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_alerts")),
    )
    op.create_index(
        "ix_price_alerts_active_market",
        "price_alerts",
        ["market_id", "price"],
        postgresql_where=sa.text("fired_at IS NULL"),
    )
    op.create_index("ix_price_alerts_account_id_market_id", "price_alerts", ["account_id", "market_id"])
    op.create_table(
        "price_alert_progress",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_price_alert_progress_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_price_alert_progress")),
    )


def downgrade() -> None:
    op.drop_table("price_alert_progress")
    op.drop_index("ix_price_alerts_account_id_market_id", table_name="price_alerts")
    op.drop_index("ix_price_alerts_active_market", table_name="price_alerts")
    op.drop_table("price_alerts")
    op.drop_table("admin_notification_reads")
    op.drop_index("ix_admin_notifications_created_at", table_name="admin_notifications")
    op.drop_table("admin_notifications")
    op.drop_index("ix_trader_notifications_unread", table_name="trader_notifications")
    op.drop_index("ix_trader_notifications_uid_id", table_name="trader_notifications")
    op.drop_table("trader_notifications")
    op.drop_index("uq_ui_templates_one_default", table_name="ui_templates")
    op.drop_table("ui_templates")
    op.drop_table("ui_layouts")
    op.drop_table("ui_settings")
