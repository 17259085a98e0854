"""Back-office tables (migration 0011): the market category tree, market file imports/exports,
account groups.

``market_categories`` is one row per category (``parent_id`` NULL for a root,
``position`` among its siblings); ``market_category_markets`` the markets of each,
in order. Both are replaced whole by ``PUT /markets-categories``. Every reference
is a foreign key, so no category can name a market that does not exist.

``market_files`` holds each upload (``content``, the file as sent) or export
(``content``, the file produced) and the background job's state: the lease of the
worker processing it (``lease_token``, ``lease_until``), how many times it was
claimed, and an import's progress (``next_row``, tallies, ``row_errors``).

``account_groups`` carry the margin levels (ratios, 1 = 100%);
``accounts.account_group_id`` (tables.py) names each account's group, ``default``
unless chosen.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from bourse.adapters.db.tables import metadata
from bourse.adapters.db.tables import timestamp_column as _ts

LEVEL = Numeric(38, 18, asdecimal=True)


market_categories = Table(
    "market_categories",
    metadata,
    Column("id", Text, primary_key=True),
    Column("parent_id", Text, ForeignKey("market_categories.id", ondelete="CASCADE"), index=True),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    _ts("updated_at"),
)

market_category_markets = Table(
    "market_category_markets",
    metadata,
    Column("category_id", Text, ForeignKey("market_categories.id", ondelete="CASCADE"), nullable=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("category_id", "market_id"),
)

market_files = Table(
    "market_files",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("content", LargeBinary),
    Column("requested_by_uid", BigInteger, ForeignKey("users.uid"), nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("request_id", Text),
    _ts("created_at"),
    _ts("updated_at"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("lease_token", Text),
    _ts("lease_until", nullable=True),
    Column("next_row", Integer, nullable=False, server_default=text("0")),
    Column("created", Integer, nullable=False, server_default=text("0")),
    Column("updated", Integer, nullable=False, server_default=text("0")),
    Column("unchanged", Integer, nullable=False, server_default=text("0")),
    Column("row_errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("error", Text),
    CheckConstraint("kind IN ('Import', 'Export')", name="kind"),
    CheckConstraint("format IN ('Csv', 'Xlsx')", name="format"),
    CheckConstraint("status IN ('InProcess', 'Completed', 'Failed')", name="status"),
    Index(
        "ix_market_files_pending",
        "created_at",
        postgresql_where=text("status = 'InProcess'"),
    ),
)

account_groups = Table(
    "account_groups",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("margin_call_level", LEVEL, nullable=False),
    Column("stop_out_level", LEVEL, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("stop_out_level > 0 AND stop_out_level < margin_call_level", name="levels"),
)
