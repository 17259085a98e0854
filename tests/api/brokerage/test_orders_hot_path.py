"""POST /frontoffice/api/v3/orders through the hot path answers exactly as the FastAPI route does.

Two apps over one container: the real one (hot path inside the edge middleware) and the same
app without ``HotPathMiddleware``. Every malformed, unauthorised or refused request gets the
same status, headers that matter and body (less the request id) from both; valid orders are
served by the hot path without reaching FastAPI, and keep the edge's request id and metrics.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from bourse.api.app import create_app
from bourse.api.common.hot_path import HotPathMiddleware
from bourse.domain.identity import Role
from tests.api.brokerage.test_orders_v3 import V3, order, trader

ORDERS = f"{V3}/orders"


@pytest.fixture
async def plain(container):
    """The app as it would be without the hot path: every request goes through FastAPI."""
    app = create_app(container, dispose_on_shutdown=False)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPathMiddleware]
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def hot(container):
    """The real app, with a count of the requests its hot path handed on to FastAPI."""
    app = create_app(container, dispose_on_shutdown=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await c.get("/readyz")  # builds the middleware stack
        layer: Any = app.middleware_stack
        while not isinstance(layer, HotPathMiddleware):
            layer = layer.app
        inner = layer.app
        c.handed_on = 0  # type: ignore[attr-defined]

        async def counting(scope, receive, send):
            c.handed_on += 1  # type: ignore[attr-defined]
            await inner(scope, receive, send)

        layer.app = counting
        yield c


@pytest.fixture
async def traders(client, container):
    from tests.integration.trading.support import make_market

    await make_market(container, displayName="BTC/USDT")
    alice = await trader(client, container, "alice", usdt="1000")
    bob = await trader(client, container, "bob", btc="2")
    clerk = await trader(client, container, "clerk", roles=(Role.ACCOUNTANT,))
    return alice, bob, clerk


def answer(r: httpx.Response) -> tuple[int, Any, str | None]:
    body = r.json()
    if isinstance(body, dict):
        body.pop("requestId", None)
    return r.status_code, body, r.headers.get("www-authenticate")


async def test_refusals_are_the_fastapi_routes_answers(hot, plain, traders):
    alice, bob, clerk = traders
    json_type = {"content-type": "application/json"}
    cases: list[tuple[str, dict[str, str], bytes | None]] = [
        ("malformed JSON", {**alice.headers, **json_type}, b'{"order": '),
        ("not JSON", {**alice.headers, "content-type": "text/plain"}, b'{"order": {}}'),
        ("no body", {**alice.headers, **json_type}, b""),
        ("a JSON list", {**alice.headers, **json_type}, b"[]"),
        ("no token", {"accountId": alice.account_id, **json_type}, b'{"order": {}}'),
        (
            "a made-up token",
            {"authorization": "Bearer nope", "accountId": alice.account_id, **json_type},
            b"{}",
        ),
        ("no trading-ui", {**clerk.headers, **json_type}, None),
        ("no accountId", {"authorization": alice.headers["Authorization"], **json_type}, None),
        (
            "someone else's account",
            {"authorization": alice.headers["Authorization"], "accountId": bob.account_id, **json_type},
            None,
        ),
    ]
    bodies = [
        order(requestedAmount=0.5),
        order(orderType="Iceberg"),
        order(side="Long"),
        order(requestedAmount="-1"),
        order(requestedPrice=None),
        order(timeInForce="Forever"),
        order(cancellationDate="tomorrow"),
        order(clientOrderId=""),
        order(postOnly="yes"),
        order(marketId="NOPE"),
        {"marketId": "BTCUSDT"},
    ]
    default = json.dumps(order()).encode()
    cases += [(f"body {b}", {**alice.headers, **json_type}, json.dumps(b).encode()) for b in bodies]
    for name, headers, content in cases:
        content = default if content is None else content
        ours = await hot.post(ORDERS, headers=headers, content=content)
        theirs = await plain.post(ORDERS, headers=headers, content=content)
        assert ours.status_code >= 400, (name, ours.text)
        assert answer(ours) == answer(theirs), name
        assert ours.headers["x-request-id"] == ours.json()["requestId"], name
    # Refused before the endpoint (body, token, permission, model): FastAPI answered those ten;
    # the endpoint's and the service's refusals came through the hot path.
    assert hot.handed_on == 10


async def test_valid_orders_skip_fastapi_and_match_its_answers(hot, plain, traders, container):
    alice, bob, _ = traders
    before = (
        REGISTRY.get_sample_value(
            "bourse_http_requests_total", {"method": "POST", "route": ORDERS, "status": "200"}
        )
        or 0.0
    )
    ours = await hot.post(
        ORDERS,
        headers={**alice.headers, "x-request-id": "hot-1"},
        json=order(requestedPrice="100.10", requestedAmount="0.1234", clientOrderId="c-1", extra="ignored"),
    )
    assert ours.status_code == 200, ours.text
    assert ours.headers["x-request-id"] == "hot-1"
    assert hot.handed_on == 0
    assert (
        REGISTRY.get_sample_value(
            "bourse_http_requests_total", {"method": "POST", "route": ORDERS, "status": "200"}
        )
        == before + 1
    )
    placed = ours.json()["order"]
    assert (placed["requestedPrice"], placed["requestedAmount"], placed["status"]) == (
        "100.1",
        "0.1234",
        "Placed",
    )
    # A charset parameter is still JSON; the same clientOrderId is the same order (idempotent).
    again = await hot.post(
        ORDERS,
        headers={**alice.headers, "content-type": "application/json; charset=utf-8"},
        content=httpx.Request(
            "POST", "/", json=order(requestedPrice="100.10", requestedAmount="0.1234", clientOrderId="c-1")
        ).content,
    )
    assert hot.handed_on == 0
    assert again.json() == ours.json()
    through_fastapi = await plain.post(
        ORDERS,
        headers=alice.headers,
        json=order(requestedPrice="100.10", requestedAmount="0.1234", clientOrderId="c-1"),
    )
    assert through_fastapi.json() == ours.json()
    conflict = await hot.post(
        ORDERS, headers=alice.headers, json=order(clientOrderId="c-1", requestedAmount="1")
    )
    assert answer(conflict) == answer(
        await plain.post(ORDERS, headers=alice.headers, json=order(clientOrderId="c-1", requestedAmount="1"))
    )
    assert conflict.status_code == 409 and hot.handed_on == 0
    # A sell into it trades over the hot path, to the decimal.
    sold = await hot.post(
        ORDERS,
        headers=bob.headers,
        json=order(side="Sell", requestedPrice="100.10", requestedAmount="0.1234"),
    )
    assert sold.json()["order"]["status"] == "Filled" and sold.json()["order"]["executionPrice"] == "100.1"
