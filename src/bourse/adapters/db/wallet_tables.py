"""Ext-orders wallet tables: one row per applied create, cancel or settlement.

The unique (caller_id, ext_request_id) is the idempotency guard: the row is
inserted before the ledger transaction, in the same database transaction, so a
concurrent duplicate waits on that key and then finds the committed row.
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
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from bourse.adapters.db.tables import metadata

ext_requests = Table(
    "ext_requests",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("caller_id", BigInteger, ForeignKey("service_tokens.id"), nullable=False),
    Column("ext_request_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("currency", Text, ForeignKey("assets.id"), nullable=False),
    Column("request", JSONB, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("response", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("caller_id", "ext_request_id", name="uq_ext_requests_caller_id_ext_request_id"),
    CheckConstraint("type IN ('create', 'cancel', 'settlement')", name="type"),
    CheckConstraint("octet_length(fingerprint) = 32", name="fingerprint_sha256"),
    Index("ix_ext_requests_uid_created_at", "uid", "created_at"),
)
