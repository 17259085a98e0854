"""ledger: assets, ledger accounts, transactions, postings, holds

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(38, 18)


def _ts(name: str, default: str = "now()") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text(default), nullable=False)


# The database refuses what the ledger must never contain, whoever writes to it.
TRIGGERS = (
    # A statement inserting postings must leave every (tx, asset) it touched summing to zero,
    # so the postings of one transaction go in with one statement.
    """
    CREATE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad record;
    BEGIN
        SELECT tx_id, asset, sum(amount) AS total INTO bad
          FROM new_postings GROUP BY tx_id, asset HAVING sum(amount) <> 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger transaction % does not balance in %: sum %',
                bad.tx_id, bad.asset, bad.total
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_postings_balanced';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
        REFERENCING NEW TABLE AS new_postings
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_balanced()
    """,
    # Creates the missing accounts, then locks every named account in id order: every writer
    # locks in the same order, so writers never deadlock. The caller passes the keys sorted, so
    # concurrent creators of one new account also queue in one order.
    """
    CREATE FUNCTION ledger_lock_accounts(p_owner text[], p_asset text[], p_bucket text[])
    RETURNS TABLE (id bigint, owner text, asset text, bucket text, balance numeric)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    BEGIN
        INSERT INTO ledger_accounts (owner, asset, bucket)
        SELECT k.owner, k.asset, k.bucket
          FROM unnest(p_owner, p_asset, p_bucket) WITH ORDINALITY AS k(owner, asset, bucket, ord)
         ORDER BY k.ord
        ON CONFLICT (owner, asset, bucket) DO NOTHING;
        RETURN QUERY
        SELECT la.id, la.owner, la.asset, la.bucket, la.balance
          FROM ledger_accounts la
          JOIN unnest(p_owner, p_asset, p_bucket) AS k(owner, asset, bucket)
            ON la.owner = k.owner AND la.asset = k.asset AND la.bucket = k.bucket
         ORDER BY la.id
           FOR UPDATE OF la;
    END $$
    """,
    """
    CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'ledger_append_only';
    END $$
    """,
    """
    CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_postings
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()
    """,
    """
    CREATE TRIGGER ledger_transactions_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_transactions
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()
    """,
)


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), server_default="Internal", nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("scale BETWEEN 0 AND 18", name=op.f("ck_assets_scale_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("balance", MONEY, server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "owner LIKE 'sys:%' OR balance >= 0", name=op.f("ck_ledger_accounts_non_negative")
        ),
        sa.ForeignKeyConstraint(["asset"], ["assets.id"], name=op.f("fk_ledger_accounts_asset_assets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("owner", "asset", "bucket", name="uq_ledger_accounts_owner_asset_bucket"),
        sa.UniqueConstraint("id", "asset", name="uq_ledger_accounts_id_asset"),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("business_key", sa.Text(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        _ts("created_at", "clock_timestamp()"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("business_key", name=op.f("uq_ledger_transactions_business_key")),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tx_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_postings_non_zero")),
        sa.ForeignKeyConstraint(
            ["account_id", "asset"],
            ["ledger_accounts.id", "ledger_accounts.asset"],
            name="fk_ledger_postings_account_asset",
        ),
        sa.ForeignKeyConstraint(
            ["tx_id"], ["ledger_transactions.id"], name=op.f("fk_ledger_postings_tx_id_ledger_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    op.create_index("ix_ledger_postings_tx_id", "ledger_postings", ["tx_id"])
    op.create_index("ix_ledger_postings_account_id", "ledger_postings", ["account_id"])
    op.create_table(
        "holds",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("place_tx_id", sa.BigInteger(), nullable=False),
        sa.Column("settle_tx_id", sa.BigInteger(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("amount > 0", name=op.f("ck_holds_positive")),
        sa.CheckConstraint("status IN ('pending', 'posted', 'voided')", name=op.f("ck_holds_status")),
        sa.CheckConstraint(
            "(status = 'pending') = (settle_tx_id IS NULL)", name=op.f("ck_holds_settled_once")
        ),
        sa.ForeignKeyConstraint(["asset"], ["assets.id"], name=op.f("fk_holds_asset_assets")),
        sa.ForeignKeyConstraint(
            ["place_tx_id"], ["ledger_transactions.id"], name=op.f("fk_holds_place_tx_id_ledger_transactions")
        ),
        sa.ForeignKeyConstraint(
            ["settle_tx_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_holds_settle_tx_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index("ix_holds_owner_status", "holds", ["owner", "status"])
    op.create_index("ix_holds_reference", "holds", ["reference"])
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_transactions")
    op.drop_table("ledger_accounts")
    op.drop_table("assets")
    op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
    op.execute("DROP FUNCTION IF EXISTS ledger_lock_accounts(text[], text[], text[])")
    op.execute("DROP FUNCTION IF EXISTS ledger_postings_balanced()")
