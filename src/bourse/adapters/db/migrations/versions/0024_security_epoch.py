"""the security epoch: one counter every change to who a token stands for moves (ADR 0003)

A server process keeps resolved tokens (bearer tokens' principals, service tokens' callers) and
reads this counter at most once a second; when it has moved, the process drops what it kept.
Statement triggers move it, in the changing transaction (so a reader sees the new value exactly
when the change is visible), on:

- users: UPDATE OF username or is_active, DELETE, TRUNCATE (a principal carries both);
- user_roles, revoked_tokens: any change (roles granted or revoked, a logout);
- service_tokens: UPDATE, DELETE, TRUNCATE (a revoke); a new token changes nothing kept.

Writes that take the counter's row lock wait for each other until they commit: logouts, role
changes and revokes are rare and short.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, the events that move the epoch)
MOVED_BY: tuple[tuple[str, str], ...] = (
    ("users", "UPDATE OF username, is_active OR DELETE OR TRUNCATE"),
    ("user_roles", "INSERT OR UPDATE OR DELETE OR TRUNCATE"),
    ("revoked_tokens", "INSERT OR UPDATE OR DELETE OR TRUNCATE"),
    ("service_tokens", "UPDATE OR DELETE OR TRUNCATE"),
)


def upgrade() -> None:
    op.create_table(
        "security_epoch",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_security_epoch_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_epoch")),
    )
    op.execute("INSERT INTO security_epoch (id, epoch) VALUES (1, 0)")
    op.execute(
        "CREATE FUNCTION move_security_epoch() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN UPDATE security_epoch SET epoch = epoch + 1 WHERE id = 1; RETURN NULL; END $$"
    )
    for table, events in MOVED_BY:
        op.execute(
            f"CREATE TRIGGER {table}_security_epoch AFTER {events} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION move_security_epoch()"
        )


def downgrade() -> None:
    for table, _ in MOVED_BY:
        op.execute(f"DROP TRIGGER {table}_security_epoch ON {table}")
    op.execute("DROP FUNCTION move_security_epoch()")
    op.drop_table("security_epoch")
