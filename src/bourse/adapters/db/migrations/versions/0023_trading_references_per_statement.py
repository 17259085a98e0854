"""orders', trades' and executions' references checked once per statement instead of per row (ADR 0012)

An order names its market and account, a trade its market, an execution its order and trade.
Five foreign keys said so, each checked by a query and a row lock per row: on the order path,
~2 ms of a ~13 ms batch statement for 64 orders (auto_explain, ``log_triggers``). Statement
triggers over each statement's transition table now check the same, one index probe per distinct
key, raising the foreign keys' own SQLSTATE (23503) and constraint names.

What the keys also guaranteed is kept: a referenced market, account, order or trade cannot be
deleted (checked per statement over the deleted rows, 23503 with the key's name, as before), and
none of these rows changes the id it is referenced by, nor does an order, trade or execution
change what it references (both refused, 23001 ``restrict_violation``; nothing in bourse ever
does either). TRUNCATE of orders or trades is refused while executions has rows.

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (constraint, child table, child column, parent table, parent column): the keys this replaces.
KEYS: tuple[tuple[str, str, str, str, str], ...] = (
    ("fk_orders_market_id_markets", "orders", "market_id", "markets", "market_id"),
    ("fk_orders_account_id_accounts", "orders", "account_id", "accounts", "account_id"),
    ("fk_trades_market_id_markets", "trades", "market_id", "markets", "market_id"),
    ("fk_executions_order_id_orders", "executions", "order_id", "orders", "order_id"),
    ("fk_executions_trade_id_trades", "executions", "trade_id", "trades", "trade_id"),
)
CHILDREN = ("orders", "trades", "executions")
PARENTS = ("markets", "accounts", "orders", "trades")


def _refuse_if_found(query: str, name: str, message: str, detail: str) -> str:
    """``query`` selects into ``bad``; if it found a row, raise the foreign key's own error."""
    return f"""
    {query}
    IF FOUND THEN
        RAISE EXCEPTION '{message}'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{name}',
                  DETAIL = {detail};
    END IF;"""


def _function(name: str, checks: list[str]) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE\n    bad record;\nBEGIN" + "".join(checks) + "\n    RETURN NULL;\nEND $$"
    )


def _child_check(child: str) -> str:
    """Every distinct referenced key of the statement's new rows exists. Scalar sub-selects, not
    NOT EXISTS: one index probe per distinct key whatever the planner guesses of a transition
    table's size."""
    checks = [
        _refuse_if_found(
            f"""SELECT k.{column} AS missing INTO bad
      FROM (SELECT DISTINCT {column} FROM new_rows) AS k
     WHERE (SELECT p.{key} FROM {parent} p WHERE p.{key} = k.{column}) IS NULL
     LIMIT 1;""",  # noqa: S608 - names from KEYS above, no input
            name,
            f'insert or update on table "{child}" violates foreign key constraint "{name}"',
            f"format('Key ({column})=(%s) is not present in table \"{parent}\".', bad.missing)",
        )
        for name, table, column, parent, key in KEYS
        if table == child
    ]
    return _function(f"{child}_references", checks)


def _parent_check(parent: str) -> str:
    """No deleted row is still referenced (one index probe per deleted key where the child has
    an index on the column; executions.trade_id has none, as it had none under the key)."""
    checks = [
        _refuse_if_found(
            f"""SELECT o.{key} AS still INTO bad
      FROM old_rows o
     WHERE EXISTS (SELECT 1 FROM {table} c WHERE c.{column} = o.{key})
     LIMIT 1;""",  # noqa: S608 - names from KEYS above, no input
            name,
            f'update or delete on table "{parent}" violates foreign key constraint "{name}" on table "{table}"',
            f"format('Key ({key})=(%s) is still referenced from table \"{table}\".', bad.still)",
        )
        for name, table, column, referenced, key in KEYS
        if referenced == parent
    ]
    return _function(f"{parent}_still_referenced", checks)


_KEPT = """
CREATE FUNCTION trading_references_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: % of a referenced or referencing key refused (ids and references never change)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation', CONSTRAINT = TG_TABLE_NAME || '_references_kept';
END $$
"""

_TRUNCATE_KEPT = """
CREATE FUNCTION trading_parents_not_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM executions) THEN
        RAISE EXCEPTION 'cannot truncate table "%": executions reference it', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_TABLE_NAME || '_references_kept';
    END IF;
    RETURN NULL;
END $$
"""


def _key_columns(table: str) -> list[str]:
    """The columns of ``table`` that reference another or are referenced (in KEYS' order)."""
    out: list[str] = []
    for _, child, column, parent, key in KEYS:
        for t, c in ((child, column), (parent, key)):
            if t == table and c not in out:
                out.append(c)
    return out


def upgrade() -> None:
    for name, table, _, _, _ in KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
    op.execute(_KEPT)
    op.execute(_TRUNCATE_KEPT)
    for child in CHILDREN:
        op.execute(_child_check(child))
        op.execute(
            f"CREATE TRIGGER {child}_references AFTER INSERT ON {child} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {child}_references()"
        )
    for parent in PARENTS:
        op.execute(_parent_check(parent))
        op.execute(
            f"CREATE TRIGGER {parent}_still_referenced AFTER DELETE ON {parent} "
            f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {parent}_still_referenced()"
        )
    for table in ("markets", "accounts", "orders", "trades", "executions"):
        columns = _key_columns(table)
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
        # Only statements that name one of these columns fire it (an order's fill never does).
        op.execute(
            f"CREATE TRIGGER {table}_references_kept BEFORE UPDATE OF {', '.join(columns)} ON {table} "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION trading_references_kept()"
        )
    for parent in ("orders", "trades"):
        op.execute(
            f"CREATE TRIGGER {parent}_not_truncated BEFORE TRUNCATE ON {parent} "
            "FOR EACH STATEMENT EXECUTE FUNCTION trading_parents_not_truncated()"
        )


def downgrade() -> None:
    for parent in ("orders", "trades"):
        op.execute(f"DROP TRIGGER {parent}_not_truncated ON {parent}")
    for table in ("markets", "accounts", "orders", "trades", "executions"):
        op.execute(f"DROP TRIGGER {table}_references_kept ON {table}")
    for parent in PARENTS:
        op.execute(f"DROP TRIGGER {parent}_still_referenced ON {parent}")
        op.execute(f"DROP FUNCTION {parent}_still_referenced()")
    for child in CHILDREN:
        op.execute(f"DROP TRIGGER {child}_references ON {child}")
        op.execute(f"DROP FUNCTION {child}_references()")
    op.execute("DROP FUNCTION trading_parents_not_truncated()")
    op.execute("DROP FUNCTION trading_references_kept()")
    for name, table, column, parent, key in KEYS:
        op.create_foreign_key(name, table, parent, [column], [key])
