"""Commission profiles and rules: back-office routes in the spec's shapes, and what trading reads."""

import asyncio
from decimal import Decimal

import pytest

from bourse.domain.fees import FeeType, commission
from bourse.domain.identity import Role
from bourse.domain.values import AccountId
from tests.conftest import bearer, login

BO = "/back-api/backoffice/v2"
RULES = f"{BO}/commission-profiles/default/rules"

DEFAULT_RULE = {
    "commissionProfileRuleId": "default",
    "priority": 1,
    "isDefault": True,
    "feeSettings": {
        "spot": {"type": "Percent", "size": "0.1", "makerSize": "0.1", "takerSize": "0.1"},
        "cfd": None,
        "minFeeRAT": None,
    },
    "marketId": None,
    "marketName": None,
    "marketGroupId": None,
    "marketGroupName": None,
    "commissionProfileId": "default",
    "commissionProfileName": "Default",
}


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


@pytest.fixture
async def trader(client, container):
    created = await container.identity.create_user("alice", "alice-pass-1")
    return created, bearer(await login(client, "alice", "alice-pass-1"))


@pytest.fixture
async def markets(client, container, staff):
    for asset, scale in (("BTC", 8), ("ETH", 8), ("USDT", 6)):
        await container.ledger.create_asset(asset, asset, scale, "Crypto")
    for base, group in (("BTC", "majors"), ("ETH", "majors")):
        body = {
            "baseAssetId": base,
            "quoteAssetId": "USDT",
            "priceScale": 2,
            "amountScale": 6,
            "displayName": f"{base}/USDT",
            "marketGroupId": group,
        }
        assert (await client.post(f"{BO}/markets", headers=staff, json=body)).status_code == 201


def spot(size, type_="Percent", **extra):
    return {"spot": {"type": type_, "size": size, **extra}}


async def add(client, staff, profile="default", priorities=(), **rule):
    r = await client.post(
        f"{BO}/commission-profiles/{profile}/rules",
        headers=staff,
        json={"commissionProfileRule": rule, "priorities": list(priorities)},
    )
    return r


async def rules(client, staff, profile="default"):
    r = await client.get(f"{BO}/commission-profiles/{profile}/rules", headers=staff)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_default_profile_has_one_default_rule(client, staff):
    assert await rules(client, staff) == [DEFAULT_RULE]


async def test_add_market_and_group_rules_in_the_spec_shape(client, staff, markets):
    r = await add(
        client,
        staff,
        marketId="BTCUSDT",
        feeSettings={
            **spot("0.2", makerSize="0.05"),
            "minFeeRAT": "1",
            "cfd": {"assetId": "USDT", "type": "Fixed", "size": "2"},
        },
    )
    assert r.status_code == 201, r.text
    market_rule_id = r.json()["id"]
    assert set(r.json()) == {"id"}
    r = await add(client, staff, marketGroupId="majors", feeSettings=spot("1.5", "Fixed"), priority=7)
    assert r.status_code == 201, r.text
    group_rule_id = r.json()["id"]
    assert await rules(client, staff) == [
        DEFAULT_RULE,
        {
            "commissionProfileRuleId": market_rule_id,
            "priority": 2,  # after the last one
            "isDefault": False,
            "feeSettings": {
                "spot": {"type": "Percent", "size": "0.2", "makerSize": "0.05", "takerSize": "0.2"},
                "cfd": {"assetId": "USDT", "type": "Fixed", "size": "2"},
                "minFeeRAT": "1",
            },
            "marketId": "BTCUSDT",
            "marketName": "BTC/USDT",
            "marketGroupId": None,
            "marketGroupName": None,
            "commissionProfileId": "default",
            "commissionProfileName": "Default",
        },
        {
            "commissionProfileRuleId": group_rule_id,
            "priority": 7,
            "isDefault": False,
            "feeSettings": {
                "spot": {"type": "Fixed", "size": "1.5", "makerSize": "1.5", "takerSize": "1.5"},
                "cfd": None,
                "minFeeRAT": None,
            },
            "marketId": None,
            "marketName": None,
            "marketGroupId": "majors",
            "marketGroupName": "majors",
            "commissionProfileId": "default",
            "commissionProfileName": "Default",
        },
    ]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"marketId": "NOPE", "feeSettings": spot("0.1")}, "marketId"),  # no such market
        ({"feeSettings": spot("0.1")}, "marketId"),  # a second default rule
        ({"marketId": "BTCUSDT", "marketGroupId": "majors", "feeSettings": spot("0.1")}, "marketId"),
        ({"marketId": "BTCUSDT", "feeSettings": spot("100")}, "feeSettings.spot.size"),
        ({"marketId": "BTCUSDT", "feeSettings": spot("-1", "Fixed")}, "feeSettings.spot.size"),
        ({"marketId": "BTCUSDT", "feeSettings": spot("0.1", "Tiered")}, "feeSettings.spot.type"),
        ({"marketId": "BTCUSDT", "feeSettings": {}}, "feeSettings.spot"),
        ({"marketId": "BTCUSDT", "feeSettings": {**spot("0.1"), "minFeeRAT": "-2"}}, "feeSettings.minFeeRAT"),
        ({"marketId": "BTCUSDT"}, "commissionProfileRule.feeSettings"),
        ({"marketId": "BTCUSDT", "feeSettings": spot("0.1"), "priority": 1}, "priority"),  # the default's
        ({"marketId": "BTCUSDT", "feeSettings": spot("0.1"), "priority": -1}, "priority"),
        (
            {"marketId": "BTCUSDT", "feeSettings": spot("0.1"), "priority": "3"},
            "commissionProfileRule.priority",
        ),
        (
            {"marketId": "BTCUSDT", "feeSettings": spot("0.1"), "colour": "red"},
            "commissionProfileRule.colour",
        ),
    ],
)
async def test_add_errors_are_400_and_add_nothing(client, staff, markets, rule, field):
    r = await add(client, staff, **rule)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert await rules(client, staff) == [DEFAULT_RULE]


async def test_one_rule_per_market_and_per_group(client, staff, markets):
    assert (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).status_code == 201
    assert (await add(client, staff, marketGroupId="majors", feeSettings=spot("0.1"))).status_code == 201
    again = await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.3"))
    assert again.status_code == 400 and again.json()["details"]["field"] == "marketId"
    group = await add(client, staff, marketGroupId="majors", feeSettings=spot("0.3"))
    assert group.status_code == 400 and group.json()["details"]["field"] == "marketGroupId"


async def test_concurrent_rules_for_one_market_add_one(client, staff, markets):
    results = await asyncio.gather(
        *(add(client, staff, marketId="ETHUSDT", feeSettings=spot(f"0.{i}")) for i in range(1, 5))
    )
    assert sorted(r.status_code for r in results) == [201, 400, 400, 400]
    assert [r["marketId"] for r in await rules(client, staff)] == [None, "ETHUSDT"]


async def test_unknown_profile_is_404(client, staff, markets):
    r = await add(client, staff, profile="vip", marketId="BTCUSDT", feeSettings=spot("0.1"))
    assert r.status_code == 404
    assert (await client.get(f"{BO}/commission-profiles/vip/rules", headers=staff)).status_code == 404


async def test_add_with_priorities_moves_other_rules_in_the_same_step(client, staff, markets):
    first = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]  # priority 2
    r = await add(
        client,
        staff,
        marketId="ETHUSDT",
        feeSettings=spot("0.1"),
        priority=2,
        priorities=[{"commissionProfileRuleId": first, "priority": 3}],
    )
    assert r.status_code == 201, r.text
    assert [(x["marketId"], x["priority"]) for x in await rules(client, staff)] == [
        (None, 1),
        ("ETHUSDT", 2),
        ("BTCUSDT", 3),
    ]
    unknown = await add(
        client,
        staff,
        marketGroupId="g",
        feeSettings=spot("0.1"),
        priorities=[{"commissionProfileRuleId": "nope", "priority": 9}],
    )
    assert unknown.status_code == 400 and unknown.json()["details"]["field"] == "commissionProfileRuleId"


async def test_update_replaces_target_and_fees(client, staff, markets):
    rule_id = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]
    r = await client.put(
        f"{RULES}/{rule_id}",
        headers=staff,
        json={"commissionProfileRule": {"marketId": "ETHUSDT", "feeSettings": spot("2", "Fixed")}},
    )
    assert r.status_code == 204 and r.content == b""
    (_, rule) = await rules(client, staff)
    assert (rule["marketId"], rule["marketName"], rule["priority"]) == ("ETHUSDT", "ETH/USDT", 2)
    assert rule["feeSettings"]["spot"] == {"type": "Fixed", "size": "2", "makerSize": "2", "takerSize": "2"}
    # the default rule's fees may change, its target may not
    r = await client.put(
        f"{RULES}/default",
        headers=staff,
        json={
            "commissionProfileRule": {"feeSettings": spot("0.08")},
            "priorities": [{"commissionProfileRuleId": rule_id, "priority": 5}],
        },
    )
    assert r.status_code == 204
    default, other = await rules(client, staff)
    assert default["feeSettings"]["spot"]["size"] == "0.08" and other["priority"] == 5


@pytest.mark.parametrize(
    ("rule_id", "body", "status", "field"),
    [
        ("default", {"marketId": "BTCUSDT", "feeSettings": spot("0.1")}, 400, "marketId"),
        ("SECOND", {"marketId": "BTCUSDT", "feeSettings": spot("0.1")}, 400, "marketId"),  # taken by FIRST
        ("SECOND", {"marketId": "NOPE", "feeSettings": spot("0.1")}, 400, "marketId"),
        ("SECOND", {"feeSettings": spot("0.1")}, 400, "marketId"),  # would be a second default
        ("SECOND", {"marketId": "ETHUSDT", "feeSettings": spot("abc")}, 400, "feeSettings.spot.size"),
        ("nope", {"marketId": "ETHUSDT", "feeSettings": spot("0.1")}, 404, "commissionProfileRuleId"),
    ],
)
async def test_update_errors_change_nothing(client, staff, markets, rule_id, body, status, field):
    first = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]
    second = (await add(client, staff, marketId="ETHUSDT", feeSettings=spot("0.1"))).json()["id"]
    before = await rules(client, staff)
    rule_id = {"SECOND": second, "FIRST": first}.get(rule_id, rule_id)
    r = await client.put(f"{RULES}/{rule_id}", headers=staff, json={"commissionProfileRule": body})
    assert r.status_code == status, r.text
    assert r.json()["details"]["field"] == field
    assert await rules(client, staff) == before


async def test_update_with_clashing_priorities_changes_nothing(client, staff, markets):
    first = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]
    before = await rules(client, staff)
    r = await client.put(
        f"{RULES}/{first}",
        headers=staff,
        json={
            "commissionProfileRule": {"marketId": "BTCUSDT", "feeSettings": spot("0.9")},
            "priorities": [{"commissionProfileRuleId": first, "priority": 1}],
        },
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "priority"
    assert await rules(client, staff) == before


async def test_delete(client, staff, markets):
    rule_id = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]
    assert (await client.post(f"{RULES}/{rule_id}/validate-delete", headers=staff)).json() == {}
    r = await client.delete(f"{RULES}/{rule_id}", headers=staff)
    assert r.status_code == 204 and r.content == b""
    assert await rules(client, staff) == [DEFAULT_RULE]
    assert (await client.delete(f"{RULES}/{rule_id}", headers=staff)).status_code == 404
    assert (await client.post(f"{RULES}/{rule_id}/validate-delete", headers=staff)).status_code == 404


async def test_the_default_rule_cannot_be_deleted(client, staff):
    check = await client.post(f"{RULES}/default/validate-delete", headers=staff)
    assert check.status_code == 400 and "default rule" in check.json()["message"]
    r = await client.delete(f"{RULES}/default", headers=staff)
    assert r.status_code == 400 and r.json()["details"]["field"] == "commissionProfileRuleId"
    assert await rules(client, staff) == [DEFAULT_RULE]


async def test_validate_update(client, staff, markets):
    first = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]
    second = (await add(client, staff, marketGroupId="majors", feeSettings=spot("0.1"))).json()["id"]
    before = await rules(client, staff)

    async def validate(rule_id, **target):
        return await client.post(
            f"{RULES}/{rule_id}/validate-update", headers=staff, json={"commissionProfileRule": target}
        )

    ok = await validate(first, marketId="ETHUSDT")
    assert ok.status_code == 200 and ok.json() == {}
    assert (await validate(first, marketId="BTCUSDT")).json() == {}  # its own market
    assert (await validate("default")).json() == {}
    for rule_id, target, field in [
        (first, {"marketId": "NOPE"}, "marketId"),
        (second, {"marketId": "BTCUSDT"}, "marketId"),
        (first, {"marketGroupId": "majors"}, "marketGroupId"),
        ("default", {"marketId": "ETHUSDT"}, "marketId"),
        (first, {}, "marketId"),
        (first, {"marketId": "ETHUSDT", "marketGroupId": "majors"}, "marketId"),
        (first, {"marketId": "ETHUSDT", "feeSettings": {}}, "commissionProfileRule.feeSettings"),
    ]:
        r = await validate(rule_id, **target)
        assert r.status_code == 400, (target, r.text)
        assert r.json()["details"]["field"] == field
    assert (await validate("nope", marketId="ETHUSDT")).status_code == 404
    assert await rules(client, staff) == before


async def test_priorities_reorder_atomically(client, staff, markets):
    a = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]  # 2
    b = (await add(client, staff, marketId="ETHUSDT", feeSettings=spot("0.1"))).json()["id"]  # 3
    # a swap passes through a state where two rules share a priority: allowed within one request
    r = await client.put(
        f"{RULES}/priorities",
        headers=staff,
        json=[{"commissionProfileRuleId": a, "priority": 3}, {"commissionProfileRuleId": b, "priority": 2}],
    )
    assert r.status_code == 204 and r.content == b""
    assert [(x["marketId"], x["priority"]) for x in await rules(client, staff)] == [
        (None, 1),
        ("ETHUSDT", 2),
        ("BTCUSDT", 3),
    ]
    before = await rules(client, staff)
    clash = await client.put(
        f"{RULES}/priorities",
        headers=staff,
        json=[{"commissionProfileRuleId": a, "priority": 10}, {"commissionProfileRuleId": b, "priority": 1}],
    )
    assert clash.status_code == 400 and clash.json()["details"]["field"] == "priority"
    unknown = await client.put(
        f"{RULES}/priorities",
        headers=staff,
        json=[
            {"commissionProfileRuleId": a, "priority": 10},
            {"commissionProfileRuleId": "nope", "priority": 11},
        ],
    )
    assert unknown.status_code == 404
    twice = await client.put(
        f"{RULES}/priorities",
        headers=staff,
        json=[{"commissionProfileRuleId": a, "priority": 10}, {"commissionProfileRuleId": a, "priority": 11}],
    )
    assert twice.status_code == 400
    bad = await client.put(f"{RULES}/priorities", headers=staff, json=[{"commissionProfileRuleId": a}])
    assert bad.status_code == 400
    assert await rules(client, staff) == before
    assert (
        await client.put(f"{BO}/commission-profiles/vip/rules/priorities", headers=staff, json=[])
    ).status_code == 404


# --- what trading reads -------------------------------------------------------------------------


async def test_accounts_pay_by_their_profile(client, container, staff, markets, trader):
    created, _ = trader
    account = AccountId(created.account.account_id)
    btc = await container.markets.get("BTCUSDT")
    eth = await container.markets.get("ETHUSDT")

    async def rule_for(market):
        async with container.uow() as uow:
            return await container.fees.rule_for(uow, account, market)

    # every account starts with the default profile
    assert (await rule_for(btc)).id == "default"
    r = await client.get(f"{BO}/accounts/{account}/commission-profile", headers=staff)
    assert r.json() == {"commissionProfileId": "default"}

    # a new profile (extension) with its own default rule, a group rule and a market rule
    r = await client.post(
        f"{BO}/commission-profiles",
        headers=staff,
        json={"commissionProfileId": "vip", "commissionProfileName": "VIP", "feeSettings": spot("0.05")},
    )
    assert r.status_code == 201 and r.json() == {"id": "vip"}
    assert (
        await add(client, staff, profile="vip", marketGroupId="majors", feeSettings=spot("0.04"))
    ).status_code == 201
    assert (
        await add(client, staff, profile="vip", marketId="BTCUSDT", feeSettings=spot("0.02", makerSize="0"))
    ).status_code == 201
    vip = await rules(client, staff, "vip")
    assert [(x["isDefault"], x["priority"]) for x in vip] == [(True, 1), (False, 2), (False, 3)]
    assert vip[0]["commissionProfileName"] == "VIP"
    # the default profile's rules did not change and still apply
    assert (await rule_for(btc)).id == "default"

    r = await client.put(
        f"{BO}/accounts/{account}/commission-profile", headers=staff, json={"commissionProfileId": "vip"}
    )
    assert r.status_code == 204
    btc_rule, eth_rule = await rule_for(btc), await rule_for(eth)
    assert (btc_rule.maker_size, btc_rule.taker_size) == (0, Decimal("0.02"))
    assert eth_rule.market_group_id == "majors" and eth_rule.fee_type is FeeType.PERCENT
    assert commission(btc_rule, Decimal("1000"), is_maker=False, quote_scale=6) == Decimal("0.2")

    assert (await client.get(f"{BO}/commission-profiles", headers=staff)).json() == [
        {"commissionProfileId": "default", "commissionProfileName": "Default"},
        {"commissionProfileId": "vip", "commissionProfileName": "VIP"},
    ]
    # extension errors
    dup = await client.post(
        f"{BO}/commission-profiles",
        headers=staff,
        json={"commissionProfileId": "vip", "commissionProfileName": "again"},
    )
    assert dup.status_code == 409
    bad = await client.post(
        f"{BO}/commission-profiles",
        headers=staff,
        json={"commissionProfileId": "no spaces", "commissionProfileName": "x"},
    )
    assert bad.status_code == 400
    missing = await client.put(
        f"{BO}/accounts/{account}/commission-profile", headers=staff, json={"commissionProfileId": "gold"}
    )
    assert missing.status_code == 404
    no_account = await client.put(
        f"{BO}/accounts/nope/commission-profile", headers=staff, json={"commissionProfileId": "vip"}
    )
    assert no_account.status_code == 404


async def test_a_profile_without_fees_copies_the_default_rule(client, staff):
    r = await client.post(
        f"{BO}/commission-profiles",
        headers=staff,
        json={"commissionProfileId": "copy", "commissionProfileName": "Copy"},
    )
    assert r.status_code == 201
    (rule,) = await rules(client, staff, "copy")
    assert rule["isDefault"] and rule["feeSettings"] == DEFAULT_RULE["feeSettings"]


async def test_new_accounts_get_the_default_profile(client, container, staff, trader):
    created, _ = trader
    r = await client.post(
        f"{BO}/users/{created.user.uid}/accounts", headers=staff, json={"accountName": "Second"}
    )
    assert r.status_code == 201, r.text
    r = await client.get(f"{BO}/accounts/{r.json()['accountId']}/commission-profile", headers=staff)
    assert r.json() == {"commissionProfileId": "default"}


async def test_changes_are_audited(client, container, staff, markets):
    rule_id = (await add(client, staff, marketId="BTCUSDT", feeSettings=spot("0.1"))).json()["id"]
    await client.delete(f"{RULES}/{rule_id}", headers=staff)
    async with container.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT action, subject, details->>'change' FROM audit_log WHERE action LIKE 'commission%' ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("commission_rules.changed", "commission_profile:default", "add"),
        ("commission_rules.changed", "commission_profile:default", "delete"),
    ]


# --- who may call what --------------------------------------------------------------------------

ROUTES = [
    ("GET", RULES, None),
    ("POST", RULES, {"commissionProfileRule": {"marketGroupId": "g", "feeSettings": spot("0.1")}}),
    ("PUT", f"{RULES}/default", {"commissionProfileRule": {"feeSettings": spot("0.1")}}),
    ("DELETE", f"{RULES}/default", None),
    ("POST", f"{RULES}/default/validate-update", {"commissionProfileRule": {}}),
    ("POST", f"{RULES}/default/validate-delete", None),
    ("PUT", f"{RULES}/priorities", []),
    ("GET", f"{BO}/commission-profiles", None),
    ("POST", f"{BO}/commission-profiles", {"commissionProfileId": "x", "commissionProfileName": "x"}),
    ("GET", f"{BO}/accounts/a/commission-profile", None),
    ("PUT", f"{BO}/accounts/a/commission-profile", {"commissionProfileId": "default"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_routes_refuse_traders_and_anonymous(client, trader, method, path, body):
    _, headers = trader
    assert (await client.request(method, path, json=body)).status_code == 401
    assert (await client.request(method, path, json=body, headers=headers)).status_code == 403


async def test_view_commission_rules_reads_but_cannot_manage(client, container):
    await container.identity.create_user("acc", "accountant-pass-1", roles=(Role.ACCOUNTANT,))
    accountant = bearer(await login(client, "acc", "accountant-pass-1"))
    assert (await client.get(RULES, headers=accountant)).status_code == 200
    for method, path, body in ROUTES:
        if method != "GET":
            assert (await client.request(method, path, json=body, headers=accountant)).status_code == 403, (
                path
            )
