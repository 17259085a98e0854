"""Login throttling: 5 failures per username or 50 per IP in 15 minutes lock logins out, with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bourse.api.app import create_app
from bourse.bootstrap import Container
from tests.conftest import FakeClock, bearer


async def attempt(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": username, "password": password})


async def fail_times(client: httpx.AsyncClient, n: int, username: str = "alice") -> None:
    for _ in range(n):
        r = await attempt(client, username, "wrong-password")
        assert r.status_code == 401, r.text


@pytest.fixture
async def other_ip_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(
        app=create_app(container, dispose_on_shutdown=False), client=("198.51.100.9", 1)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def alice(container: Container) -> None:
    await container.identity.create_user("alice", "alice-pass-1")
    await container.identity.create_user("bob", "bob-pass-12")


@pytest.mark.usefixtures("alice")
async def test_five_failures_lock_the_username_even_for_the_right_password(
    client: httpx.AsyncClient, other_ip_client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await fail_times(client, 5)
    r = await attempt(client, "alice", "alice-pass-1")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "900"
    assert r.json()["code"] == "too_many_requests"
    # The lock is on the username, wherever the attempt comes from.
    assert (await attempt(other_ip_client, "alice", "alice-pass-1")).status_code == 429
    # Another user on the same IP is not affected.
    assert (await attempt(client, "bob", "bob-pass-12")).status_code == 200

    clock.advance(minutes=5)
    r = await attempt(client, "alice", "alice-pass-1")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "600"

    clock.advance(minutes=11)
    r = await attempt(client, "alice", "alice-pass-1")
    assert r.status_code == 200, r.text
    assert (await client.get("/auth/me", headers=bearer(r.json()["access_token"]))).status_code == 200


@pytest.mark.usefixtures("alice")
async def test_four_failures_do_not_lock(client: httpx.AsyncClient) -> None:
    await fail_times(client, 4)
    assert (await attempt(client, "alice", "alice-pass-1")).status_code == 200
    # A successful login starts the count again.
    await fail_times(client, 4)
    assert (await attempt(client, "alice", "alice-pass-1")).status_code == 200


@pytest.mark.usefixtures("alice")
async def test_the_window_slides(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await fail_times(client, 4)
    clock.advance(minutes=10)
    await fail_times(client, 1)
    r = await attempt(client, "alice", "alice-pass-1")
    assert r.status_code == 429
    # Locked until the oldest of the five leaves the 15-minute window.
    assert r.headers["retry-after"] == "300"
    clock.advance(seconds=299)
    assert (await attempt(client, "alice", "alice-pass-1")).status_code == 429
    clock.advance(seconds=2)
    assert (await attempt(client, "alice", "alice-pass-1")).status_code == 200


@pytest.mark.usefixtures("alice")
async def test_attempts_while_locked_do_not_extend_the_lock(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await fail_times(client, 5)
    for _ in range(3):
        clock.advance(minutes=4)
        assert (await attempt(client, "alice", "wrong-password")).status_code == 429
    clock.advance(minutes=4)  # 16 minutes after the failures
    assert (await attempt(client, "alice", "alice-pass-1")).status_code == 200


@pytest.mark.usefixtures("alice")
async def test_fifty_failures_from_one_ip_lock_that_ip(
    client: httpx.AsyncClient, other_ip_client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # Spread over many usernames (none reaches its own limit of 5) and some minutes.
    for i in range(50):
        if i == 25:
            clock.advance(minutes=2)
        r = await attempt(client, f"guess{i % 13}", "wrong-password")
        assert r.status_code == 401, (i, r.text)

    r = await attempt(client, "alice", "alice-pass-1")
    assert r.status_code == 429
    assert r.headers["retry-after"] == str(13 * 60)  # the first failures were 2 minutes ago
    assert (await attempt(client, "bob", "bob-pass-12")).status_code == 429
    # The same user from another address is fine: the IP is locked, not the accounts.
    assert (await attempt(other_ip_client, "alice", "alice-pass-1")).status_code == 200

    clock.advance(minutes=16)
    assert (await attempt(client, "alice", "alice-pass-1")).status_code == 200
