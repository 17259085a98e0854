"""Markets: back office and front office, in the brokerage spec's shapes."""

import pytest

from bourse.domain.identity import Role
from tests.conftest import bearer, login

BO = "/back-api/backoffice/v2"
FO = "/frontoffice/api"

BTCUSDT = {
    "baseAssetId": "BTC",
    "quoteAssetId": "USDT",
    "fullName": "Bitcoin / Tether",
    "displayName": "BTC/USDT",
    "minAmount": "0.0001",
    "priceDeviation": "0.1",
    "priceScale": 2,
    "amountScale": 6,
    "slippageRate": "0.05",
    "status": "Active",
    "type": "Spot",
    "subtype": "Main",
    "isSynchronized": False,
    "externalTtl": 30,
    "internalTtl": 10,
    "marketGroupId": "majors",
    "calendarId": "always",
    "lotSize": None,
    "minLotAmount": None,
    "maxLotAmount": None,
    "tickSize": "0.01",
    "lotStep": "0.0001",
    "swapSettings": None,
    "maxLeverage": None,
    "isConstLeverage": None,
    "minQuoteAmount": "10",
    "maxBaseAmount": "100",
    "tradingSessionIds": [],
    "marketDataSessionIds": [],
}


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


@pytest.fixture
async def trader(client, container):
    await container.identity.create_user("alice", "alice-pass-1")
    return bearer(await login(client, "alice", "alice-pass-1"))


@pytest.fixture
async def assets(container):
    await container.ledger.create_asset("BTC", "Bitcoin", 8, "Crypto")
    await container.ledger.create_asset("ETH", "Ether", 8, "Crypto")
    await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
    await container.ledger.create_asset("EUR", "Euro", 2, "Fiat")


async def create(client, staff, **fields):
    r = await client.post(f"{BO}/markets", headers=staff, json={**BTCUSDT, **fields})
    assert r.status_code == 201, r.text
    return r.json()["marketId"]


async def test_create_and_get_round_trip_every_field(client, staff, assets, clock):
    r = await client.post(f"{BO}/markets", headers=staff, json=BTCUSDT)
    assert r.status_code == 201 and r.json() == {"marketId": "BTCUSDT"}
    got = await client.get(f"{BO}/markets/BTCUSDT", headers=staff)
    assert got.status_code == 200
    body = got.json()
    stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%S.") + f"{clock.now().microsecond // 1000:03d}Z"
    assert body == {
        "marketId": "BTCUSDT",
        "displayName": "BTC/USDT",
        "fullName": "Bitcoin / Tether",
        "baseAssetId": "BTC",
        "quoteAssetId": "USDT",
        "minAmount": "0.0001",
        "priceDeviation": "0.1",
        "priceScale": 2,
        "amountScale": 6,
        "slippageRate": "0.05",
        "status": "Active",
        "type": "Spot",
        "subtype": "Main",
        "isSynchronized": False,
        "createdAt": stamp,
        "updatedAt": stamp,
        "externalTtl": 30,
        "internalTtl": 10,
        "lotSize": None,
        "minLotAmount": None,
        "maxLotAmount": None,
        "tickSize": "0.01",
        "lotStep": "0.0001",
        "swapSettings": None,
        "calendarId": "always",
        "marketGroupId": "majors",
        "marketGroupName": "majors",
        "calendarName": "always",
        "maxLeverage": None,
        "isConstLeverage": None,
        "minQuoteAmount": "10",
        "maxBaseAmount": "100",
        "tradingSessions": [],
        "marketDataSessions": [],
        "isOtc": False,
        "isHidden": False,
        "calendar": None,
        "fundingStartTime": None,
        "fundingIntervalInHours": None,
    }


DERIVATIVE = {
    "baseAssetId": "ETH",
    "quoteAssetId": "USDT",
    "marketId": "ETH-PERP",
    "type": "Perpetual",
    "priceScale": 2,
    "amountScale": 3,
    "lotSize": 10,
    "minLotAmount": "0.5",
    "maxLotAmount": 1000,
    "maxLeverage": 20,
    "isConstLeverage": True,
    "swapSettings": {
        "type": "Percent",
        "shortPositionSettings": {"swapSize": "0.01", "assetId": "USDT"},
        "longPositionSettings": {"swapSize": "-0.02", "assetId": "USDT"},
    },
    "tradingSessionIds": ["ts-1"],
    "marketDataSessionIds": ["md-1", "md-2"],
    "isOtc": True,
    "isHidden": True,
    "calendar": {
        "timeZoneId": "America/New_York",
        "tradingSessions": [
            {"dayOfWeek": "Monday", "timeIntervals": [{"start": "09:30:00", "end": "16:00:00"}]}
        ],
        "sessionOverrides": [{"date": "2025-12-25", "timeIntervals": []}],
    },
    "fundingStartTime": "08:00:00",
    "fundingIntervalInHours": 8,
}


async def test_derivatives_and_extension_fields_round_trip(client, staff, trader, assets):
    r = await client.post(f"{BO}/markets", headers=staff, json=DERIVATIVE)
    assert r.status_code == 201, r.text
    bo = (await client.get(f"{BO}/markets/ETH-PERP", headers=staff)).json()
    assert bo["swapSettings"] == DERIVATIVE["swapSettings"]
    assert bo["tradingSessions"] == [
        {"id": "ts-1", "name": "ts-1", "status": "Inactive", "liquidityProviderId": None}
    ]
    assert [s["id"] for s in bo["marketDataSessions"]] == ["md-1", "md-2"]
    assert (
        bo["lotSize"],
        bo["minLotAmount"],
        bo["maxLotAmount"],
        bo["maxLeverage"],
        bo["isConstLeverage"],
    ) == (10, "0.5", 1000, 20, True)
    assert (bo["isOtc"], bo["isHidden"], bo["calendar"]) == (True, True, DERIVATIVE["calendar"])
    assert (bo["fundingStartTime"], bo["fundingIntervalInHours"]) == ("08:00:00", 8)
    v4 = (await client.get(f"{FO}/v4/markets/ETH-PERP", headers=trader)).json()
    assert v4 == {
        "marketId": "ETH-PERP",
        "displayName": "ETH/USDT",
        "fullName": "ETH/USDT",
        "baseAssetId": "ETH",
        "quoteAssetId": "USDT",
        "minAmount": "0.001",
        "maxBaseAmount": None,
        "priceDeviation": "0.1",
        "priceScale": 2,
        "amountScale": 3,
        "type": "Perpetual",
        "subtype": None,
        "swapSettings": {
            "type": "Percent",
            "shortPositionSettings": {"size": "0.01", "assetId": "USDT"},
            "longPositionSettings": {"size": "-0.02", "assetId": "USDT"},
        },
        "lotSize": 10,
        "minLotAmount": "0.5",
        "maxLotAmount": 1000,
        "tickSize": "0.01",
        "lotStep": "0.001",
        "slippageRate": "0.05",
        "maxLeverage": 20,
        "isConstLeverage": True,
        "calendar": DERIVATIVE["calendar"],
        "fundingStartTime": "08:00:00",
        "fundingIntervalInHours": 8,
    }


async def test_put_changes_given_fields_and_round_trips(client, staff, assets, clock, container):
    await create(client, staff)
    before = (await client.get(f"{BO}/markets/BTCUSDT", headers=staff)).json()
    clock.advance(seconds=5)
    sub = container.bus.subscribe("markets.*")
    change = {
        "status": "Halted",
        "displayName": "BTC-USDT",
        "maxBaseAmount": None,
        "subtype": None,
        "tradingSessionIds": ["ts-9"],
        "isHidden": True,
    }
    r = await client.put(f"{BO}/markets/BTCUSDT", headers=staff, json=change)
    assert r.status_code == 204 and r.content == b""
    after = (await client.get(f"{BO}/markets/BTCUSDT", headers=staff)).json()
    assert (after["status"], after["displayName"], after["maxBaseAmount"], after["subtype"]) == (
        "Halted",
        "BTC-USDT",
        None,
        None,
    )
    assert after["isHidden"] is True and [s["id"] for s in after["tradingSessions"]] == ["ts-9"]
    assert after["createdAt"] == before["createdAt"] and after["updatedAt"] > before["updatedAt"]
    unchanged = {
        k: v
        for k, v in before.items()
        if k
        not in (
            "status",
            "displayName",
            "maxBaseAmount",
            "subtype",
            "tradingSessions",
            "isHidden",
            "updatedAt",
        )
    }
    assert {k: after[k] for k in unchanged} == unchanged
    topic, event = await sub.get()
    assert topic == "markets.BTCUSDT" and event["status"] == "Halted" and event["isHidden"] is True
    # every status, back and forth
    for status in ("CloseOnly", "Active", "Halted"):
        assert (
            await client.put(f"{BO}/markets/BTCUSDT", headers=staff, json={"status": status})
        ).status_code == 204
        assert (await client.get(f"{BO}/markets/BTCUSDT", headers=staff)).json()["status"] == status


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"baseAssetId": "EUR"}, "baseAssetId"),
        ({"type": "Cfd"}, "type"),
        ({"status": "Closed"}, "status"),
        ({"tickSize": "0.001"}, "tickSize"),
        ({"priceScale": 1}, "tickSize"),
        ({"amountScale": 9}, "amountScale"),  # BTC has 8 decimals
        ({"minAmount": "200"}, "maxBaseAmount"),
        ({"slippageRate": "1"}, "slippageRate"),
        ({"priceDeviation": "-0.01"}, "priceDeviation"),
        ({"calendar": {"timeZoneId": "Nowhere/City"}}, "calendar.timeZoneId"),
        (
            {"swapSettings": {"type": "Fixed", "longPositionSettings": {"swapSize": "1", "assetId": "XXX"}}},
            "swapSettings.longPositionSettings",
        ),
        ({"minQuoteAmount": "0.0000001"}, "minQuoteAmount"),  # USDT has 6 decimals
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_put_errors_name_the_field_and_change_nothing(client, staff, assets, change, field):
    await create(client, staff)
    before = (await client.get(f"{BO}/markets/BTCUSDT", headers=staff)).json()
    r = await client.put(f"{BO}/markets/BTCUSDT", headers=staff, json=change)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert (await client.get(f"{BO}/markets/BTCUSDT", headers=staff)).json() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"baseAssetId": "DOGE"}, "baseAssetId"),
        ({"quoteAssetId": "XXX"}, "quoteAssetId"),
        ({"quoteAssetId": "BTC"}, "quoteAssetId"),
        ({"priceScale": None}, "priceScale"),
        ({"tickSize": "0"}, "tickSize"),
        ({"tickSize": "0.015"}, "tickSize"),
        ({"lotStep": "-1"}, "lotStep"),
        ({"lotStep": "0.0000001"}, "lotStep"),
        ({"minAmount": "0.00015"}, "minAmount"),
        ({"maxBaseAmount": "0.00005"}, "maxBaseAmount"),
        ({"priceDeviation": "1.5"}, "priceDeviation"),
        ({"slippageRate": 0.05}, "slippageRate"),
        ({"type": "Option"}, "type"),
        ({"marketId": "lower"}, "marketId"),
        (
            {
                "calendar": {
                    "timeZoneId": "UTC",
                    "tradingSessions": [
                        {"dayOfWeek": "Monday", "timeIntervals": [{"start": "10:00:00", "end": "09:00:00"}]}
                    ],
                }
            },
            "calendar.tradingSessions",
        ),
        ({"unknownField": 1}, "unknownField"),
    ],
)
async def test_create_errors(client, staff, assets, change, field):
    r = await client.post(f"{BO}/markets", headers=staff, json={**BTCUSDT, **change})
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert (await client.get(f"{BO}/markets", headers=staff)).json() == []


async def test_create_conflict_and_not_found(client, staff, assets):
    await create(client, staff)
    dup = await client.post(f"{BO}/markets", headers=staff, json=BTCUSDT)
    assert dup.status_code == 409
    assert (await client.get(f"{BO}/markets/NOPE", headers=staff)).status_code == 404
    assert (
        await client.put(f"{BO}/markets/NOPE", headers=staff, json={"status": "Halted"})
    ).status_code == 404
    not_object = await client.post(f"{BO}/markets", headers=staff, json=["BTC"])
    assert not_object.status_code == 400


async def test_back_office_list_shows_hidden_markets(client, staff, assets):
    await create(client, staff)
    await create(client, staff, baseAssetId="ETH", displayName="ETH/USDT", fullName="Ether", isHidden=True)
    r = await client.get(f"{BO}/markets", headers=staff)
    assert r.json() == [
        {"marketId": "BTCUSDT", "displayName": "BTC/USDT", "fullName": "Bitcoin / Tether"},
        {"marketId": "ETHUSDT", "displayName": "ETH/USDT", "fullName": "Ether"},
    ]


# --- POST /markets/list -------------------------------------------------------------------------


@pytest.fixture
async def catalogue(client, staff, assets, clock):
    specs = [
        ("BTCUSDT", "BTC", "USDT", {"marketGroupId": "majors", "calendarId": "c1", "subtype": "Main"}),
        ("ETHUSDT", "ETH", "USDT", {"marketGroupId": "majors", "status": "Halted", "subtype": "Main"}),
        ("BTCEUR", "BTC", "EUR", {"marketGroupId": "fiat", "calendarId": "c2", "status": "CloseOnly"}),
        ("ETHEUR", "ETH", "EUR", {"marketGroupId": None, "type": "Cfd", "tradingSessionIds": ["s1"]}),
        ("ETHBTC", "ETH", "BTC", {"marketGroupId": None, "isHidden": True, "marketDataSessionIds": ["m1"]}),
    ]
    for market_id, base, quote, extra in specs:
        clock.advance(seconds=1)
        fields = {
            **BTCUSDT,
            "baseAssetId": base,
            "quoteAssetId": quote,
            "displayName": f"{base}/{quote}",
            "fullName": f"{base} in {quote}",
            "calendarId": None,
            "subtype": None,
            **extra,
        }
        if quote == "EUR":
            fields["minQuoteAmount"] = "10"
        await create(client, staff, **fields)
    return [s[0] for s in specs]


async def search(client, staff, **body):
    r = await client.post(f"{BO}/markets/list", headers=staff, json=body)
    assert r.status_code == 200, r.text
    return [m["marketId"] for m in r.json()["markets"]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, ["BTCEUR", "BTCUSDT", "ETHBTC", "ETHEUR", "ETHUSDT"]),
        ({"marketIds": ["ETHUSDT", "BTCEUR", "NOPE"]}, ["BTCEUR", "ETHUSDT"]),
        ({"types": ["Cfd"]}, ["ETHEUR"]),
        ({"subtypes": ["Main"]}, ["BTCUSDT", "ETHUSDT"]),
        ({"displayNames": ["ETH/BTC"]}, ["ETHBTC"]),
        ({"fullNames": ["BTC in EUR", "ETH in EUR"]}, ["BTCEUR", "ETHEUR"]),
        ({"calendarIds": ["c2"]}, ["BTCEUR"]),
        ({"marketGroupIds": ["majors"]}, ["BTCUSDT", "ETHUSDT"]),
        # markets without a group are not excluded
        ({"excludeMarketGroupIds": ["majors"]}, ["BTCEUR", "ETHBTC", "ETHEUR"]),
        ({"baseAssetIds": ["BTC"]}, ["BTCEUR", "BTCUSDT"]),
        ({"quoteAssetIds": ["EUR", "BTC"]}, ["BTCEUR", "ETHBTC", "ETHEUR"]),
        ({"statuses": ["Halted", "CloseOnly"]}, ["BTCEUR", "ETHUSDT"]),
        ({"marketId": "eth"}, ["ETHBTC", "ETHEUR", "ETHUSDT"]),
        ({"marketId": "%"}, []),  # a LIKE wildcard is searched for literally
        ({"baseAssetIds": ["ETH"], "quoteAssetIds": ["EUR", "USDT"], "statuses": ["Active"]}, ["ETHEUR"]),
        ({"types": [], "marketIds": []}, ["BTCEUR", "BTCUSDT", "ETHBTC", "ETHEUR", "ETHUSDT"]),
        ({"tradingSessionNames": ["s1"]}, ["ETHEUR"]),
        ({"marketDataSessionNames": ["m1", "zz"]}, ["ETHBTC"]),
        ({"tradingSessionStatus": "Inactive"}, ["ETHEUR"]),
        ({"tradingSessionStatus": "Active"}, []),
        ({"marketDataSessionStatus": "Inactive"}, ["ETHBTC"]),
    ],
)
async def test_list_filters(client, staff, catalogue, body, expected):
    assert await search(client, staff, **body) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ({"field": "marketId", "direction": "Desc"}, ["ETHUSDT", "ETHEUR", "ETHBTC", "BTCUSDT", "BTCEUR"]),
        ({"field": "createdAt", "direction": "Asc"}, ["BTCUSDT", "ETHUSDT", "BTCEUR", "ETHEUR", "ETHBTC"]),
        ({"field": "createdAt", "direction": "Desc"}, ["ETHBTC", "ETHEUR", "BTCEUR", "ETHUSDT", "BTCUSDT"]),
        ({"field": "fullName"}, ["BTCEUR", "BTCUSDT", "ETHBTC", "ETHEUR", "ETHUSDT"]),
        # ties are broken by market id, in the same direction
        ({"field": "status", "direction": "Asc"}, ["BTCUSDT", "ETHBTC", "ETHEUR", "BTCEUR", "ETHUSDT"]),
        ({"field": "type", "direction": "Desc"}, ["ETHUSDT", "ETHBTC", "BTCUSDT", "BTCEUR", "ETHEUR"]),
        ({"field": "quoteAssetId"}, ["ETHBTC", "BTCEUR", "ETHEUR", "BTCUSDT", "ETHUSDT"]),
        ({"field": "displayName", "direction": "Desc"}, ["ETHUSDT", "ETHEUR", "ETHBTC", "BTCUSDT", "BTCEUR"]),
    ],
)
async def test_list_sort(client, staff, catalogue, sort, expected):
    assert await search(client, staff, sort=sort) == expected


async def test_list_paging_and_updated_at_sort(client, staff, catalogue, clock):
    assert await search(client, staff, limit=2) == ["BTCEUR", "BTCUSDT"]
    assert await search(client, staff, limit=2, offset=2) == ["ETHBTC", "ETHEUR"]
    assert await search(client, staff, limit=2, offset=4) == ["ETHUSDT"]
    assert await search(client, staff, offset=10) == []
    assert await search(client, staff, limit=0) == []
    clock.advance(seconds=10)
    await client.put(f"{BO}/markets/BTCEUR", headers=staff, json={"fullName": "renamed"})
    ids = await search(client, staff, sort={"field": "updatedAt", "direction": "Desc"})
    assert ids[0] == "BTCEUR"


async def test_list_items_have_the_spec_shape(client, staff, assets):
    await create(client, staff, maxLeverage=5)
    r = await client.post(f"{BO}/markets/list", headers=staff, json={})
    item = r.json()["markets"][0]
    one = (await client.get(f"{BO}/markets/BTCUSDT", headers=staff)).json()
    assert item == {**one, "maxLeverage": "5"}  # the spec's list shows maxLeverage as text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"offset": -5}, "offset"),
        ({"types": ["Futures"]}, "types.0"),
        ({"statuses": ["Open"]}, "statuses.0"),
        ({"sort": {"field": "volume"}}, "sort.field"),
        ({"sort": {"direction": "Up"}}, "sort.direction"),
        ({"sort": {"field": "marketId", "order": "Asc"}}, "sort.order"),
        ({"tradingSessionStatus": "Running"}, "tradingSessionStatus"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_list_refuses_bad_and_unknown_fields(client, staff, catalogue, body, field):
    r = await client.post(f"{BO}/markets/list", headers=staff, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field


# --- front office -------------------------------------------------------------------------------


async def test_front_office_lists_hide_hidden_markets(client, staff, trader, catalogue):
    v3 = (await client.get(f"{FO}/v3/markets", headers=trader)).json()
    assert v3 == [
        {"marketId": "BTCEUR", "displayName": "BTC/EUR"},
        {"marketId": "BTCUSDT", "displayName": "BTC/USDT"},
        {"marketId": "ETHEUR", "displayName": "ETH/EUR"},
        {"marketId": "ETHUSDT", "displayName": "ETH/USDT"},
    ]
    v4 = (await client.get(f"{FO}/v4/markets", headers=trader)).json()
    assert v4[2] == {
        "marketId": "ETHEUR",
        "displayName": "ETH/EUR",
        "fullName": "ETH in EUR",
        "type": "Cfd",
        "subtype": None,
    }
    assert [m["marketId"] for m in v4] == [m["marketId"] for m in v3]
    # Categories are the back office's tree (test_categories.py); none is stored here.
    categories = (await client.get(f"{FO}/v4/markets-categories", headers=trader)).json()
    assert categories == {"categories": []}


async def test_front_office_market_details(client, staff, trader, catalogue):
    r = await client.get(f"{FO}/v3/markets/BTCUSDT", headers=trader)
    assert r.json() == {
        "marketId": "BTCUSDT",
        "displayName": "BTC/USDT",
        "baseAssetId": "BTC",
        "quoteAssetId": "USDT",
        "minAmount": "0.0001",
        "priceDeviation": "0.1",
        "priceScale": 2,
        "amountScale": 6,
        "status": "Active",
        "side": "Both",
        "isHidden": False,
    }
    halted = (await client.get(f"{FO}/v3/markets/ETHUSDT", headers=trader)).json()
    assert (halted["status"], halted["side"]) == ("Halted", "None")
    # hidden: not listed, but readable by id
    hidden = await client.get(f"{FO}/v3/markets/ETHBTC", headers=trader)
    assert hidden.status_code == 200 and hidden.json()["isHidden"] is True
    assert (await client.get(f"{FO}/v4/markets/ETHBTC", headers=trader)).status_code == 200
    v4 = (await client.get(f"{FO}/v4/markets/BTCUSDT", headers=trader)).json()
    assert (v4["maxBaseAmount"], v4["tickSize"], v4["lotStep"], v4["calendar"], v4["swapSettings"]) == (
        "100",
        "0.01",
        "0.0001",
        None,
        None,
    )
    for path in ("v3/markets/NOPE", "v4/markets/NOPE"):
        assert (await client.get(f"{FO}/{path}", headers=trader)).status_code == 404


async def test_info(client, trader, clock):
    clock.current = clock.current.replace(microsecond=987654)
    r = await client.get(f"{FO}/v3/info", headers=trader)
    now = clock.now()
    assert r.json() == {"serverTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + "987Z", "serverTimeZone": "UTC"}


# --- who may call what --------------------------------------------------------------------------

ROUTES = [
    ("GET", f"{BO}/markets", None),
    ("POST", f"{BO}/markets", BTCUSDT),
    ("POST", f"{BO}/markets/list", {}),
    ("GET", f"{BO}/markets/BTCUSDT", None),
    ("PUT", f"{BO}/markets/BTCUSDT", {"status": "Halted"}),
]
FRONT = [
    f"{FO}/v3/markets",
    f"{FO}/v3/markets/BTCUSDT",
    f"{FO}/v4/markets",
    f"{FO}/v4/markets/BTCUSDT",
    f"{FO}/v4/markets-categories",
    f"{FO}/v3/info",
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_back_office_routes_refuse_traders_and_anonymous(client, trader, method, path, body):
    assert (await client.request(method, path, json=body)).status_code == 401
    assert (await client.request(method, path, json=body, headers=trader)).status_code == 403


@pytest.mark.parametrize("path", FRONT)
async def test_front_office_routes_need_trading_ui(client, container, path):
    assert (await client.get(path)).status_code == 401
    await container.identity.create_user("sup", "support-pass-1", roles=(Role.SUPPORT,))
    support = bearer(await login(client, "sup", "support-pass-1"))
    assert (await client.get(path, headers=support)).status_code == 403


async def test_view_common_reads_but_cannot_manage(client, container, staff, assets):
    await create(client, staff)
    await container.identity.create_user("sup", "support-pass-1", roles=(Role.SUPPORT,))
    support = bearer(await login(client, "sup", "support-pass-1"))
    assert (await client.get(f"{BO}/markets/BTCUSDT", headers=support)).status_code == 200
    assert (await client.post(f"{BO}/markets/list", headers=support, json={})).status_code == 200
    assert (
        await client.put(f"{BO}/markets/BTCUSDT", headers=support, json={"status": "Halted"})
    ).status_code == 403
    assert (await client.post(f"{BO}/markets", headers=support, json=BTCUSDT)).status_code == 403


async def test_changes_are_audited(container, client, staff, assets):
    await create(client, staff)
    await client.put(f"{BO}/markets/BTCUSDT", headers=staff, json={"status": "Halted"})
    async with container.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT actor, action, subject, details->>'status' FROM audit_log WHERE subject = 'market:BTCUSDT'"
                " ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("ops", "market.created", "market:BTCUSDT", "Active"),
        ("ops", "market.updated", "market:BTCUSDT", "Halted"),
    ]


async def test_the_spec_content_type_is_accepted(client, staff, assets):
    headers = {**staff, "Content-Type": "application/json; x-api-version=2.0"}
    body = '{"baseAssetId": "BTC", "quoteAssetId": "USDT", "priceScale": 2, "amountScale": 6}'
    r = await client.post(f"{BO}/markets", headers=headers, content=body)
    assert r.status_code == 201, r.text
    r = await client.post(f"{BO}/markets/list", headers=headers, content='{"marketId": "btc"}')
    assert [m["marketId"] for m in r.json()["markets"]] == ["BTCUSDT"]
