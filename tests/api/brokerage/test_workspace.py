"""Front office v3 trader workspace over HTTP: settings, layouts, templates; spec shapes, validation,
permissions and one trader never reaching another's workspace."""

from __future__ import annotations

import asyncio
import copy

import pytest

from bourse.domain.identity import Role
from bourse.domain.workspace import MAX_LAYOUT_BYTES, MAX_LAYOUTS_PER_USER
from tests.conftest import bearer, login
from tests.integration.trading.support import make_market

UI = "/frontoffice/api/v3/ui"


async def _user(client, container, name, roles=(Role.TRADER,)):
    await container.identity.create_user(name, f"{name}-pass-123", roles=roles)
    return bearer(await login(client, name, f"{name}-pass-123"))


@pytest.fixture
async def alice(client, container):
    return await _user(client, container, "alice")


@pytest.fixture
async def bob(client, container):
    return await _user(client, container, "bob")


@pytest.fixture
async def market(container):
    return await make_market(container)


def tab(tab_id="t1", widgets=None, selected="w1", **sizes):
    return {
        "id": tab_id,
        "selectedWidgetId": selected,
        "sizes": {"x": 0, "y": 0, "cols": 6, "rows": 4, "layerIndex": 0, **sizes},
        "widgets": widgets
        if widgets is not None
        else [
            {"id": "w1", "type": "BbpFavorites", "settings": {"pairs": ["BTCUSDT"]}},
            {"id": "w2", "type": "Chart"},
        ],
    }


def layout(layout_id="main", name="Main", tabs=None):
    return {"id": layout_id, "name": name, "tabs": tabs if tabs is not None else [tab()]}


async def create(client, who, body):
    r = await client.post(f"{UI}/layouts", headers=who, json=body)
    assert r.status_code == 201, r.text
    assert r.content == b""


async def layouts(client, who):
    r = await client.get(f"{UI}/layouts", headers=who)
    assert r.status_code == 200, r.text
    return r.json()["layouts"]


# --- settings ---------------------------------------------------------------------------------


async def test_settings_start_at_the_defaults_and_patch_changes_only_given_fields(client, alice, market):
    r = await client.get(f"{UI}/settings", headers=alice)
    assert r.status_code == 200
    assert r.json() == {
        "selectedLayoutId": None,
        "isIntroductionTourCompleted": False,
        "is24HTimeFormatUsed": True,
        "theme": "Dark",
    }

    r = await client.patch(f"{UI}/settings", headers=alice, json={"theme": "Light"})
    assert r.status_code == 204 and r.content == b""
    r = await client.patch(f"{UI}/settings", headers=alice, json={"isIntroductionTourCompleted": True})
    assert r.status_code == 204
    await create(client, alice, layout())
    r = await client.patch(
        f"{UI}/settings", headers=alice, json={"selectedLayoutId": "main", "is24HTimeFormatUsed": False}
    )
    assert r.status_code == 204
    assert (await client.get(f"{UI}/settings", headers=alice)).json() == {
        "selectedLayoutId": "main",
        "isIntroductionTourCompleted": True,
        "is24HTimeFormatUsed": False,
        "theme": "Light",
    }
    # null clears the selection; the other fields stay
    assert (
        await client.patch(f"{UI}/settings", headers=alice, json={"selectedLayoutId": None})
    ).status_code == 204
    got = (await client.get(f"{UI}/settings", headers=alice)).json()
    assert got["selectedLayoutId"] is None and got["theme"] == "Light" and got["is24HTimeFormatUsed"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"theme": "Neon"}, "theme"),
        ({"theme": None}, "theme"),
        ({"isIntroductionTourCompleted": "yes"}, "isIntroductionTourCompleted"),
        ({"is24HTimeFormatUsed": 1}, "is24HTimeFormatUsed"),
        ({"selectedLayoutId": "nope"}, "selectedLayoutId"),
        ({"selectedLayoutId": 5}, "selectedLayoutId"),
        ({"colour": "red"}, "colour"),
        ([], "body"),
    ],
)
async def test_bad_settings_are_400_and_change_nothing(client, alice, body, field):
    r = await client.patch(f"{UI}/settings", headers=alice, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert (await client.get(f"{UI}/settings", headers=alice)).json()["theme"] == "Dark"


async def test_malformed_json_is_400(client, alice):
    r = await client.patch(
        f"{UI}/settings", headers={**alice, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "body"


async def test_another_users_layout_cannot_be_selected(client, alice, bob, market):
    await create(client, bob, layout("bobs"))
    r = await client.patch(f"{UI}/settings", headers=alice, json={"selectedLayoutId": "bobs"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "selectedLayoutId"


# --- layouts ----------------------------------------------------------------------------------


async def test_layout_lifecycle_with_spec_shapes(client, alice, market):
    assert await layouts(client, alice) == []
    await create(client, alice, layout("main", "Main"))
    await create(client, alice, layout("scalp", "Scalping", [tab("t9", [{"id": "w1", "type": "OrderBook"}])]))
    got = await layouts(client, alice)
    assert got == [
        {
            "id": "main",
            "name": "Main",
            "tabs": [
                {
                    "id": "t1",
                    "selectedWidgetId": "w1",
                    "sizes": {"x": 0, "y": 0, "cols": 6, "rows": 4, "layerIndex": 0},
                    "widgets": [
                        {"id": "w1", "type": "BbpFavorites", "settings": {"pairs": ["BTCUSDT"]}},
                        {"id": "w2", "type": "Chart"},
                    ],
                }
            ],
        },
        {
            "id": "scalp",
            "name": "Scalping",
            "tabs": [
                {
                    "id": "t9",
                    "selectedWidgetId": "w1",
                    "sizes": {"x": 0, "y": 0, "cols": 6, "rows": 4, "layerIndex": 0},
                    "widgets": [{"id": "w1", "type": "OrderBook"}],
                }
            ],
        },
    ]

    new_tabs = [tab("a", [{"id": "x", "type": "Trades"}], "x", x=3, y=2, layerIndex=1), tab("b", [], None)]
    r = await client.put(f"{UI}/layouts/main", headers=alice, json={"tabs": new_tabs})
    assert r.status_code == 204 and r.content == b""
    r = await client.put(f"{UI}/layouts/main/name", headers=alice, json={"name": "  Day  "})
    assert r.status_code == 204
    main = (await layouts(client, alice))[0]
    assert main["name"] == "Day"
    assert [t["id"] for t in main["tabs"]] == ["a", "b"]
    assert main["tabs"][0]["sizes"] == {"x": 3, "y": 2, "cols": 6, "rows": 4, "layerIndex": 1}
    assert main["tabs"][1] == {
        "id": "b",
        "selectedWidgetId": None,
        "sizes": {"x": 0, "y": 0, "cols": 6, "rows": 4, "layerIndex": 0},
        "widgets": [],
    }

    r = await client.put(f"{UI}/layouts/order", headers=alice, json={"layoutOrder": ["scalp", "main"]})
    assert r.status_code == 204
    assert [x["id"] for x in await layouts(client, alice)] == ["scalp", "main"]

    await client.patch(f"{UI}/settings", headers=alice, json={"selectedLayoutId": "main"})
    r = await client.delete(f"{UI}/layouts/main", headers=alice)
    assert r.status_code == 204
    assert [x["id"] for x in await layouts(client, alice)] == ["scalp"]
    # the deleted layout was selected: the selection is cleared, not left dangling
    assert (await client.get(f"{UI}/settings", headers=alice)).json()["selectedLayoutId"] is None
    assert (await client.delete(f"{UI}/layouts/main", headers=alice)).status_code == 404
    # a new layout goes last
    await create(client, alice, layout("main", "Again"))
    assert [x["id"] for x in await layouts(client, alice)] == ["scalp", "main"]


async def test_layout_ids_are_unique_per_user_but_not_across_users(client, alice, bob, market):
    await create(client, alice, layout("main"))
    dup = await client.post(f"{UI}/layouts", headers=alice, json=layout("main", "Other"))
    assert dup.status_code == 409 and dup.json()["details"]["field"] == "id"
    await create(client, bob, layout("main", "Bob's"))
    assert [x["name"] for x in await layouts(client, alice)] == ["Main"]
    assert [x["name"] for x in await layouts(client, bob)] == ["Bob's"]


def _deep(n):
    return [tab(f"t{i}") for i in range(n)]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("id"), "id"),
        (lambda b: b.update(id=""), "id"),
        (lambda b: b.update(id="has space"), "id"),
        (lambda b: b.update(id="order"), "id"),
        (lambda b: b.update(name=""), "name"),
        (lambda b: b.update(name="x" * 65), "name"),
        (lambda b: b.update(extra=1), "extra"),
        (lambda b: b.update(tabs={}), "tabs"),
        (lambda b: b.update(tabs=_deep(21)), "tabs"),
        (lambda b: b["tabs"].append(tab("t1")), "tabs[1].id"),
        (lambda b: b["tabs"][0].pop("sizes"), "tabs[0].sizes"),
        (lambda b: b["tabs"][0]["sizes"].pop("layerIndex"), "tabs[0].sizes.layerIndex"),
        (lambda b: b["tabs"][0]["sizes"].update(x=-1), "tabs[0].sizes.x"),
        (lambda b: b["tabs"][0]["sizes"].update(y=1.5), "tabs[0].sizes.y"),
        (lambda b: b["tabs"][0]["sizes"].update(cols=0), "tabs[0].sizes.cols"),
        (lambda b: b["tabs"][0]["sizes"].update(rows="2"), "tabs[0].sizes.rows"),
        (lambda b: b["tabs"][0]["sizes"].update(layerIndex=True), "tabs[0].sizes.layerIndex"),
        (lambda b: b["tabs"][0]["sizes"].update(depth=1), "tabs[0].sizes.depth"),
        (lambda b: b["tabs"][0].update(selectedWidgetId="ghost"), "tabs[0].selectedWidgetId"),
        (lambda b: b["tabs"][0]["widgets"][1].update(type="Casino"), "tabs[0].widgets[1].type"),
        (lambda b: b["tabs"][0]["widgets"][1].update(id="w1"), "tabs[0].widgets[1].id"),
        (
            lambda b: b["tabs"][0]["widgets"][0]["settings"].update(pairs=["btc/usdt"]),
            "tabs[0].widgets[0].settings.pairs[0]",
        ),
        (
            lambda b: b["tabs"][0]["widgets"][0]["settings"].update(pairs=["BTCUSDT", "BTCUSDT"]),
            "tabs[0].widgets[0].settings.pairs[1]",
        ),
        (
            lambda b: b["tabs"][0]["widgets"][0]["settings"].update(pairs=["NOPEUSDT"]),
            "tabs[0].widgets[0].settings.pairs[0]",
        ),
        (
            lambda b: b["tabs"][0]["widgets"][0]["settings"].update(colour="red"),
            "tabs[0].widgets[0].settings.colour",
        ),
    ],
)
async def test_invalid_layouts_are_400_naming_the_field(client, alice, market, mutate, field):
    body = copy.deepcopy(layout())
    mutate(body)
    r = await client.post(f"{UI}/layouts", headers=alice, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert await layouts(client, alice) == []


async def test_a_layout_over_64_kib_is_refused(client, alice, market):
    widgets = [{"id": f"w{i}-" + "x" * 60, "type": "Chart"} for i in range(50)]
    tabs = [tab(f"t{i}", widgets, None) for i in range(20)]
    body = layout(tabs=tabs)
    r = await client.post(f"{UI}/layouts", headers=alice, json=body)
    assert r.status_code == 400 and r.json()["details"]["field"] == "tabs"
    assert str(MAX_LAYOUT_BYTES) in r.json()["message"]
    # the same tabs cannot get in through PUT either
    await create(client, alice, layout())
    r = await client.put(f"{UI}/layouts/main", headers=alice, json={"tabs": tabs})
    assert r.status_code == 400
    assert [t["id"] for t in (await layouts(client, alice))[0]["tabs"]] == ["t1"]


async def test_an_oversized_body_is_refused_before_parsing(client, alice):
    r = await client.post(
        f"{UI}/layouts",
        headers={**alice, "Content-Type": "application/json"},
        content=b" " * (5 * MAX_LAYOUT_BYTES) + b"{}",
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "body"


async def test_at_most_50_layouts_per_user_even_when_created_concurrently(client, alice, bob):
    for i in range(MAX_LAYOUTS_PER_USER - 5):
        await create(client, alice, layout(f"l{i}", tabs=[]))
    results = await asyncio.gather(
        *(client.post(f"{UI}/layouts", headers=alice, json=layout(f"c{i}", tabs=[])) for i in range(12))
    )
    assert sorted(r.status_code for r in results) == [201] * 5 + [400] * 7
    assert len(await layouts(client, alice)) == MAX_LAYOUTS_PER_USER
    assert {r.json()["code"] for r in results if r.status_code == 400} == {"rejected"}
    # another user's limit is their own
    await create(client, bob, layout("b1", tabs=[]))


async def test_put_and_rename_validate(client, alice, market):
    await create(client, alice, layout())
    r = await client.put(f"{UI}/layouts/main", headers=alice, json={"name": "x"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "name"
    r = await client.put(f"{UI}/layouts/main", headers=alice, json={})
    assert r.status_code == 400 and r.json()["details"]["field"] == "tabs"
    r = await client.put(f"{UI}/layouts/main/name", headers=alice, json={"name": 7})
    assert r.status_code == 400 and r.json()["details"]["field"] == "name"
    assert (
        await client.put(f"{UI}/layouts/ghost/name", headers=alice, json={"name": "x"})
    ).status_code == 404
    assert (await client.put(f"{UI}/layouts/ghost", headers=alice, json={"tabs": []})).status_code == 404


async def test_order_must_list_each_own_layout_once(client, alice, bob, market):
    for name in ("a", "b", "c"):
        await create(client, alice, layout(name, tabs=[]))
    await create(client, bob, layout("z", tabs=[]))
    cases = [
        ({"layoutOrder": ["a", "b"]}, 400, "layoutOrder"),
        ({"layoutOrder": ["a", "b", "c", "c"]}, 400, "layoutOrder"),
        ({"layoutOrder": ["a", "b", "z"]}, 404, "layoutOrder[2]"),
        ({"layoutOrder": "a,b,c"}, 400, "layoutOrder"),
        ({}, 400, "layoutOrder"),
    ]
    for body, status, field in cases:
        r = await client.put(f"{UI}/layouts/order", headers=alice, json=body)
        assert (r.status_code, r.json()["details"]["field"]) == (status, field), body
    assert [x["id"] for x in await layouts(client, alice)] == ["a", "b", "c"]


async def test_one_trader_never_reaches_anothers_layouts(client, alice, bob, market):
    await create(client, bob, layout("secret", "Bob's"))
    assert await layouts(client, alice) == []
    assert (await client.put(f"{UI}/layouts/secret", headers=alice, json={"tabs": []})).status_code == 404
    assert (
        await client.put(f"{UI}/layouts/secret/name", headers=alice, json={"name": "mine"})
    ).status_code == 404
    assert (await client.delete(f"{UI}/layouts/secret", headers=alice)).status_code == 404
    r = await client.put(f"{UI}/layouts/order", headers=alice, json={"layoutOrder": ["secret"]})
    assert r.status_code == 404
    await client.patch(f"{UI}/settings", headers=alice, json={"theme": "Light"})
    # Bob's layout and settings are untouched
    (bobs,) = await layouts(client, bob)
    assert bobs["name"] == "Bob's" and len(bobs["tabs"]) == 1
    assert (await client.get(f"{UI}/settings", headers=bob)).json()["theme"] == "Dark"


# --- templates --------------------------------------------------------------------------------


async def test_templates_are_the_platforms_with_one_default(client, alice):
    r = await client.get(f"{UI}/templates", headers=alice)
    assert r.status_code == 200
    templates = r.json()["templates"]
    assert [t["id"] for t in templates] == ["standard", "compact", "market-watch"]
    assert [t["isDefault"] for t in templates] == [True, False, False]
    for t in templates:
        assert set(t) == {"id", "name", "isDefault", "tabs"}
        for tb in t["tabs"]:
            assert set(tb) == {"id", "selectedWidgetId", "sizes", "widgets"}
            assert tb["selectedWidgetId"] in {w["id"] for w in tb["widgets"]}
            # a template is a valid layout: it can be stored as one as it is
    standard = templates[0]
    await create(client, alice, {"id": "from-template", "name": standard["name"], "tabs": standard["tabs"]})
    assert (await layouts(client, alice))[0]["tabs"] == standard["tabs"]


# --- permissions ------------------------------------------------------------------------------

ROUTES = [
    ("GET", f"{UI}/settings", None),
    ("PATCH", f"{UI}/settings", {"theme": "Light"}),
    ("GET", f"{UI}/layouts", None),
    ("POST", f"{UI}/layouts", {"id": "x", "name": "x", "tabs": []}),
    ("PUT", f"{UI}/layouts/x", {"tabs": []}),
    ("DELETE", f"{UI}/layouts/x", None),
    ("PUT", f"{UI}/layouts/x/name", {"name": "y"}),
    ("PUT", f"{UI}/layouts/order", {"layoutOrder": []}),
    ("GET", f"{UI}/templates", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_needs_trading_ui(client, container, method, path, body):
    r = await client.request(method, path, json=body)
    assert r.status_code == 401
    support = await _user(client, container, "helpdesk", roles=(Role.SUPPORT,))
    r = await client.request(method, path, json=body, headers=support)
    assert r.status_code == 403
