"""Margin assets and margin levels over HTTP."""

from __future__ import annotations

import pytest

from bourse.service.context import RequestMeta
from tests.api.derivatives.support import FO, JSON_V4, V4, make_trader
from tests.integration.derivatives.support import make_cfd
from tests.integration.trading.support import ADMIN, BTC, USDT, D, deposit

ASSETS = f"{V4}/account-margin-settings/assets"


@pytest.fixture
async def market(container):
    market_id = await make_cfd(container)
    await container.derivatives.set_margin_ratio("test", "USDT", D(1))
    await container.derivatives.set_margin_ratio("test", "BTC", D("0.9"))
    return market_id


@pytest.fixture
async def alice(client, container, market):
    who = await make_trader(client, container, "alice")
    await deposit(container, who.account_id, BTC, D("0.5"))
    return who


async def _assets(client, headers):
    r = await client.get(ASSETS, headers=headers)
    assert r.status_code == 200, r.text
    return {a["assetId"]: a for a in r.json()["assets"]}


async def test_margin_assets_list_select_and_unselect(client, alice):
    assets = await _assets(client, alice.headers)
    assert assets == {
        "BTC": {
            "assetId": "BTC",
            "assetName": "BTC",
            "available": "0.5",
            "total": "0.5",
            "marginRatio": "0.9",
            "isSelected": False,
        },
        "USDT": {
            "assetId": "USDT",
            "assetName": "USDT",
            "available": "1000",
            "total": "1000",
            "marginRatio": "1",
            "isSelected": True,  # the root asset counts unless unselected
        },
    }
    r = await client.post(f"{ASSETS}/BTC", headers={**alice.headers, **JSON_V4}, json={})
    assert r.status_code == 200 and r.json() == {}
    r = await client.delete(f"{ASSETS}/USDT", headers=alice.headers)
    assert r.status_code == 200 and r.json() == {}
    assets = await _assets(client, alice.headers)
    assert (assets["BTC"]["isSelected"], assets["USDT"]["isSelected"]) == (True, False)
    # Without the header: the caller's default account (the same one here).
    no_header = {k: v for k, v in alice.headers.items() if k != "accountId"}
    assert (await _assets(client, no_header))["BTC"]["isSelected"] is True


async def test_an_asset_without_a_ratio_cannot_be_selected(client, alice):
    r = await client.post(f"{ASSETS}/ETH", headers=alice.headers)
    assert r.status_code == 400 and r.json()["code"] == "margin_asset_unavailable"
    r = await client.post(f"{ASSETS}/NOPE", headers=alice.headers)
    assert r.status_code == 404
    r = await client.delete(f"{ASSETS}/NOPE", headers=alice.headers)
    assert r.status_code == 404


async def test_selected_collateral_counts_in_the_margin_level(client, container, alice):
    # BTC has no RAT price without a BTC/USDT trade: selecting it changes nothing until there is one.
    body = {
        "order": {
            "marketId": "BTCCFD",
            "orderType": "Limit",
            "side": "Buy",
            "requestedPrice": "100",
            "requestedLotAmount": "2",
            "leverage": 10,
        }
    }
    r = await client.post(f"{FO}/cfd/v4/order-data", headers=alice.headers, json=body)
    assert r.json()["order"]["marginLevel"] == "49.99"
    await client.delete(f"{ASSETS}/USDT", headers=alice.headers)
    r = await client.post(f"{FO}/cfd/v4/order-data", headers=alice.headers, json=body)
    assert r.json()["order"]["marginLevel"] == "0"  # nothing selected counts: equity 0


async def test_another_account_in_the_header_is_not_found(client, container, alice):
    bob = await make_trader(client, container, "bob")
    r = await client.post(f"{ASSETS}/BTC", headers={**bob.headers, "accountId": alice.account_id})
    assert r.status_code == 404
    r = await client.get(ASSETS, headers={**bob.headers, "accountId": alice.account_id})
    assert r.status_code == 404


async def test_margin_levels_come_from_the_account_group(client, container, alice):
    r = await client.get(f"{FO}/v3/margin-levels", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"marginCallLevel": "1", "stopOutLevel": "0.5"}
    await container.account_groups.create(
        ADMIN, {"id": "vip", "name": "VIP", "marginCallLevel": "1.5", "stopOutLevel": "0.8"}, RequestMeta()
    )
    await container.account_groups.assign(ADMIN, alice.account_id, "vip", RequestMeta())
    no_header = {k: v for k, v in alice.headers.items() if k != "accountId"}
    r = await client.get(f"{FO}/v3/margin-levels", headers=no_header)
    assert r.json() == {"marginCallLevel": "1.5", "stopOutLevel": "0.8"}


async def test_margin_ratio_rules(container, market):
    from bourse.domain.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput):
        await container.derivatives.set_margin_ratio("test", "BTC", D("1.5"))
    with pytest.raises(NotFound):
        await container.derivatives.set_margin_ratio("test", "NOPE", D("0.5"))
    assert (await container.derivatives.margin_ratios())[USDT] == 1
