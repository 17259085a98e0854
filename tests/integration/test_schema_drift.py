"""The migrations and the table modules describe one schema.

Alembic autogenerate compares ``metadata`` (adapters/db/*_tables.py) with the migrated database;
any difference it reports is a migration someone would generate by accident: an index the tables
do not declare comes out as a DROP INDEX, a column type that differs as an ALTER. So the migrated
test database at head must compare equal.

Autogenerate does not compare a partial index's WHERE clause (nor its method or column order
beyond the names), so the second test asks PostgreSQL itself: each declared index is created
again under a scratch name from the table modules' DDL, and its definition as PostgreSQL
prints it must be the migrated index's, word for word.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex

from bourse.adapters.db.engine import make_engine
from bourse.adapters.db.tables import metadata


def _differences(conn: Connection) -> list[Any]:
    # The same options as migrations/env.py, so this sees what `alembic revision --autogenerate` sees.
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_autogenerate_against_head_finds_no_difference(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == [], "\n".join(repr(d) for d in differences)


def _index_definition(conn: Connection, name: str) -> str | None:
    return conn.execute(
        text("SELECT pg_get_indexdef(c.oid) FROM pg_class c WHERE c.relname = :n AND c.relkind = 'i'"),
        {"n": name},
    ).scalar_one_or_none()


def _declared_vs_migrated(conn: Connection) -> list[tuple[str, str | None, str]]:
    mismatches: list[tuple[str, str | None, str]] = []
    indexes = sorted(
        (index for table in metadata.tables.values() for index in table.indexes),
        key=lambda i: str(i.name),
    )
    assert indexes, "the table modules declare no index at all"
    try:
        for n, index in enumerate(indexes):
            name, scratch = str(index.name), f"drift_check_{n}"
            ddl = str(CreateIndex(index).compile(dialect=conn.dialect))
            assert f" {name} ON " in ddl, ddl
            conn.execute(text(ddl.replace(f" {name} ON ", f" {scratch} ON ", 1)))
            declared = (_index_definition(conn, scratch) or "").replace(scratch, name, 1)
            migrated = _index_definition(conn, name)
            if declared != migrated:
                mismatches.append((name, migrated, declared))
    finally:
        conn.rollback()  # the scratch indexes go with the transaction
    return mismatches


async def test_every_declared_index_is_the_migrated_one_including_where_clauses(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            mismatches = await conn.run_sync(_declared_vs_migrated)
    finally:
        await engine.dispose()
    assert mismatches == [], "\n".join(f"{n}:\n  migrated {m}\n  declared {d}" for n, m, d in mismatches)
