"""OTC fee sharing tables (migration 0012): merchants, their users, the daily records, the runs.

- ``merchants``: one row per company (``company_id`` is the spec's numeric ``companyId``)
  with its share terms; app keys stay in ``app_keys`` (``company_id`` as text).
- ``merchant_users``: a user belongs to at most one merchant (``uid`` is the key).
- ``feeshare_records``: one row per (merchant, coin, UTC day); its ``status`` only moves
  forward (0 -> 1 -> 3), each step a conditional UPDATE, and a settled record names the
  ledger transaction that paid it (whose business key ``feeshare:otc:<id>`` is unique).
  Numbers have the 16 decimals the spec shows.
- ``feeshare_runs``: the days the daily job has completed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

AMOUNT = Numeric(48, 16, asdecimal=True)
RATE = Numeric(18, 16, asdecimal=True)


merchants = Table(
    "merchants",
    metadata,
    Column("company_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("income_divide_rate", RATE, nullable=False),
    Column("volume_divide_rate", RATE, nullable=False),
    Column("max_divide_rate", RATE, nullable=False),
    Column("rate_symbol", Text, ForeignKey("assets.id"), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("company_id > 0", name="company_id"),
    CheckConstraint(
        "income_divide_rate BETWEEN 0 AND 1 AND volume_divide_rate BETWEEN 0 AND 1"
        " AND max_divide_rate BETWEEN 0 AND 1",
        name="rates",
    ),
)

merchant_users = Table(
    "merchant_users",
    metadata,
    Column("uid", BigInteger, ForeignKey("users.uid"), primary_key=True, autoincrement=False),
    Column("company_id", BigInteger, ForeignKey("merchants.company_id"), nullable=False, index=True),
    _ts("assigned_at"),
)

feeshare_records = Table(
    "feeshare_records",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("company_id", BigInteger, ForeignKey("merchants.company_id"), nullable=False),
    Column("coin", Text, ForeignKey("assets.id"), nullable=False),
    Column("item_date", Date, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("value_all", AMOUNT, nullable=False),
    Column("value_sub", AMOUNT, nullable=False),
    Column("fee_value", AMOUNT, nullable=False),
    Column("income_divide_rate", RATE, nullable=False),
    Column("volume_divide_rate", RATE, nullable=False),
    Column("max_divide_rate", RATE, nullable=False),
    Column("rate_symbol", Text, nullable=False),
    Column("share", AMOUNT, nullable=False, server_default=text("0")),
    Column("change_rate", AMOUNT, nullable=False, server_default=text("0")),
    Column("convert_value", AMOUNT, nullable=False, server_default=text("0")),
    Column("fingerprint", Text, nullable=False, server_default=""),
    Column("remark", Text, nullable=False, server_default=""),
    Column("settle_tx_id", BigInteger, ForeignKey("ledger_transactions.id")),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("count_time"),
    _ts("rate_time"),
    UniqueConstraint("company_id", "coin", "item_date", name="uq_feeshare_records_company_id_coin_item_date"),
    CheckConstraint("status IN (0, 1, 3)", name="status"),
    CheckConstraint("status = 3 OR settle_tx_id IS NULL", name="settled_tx"),
    Index("ix_feeshare_records_company_id_item_date", "company_id", "item_date", "id"),
    Index("ix_feeshare_records_item_date_status", "item_date", "status"),
)

feeshare_runs = Table(
    "feeshare_runs",
    metadata,
    Column("item_date", Date, primary_key=True),
    Column("records", Integer, nullable=False),
    Column("settled", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    _ts("completed_at"),
)
