"""The security epoch (migration 0024): what moves it, what does not, and how a process reads it."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from bourse.bootstrap import Container
from bourse.domain.identity import Role
from bourse.service.security_epoch import SecurityEpoch


async def _epoch(container: Container) -> int:
    async with container.uow() as uow:
        return await uow.users.security_epoch()


async def _sql(container: Container, statement: str) -> None:
    async with container.engine.begin() as conn:
        await conn.execute(text(statement))


async def test_every_change_to_who_a_token_stands_for_moves_it(container: Container) -> None:
    created = await container.identity.create_user("alice", "alice-pass-1")
    uid = created.user.uid
    token = await container.credentials.create_service_token("game")
    changes = [
        f"UPDATE users SET is_active = false WHERE uid = {uid}",
        f"UPDATE users SET username = 'alice2' WHERE uid = {uid}",
        f"INSERT INTO user_roles (uid, role) VALUES ({uid}, '{Role.OPERATOR.value}')",
        f"DELETE FROM user_roles WHERE uid = {uid} AND role = '{Role.OPERATOR.value}'",
        f"INSERT INTO revoked_tokens (jti, uid, expires_at) VALUES ('j-1', {uid}, now())",
        "UPDATE service_tokens SET revoked_at = now() WHERE name = 'game'",
    ]
    for change in changes:
        before = await _epoch(container)
        await _sql(container, change)
        assert await _epoch(container) > before, change
    assert token.token  # the token's creation itself changes nothing kept


async def test_changes_nothing_kept_depends_on_leave_it_alone(container: Container) -> None:
    created = await container.identity.create_user("alice", "alice-pass-1")
    before = await _epoch(container)
    await _sql(container, f"UPDATE users SET totp_last_step = 7 WHERE uid = {created.user.uid}")
    await container.credentials.create_service_token("game")
    await _sql(container, "INSERT INTO login_failures (username, ip, at) VALUES ('alice', '1.2.3.4', now())")
    assert await _epoch(container) == before


async def test_a_rolled_back_change_does_not_move_it(container: Container) -> None:
    created = await container.identity.create_user("alice", "alice-pass-1")
    before = await _epoch(container)
    async with container.engine.connect() as conn:
        await conn.execute(text(f"UPDATE users SET is_active = false WHERE uid = {created.user.uid}"))
        await conn.rollback()
    assert await _epoch(container) == before


async def test_a_reader_drops_its_caches_when_it_moved_and_at_most_once_per_interval(
    container: Container,
) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    watch = SecurityEpoch(container.uow, interval=1.0)
    drops: list[int] = []
    watch.on_change(lambda: drops.append(1))
    await watch.check(100.0)  # the first read: nothing was kept before it
    assert len(drops) == 1
    await watch.check(100.5)
    await _sql(container, "UPDATE users SET is_active = false WHERE username = 'alice'")
    await watch.check(100.9)  # not due yet
    assert len(drops) == 1
    await watch.check(101.0)
    assert len(drops) == 2
    await watch.check(102.5)  # due, unmoved
    assert len(drops) == 2


async def test_a_failed_or_slow_read_drops_the_caches_and_lets_the_request_go_on() -> None:
    class Broken:
        async def __aenter__(self) -> None:
            raise OSError("database unreachable")

        async def __aexit__(self, *exc: object) -> None:
            return None

    class Stuck(Broken):
        async def __aenter__(self) -> None:  # a pool with no free connection
            await asyncio.sleep(60)

    for uow in (Broken, Stuck):
        watch = SecurityEpoch(uow, interval=0.2)  # type: ignore[arg-type]
        drops: list[int] = []
        watch.on_change(lambda drops=drops: drops.append(1))
        started = time.monotonic()
        await watch.check(0.0)  # no error: the request looks its token up itself
        assert drops == [1]
        assert time.monotonic() - started < 5
