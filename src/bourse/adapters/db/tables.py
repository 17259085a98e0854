"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/versions`` create them;
repositories query through them. Money columns are NUMERIC, never float."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def timestamp_column(name: str, nullable: bool = False) -> Column[Any]:
    """A timestamptz column without a default: the use case sets the time (from its clock)."""
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


user_groups = Table(
    "user_groups",
    metadata,
    Column("name", Text, primary_key=True),
    Column("description", Text, nullable=False, server_default=""),
    _created_at(),
)

users = Table(
    "users",
    metadata,
    Column("uid", BigInteger, Identity(start=100001), primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("email", Text, unique=True),
    Column("phone", Text, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("group_name", Text, ForeignKey("user_groups.name"), nullable=False, server_default="default"),
    Column("totp_secret_enc", Text),
    Column("totp_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("totp_last_step", BigInteger, nullable=False, server_default=text("0")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    _created_at(),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("uid", BigInteger, ForeignKey("users.uid", ondelete="CASCADE"), nullable=False),
    Column("role", Text, nullable=False),
    _created_at(),
    PrimaryKeyConstraint("uid", "role"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("uid", BigInteger, ForeignKey("users.uid"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("account_type", Text, nullable=False, server_default="Hedging"),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    _created_at(),
    # Added by migration 0005 (market_tables.commission_profiles); every account pays by a profile.
    Column(
        "commission_profile_id",
        Text,
        ForeignKey("commission_profiles.id"),
        nullable=False,
        server_default="default",
    ),
    # Added by migration 0011 (backoffice_tables.account_groups); every account is in one group.
    Column(
        "account_group_id",
        Text,
        ForeignKey("account_groups.id"),
        nullable=False,
        index=True,
        server_default="default",
    ),
    Index("uq_accounts_one_default_per_user", "uid", unique=True, postgresql_where=text("is_default")),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", Text, primary_key=True),
    Column("uid", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("username", Text, nullable=False),
    Column("ip", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_login_failures_username_at", "username", "at"),
    Index("ix_login_failures_ip_at", "ip", "at"),
)

# One row: the counter that triggers move on every change to who a token stands for (users'
# username and is_active, roles, revoked tokens, service tokens' revocation); migration 0024.
security_epoch = Table(
    "security_epoch",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

service_tokens = Table(
    "service_tokens",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", Text, nullable=False),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("scopes", ARRAY(Text), nullable=False),
    _created_at(),
    Column("revoked_at", DateTime(timezone=True)),
    Index("uq_service_tokens_active_name", "name", unique=True, postgresql_where=text("revoked_at IS NULL")),
)

app_keys = Table(
    "app_keys",
    metadata,
    Column("app_key", Text, primary_key=True),
    Column("company_id", Text, nullable=False, index=True),
    Column("secret_enc", Text, nullable=False),
    _created_at(),
    Column("revoked_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("request_id", Text),
    Column("ip", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_audit_log_subject_at", "subject", "at"),
    Index("ix_audit_log_action_at", "action", "at"),
)


# Other storage concerns add their tables to the same metadata; Alembic must see them all.
from bourse.adapters.db import (  # noqa: E402
    backoffice_tables,
    derivatives_tables,
    feeshare_tables,
    ledger_tables,
    market_tables,
    marketdata_tables,
    pricing_tables,
    report_tables,
    trading_tables,
    transfer_tables,
    venue_tables,
    wallet_tables,
    workspace_tables,
)

__all__ = [
    "backoffice_tables",
    "derivatives_tables",
    "feeshare_tables",
    "ledger_tables",
    "market_tables",
    "marketdata_tables",
    "metadata",
    "pricing_tables",
    "report_tables",
    "trading_tables",
    "transfer_tables",
    "venue_tables",
    "wallet_tables",
    "workspace_tables",
]
