"""Derivatives tables (migration 0014): positions and their triggers, derivative orders, their
fills, margin settings, margin-call state, deficits, funding and swap payments.

- ``positions``: one row per position (Hedging: one per opening order; Netting: one open per
  account and market). ``lots`` is what is still open; a closed position keeps its row with
  ``lots`` 0 and ``closed_at`` set. ``margin`` is what sits in the account's ``margin`` bucket
  for it (the ledger holds the money, the row says whose it is).
- ``position_take_profits`` / ``position_stop_losses``: the triggers that live with a position
  (a take-profit ladder of levels, one stop loss with its trailing state), so a position stays
  protected while no client is connected.
- ``derivative_orders``: every order on a Cfd/Perpetual market. Ids come from the ``order_ids``
  sequence shared with spot orders, so one order id names one order across both tables.
- ``position_executions``: one row per (order, position) effect of a fill: a netting flip is two
  rows (the close of the old position, the open of the new). Ids come from the spot executions'
  identity sequence, so the merged v4 execution lists page by one id across both tables.
- ``margin_ratios``: the platform's collateral haircut per asset; ``account_margin_assets``:
  which assets an account counts as collateral (explicit choices only: with no row the root
  asset is selected and every other asset is not).
- ``margin_call_states``: whether the next margin-call notification is armed, per account
  (``scope`` ``cross``) and per isolated position (``scope`` ``position:<id>``).
- ``deficits``: losses an account could not pay, absorbed by the house.
- ``funding_payments`` / ``swap_payments``: one row per position and interval (day), unique by
  their business key so a re-run pays nothing twice.
- ``derivative_job_cursors`` (migration 0017): per market, the last funding moment (job
  ``Funding``) or swap day's 00:00 (job ``Swap``) whose payments were all made; the jobs resume
  after it, so each moment is paid once and missed ones are caught up.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    Sequence,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

MONEY = Numeric(38, 18, asdecimal=True)

# Position ids: a sequence of their own (a position is not an order).
position_ids = Sequence("position_ids", metadata=metadata)

LIVE_STATUSES = ("Started", "Placed", "PartiallyFilled")
_SIDES = "('Buy', 'Sell')"
_POSITION_SIDES = "('Long', 'Short')"
_MARGIN_TYPES = "('Cross', 'Isolated')"
_REASONS = "('Trader', 'TakeProfit', 'StopLoss', 'TrailingStop', 'StopOut')"
_SOURCES = "('Manual', 'TakeProfit', 'StopLoss', 'TrailingStop', 'StopOut')"


positions = Table(
    "positions",
    metadata,
    Column("position_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("side", Text, nullable=False),
    Column("lots", MONEY, nullable=False),
    Column("entry_price", MONEY, nullable=False),
    Column("leverage", Integer, nullable=False),
    Column("margin_type", Text, nullable=False),
    Column("margin", MONEY, nullable=False),
    Column("realized_pnl", MONEY, nullable=False, server_default=text("0")),
    # The order that opened it (a netting flip's order opens the remainder).
    Column("open_order_id", BigInteger, nullable=False),
    _ts("opened_at"),
    _ts("updated_at"),
    _ts("closed_at", nullable=True),
    CheckConstraint(f"side IN {_POSITION_SIDES}", name="side"),
    CheckConstraint(f"margin_type IN {_MARGIN_TYPES}", name="margin_type"),
    CheckConstraint("lots >= 0 AND margin >= 0 AND entry_price > 0", name="amounts"),
    CheckConstraint("leverage >= 1", name="leverage"),
    Index("ix_positions_account_id_position_id", "account_id", "position_id"),
    # What an order locks and reads: the account's open positions in one market.
    Index(
        "ix_positions_open_account_id_market_id",
        "account_id",
        "market_id",
        postgresql_where=text("closed_at IS NULL"),
    ),
    # What the jobs walk: the open positions of a market (triggers, funding, swaps).
    Index("ix_positions_open_market_id", "market_id", postgresql_where=text("closed_at IS NULL")),
    # Funding and swaps of a past moment: the positions of a market not closed before it (0017).
    Index("ix_positions_market_id_closed_at", "market_id", "closed_at"),
)

position_take_profits = Table(
    "position_take_profits",
    metadata,
    Column(
        "position_id", BigInteger, ForeignKey("positions.position_id", ondelete="CASCADE"), nullable=False
    ),
    Column("level", SmallInteger, nullable=False),
    Column("price", MONEY, nullable=False),
    Column("lots", MONEY, nullable=False),
    Column("done", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("position_id", "level"),
    CheckConstraint("price > 0 AND lots > 0", name="amounts"),
)

position_stop_losses = Table(
    "position_stop_losses",
    metadata,
    Column(
        "position_id", BigInteger, ForeignKey("positions.position_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("price", MONEY, nullable=False),
    Column("limit_price", MONEY),
    # A trailing stop: the callback rate (0.001..0.05) and the best mark since activation.
    Column("trailing_rate", MONEY),
    Column("best_mark", MONEY),
    CheckConstraint("price > 0", name="price"),
    CheckConstraint(
        "trailing_rate IS NULL OR (trailing_rate > 0 AND trailing_rate < 1)", name="trailing_rate"
    ),
)

derivative_orders = Table(
    "derivative_orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("client_order_id", Text),
    Column("fingerprint", LargeBinary),
    Column("side", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("time_in_force", Text, nullable=False),
    Column("lots", MONEY, nullable=False),
    Column("remaining_lots", MONEY, nullable=False),
    Column("price", MONEY),
    Column("activation_price", MONEY),
    Column("leverage", Integer, nullable=False),
    Column("margin_type", Text, nullable=False),
    # Hedging close (by /positions/{id}/close, a trigger, stop-out): the position it closes;
    # otherwise the position the order opened or changed, once it filled.
    Column("position_id", BigInteger),
    # Closes only (never opens or flips): trigger closes, /close, stop-out.
    Column("reduce_only", Boolean, nullable=False, server_default=text("false")),
    Column("status", Text, nullable=False),
    Column("stop_status", Text),
    Column("source", Text, nullable=False, server_default="Manual"),
    Column("reason", Text, nullable=False, server_default="Trader"),
    # The triggers asked for with the order, set on the position it opens.
    Column("tp_price", MONEY),
    Column("sl_price", MONEY),
    Column("sl_limit_price", MONEY),
    Column("sl_trailing", Boolean, nullable=False, server_default=text("false")),
    Column("sl_trailing_rate", MONEY),
    Column("executed_base", MONEY, nullable=False, server_default=text("0")),
    Column("executed_quote", MONEY, nullable=False, server_default=text("0")),
    Column("commission", MONEY, nullable=False, server_default=text("0")),
    Column("commission_asset", Text, nullable=False),
    Column("realized_pnl", MONEY, nullable=False, server_default=text("0")),
    Column("reject_reason", Text),
    _ts("cancellation_date", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    # OrderBook markets (migration 0018): the order is matched by the market's engine runner.
    # ``engine_seq``: its place in the book (resting orders); the hold (available -> locked, the
    # settlement asset) covers the margin of what it may open plus its largest fee; the fee terms
    # are fixed when it is placed.
    Column("in_book", Boolean, nullable=False, server_default=text("false")),
    Column("engine_seq", BigInteger),
    Column("post_only", Boolean, nullable=False, server_default=text("false")),
    Column("reserve_price", MONEY),
    Column("locked_amount", MONEY, nullable=False, server_default=text("0")),
    Column("locked_remaining", MONEY, nullable=False, server_default=text("0")),
    Column("hold_tx_id", BigInteger),
    Column("fee_type", Text),
    Column("fee_size", MONEY),
    # The rule's minFeeRAT in the settlement asset at placement, the least each fill pays (NULL: none).
    Column("min_fee", MONEY),
    Column("cancel_reason", Text),
    UniqueConstraint("account_id", "client_order_id", name="uq_derivative_orders_account_id_client_order_id"),
    CheckConstraint(
        "locked_amount >= 0 AND locked_remaining >= 0 AND locked_remaining <= locked_amount", name="hold"
    ),
    CheckConstraint(f"side IN {_SIDES}", name="side"),
    CheckConstraint("type IN ('Market', 'Limit', 'Stop', 'StopLimit')", name="type"),
    CheckConstraint("time_in_force IN ('Gtc', 'Ioc', 'Fok', 'Gtd')", name="time_in_force"),
    CheckConstraint(f"margin_type IN {_MARGIN_TYPES}", name="margin_type"),
    CheckConstraint(
        "status IN ('Started', 'Placed', 'PartiallyFilled', 'Filled', 'Cancelled', 'Rejected', 'Expired')",
        name="status",
    ),
    CheckConstraint(
        "stop_status IS NULL OR stop_status IN ('WaitingForActivation', 'Activated', 'Cancelled')",
        name="stop_status",
    ),
    CheckConstraint(f"source IN {_SOURCES}", name="source"),
    CheckConstraint(f"reason IN {_REASONS}", name="reason"),
    CheckConstraint("lots > 0 AND remaining_lots >= 0 AND remaining_lots <= lots", name="lots"),
    CheckConstraint("leverage >= 1", name="leverage"),
    Index("ix_derivative_orders_account_id_order_id", "account_id", "order_id"),
    Index("ix_derivative_orders_account_id_created_at", "account_id", "created_at"),
    # What the dealer job walks: resting limit orders and waiting stops of a market.
    # What an OrderBook market's runner rebuilds its book from.
    Index(
        "ix_derivative_orders_book_market_id",
        "market_id",
        "order_id",
        postgresql_where=text("in_book AND status IN ('Started', 'Placed', 'PartiallyFilled')"),
    ),
    Index(
        "ix_derivative_orders_live_market_id",
        "market_id",
        postgresql_where=text("status IN ('Started', 'Placed', 'PartiallyFilled')"),
    ),
)

position_executions = Table(
    "position_executions",
    metadata,
    # From the spot executions' sequence: one id space for the merged v4 execution lists.
    Column(
        "execution_id",
        BigInteger,
        primary_key=True,
        autoincrement=False,
        server_default=text("nextval('executions_execution_id_seq'::regclass)"),
    ),
    Column("order_id", BigInteger, ForeignKey("derivative_orders.order_id"), nullable=False),
    Column("position_id", BigInteger, ForeignKey("positions.position_id"), nullable=False),
    Column("account_id", Text, nullable=False),
    Column("market_id", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("lots", MONEY, nullable=False),
    Column("base_amount", MONEY, nullable=False),
    Column("price", MONEY, nullable=False),
    # The source's bid/ask before the markup; ``markup`` = |price - raw_price| * base_amount.
    Column("raw_price", MONEY, nullable=False),
    Column("markup", MONEY, nullable=False, server_default=text("0")),
    Column("fee", MONEY, nullable=False),
    Column("fee_asset", Text, nullable=False),
    Column("realized_pnl", MONEY, nullable=False, server_default=text("0")),
    # Lots of the position this execution closed (0: it opened or increased the position) and the
    # position's entry price they were closed against.
    Column("closed_lots", MONEY, nullable=False, server_default=text("0")),
    Column("entry_price", MONEY, nullable=False),
    # The settlement asset's price in the root asset when it happened (None: no price known).
    Column("rate_to_rat", MONEY),
    Column("ledger_tx_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=False),
    _ts("created_at"),
    CheckConstraint(f"side IN {_SIDES}", name="side"),
    CheckConstraint("lots > 0 AND base_amount > 0 AND price > 0 AND fee >= 0", name="amounts"),
    CheckConstraint("closed_lots >= 0 AND closed_lots <= lots", name="closed_lots"),
    Index("ix_position_executions_account_id_execution_id", "account_id", "execution_id"),
    Index("ix_position_executions_order_id_execution_id", "order_id", "execution_id"),
    Index("ix_position_executions_position_id_execution_id", "position_id", "execution_id"),
    # Closed positions (closes only), paged by order id.
    Index(
        "ix_position_executions_closes_account_id_order_id",
        "account_id",
        "order_id",
        postgresql_where=text("closed_lots > 0"),
    ),
    # Markup revenue per period.
    Index("ix_position_executions_created_at", "created_at"),
)

margin_ratios = Table(
    "margin_ratios",
    metadata,
    Column("asset_id", Text, ForeignKey("assets.id"), primary_key=True),
    Column("ratio", MONEY, nullable=False),
    _ts("updated_at"),
    CheckConstraint("ratio > 0 AND ratio <= 1", name="ratio"),
)

account_margin_assets = Table(
    "account_margin_assets",
    metadata,
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("asset_id", Text, ForeignKey("assets.id"), nullable=False),
    Column("is_selected", Boolean, nullable=False),
    _ts("updated_at"),
    PrimaryKeyConstraint("account_id", "asset_id"),
)

margin_call_states = Table(
    "margin_call_states",
    metadata,
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("armed", Boolean, nullable=False),
    _ts("updated_at"),
    PrimaryKeyConstraint("account_id", "scope"),
)

deficits = Table(
    "deficits",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("business_key", Text, nullable=False, unique=True),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("market_id", Text, nullable=False),
    Column("position_id", BigInteger),
    Column("order_id", BigInteger),
    Column("asset", Text, ForeignKey("assets.id"), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("kind", Text, nullable=False),
    _ts("created_at"),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("kind IN ('Close', 'Funding', 'Swap')", name="kind"),
    Index("ix_deficits_account_id_id", "account_id", "id"),
    Index("ix_deficits_created_at", "created_at"),
)

# Another selected margin asset taken (available -> sys:house) to pay a Cross loss the settlement
# asset could not cover; ``value`` = amount * rate in the settlement asset (migration 0019).
collateral_seizures = Table(
    "collateral_seizures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("business_key", Text, nullable=False, unique=True),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("market_id", Text, nullable=False),
    Column("position_id", BigInteger),
    Column("order_id", BigInteger),
    Column("kind", Text, nullable=False),
    Column("settlement_asset", Text, ForeignKey("assets.id"), nullable=False),
    Column("asset", Text, ForeignKey("assets.id"), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("rate", MONEY, nullable=False),
    Column("value", MONEY, nullable=False),
    Column("ledger_tx_id", BigInteger, nullable=False),
    _ts("created_at"),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("rate > 0", name="rate"),
    CheckConstraint("kind IN ('Close', 'Funding', 'Swap')", name="kind"),
    Index("ix_collateral_seizures_account_id_id", "account_id", "id"),
)

funding_payments = Table(
    "funding_payments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("market_id", Text, nullable=False),
    _ts("applied_at"),
    Column("position_id", BigInteger, ForeignKey("positions.position_id"), nullable=False),
    Column("account_id", Text, nullable=False),
    Column("rate", MONEY, nullable=False),
    Column("mark", MONEY, nullable=False),
    Column("asset", Text, nullable=False),
    # Signed: > 0 the trader received it, < 0 the trader paid it.
    Column("amount", MONEY, nullable=False),
    Column("deficit", MONEY, nullable=False, server_default=text("0")),
    Column("ledger_tx_id", BigInteger, ForeignKey("ledger_transactions.id")),
    _ts("created_at"),
    UniqueConstraint("market_id", "applied_at", "position_id", name="uq_funding_payments_business_key"),
    Index("ix_funding_payments_account_id_applied_at", "account_id", "applied_at"),
    Index("ix_funding_payments_position_id", "position_id"),
)

swap_payments = Table(
    "swap_payments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("market_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("position_id", BigInteger, ForeignKey("positions.position_id"), nullable=False),
    Column("account_id", Text, nullable=False),
    Column("asset", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("deficit", MONEY, nullable=False, server_default=text("0")),
    Column("ledger_tx_id", BigInteger, ForeignKey("ledger_transactions.id")),
    _ts("created_at"),
    UniqueConstraint("position_id", "day", name="uq_swap_payments_position_id_day"),
    Index("ix_swap_payments_account_id_day", "account_id", "day"),
    Index("ix_swap_payments_market_id_day", "market_id", "day"),
)

derivative_job_cursors = Table(
    "derivative_job_cursors",
    metadata,
    Column("job", Text, nullable=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    _ts("through"),
    _ts("updated_at"),
    PrimaryKeyConstraint("job", "market_id"),
    CheckConstraint("job IN ('Funding', 'Swap')", name="job"),
)
