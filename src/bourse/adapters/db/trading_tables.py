"""Trading tables: orders, executions, trades, client order ids and engine checkpoints.

Only a market's engine runner writes its orders, executions, trades and checkpoint,
and it writes each tick's effects in one transaction together with the ledger
transactions that move the money, so these rows and the balances never disagree.

- ``orders``: one row per order (stop orders included), its requested terms, where
  it stands (status, remaining, executed quote, commission), what of its hold is
  still locked (``locked_remaining``) and, while it is live, its engine sequence
  number (``engine_seq``): with the open rows that is enough to rebuild the book.
- ``order_client_ids``: the idempotency guard of ``clientOrderId`` (unique per
  account, across markets): reserved in the tick's transaction before anything else,
  so a concurrent duplicate waits for the first and then finds it.
- ``executions``: one row per order per fill; ``trades``: one row per trade (public).
- ``engine_checkpoints``: per market the state hash, order and trade sequence and last
  price as of the last commit; recovery compares the rebuilt book's hash with it. ``batches``
  counts the commits, so a read can tell which of them its snapshot holds.

An order's market and account, a trade's market and an execution's order and trade are checked
once per statement by triggers (migration 0023, ADR 0012), not by foreign keys declared here:
the keys' per-row checks and row locks were a sixth of the order path's batch statement.
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
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    Sequence,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

MONEY = Numeric(38, 18, asdecimal=True)

# Order ids (stop orders included) come from one sequence, allocated by the engine runner.
order_ids = Sequence("order_ids", metadata=metadata)

LIVE_STATUSES = ("Started", "Placed", "PartiallyFilled")


orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("market_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("client_order_id", Text),
    Column("fingerprint", LargeBinary),
    Column("side", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("time_in_force", Text, nullable=False),
    Column("post_only", Boolean, nullable=False, server_default=text("false")),
    Column("price", MONEY),
    Column("stop_price", MONEY),
    # Buys: the worst price per unit the hold covers (the limit, or a market order's band bound).
    Column("reserve_price", MONEY),
    Column("quantity", MONEY, nullable=False),
    Column("remaining", MONEY, nullable=False),
    Column("executed_quote", MONEY, nullable=False, server_default=text("0")),
    Column("commission", MONEY, nullable=False, server_default=text("0")),
    Column("commission_asset", Text, nullable=False),
    # The fee terms fixed when the order was placed.
    Column("fee_rule_id", Text),
    Column("fee_type", Text),
    Column("maker_fee", MONEY),
    Column("taker_fee", MONEY),
    # The rule's minFeeRAT in the quote asset at placement, the least each fill pays (NULL: none).
    Column("min_fee", MONEY),
    Column("status", Text, nullable=False),
    Column("stop_status", Text),
    Column("source", Text, nullable=False, server_default="Manual"),
    Column("reject_reason", Text),
    Column("cancel_reason", Text),
    Column("locked_asset", Text),
    Column("locked_amount", MONEY, nullable=False, server_default=text("0")),
    Column("locked_remaining", MONEY, nullable=False, server_default=text("0")),
    Column("hold_tx_id", BigInteger),
    Column("engine_seq", BigInteger),
    _ts("cancellation_date", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("account_id", "client_order_id", name="uq_orders_account_id_client_order_id"),
    CheckConstraint("side IN ('Buy', 'Sell')", name="side"),
    CheckConstraint("type IN ('Market', 'Limit', 'Stop', 'StopLimit')", name="type"),
    CheckConstraint("time_in_force IN ('Gtc', 'Ioc', 'Fok', 'Gtd')", name="time_in_force"),
    CheckConstraint(
        "status IN ('Started', 'Placed', 'PartiallyFilled', 'Filled', 'Cancelled', 'Rejected', 'Expired')",
        name="status",
    ),
    CheckConstraint(
        "stop_status IS NULL OR stop_status IN ('WaitingForActivation', 'Activated', 'Cancelled')",
        name="stop_status",
    ),
    CheckConstraint("quantity > 0 AND remaining >= 0 AND remaining <= quantity", name="quantities"),
    CheckConstraint("locked_remaining >= 0 AND locked_remaining <= locked_amount", name="locked"),
    Index("ix_orders_account_id_order_id", "account_id", "order_id"),
    Index("ix_orders_account_id_created_at", "account_id", "created_at"),
    # What recovery reads: the live orders of one market.
    Index(
        "ix_orders_live_market_id",
        "market_id",
        postgresql_where=text("status IN ('Started', 'Placed', 'PartiallyFilled')"),
    ),
    # The history server's sorts (migration 0010): /api/orders by time, of a market, and /api/open-orders.
    Index("ix_orders_created_at", "created_at", "order_id"),
    Index("ix_orders_market_id_created_at", "market_id", "created_at", "order_id"),
    Index(
        "ix_orders_live_created_at",
        "created_at",
        "order_id",
        postgresql_where=text("status IN ('Started', 'Placed', 'PartiallyFilled')"),
    ),
)

order_client_ids = Table(
    "order_client_ids",
    metadata,
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("client_order_id", Text, nullable=False),
    Column("order_id", BigInteger, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("account_id", "client_order_id", name="pk_order_client_ids"),
)

trades = Table(
    "trades",
    metadata,
    Column("trade_id", BigInteger, Identity(), primary_key=True),
    Column("market_id", Text, nullable=False),
    # The engine's trade number in its market: 1, 2, 3, ...
    Column("market_seq", BigInteger, nullable=False),
    Column("price", MONEY, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("quote_amount", MONEY, nullable=False),
    Column("taker_side", Text, nullable=False),
    Column("maker_order_id", BigInteger),
    Column("taker_order_id", BigInteger),
    _ts("created_at"),
    UniqueConstraint("market_id", "market_seq", name="uq_trades_market_id_market_seq"),
    CheckConstraint("taker_side IN ('Buy', 'Sell')", name="taker_side"),
    Index("ix_trades_market_id_created_at_trade_id", "market_id", "created_at", "trade_id"),
    # Billing volume and markups over a period across markets (migration 0010).
    Index("ix_trades_created_at", "created_at"),
)

executions = Table(
    "executions",
    metadata,
    Column("execution_id", BigInteger, Identity(), primary_key=True),
    Column("order_id", BigInteger, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("market_id", Text, nullable=False),
    Column("trade_id", BigInteger, nullable=False),
    Column("side", Text, nullable=False),
    Column("price", MONEY, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("quote_amount", MONEY, nullable=False),
    Column("commission", MONEY, nullable=False),
    Column("commission_asset", Text, nullable=False),
    Column("is_maker", Boolean, nullable=False),
    Column("ledger_tx_id", BigInteger, nullable=False),
    _ts("created_at"),
    Index("ix_executions_order_id_execution_id", "order_id", "execution_id"),
    Index("ix_executions_account_id_execution_id", "account_id", "execution_id"),
    # The history server (migration 0010): /api/trades of a market, by time, of an account; the
    # commission, markup, billing and active-account aggregates over a period use the second.
    Index("ix_executions_market_id_created_at", "market_id", "created_at", "execution_id"),
    Index("ix_executions_created_at", "created_at", "execution_id"),
    Index("ix_executions_account_id_created_at", "account_id", "created_at", "execution_id"),
)

engine_checkpoints = Table(
    "engine_checkpoints",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), primary_key=True),
    Column("state_hash", Text, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("trade_seq", BigInteger, nullable=False),
    Column("last_price", MONEY),
    _ts("updated_at"),
    # Committed batches of the market (migration 0021): the pipelined runner's snapshot marker.
    Column("batches", BigInteger, nullable=False, server_default="0"),
)
