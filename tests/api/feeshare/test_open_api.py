"""POST /platformapi/chainup/open/record/feeSharing_otc_detail as a merchant calls it: signed
query parameters, the spec's envelope and record, each merchant its own records only."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bourse.domain.feeshare import sign, to_millis
from tests.integration.feeshare.support import (
    DAY,
    DAY_MS,
    execute,
    make_merchant,
    make_world,
    member,
    next_morning,
    otc_trade,
)
from tests.integration.trading.support import make_market

URL = "/platformapi/chainup/open/record/feeSharing_otc_detail"
# The spec example's keys, in its order.
SPEC_KEYS = [
    "volumeDivideRate", "rateSymbol", "rateTime", "itemDate", "maxDivideRate", "otcTradeFeeConvertValue",
    "remark", "billingStatusStr", "mtime", "countTime", "billingStatus", "companyId", "coinSymbol",
    "incomeDivideRate", "otcTradeValueAll", "fingerprint", "ctime", "id", "otcTradeValueSub", "changeRate",
    "otcTradeFeeValue",
]  # fmt: skip


def number(text: str) -> tuple[str, str]:
    return ("number", text)


def exact(body: str) -> Any:
    """The body with every non-integer JSON number kept as its text, to compare digit for digit."""
    return json.loads(body, parse_float=number)


async def query(client, app_key: str, secret: str, **params: str):
    signed = {"appKey": app_key, **params}
    signed["sign"] = sign(secret, signed)
    return await client.post(URL, params=signed)


async def key_for(container, company: str | int):
    new = await container.credentials.create_app_key(str(company))
    return new.app_key, new.secret


async def test_the_spec_example_comes_back_field_for_field(client, container, clock):
    world = await make_world(container, clock)
    await make_merchant(container, 1411)
    buyer = await member(container, "m1411-buyer", 1411, btc="2")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    app_key, secret = await key_for(container, 1411)

    r = await query(client, app_key, secret)  # the defaults: the last 7 days, every status

    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = exact(r.text)
    assert body["code"] == "0" and body["msg"] == "suc" and body["data"]["count"] == 1
    (item,) = body["data"]["list"]
    assert list(item) == SPEC_KEYS
    ran_at = to_millis(clock.now())
    assert isinstance(item["id"], int)
    assert item == {
        "volumeDivideRate": number("0.0004000000000000"),
        "rateSymbol": "BTC",
        "rateTime": ran_at,
        "itemDate": DAY_MS,
        "maxDivideRate": number("0.0010000000000000"),
        "otcTradeFeeConvertValue": number("0.0010000000000000"),
        "remark": "",
        "billingStatusStr": "Settled accounts",
        "mtime": ran_at,
        "countTime": ran_at,
        "billingStatus": 3,
        "companyId": 1411,
        "coinSymbol": "BTC",
        "incomeDivideRate": number("0.2000000000000000"),
        "otcTradeValueAll": number("1.0000000000000000"),
        "fingerprint": "607e16132f05ebf93c53effa841f9e8e",
        "ctime": ran_at,
        "id": item["id"],
        "otcTradeValueSub": number("0E-16"),
        "changeRate": number("0E-16"),
        "otcTradeFeeValue": number("0.0050000000000000"),
    }
    assert '"otcTradeValueSub":0E-16' in r.text and '"otcTradeFeeValue":0.0050000000000000' in r.text


async def test_a_tampered_record_shows_calculated_with_the_fingerprint_error(client, container, clock):
    world = await make_world(container, clock)
    await make_merchant(container, 1411)
    buyer = await member(container, "m1411-buyer", 1411, btc="2")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)
    await container.feeshare.collect(DAY)
    await container.feeshare.calculate(DAY)
    await execute(container, "UPDATE feeshare_records SET value_sub = 0.5")
    await container.feeshare.run_day(DAY)
    app_key, secret = await key_for(container, 1411)

    (item,) = exact((await query(client, app_key, secret, billstatus="1")).text)["data"]["list"]
    assert (item["billingStatus"], item["billingStatusStr"]) == (1, "Calculated")
    assert item["remark"] == "fingerprint error , stop Huisuan"
    assert exact((await query(client, app_key, secret, billstatus="3")).text)["data"] == {
        "count": 0,
        "list": [],
    }


# --- paging, filters, defaults --------------------------------------------------------------------


async def seed(container, company: int, days: int, *, coin: str = "BTC", status: int = 3) -> None:
    """``days`` records of ``company`` for DAY, DAY - 1, ... (the query is what is tested here)."""
    for i in range(days):
        await execute(
            container,
            "INSERT INTO feeshare_records (company_id, coin, item_date, status, value_all, value_sub, fee_value,"
            " income_divide_rate, volume_divide_rate, max_divide_rate, rate_symbol, created_at, updated_at,"
            " count_time, rate_time)"
            " VALUES (:c, :coin, :d, :s, 1, 0, 0.005, 0.2, 0.0004, 0.001, 'BTC', now(), now(), now(), now())",
            c=company,
            coin=coin,
            d=DAY - timedelta(days=i),
            s=status,
        )


@pytest.fixture
async def merchants(container, clock):
    await make_market(container)  # the assets
    next_morning(clock)
    await make_merchant(container, 1411)
    await make_merchant(container, 1500)
    await seed(container, 1411, 25)
    await seed(container, 1500, 3)
    return {1411: await key_for(container, 1411), 1500: await key_for(container, 1500)}


def days_of(body: dict) -> list[int]:
    return [(item["itemDate"] - DAY_MS) // 86_400_000 for item in body["data"]["list"]]


async def test_defaults_are_the_last_7_days_and_the_first_page_of_10(client, merchants):
    body = exact((await query(client, *merchants[1411])).text)
    # The clock is at DAY + 1, 00:10: the days DAY - 6 .. DAY, newest first.
    assert body["data"]["count"] == 7
    assert days_of(body) == [0, -1, -2, -3, -4, -5, -6]


async def test_paging_over_a_date_range(client, merchants):
    since = str(DAY_MS - 24 * 86_400_000)
    r = await query(
        client, *merchants[1411], itemDateStart=since, itemDateEnd=str(DAY_MS), pageSize="10", page="3"
    )
    body = exact(r.text)
    assert body["data"]["count"] == 25 and days_of(body) == [-20, -21, -22, -23, -24]
    r = await query(client, *merchants[1411], itemDateStart=since, pageSize="1000")
    assert len(exact(r.text)["data"]["list"]) == 25
    r = await query(client, *merchants[1411], itemDateStart=since, page="4")
    assert exact(r.text)["data"] == {"count": 25, "list": []}


async def test_filters_by_status_and_symbol(client, container, merchants):
    await seed(container, 1411, 2, coin="USDT", status=0)
    body = exact((await query(client, *merchants[1411], billstatus="0")).text)
    assert body["data"]["count"] == 2
    assert {(i["coinSymbol"], i["billingStatus"], i["billingStatusStr"]) for i in body["data"]["list"]} == {
        ("USDT", 0, "Statistic")
    }
    assert exact((await query(client, *merchants[1411], symbol="usdt")).text)["data"]["count"] == 2
    assert (
        exact((await query(client, *merchants[1411], symbol="BTC", billstatus="-999")).text)["data"]["count"]
        == 7
    )
    assert exact((await query(client, *merchants[1411], billstatus="1")).text)["data"]["count"] == 0


async def test_each_merchant_sees_only_its_own_records(client, merchants):
    body = exact((await query(client, *merchants[1500])).text)
    assert body["data"]["count"] == 3 and {i["companyId"] for i in body["data"]["list"]} == {1500}
    # A companyId parameter is signed like any other and changes nothing.
    body = exact((await query(client, *merchants[1500], companyId="1411")).text)
    assert body["data"]["count"] == 3 and {i["companyId"] for i in body["data"]["list"]} == {1500}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": "1001"}, "pageSize"),
        ({"page": "0"}, "page"),
        ({"billstatus": "2"}, "billstatus"),
        ({"itemDateStart": "soon"}, "itemDateStart"),
    ],
)
async def test_a_bad_parameter_is_code_10001_with_nothing_returned(client, merchants, params, field):
    r = await query(client, *merchants[1411], **params)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "10001" and body["data"] is None and field in body["msg"]


# --- authentication -------------------------------------------------------------------------------

UNAUTHORIZED_KEY = {"code": "10002", "msg": "unknown or revoked appKey", "data": None}
BAD_SIGN = {"code": "10003", "msg": "signature error", "data": None}


async def test_a_wrong_or_missing_sign_is_refused(client, merchants):
    app_key, secret = merchants[1411]
    signed = {"appKey": app_key, "pageSize": "20"}
    good = sign(secret, signed)
    for params in (
        {**signed, "sign": "0" * 64},
        signed,
        {**signed, "sign": ""},
        {**signed, "pageSize": "21", "sign": good},  # a parameter changed after signing
        {**signed, "sign": sign("another secret", signed)},
    ):
        r = await client.post(URL, params=params)
        assert (r.status_code, r.json()) == (401, BAD_SIGN), params
    r = await client.post(URL, params={**signed, "sign": good.upper()})
    assert r.json()["code"] == "0"


async def test_an_unknown_revoked_or_non_merchant_app_key_is_refused(client, container, merchants):
    app_key, secret = merchants[1411]
    await container.credentials.revoke_app_key(app_key)
    nobody_key, nobody_secret = await key_for(container, 9999)  # no merchant 9999
    text_key, text_secret = await key_for(container, "company-1")  # not a merchant's company id
    for key, secret_ in (
        (app_key, secret),
        (nobody_key, nobody_secret),
        (text_key, text_secret),
        ("f" * 32, "x"),
    ):
        r = await query(client, key, secret_)
        assert (r.status_code, r.json()) == (401, UNAUTHORIZED_KEY)
    r = await client.post(URL, params={"sign": "00"})
    assert r.json() == UNAUTHORIZED_KEY


async def test_authentication_comes_before_the_other_parameters(client, merchants):
    app_key, _ = merchants[1411]
    r = await client.post(URL, params={"appKey": app_key, "pageSize": "5000", "sign": "00"})
    assert r.json() == BAD_SIGN


async def test_a_parameter_given_twice_is_refused(client, merchants):
    app_key, _ = merchants[1411]
    r = await client.post(URL + f"?appKey={app_key}&page=1&page=2&sign=00")
    assert r.status_code == 400 and r.json()["code"] == "10001" and "page" in r.json()["msg"]


async def test_every_error_under_the_prefix_has_the_envelope(client):
    r = await client.post("/platformapi/chainup/open/record/unknown")
    assert (r.status_code, r.json()) == (404, {"code": "10004", "msg": "not found", "data": None})
    r = await client.get(URL)
    assert r.status_code == 405 and r.json()["code"] == "10001" and r.json()["data"] is None
