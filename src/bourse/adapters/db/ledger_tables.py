"""Ledger tables: assets, ledger accounts, transactions, postings, holds.

The database itself guards the money invariants, not only the Python code:
- ``ledger_accounts`` refuses a negative balance for any non-system owner (CHECK);
- ``ledger_postings`` refuses, per statement, a (tx, asset) whose amounts do not sum
  to zero (AFTER INSERT statement trigger over the transition table), so all postings
  of one transaction are inserted by one statement;
- ``ledger_postings`` and ``ledger_transactions`` are append-only (UPDATE, DELETE and
  TRUNCATE raise);
- a posting names an existing ledger transaction and an existing ledger account of the
  posting's asset: checked by the same statement trigger, set-based over the statement's
  postings (ADR 0011; foreign keys checked it per row, a fifth of PostgreSQL's CPU on the
  order path), and kept true because transactions are append-only and ledger accounts
  refuse DELETE, TRUNCATE and a change of id or asset.
The triggers are created by migrations 0002 and 0022 (raw DDL there).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from bourse.adapters.db.tables import metadata

MONEY = Numeric(38, 18, asdecimal=True)


def _ts(name: str) -> Column:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


assets = Table(
    "assets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("scale", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("source", Text, nullable=False, server_default="Internal"),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("scale BETWEEN 0 AND 18", name="scale_range"),
)

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("asset", Text, ForeignKey("assets.id"), nullable=False),
    Column("bucket", Text, nullable=False),
    Column("balance", MONEY, nullable=False, server_default=text("0")),
    UniqueConstraint("owner", "asset", "bucket", name="uq_ledger_accounts_owner_asset_bucket"),
    # Target of the postings' composite key: a posting cannot name another asset than its account.
    UniqueConstraint("id", "asset", name="uq_ledger_accounts_id_asset"),
    CheckConstraint("owner LIKE 'sys:%' OR balance >= 0", name="non_negative"),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("business_key", Text, unique=True),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # References checked by the ledger_postings_balanced trigger (see the module docstring).
    Column("tx_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("asset", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    CheckConstraint("amount <> 0", name="non_zero"),
    Index("ix_ledger_postings_tx_id", "tx_id"),
    Index("ix_ledger_postings_account_id", "account_id"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("asset", Text, ForeignKey("assets.id"), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("reference", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("place_tx_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("settle_tx_id", BigInteger, ForeignKey("ledger_transactions.id")),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("amount > 0", name="positive"),
    CheckConstraint("status IN ('pending', 'posted', 'voided')", name="status"),
    CheckConstraint("(status = 'pending') = (settle_tx_id IS NULL)", name="settled_once"),
    Index("ix_holds_owner_status", "owner", "status"),
    Index("ix_holds_reference", "reference"),
)
