"""Market data tables: candles kept incrementally, and the last trade folded into them per market.

``candles`` is keyed by (market, interval, start), which is also the order every
history query reads. ``marketdata_progress`` is written in the same transaction
as the candles it covers, so after a crash the trades after it are folded again
and the ones before it never twice.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
)

from bourse.adapters.db.tables import metadata

candles = Table(
    "candles",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("interval", Text, nullable=False),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("open", Numeric, nullable=False),
    Column("high", Numeric, nullable=False),
    Column("low", Numeric, nullable=False),
    Column("close", Numeric, nullable=False),
    Column("base_volume", Numeric, nullable=False),
    Column("quote_volume", Numeric, nullable=False),
    Column("trades", BigInteger, nullable=False),
    Column("last_trade_id", BigInteger, nullable=False),
    PrimaryKeyConstraint("market_id", "interval", "start", name="pk_candles"),
    CheckConstraint("interval IN ('1m', '5m', '15m', '1h', '4h', '1d', '1w', '1M')", name="interval"),
    CheckConstraint("low <= open AND low <= close AND open <= high AND close <= high", name="ohlc"),
)

marketdata_progress = Table(
    "marketdata_progress",
    metadata,
    Column("market_id", Text, ForeignKey("markets.market_id"), primary_key=True),
    Column("last_trade_id", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
