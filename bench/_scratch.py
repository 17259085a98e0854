"""The scratch database every bench script runs against, set up in one place.

The server is BOURSE_DATABASE_URL's if set, else the embedded one under var/bench-pg (loopback
only). ``scratch_database`` creates a uniquely named database on it, migrates it to head and
drops it afterwards. Import this module after the script has put src/ on sys.path.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from bourse.adapters.db.embedded import start_embedded
from bourse.adapters.db.engine import asyncpg_url, with_database
from bourse.adapters.db.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def plain(url: str) -> str:
    """The ``postgresql+asyncpg`` URL in the form asyncpg.connect takes."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _server_url() -> str:
    external = os.environ.get("BOURSE_DATABASE_URL")
    if external:
        return asyncpg_url(external)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return start_embedded(ROOT / "var" / "bench-pg")


async def _admin_sql(server: str, sql: str) -> None:
    conn = await asyncpg.connect(plain(server))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(prefix: str, *, keep: bool = False, reuse: str | None = None) -> Iterator[str]:
    """A new database ``<prefix>_<8 hex>``, migrated to head: its URL. Dropped on the way out
    unless ``keep``; ``reuse`` names an existing database to migrate and use instead (never dropped).

    Synchronous, entered before the script's event loop runs: ``upgrade`` runs a loop of its own
    (alembic's env.py), and the measured code then has the process to itself (no helper thread for
    the upgrade, no admin connection held open), which report_memory's peak RSS depends on."""
    server = _server_url()
    name = reuse or f"{prefix}_{uuid.uuid4().hex[:8]}"
    if not reuse:
        asyncio.run(_admin_sql(server, f'CREATE DATABASE "{name}"'))
    try:
        url = with_database(server, name)
        upgrade(url)
        yield url
    finally:
        if not (keep or reuse):
            asyncio.run(_admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
