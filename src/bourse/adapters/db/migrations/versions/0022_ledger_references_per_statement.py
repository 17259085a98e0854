"""ledger postings' references checked once per statement instead of per row (ADR 0011)

A posting must name an existing ledger transaction and an existing ledger account of the
posting's asset. Two foreign keys said so, each checked by a query and a row lock per posting:
about a fifth of PostgreSQL's CPU per order on the order path (~5 postings an order). The
statement trigger that already checks each statement's postings balance now also checks, over
the same transition table and in two set-based queries, that every new posting's transaction
and (account, asset) exist, raising the foreign keys' own SQLSTATE and constraint names.

Foreign keys also keep a referenced row from going away. Ledger transactions are append-only
already (0002); ledger accounts now refuse DELETE and TRUNCATE, and an UPDATE of their id or
asset, so a reference checked once stays true.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The balance check as migration 0002 wrote it; the reference checks follow it.
_BALANCED = """
    SELECT tx_id, asset, sum(amount) AS total INTO bad
      FROM new_postings GROUP BY tx_id, asset HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in %: sum %',
            bad.tx_id, bad.asset, bad.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_postings_balanced';
    END IF;
"""

_REFERENCES = """
    -- Scalar sub-selects, not NOT EXISTS: one index probe per distinct key whatever the
    -- planner guesses of a transition table's size (never a scan of the whole ledger).
    SELECT k.tx_id INTO bad
      FROM (SELECT DISTINCT tx_id FROM new_postings) AS k
     WHERE (SELECT t.id FROM ledger_transactions t WHERE t.id = k.tx_id) IS NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger posting names transaction %, which does not exist', bad.tx_id
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'fk_ledger_postings_tx_id_ledger_transactions';
    END IF;
    SELECT k.account_id, k.asset INTO bad
      FROM (SELECT DISTINCT account_id, asset FROM new_postings) AS k
     WHERE (SELECT a.id FROM ledger_accounts a WHERE a.id = k.account_id AND a.asset = k.asset) IS NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger posting names account % in %, which does not exist', bad.account_id, bad.asset
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'fk_ledger_postings_account_asset';
    END IF;
"""


def _postings_check(body: str) -> str:
    return (
        "CREATE OR REPLACE FUNCTION ledger_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE\n    bad record;\nBEGIN"
        f"{body}"
        "    RETURN NULL;\nEND $$"
    )


_KEEP_ACCOUNTS = (
    """
    CREATE FUNCTION ledger_accounts_kept() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger accounts are never removed or renamed: % refused', TG_OP
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'ledger_accounts_kept';
    END $$
    """,
    """
    CREATE TRIGGER ledger_accounts_kept BEFORE DELETE OR TRUNCATE ON ledger_accounts
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_accounts_kept()
    """,
    # Only statements that name id or asset fire it (a balance update never does).
    """
    CREATE TRIGGER ledger_accounts_key_kept BEFORE UPDATE OF id, asset ON ledger_accounts
        FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.asset IS DISTINCT FROM NEW.asset)
        EXECUTE FUNCTION ledger_accounts_kept()
    """,
)


def upgrade() -> None:
    op.drop_constraint("fk_ledger_postings_account_asset", "ledger_postings", type_="foreignkey")
    op.drop_constraint("fk_ledger_postings_tx_id_ledger_transactions", "ledger_postings", type_="foreignkey")
    op.execute(_postings_check(_BALANCED + _REFERENCES))
    for statement in _KEEP_ACCOUNTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_accounts_key_kept ON ledger_accounts")
    op.execute("DROP TRIGGER ledger_accounts_kept ON ledger_accounts")
    op.execute("DROP FUNCTION ledger_accounts_kept()")
    op.execute(_postings_check(_BALANCED))
    op.create_foreign_key(
        "fk_ledger_postings_tx_id_ledger_transactions",
        "ledger_postings",
        "ledger_transactions",
        ["tx_id"],
        ["id"],
    )
    op.create_foreign_key(
        "fk_ledger_postings_account_asset",
        "ledger_postings",
        "ledger_accounts",
        ["account_id", "asset"],
        ["id", "asset"],
    )
