"""Transfer tables: back-office deposits and withdrawals, and their callback deliveries.

``transfers`` is unique per (account_id, deduplication_id): concurrent requests
with one deduplicationId insert one row (``ON CONFLICT DO NOTHING``), and the
ledger transaction they cause has the business key ``transfer:<id>``.
``callback_deliveries`` is the outbox of status-change POSTs, one row per
change, claimed by the delivery job with ``FOR UPDATE SKIP LOCKED``;
``callback_attempts`` records every attempt.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

MONEY = Numeric(38, 18, asdecimal=True)


transfers = Table(
    "transfers",
    metadata,
    Column("transfer_id", Text, primary_key=True),
    # Insertion order, for listing: created_at ties when many transfers share a millisecond.
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("deduplication_id", Text, nullable=False),
    Column("asset_id", Text, ForeignKey("assets.id"), nullable=False),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("hold_id", BigInteger, ForeignKey("holds.id")),
    Column("callback_url", Text),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("account_id", "deduplication_id", name="uq_transfers_account_id_deduplication_id"),
    CheckConstraint("type IN ('Deposit', 'Withdrawal')", name="type"),
    CheckConstraint("status IN ('Pending', 'Completed', 'Cancelled', 'Failed')", name="status"),
    CheckConstraint("amount > 0", name="positive"),
    Index("ix_transfers_account_id_seq", "account_id", "seq"),
    # /api/transfers by time (migration 0010).
    Index("ix_transfers_created_at", "created_at", "transfer_id"),
)

callback_deliveries = Table(
    "callback_deliveries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("transfer_id", Text, ForeignKey("transfers.transfer_id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("next_attempt_at"),
    _ts("created_at"),
    _ts("last_attempt_at", nullable=True),
    _ts("finished_at", nullable=True),
    Column("last_error", Text),
    CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
    Index("ix_callback_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    Index("ix_callback_deliveries_transfer_id_id", "transfer_id", "id"),
)

callback_attempts = Table(
    "callback_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("delivery_id", BigInteger, ForeignKey("callback_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    _ts("attempted_at"),
    Column("address", Text),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    UniqueConstraint("delivery_id", "attempt", name="uq_callback_attempts_delivery_id_attempt"),
)
