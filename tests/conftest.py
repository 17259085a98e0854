"""Test fixtures: a real PostgreSQL, a fresh database per test cloned from a migrated template.

The server is the embedded one (under var/test-pg) unless BOURSE_TEST_DATABASE_URL
points at another PostgreSQL; then every database is created there instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from bourse.adapters.crypto import Argon2PasswordHasher
from bourse.adapters.db.embedded import start_embedded
from bourse.adapters.db.engine import asyncpg_url, make_engine, with_database
from bourse.adapters.db.migrate import head_revision, upgrade
from bourse.adapters.db.uow import SqlUnitOfWork
from bourse.api.app import create_app
from bourse.bootstrap import Container, build
from bourse.config import Settings
from bourse.domain.ledger import LedgerCheckReport

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    """A clock the test moves by hand (throttling windows, token expiry)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


def _plain(url: str) -> str:
    """asyncpg.connect wants postgresql://, not the SQLAlchemy driver form."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _connect_kwargs(url: str) -> dict[str, object]:
    # asyncpg reads ?host=/socket/dir from the DSN itself.
    return {"dsn": _plain(url)}


async def _admin_exec(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(**_connect_kwargs(server_url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of a maintenance database on the test server."""
    external = os.environ.get("BOURSE_TEST_DATABASE_URL")
    if external:
        return asyncpg_url(external)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return start_embedded(ROOT / "var" / "test-pg")


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    name = f"bourse_tpl_{head_revision()}_{os.getpid()}"
    asyncio.run(_admin_exec(server_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    upgrade(with_database(server_url, name))
    yield name
    asyncio.run(_admin_exec(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db_url(request: pytest.FixtureRequest, server_url: str, template_db: str) -> AsyncIterator[str]:
    name = f"bourse_t_{uuid.uuid4().hex[:12]}"
    await _admin_exec(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = with_database(server_url, name)
    yield url
    try:
        # Whatever a test did, the money must still add up: `bourse ledger check` on every
        # test database, except where a test breaks the ledger on purpose to see it caught.
        if request.node.get_closest_marker("ledger_tampered") is None:
            report = await _ledger_check(url)
            assert report.clean, f"ledger check failed after {request.node.nodeid}: {report}"
    finally:
        await _admin_exec(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _ledger_check(url: str) -> LedgerCheckReport:
    engine = make_engine(url, pool_size=1)
    try:
        async with SqlUnitOfWork(engine) as uow:
            return await uow.ledger.check()
    finally:
        await engine.dispose()


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"env": "dev", "rate_limit": "off", "log_json": False}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Argon2 at OWASP cost is the point in production; tests that do not measure it use a
# cheaper setting of the same algorithm so the suite stays fast.
FAST_HASHER = Argon2PasswordHasher(memory_kib=1024, time_cost=1, parallelism=1)


@pytest.fixture
async def container(db_url: str, clock: FakeClock) -> AsyncIterator[Container]:
    c = build(make_settings(), db_url, hasher=FAST_HASHER, clock=clock)
    yield c
    await c.aclose()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container, dispose_on_shutdown=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def login(client: httpx.AsyncClient, username: str, password: str, totp: str | None = None) -> str:
    data = {"username": username, "password": password}
    if totp:
        data["totp"] = totp
    r = await client.post("/auth/token", data=data)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
