"""Market categories: the back office's tree (GET/PUT) and the traders' view of it."""

import asyncio

import pytest

from bourse.domain.categories import MAX_DEPTH
from bourse.domain.identity import Role
from tests.conftest import bearer, login

BO = "/back-api/backoffice/v2/markets-categories"
FO = "/frontoffice/api/v4/markets-categories"


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


@pytest.fixture
async def trader(client, container):
    await container.identity.create_user("alice", "alice-pass-1")
    return bearer(await login(client, "alice", "alice-pass-1"))


@pytest.fixture
async def support(client, container):
    await container.identity.create_user("sup", "support-pass-1", roles=(Role.SUPPORT,))
    return bearer(await login(client, "sup", "support-pass-1"))


@pytest.fixture
async def markets(client, container, staff):
    for asset, scale in (("BTC", 8), ("ETH", 8), ("USDT", 6)):
        await container.ledger.create_asset(asset, asset, scale, "Crypto")
    for base, quote, hidden in (("BTC", "USDT", False), ("ETH", "USDT", False), ("ETH", "BTC", True)):
        body = {
            "baseAssetId": base,
            "quoteAssetId": quote,
            "priceScale": 2,
            "amountScale": 4,
            "fullName": f"{base} in {quote}",
            "isHidden": hidden,
        }
        r = await client.post("/back-api/backoffice/v2/markets", headers=staff, json=body)
        assert r.status_code == 201, r.text


TREE = {
    "categories": [
        {
            "id": "crypto",
            "name": "Crypto",
            "markets": ["ETHUSDT", "BTCUSDT"],
            "categories": [
                {"id": "alts", "name": "Alts", "markets": ["ETHBTC", "ETHUSDT"], "categories": []},
                {"id": "empty", "name": "Nothing yet"},
            ],
        },
        {"id": "majors", "name": "Majors", "markets": ["BTCUSDT"], "categories": []},
    ]
}


def ref(market_id):
    base, quote = market_id[:3], market_id[3:]
    return {"id": market_id, "displayName": f"{base}/{quote}", "fullName": f"{base} in {quote}"}


STORED = {
    "categories": [
        {
            "id": "crypto",
            "name": "Crypto",
            "markets": [ref("ETHUSDT"), ref("BTCUSDT")],
            "categories": [
                {
                    "id": "alts",
                    "name": "Alts",
                    "markets": [ref("ETHBTC"), ref("ETHUSDT")],
                    "categories": [],
                },
                {"id": "empty", "name": "Nothing yet", "markets": [], "categories": []},
            ],
        },
        {"id": "majors", "name": "Majors", "markets": [ref("BTCUSDT")], "categories": []},
    ]
}


async def test_no_tree_until_one_is_stored(client, staff, trader):
    assert (await client.get(BO, headers=staff)).json() == {"categories": []}
    assert (await client.get(FO, headers=trader)).json() == {"categories": []}


async def test_put_stores_the_tree_in_order_and_get_returns_it(client, staff, markets):
    r = await client.put(BO, headers=staff, json=TREE)
    assert r.status_code == 200, r.text
    assert r.json() == STORED
    assert (await client.get(BO, headers=staff)).json() == STORED


async def test_front_office_shows_the_tree_without_hidden_markets(client, staff, trader, markets):
    await client.put(BO, headers=staff, json=TREE)
    r = await client.get(FO, headers=trader)
    assert r.status_code == 200
    assert r.json() == {
        "categories": [
            {
                "id": "crypto",
                "name": "Crypto",
                "categories": [
                    {"id": "alts", "name": "Alts", "categories": [], "markets": ["ETHUSDT"]},
                    {"id": "empty", "name": "Nothing yet", "categories": [], "markets": []},
                ],
                "markets": ["ETHUSDT", "BTCUSDT"],
            },
            {"id": "majors", "name": "Majors", "categories": [], "markets": ["BTCUSDT"]},
        ]
    }


async def test_a_put_replaces_the_whole_tree(client, staff, markets):
    await client.put(BO, headers=staff, json=TREE)
    new = {"categories": [{"id": "alts", "name": "Alts only", "markets": ["BTCUSDT"]}]}
    r = await client.put(BO, headers=staff, json=new)
    assert r.json() == {
        "categories": [{"id": "alts", "name": "Alts only", "markets": [ref("BTCUSDT")], "categories": []}]
    }
    assert (await client.put(BO, headers=staff, json={"categories": []})).json() == {"categories": []}
    assert (await client.get(BO, headers=staff)).json() == {"categories": []}


async def test_a_category_without_an_id_gets_one(client, staff, markets):
    r = await client.put(BO, headers=staff, json={"categories": [{"name": "New", "markets": ["BTCUSDT"]}]})
    assert r.status_code == 200
    category = r.json()["categories"][0]
    assert category["name"] == "New" and len(category["id"]) == 32
    assert (await client.get(BO, headers=staff)).json() == r.json()


async def test_unknown_markets_are_refused_naming_them_and_nothing_changes(client, staff, markets):
    await client.put(BO, headers=staff, json=TREE)
    bad = {
        "categories": [
            {"id": "a", "name": "A", "markets": ["BTCUSDT"]},
            {
                "id": "b",
                "name": "B",
                "categories": [{"id": "c", "name": "C", "markets": ["BTCUSDT", "NOPE", "GONE"]}],
            },
        ]
    }
    r = await client.put(BO, headers=staff, json=bad)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid_input"
    assert body["details"]["field"] == "categories.1.categories.0.markets.1"
    assert body["details"]["markets"] == ["GONE", "NOPE"]
    assert "NOPE" in body["message"]
    assert (await client.get(BO, headers=staff)).json() == STORED


@pytest.mark.parametrize(
    ("tree", "field"),
    [
        (
            {
                "categories": [
                    {"id": "x", "name": "X"},
                    {"id": "y", "name": "Y", "categories": [{"id": "x", "name": "X2"}]},
                ]
            },
            "categories.1.categories.0.id",
        ),
        (
            {"categories": [{"id": "x", "name": "X", "markets": ["BTCUSDT", "BTCUSDT"]}]},
            "categories.0.markets.1",
        ),
        ({"categories": [{"id": "x", "name": " "}]}, "categories.0.name"),
        ({"categories": [{"id": "x"}]}, "categories.0.name"),
        ({"categories": [{"id": "bad id!", "name": "X"}]}, "categories.0.id"),
        ({"categories": [{"id": "x", "name": "X", "colour": "red"}]}, "categories.0.colour"),
        ({"categories": [{"id": "x", "name": "X", "markets": "BTCUSDT"}]}, "categories.0.markets"),
        ({"categories": [{"id": "x", "name": "X", "markets": [7]}]}, "categories.0.markets.0"),
        ({"categories": {"id": "x"}}, "categories"),
        ({"tree": []}, "tree"),
        ({}, "categories"),
    ],
)
async def test_bad_trees_are_refused_naming_the_field(client, staff, markets, tree, field):
    await client.put(BO, headers=staff, json=TREE)
    r = await client.put(BO, headers=staff, json=tree)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert (await client.get(BO, headers=staff)).json() == STORED


def nested(depth):
    node = {"id": f"level{depth}", "name": f"Level {depth}", "markets": ["BTCUSDT"]}
    for level in range(depth - 1, 0, -1):
        node = {"id": f"level{level}", "name": f"Level {level}", "categories": [node]}
    return {"categories": [node]}


async def test_depth_limit(client, staff, markets):
    assert (await client.put(BO, headers=staff, json=nested(MAX_DEPTH))).status_code == 200
    r = await client.put(BO, headers=staff, json=nested(MAX_DEPTH + 1))
    assert r.status_code == 400
    assert r.json()["details"]["field"] == "categories.0" + ".categories.0" * (MAX_DEPTH - 1) + ".categories"
    # the tree stored before is still the one of depth MAX_DEPTH
    tree = (await client.get(BO, headers=staff)).json()
    for _ in range(MAX_DEPTH - 1):
        tree = tree["categories"][0]
    assert tree["categories"][0]["id"] == f"level{MAX_DEPTH}"


async def test_concurrent_replacements_never_mix(client, staff, markets):
    one = {"categories": [{"id": f"a{i}", "name": f"A{i}", "markets": ["BTCUSDT"]} for i in range(30)]}
    two = {"categories": [{"id": f"b{i}", "name": f"B{i}", "markets": ["ETHUSDT"]} for i in range(30)]}
    results = await asyncio.gather(*(client.put(BO, headers=staff, json=t) for t in (one, two, one, two)))
    assert all(r.status_code == 200 for r in results)
    stored = (await client.get(BO, headers=staff)).json()
    ids = [c["id"] for c in stored["categories"]]
    assert ids in ([f"a{i}" for i in range(30)], [f"b{i}" for i in range(30)])


async def test_replacements_are_audited(client, container, staff, markets):
    await client.put(BO, headers=staff, json=TREE)
    async with container.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT actor, details->>'categories', details->>'markets' FROM audit_log"
                " WHERE action = 'market_categories.replaced'"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("ops", "4", "3")]


async def test_permissions(client, trader, support):
    for method, path, body in (("GET", BO, None), ("PUT", BO, {"categories": []})):
        assert (await client.request(method, path, json=body)).status_code == 401
        assert (await client.request(method, path, json=body, headers=trader)).status_code == 403
    # view-common reads the tree; changing it needs manage-markets-categories
    assert (await client.get(BO, headers=support)).status_code == 200
    assert (await client.put(BO, headers=support, json={"categories": []})).status_code == 403
    assert (await client.get(FO)).status_code == 401
    assert (await client.get(FO, headers=support)).status_code == 403
