"""POST /api/charting: a market's candles as a PNG (manage-charts), drawn from the market data
service's candles of real trades; a range without trades is still a valid picture that says so."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image

from bourse.adapters.charting import DOWN, UP
from bourse.domain.identity import Role
from tests.conftest import bearer, login
from tests.integration.trading.support import make_market, make_trader, place

URL = "/api/charting"
PNG = b"\x89PNG\r\n\x1a\n"


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def headers(client, container, name, role):
    await container.identity.create_user(name, f"{name}-pass-123", roles=(role,))
    return bearer(await login(client, name, f"{name}-pass-123"))


@pytest.fixture
async def traded(container, clock):
    """BTCUSDT with trades in three minutes: up, down, up."""
    await make_market(container)
    buyer = await make_trader(container, "buyer", usdt="10000")
    seller = await make_trader(container, "seller", btc="10")
    start = clock.now()
    for price in ("100", "104", "101", "99", "102", "106"):
        await place(container, seller, "BTCUSDT", "Sell", "0.1", price)
        await place(container, buyer, "BTCUSDT", "Buy", "0.1", price)
        clock.advance(seconds=30)
    return start


def colours(png: bytes) -> set[tuple[int, int, int]]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {colour for _, colour in image.getcolors(maxcolors=1 << 20)}


async def test_a_chart_is_a_png_of_the_candles(client, container, clock, traded):
    who = await headers(client, container, "analyst", Role.ACCOUNTANT)
    body = {
        "marketId": "BTCUSDT",
        "interval": "1m",
        "dateFrom": iso(traded - timedelta(minutes=5)),
        "dateTo": iso(clock.now() + timedelta(minutes=5)),
    }
    r = await client.post(URL, headers=who, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content.startswith(PNG)
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "PNG" and image.size == (1200, 640)
    drawn = colours(r.content)
    assert UP in drawn and DOWN in drawn, "rising and falling candles are both drawn"


async def test_a_range_without_trades_is_a_valid_png_without_candles(client, container, clock, traded):
    who = await headers(client, container, "analyst", Role.ACCOUNTANT)
    body = {
        "marketId": "BTCUSDT",
        "interval": "1h",
        "dateFrom": iso(traded - timedelta(days=3)),
        "dateTo": iso(traded - timedelta(days=2)),
    }
    r = await client.post(URL, headers=who, json=body)
    assert r.status_code == 200
    assert r.content.startswith(PNG)
    assert Image.open(io.BytesIO(r.content)).size == (1200, 640)
    drawn = colours(r.content)
    assert UP not in drawn and DOWN not in drawn


async def test_a_market_that_never_traded_still_gets_a_picture(client, container):
    await make_market(container)
    who = await headers(client, container, "ops", Role.OPERATOR)
    r = await client.post(URL, headers=who, json={"marketId": "BTCUSDT", "interval": "1d"})
    assert r.status_code == 200 and r.content.startswith(PNG)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"marketId": "NOPE", "interval": "1m"}, 404, "marketId"),
        ({"marketId": "BTCUSDT", "interval": "2m"}, 400, "interval"),
        ({"marketId": "BTCUSDT"}, 400, "interval"),
        ({"interval": "1m"}, 400, "marketId"),
        ({"marketId": "BTCUSDT", "interval": "1m", "dateFrom": "yesterday"}, 400, "dateFrom"),
        (
            {
                "marketId": "BTCUSDT",
                "interval": "1m",
                "dateFrom": "2026-01-02T00:00:00Z",
                "dateTo": "2026-01-01T00:00:00Z",
            },
            400,
            "dateFrom",
        ),
        (
            {
                "marketId": "BTCUSDT",
                "interval": "1m",
                "dateFrom": "2020-01-01T00:00:00Z",
                "dateTo": "2026-01-01T00:00:00Z",
            },
            400,
            "dateFrom",
        ),
        ({"marketId": "BTCUSDT", "interval": "1m", "colour": "red"}, 400, "colour"),
    ],
)
async def test_bad_chart_requests_are_refused(client, container, body, status, field):
    await make_market(container)
    who = await headers(client, container, "analyst", Role.ACCOUNTANT)
    r = await client.post(URL, headers=who, json=body)
    assert r.status_code == status, r.text
    assert r.json()["details"]["field"] == field


async def test_charting_needs_manage_charts(client, container):
    await make_market(container)
    body = {"marketId": "BTCUSDT", "interval": "1h"}
    assert (await client.post(URL, json=body)).status_code == 401
    for name, role in (("tom", Role.TRADER), ("sue", Role.SUPPORT)):
        r = await client.post(URL, headers=await headers(client, container, name, role), json=body)
        assert r.status_code == 403, name
    for name, role in (("olga", Role.OPERATOR), ("root", Role.ADMIN)):
        r = await client.post(URL, headers=await headers(client, container, name, role), json=body)
        assert r.status_code == 200, name
