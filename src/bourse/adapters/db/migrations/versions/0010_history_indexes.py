"""history indexes: the history server's filters and sorts (by time, by market, by account)

What each serves (adapters/db/history_queries.py; every listing sorts by createdAt, then its id):
- executions (market_id, created_at, execution_id): /api/trades of a market in a time range;
- executions (created_at, execution_id): /api/trades by time alone, and the commission, markup,
  billing and active-account aggregates over a period;
- executions (account_id, created_at, execution_id): /api/trades of an account;
- orders (created_at, order_id): /api/orders without a narrower filter;
- orders (market_id, created_at, order_id): /api/orders of a market;
- orders (created_at, order_id) WHERE live: /api/open-orders;
- trades (created_at): billing volume and markups over a period across markets;
- transfers (created_at, transfer_id): /api/transfers.
Orders of an account use the existing (account_id, created_at).

Plain CREATE INDEX (Alembic runs in a transaction): on a large live database, create them
CONCURRENTLY by hand first; ``IF NOT EXISTS`` then leaves them be.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "status IN ('Started', 'Placed', 'PartiallyFilled')"

INDEXES: list[tuple[str, str, tuple[str, ...], str | None]] = [
    ("ix_executions_market_id_created_at", "executions", ("market_id", "created_at", "execution_id"), None),
    ("ix_executions_created_at", "executions", ("created_at", "execution_id"), None),
    ("ix_executions_account_id_created_at", "executions", ("account_id", "created_at", "execution_id"), None),
    ("ix_orders_created_at", "orders", ("created_at", "order_id"), None),
    ("ix_orders_market_id_created_at", "orders", ("market_id", "created_at", "order_id"), None),
    ("ix_orders_live_created_at", "orders", ("created_at", "order_id"), LIVE),
    ("ix_trades_created_at", "trades", ("created_at",), None),
    ("ix_transfers_created_at", "transfers", ("created_at", "transfer_id"), None),
]


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        partial = f" WHERE {where}" if where else ""
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)}){partial}")


def downgrade() -> None:
    for name, _, _, _ in reversed(INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
