"""The edge every request passes: request ids, rate limiting, metrics, OpenAPI, health."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bourse.adapters.db.migrate import head_revision
from bourse.api.app import create_app
from bourse.bootstrap import Container, build
from tests.conftest import FAST_HASHER, FakeClock, bearer, login, make_settings


def client_for(container: Container, ip: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(container, dispose_on_shutdown=False), client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# --- request id --------------------------------------------------------------------------------


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    ids = set()
    for path in ("/healthz", "/auth/me", "/no/such/route"):
        r = await client.get(path)
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), path
        ids.add(r.headers["x-request-id"])
    assert len(ids) == 3
    # Error bodies name the same id, so a user's report can be found in the logs.
    r = await client.get("/auth/me")
    assert r.status_code == 401
    assert r.json()["requestId"] == r.headers["x-request-id"]


async def test_a_sane_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    r = await client.get("/auth/me", headers={"X-Request-ID": "client-abc.123:9"})
    assert r.headers["x-request-id"] == "client-abc.123:9"
    assert r.json()["requestId"] == "client-abc.123:9"


async def test_an_odd_incoming_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    for incoming in ("has space", "x" * 65, "<script>", "a;b"):
        r = await client.get("/healthz", headers={"X-Request-ID": incoming})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), incoming


# --- rate limit --------------------------------------------------------------------------------


@pytest.fixture
async def limited(db_url: str, clock: FakeClock) -> AsyncIterator[Container]:
    c = build(make_settings(rate_limit="3/3"), db_url, hasher=FAST_HASHER, clock=clock)
    yield c
    await c.aclose()


async def test_rate_limit_answers_429_with_retry_after(limited: Container) -> None:
    async with client_for(limited) as c, client_for(limited, ip="198.51.100.9") as other:
        statuses = [(await c.get("/healthz")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = await c.get("/healthz")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"  # the window is one second
        assert r.json()["code"] == "too_many_requests"
        assert r.headers["x-request-id"] == r.json()["requestId"]
        # Every route is limited, login included.
        assert (await c.post("/auth/token", data={"username": "a", "password": "b"})).status_code == 429
        # Another address has its own allowance.
        assert (await other.get("/healthz")).status_code == 200

        await asyncio.sleep(1.1)
        assert (await c.get("/healthz")).status_code == 200


async def test_rate_limit_keys_on_the_token_not_the_address(limited: Container) -> None:
    await limited.identity.create_user("alice", "alice-pass-1")
    async with client_for(limited) as c, client_for(limited, ip="198.51.100.9") as other:
        token = await login(c, "alice", "alice-pass-1")
        for _ in range(3):
            assert (await other.get("/auth/me", headers=bearer(token))).status_code == 200
        # Changing address does not reset a token's allowance.
        assert (await c.get("/auth/me", headers=bearer(token))).status_code == 429


async def test_made_up_tokens_do_not_buy_a_fresh_allowance(limited: Container) -> None:
    # Otherwise a flood with a new junk token per request (say at /auth/token, which costs an
    # argon2 hash each) would never be limited.
    async with client_for(limited) as c:
        statuses = [
            (
                await c.post(
                    "/auth/token", data={"username": "a", "password": "b"}, headers=bearer(f"junk-{i}")
                )
            ).status_code
            for i in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        assert (await c.get("/healthz", headers=bearer("bst_made-up-service-token"))).status_code == 429


async def test_rate_limit_off_builds_no_limiter(container: Container, client: httpx.AsyncClient) -> None:
    assert container.rate_limiter is None
    for _ in range(20):
        assert (await client.get("/healthz")).status_code == 200


# --- metrics, docs, health --------------------------------------------------------------------------


def sample(metrics_text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = await container.identity.create_user("alice", "alice-pass-1")
    token = await login(client, "alice", "alice-pass-1")
    before = (await client.get("/metrics")).text
    await client.get("/healthz")
    await client.get(f"/auth/users/{created.user.uid}", headers=bearer(token))
    await client.get("/no/such/thing-12345")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = r.text

    def delta(**labels: str) -> float:
        return sample(after, "bourse_http_requests_total", **labels) - sample(
            before, "bourse_http_requests_total", **labels
        )

    assert delta(method="GET", route="/healthz", status="200") == 1
    # Routes are labelled by template, never by the concrete path (bounded label values).
    assert delta(method="GET", route="/auth/users/{uid}", status="200") == 1
    assert delta(method="GET", route="unmatched", status="404") == 1
    assert "thing-12345" not in after
    assert sample(after, "bourse_http_request_seconds_count", method="GET", route="/healthz") >= 1


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["title"] == "bourse"
    for path in (
        "/auth/token",
        "/auth/logout",
        "/auth/me",
        "/auth/users/{uid}",
        "/auth/totp/enroll",
        "/auth/totp/confirm",
        "/auth/totp/disable",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"], path
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower() and "/openapi.json" in docs.text


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


async def test_readyz_reports_pending_migrations(client: httpx.AsyncClient, container: Container) -> None:
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert head_revision() != "0001"
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "ok", "migrations": "pending"}


async def test_readyz_reports_an_unreachable_database(clock: FakeClock) -> None:
    dead = build(
        make_settings(), "postgresql+asyncpg://bourse:x@127.0.0.1:1/nothing", hasher=FAST_HASHER, clock=clock
    )
    try:
        async with client_for(dead) as c:
            assert (await c.get("/healthz")).status_code == 200  # the process itself is alive
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["status"] == "not ready"
            assert r.json()["checks"]["database"].startswith("unreachable")
    finally:
        await dead.aclose()
