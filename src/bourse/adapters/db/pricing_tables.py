"""Pricing tables: price sources, latest prices, funding rates, halt state (service/pricing.py).

- ``market_pricing``: one row per priced (Cfd/Perpetual) market: execution mode, the source
  (one of our markets, a ccxt exchange and symbol, or the operator's bid/ask), markup and the
  staleness limit.
- ``market_prices``: per market the source's last raw bid/ask and when it was read, the mark and
  index of the last sample, the last read error, and how far funding times were dealt with.
  Rewritten every pricing tick; one row per market, so it never grows.
- ``funding_rates``: one row per (market, funding time); the primary key makes a rate stored once.
- ``mark_history`` (migration 0017): the mark and index of a market as they stood at each funding
  moment and each 00:00 UTC (the last sample at or before it), written by the pricing tick that
  passes the moment, so funding and swaps are paid at the price of their moment however late
  their job runs.
- ``pricing_halts``: what the pricing job remembers of the halts it raised (stale episodes, the
  circuit breaker's window start), so a halt is raised once and only its own halts are undone.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
)

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

MONEY = Numeric(38, 18, asdecimal=True)

market_pricing = Table(
    "market_pricing",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), primary_key=True),
    Column("execution_mode", Text, nullable=False),
    Column("source_kind", Text),
    Column("source_market_id", Text, ForeignKey("markets.market_id")),
    Column("exchange", Text),
    Column("symbol", Text),
    Column("manual_bid", MONEY),
    Column("manual_ask", MONEY),
    Column("markup_rate", MONEY, nullable=False),
    Column("stale_after_seconds", Integer, nullable=False),
    _ts("updated_at"),
    CheckConstraint("execution_mode IN ('OrderBook', 'Dealer')", name="execution_mode"),
    CheckConstraint(
        "(source_kind IS NULL AND source_market_id IS NULL AND exchange IS NULL AND symbol IS NULL"
        " AND manual_bid IS NULL AND manual_ask IS NULL)"
        " OR (source_kind = 'Market' AND source_market_id IS NOT NULL AND exchange IS NULL"
        " AND symbol IS NULL AND manual_bid IS NULL AND manual_ask IS NULL)"
        " OR (source_kind = 'Ccxt' AND source_market_id IS NULL AND exchange IS NOT NULL"
        " AND symbol IS NOT NULL AND manual_bid IS NULL AND manual_ask IS NULL)"
        " OR (source_kind = 'Manual' AND source_market_id IS NULL AND exchange IS NULL AND symbol IS NULL"
        " AND manual_bid > 0 AND manual_ask >= manual_bid)",
        name="source",
    ),
    CheckConstraint("execution_mode <> 'Dealer' OR source_kind IS NOT NULL", name="dealer_source"),
    CheckConstraint("markup_rate >= 0 AND markup_rate < 0.5", name="markup_rate"),
    CheckConstraint("stale_after_seconds BETWEEN 1 AND 86400", name="stale_after_seconds"),
)

market_prices = Table(
    "market_prices",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), primary_key=True),
    Column("raw_bid", MONEY),
    Column("raw_ask", MONEY),
    _ts("quoted_at", nullable=True),
    Column("mark", MONEY),
    Column("index_price", MONEY),
    _ts("marked_at", nullable=True),
    _ts("first_marked_at", nullable=True),
    Column("error", Text),
    _ts("error_at", nullable=True),
    _ts("funding_through", nullable=True),
)

funding_rates = Table(
    "funding_rates",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    _ts("applied_at"),
    Column("interval_hours", Integer, nullable=False),
    Column("rate", MONEY, nullable=False),
    Column("mark", MONEY, nullable=False),
    Column("index_price", MONEY, nullable=False),
    # The key also serves the endpoint's newest-first pages (a backward scan).
    PrimaryKeyConstraint("market_id", "applied_at", name="pk_funding_rates"),
    CheckConstraint("interval_hours >= 1", name="interval_hours"),
    CheckConstraint("mark > 0 AND index_price > 0", name="prices"),
)

pricing_halts = Table(
    "pricing_halts",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), primary_key=True),
    _ts("stale_since", nullable=True),
    _ts("stale_halted_at", nullable=True),
    Column("breaker_from_trade_id", BigInteger),
    _ts("breaker_tripped_at", nullable=True),
)

mark_history = Table(
    "mark_history",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    _ts("at"),
    Column("mark", MONEY, nullable=False),
    Column("index_price", MONEY),
    PrimaryKeyConstraint("market_id", "at", name="pk_mark_history"),
    CheckConstraint("mark > 0", name="mark"),
)
