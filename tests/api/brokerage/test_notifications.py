"""Notifications over HTTP: trader and staff inboxes, price alert subscriptions; spec shapes, filters,
paging, read marks, validation, permissions, one trader never reaching another's; and the platform
raising staff notifications on real conditions."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from bourse.cli.ledger import check_and_notify
from bourse.domain.callbacks import CallbackPolicy, SendOutcome
from bourse.domain.identity import Principal, Role
from bourse.domain.outbox import RetryPolicy
from bourse.service.callbacks import CallbackService, DeliverySettings
from bourse.service.context import RequestMeta
from tests.conftest import bearer, login
from tests.integration.trading.support import ADMIN, make_market, update_market

TRADER = "/notification/api/v1/trader-notifications"
ADMIN_N = "/notification/api/v1/admin-notifications"
ALERTS = "/frontoffice/api/v3/notification-subscriptions/marketPrice"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class Who:
    def __init__(self, created, headers):
        self.uid = created.user.uid
        self.account_id = created.account.account_id
        self.auth = headers
        self.headers = {**headers, "accountId": self.account_id}


async def _user(client, container, name, roles=(Role.TRADER,)) -> Who:
    created = await container.identity.create_user(name, f"{name}-pass-123", roles=roles)
    return Who(created, bearer(await login(client, name, f"{name}-pass-123")))


@pytest.fixture
async def alice(client, container):
    return await _user(client, container, "alice")


@pytest.fixture
async def bob(client, container):
    return await _user(client, container, "bob")


@pytest.fixture
async def ops(client, container):
    return await _user(client, container, "ops", roles=(Role.ADMIN,))


@pytest.fixture
async def support(client, container):
    return await _user(client, container, "helpdesk", roles=(Role.SUPPORT,))


@pytest.fixture
async def market(container):
    return await make_market(container)


async def notify(container, who, title, account_id=None, kind="MarketPrice"):
    return await container.notifications.notify_trader(
        who.uid, kind, title, f"{title} body", {"marketId": "BTCUSDT"}, account_id=account_id
    )


async def trader_list(client, who, body=None, headers=None):
    r = await client.post(TRADER, headers=headers or who.headers, json=body or {})
    assert r.status_code == 200, r.text
    return r.json()["notifications"]


# --- trader notifications ---------------------------------------------------------------------


async def test_trader_notifications_in_the_spec_shape_newest_first(client, container, alice, clock):
    first = await notify(container, alice, "first", alice.account_id)
    clock.advance(seconds=1)
    await notify(container, alice, "second")
    items = await trader_list(client, alice)
    assert [n["title"] for n in items] == ["second", "first"]
    n = items[1]
    assert n == {
        "id": str(first.id),
        "type": "MarketPrice",
        "title": "first",
        "body": "first body",
        "data": {"marketId": "BTCUSDT", "type": "MarketPrice"},
        "isRead": False,
        "createdAt": n["createdAt"],
        "accountId": alice.account_id,
    }
    assert ISO.match(n["createdAt"])
    assert "accountId" not in items[0]  # about the user, not one account
    # The spec's content type with x-api-version is accepted
    r = await client.post(
        TRADER,
        headers={**alice.headers, "Content-Type": "application/json; x-api-version=1.0"},
        content=b'{"limit": 1}',
    )
    assert [x["title"] for x in r.json()["notifications"]] == ["second"]


async def test_paging_with_last_id_and_unread_only(client, container, alice):
    for i in range(5):
        await notify(container, alice, f"n{i}")
    page1 = await trader_list(client, alice, {"limit": 2})
    assert [n["title"] for n in page1] == ["n4", "n3"]
    page2 = await trader_list(client, alice, {"limit": 2, "lastId": page1[-1]["id"]})
    assert [n["title"] for n in page2] == ["n2", "n1"]
    page3 = await trader_list(client, alice, {"limit": 2, "lastId": page2[-1]["id"]})
    assert [n["title"] for n in page3] == ["n0"]

    r = await client.post(
        f"{TRADER}/mark-as-read", headers=alice.headers, json={"ids": [page1[0]["id"], page2[0]["id"]]}
    )
    assert (r.status_code, r.json()) == (200, {})
    unread = await trader_list(client, alice, {"isUnreadOnly": True})
    assert [n["title"] for n in unread] == ["n3", "n1", "n0"]
    assert [n["isRead"] for n in await trader_list(client, alice)] == [True, False, True, False, False]
    r = await client.get(f"{TRADER}/unread-count", headers=alice.headers)
    assert (r.status_code, r.json()) == (200, {"count": 3})
    # marking again is harmless
    r = await client.post(f"{TRADER}/mark-as-read", headers=alice.headers, json={"ids": [page1[0]["id"]]})
    assert r.status_code == 200
    r = await client.post(f"{TRADER}/mark-all-as-read", headers=alice.headers)
    assert (r.status_code, r.json()) == (200, {})
    assert (await client.get(f"{TRADER}/unread-count", headers=alice.headers)).json() == {"count": 0}


async def test_the_account_header_narrows_to_that_account_and_the_user_wide_ones(
    client, container, alice, bob
):
    second = await container.accounts.open_account(ADMIN, alice.uid, "Second", None, None, RequestMeta())
    await notify(container, alice, "main", alice.account_id)
    await notify(container, alice, "second", second.account_id)
    await notify(container, alice, "user-wide")
    # no header: every notification of the user
    assert [n["title"] for n in await trader_list(client, alice, headers=alice.auth)] == [
        "user-wide",
        "second",
        "main",
    ]
    assert [n["title"] for n in await trader_list(client, alice)] == ["user-wide", "main"]
    on_second = {**alice.auth, "accountId": second.account_id}
    assert [n["title"] for n in await trader_list(client, alice, headers=on_second)] == [
        "user-wide",
        "second",
    ]
    assert (await client.get(f"{TRADER}/unread-count", headers=on_second)).json() == {"count": 2}
    await client.post(f"{TRADER}/mark-all-as-read", headers=on_second)
    assert (await client.get(f"{TRADER}/unread-count", headers=alice.auth)).json() == {"count": 1}
    # Bob's account in the header is not found, whatever the route
    as_bob_account = {**alice.auth, "accountId": bob.account_id}
    for method, path, body in [
        ("POST", TRADER, {}),
        ("GET", f"{TRADER}/unread-count", None),
        ("POST", f"{TRADER}/mark-as-read", {"ids": []}),
        ("POST", f"{TRADER}/mark-all-as-read", None),
    ]:
        r = await client.request(method, path, headers=as_bob_account, json=body)
        assert (r.status_code, r.json()["details"]["field"]) == (404, "accountId"), path


async def test_one_trader_never_sees_or_marks_anothers_notifications(client, container, alice, bob):
    theirs = await notify(container, bob, "bob's", bob.account_id)
    mine = await notify(container, alice, "alice's", alice.account_id)
    assert [n["title"] for n in await trader_list(client, alice)] == ["alice's"]
    r = await client.post(
        f"{TRADER}/mark-as-read", headers=alice.headers, json={"ids": [str(mine.id), str(theirs.id)]}
    )
    assert r.status_code == 404 and r.json()["details"]["field"] == "ids"
    # all or nothing: her own stays unread too, and Bob's is untouched
    assert (await client.get(f"{TRADER}/unread-count", headers=alice.headers)).json() == {"count": 1}
    await client.post(f"{TRADER}/mark-all-as-read", headers=alice.headers)
    assert (await client.get(f"{TRADER}/unread-count", headers=bob.headers)).json() == {"count": 1}
    assert [n["isRead"] for n in await trader_list(client, bob)] == [False]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"lastId": "abc"}, "lastId"),
        ({"lastId": 5}, "lastId"),
        ({"isUnreadOnly": "true"}, "isUnreadOnly"),
        ({"types": ["MarketPrice"]}, "types"),
        ([1], "body"),
    ],
)
async def test_bad_trader_list_bodies_are_400(client, alice, body, field):
    r = await client.post(TRADER, headers=alice.headers, json=body)
    assert r.status_code == 400 and r.json()["details"]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "ids"), ({"ids": "1"}, "ids"), ({"ids": [1]}, "ids[0]"), ({"ids": ["x"]}, "ids[0]")],
)
async def test_bad_mark_as_read_bodies_are_400(client, alice, body, field):
    r = await client.post(f"{TRADER}/mark-as-read", headers=alice.headers, json=body)
    assert r.status_code == 400 and r.json()["details"]["field"] == field


# --- admin notifications ----------------------------------------------------------------------


async def test_admin_inbox_shapes_filters_and_paging(client, container, ops, clock):
    n = container.notifications
    first = await n.raise_admin("CallbackDeliveryFailed", "cb", "cb body", {"transferId": "T1"})
    clock.advance(minutes=1)
    middle = clock.now()
    await n.raise_admin("MarketHalted", "halt", "halt body", {"marketId": "BTCUSDT"})
    clock.advance(minutes=1)
    await n.raise_admin(
        "ExternalOrderTimeout",
        "timeouts",
        "t body",
        {"interval": "PT5M", "timeouts": [{"marketId": "BTCUSDT", "count": 1}]},
    )
    r = await client.post(ADMIN_N, headers=ops.auth, json={})
    assert r.status_code == 200
    items = r.json()["notifications"]
    assert [i["type"] for i in items] == ["ExternalOrderTimeout", "MarketHalted", "CallbackDeliveryFailed"]
    assert items[0] == {
        "id": items[0]["id"],
        "type": "ExternalOrderTimeout",
        "title": "timeouts",
        "body": "t body",
        "data": {
            "interval": "PT5M",
            "timeouts": [{"marketId": "BTCUSDT", "count": 1}],
            "type": "ExternalOrderTimeout",
        },
        "isRead": False,
        "createdAt": items[0]["createdAt"],
    }

    async def listed(body):
        r = await client.post(
            ADMIN_N, headers={**ops.auth, "Content-Type": "application/json; x-api-version=1.0"}, json=body
        )
        assert r.status_code == 200, r.text
        return [i["title"] for i in r.json()["notifications"]]

    assert await listed({"types": ["MarketHalted", "CallbackDeliveryFailed"]}) == ["halt", "cb"]
    assert await listed({"limit": 1}) == ["timeouts"]
    assert await listed({"lastId": str(first + 1), "limit": 5}) == ["cb"]
    iso = middle.strftime("%Y-%m-%dT%H:%M:%S.") + f"{middle.microsecond // 1000:03d}Z"
    assert await listed({"createdFrom": iso}) == ["timeouts", "halt"]
    assert await listed({"createdTo": iso}) == ["halt", "cb"]
    assert await listed({"createdFrom": iso, "createdTo": iso}) == ["halt"]

    r = await client.post(f"{ADMIN_N}/mark-as-read", headers=ops.auth, json={"ids": [str(first)]})
    assert (r.status_code, r.json()) == (200, {})
    assert await listed({"unreadOnly": True}) == ["timeouts", "halt"]
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=ops.auth)).json() == {"count": 2}


async def test_admin_read_marks_are_each_staff_users_own(client, container, ops, support):
    await container.notifications.raise_admin("LedgerCheckFailed", "ledger", "body", {})
    await container.notifications.raise_admin("ReportFailed", "report", "body", {})
    r = await client.post(f"{ADMIN_N}/mark-all-as-read", headers=ops.auth)
    assert (r.status_code, r.json()) == (200, {})
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=ops.auth)).json() == {"count": 0}
    # support (view-common) reads the same inbox, still unread for them
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=support.auth)).json() == {"count": 2}
    r = await client.post(ADMIN_N, headers=support.auth, json={"unreadOnly": True})
    assert [i["title"] for i in r.json()["notifications"]] == ["report", "ledger"]
    # one raised later is unread for everyone
    await container.notifications.raise_admin("MarketHalted", "later", "body", {})
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=ops.auth)).json() == {"count": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"types": ["Nope"]}, "types[0]"),
        ({"types": "MarketHalted"}, "types"),
        ({"unreadOnly": 1}, "unreadOnly"),
        ({"createdFrom": "yesterday"}, "createdFrom"),
        ({"createdFrom": "2025-09-10T00:00:00Z", "createdTo": "2025-09-09T00:00:00Z"}, "createdFrom"),
        ({"isUnreadOnly": True}, "isUnreadOnly"),
        ({"limit": 1000}, "limit"),
    ],
)
async def test_bad_admin_list_bodies_are_400(client, ops, body, field):
    r = await client.post(ADMIN_N, headers=ops.auth, json=body)
    assert r.status_code == 400 and r.json()["details"]["field"] == field


async def test_marking_an_unknown_admin_notification_is_404(client, container, ops):
    known = await container.notifications.raise_admin("MarketHalted", "x", "y", {})
    r = await client.post(f"{ADMIN_N}/mark-as-read", headers=ops.auth, json={"ids": [str(known), "999999"]})
    assert r.status_code == 404
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=ops.auth)).json() == {"count": 1}


async def test_raise_admin_is_idempotent_per_dedupe_key(container):
    a = await container.notifications.raise_admin("MarketHalted", "x", "y", {}, dedupe_key="k1")
    b = await container.notifications.raise_admin("MarketHalted", "x", "y", {}, dedupe_key="k1")
    assert a is not None and b is None


# --- price alerts over HTTP -------------------------------------------------------------------


async def test_price_alert_subscriptions_in_the_spec_shapes(client, container, alice, market):
    other = await make_market(container, baseAssetId="ETH")
    ids = []
    for m, price, cond in [(market, "105.5", "Gte"), (market, "95", "Lte"), (other, "2000.01", "Gte")]:
        r = await client.post(
            ALERTS, headers=alice.headers, json={"marketId": m, "price": price, "condition": cond}
        )
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"id"} and r.json()["id"].isdigit()
        ids.append(r.json()["id"])

    r = await client.post(f"{ALERTS}/markets", headers=alice.headers, json={"marketIds": [market, other]})
    assert r.status_code == 200
    assert r.json() == {
        "markets": [
            {
                "marketId": market,
                "subscriptions": [
                    {"id": ids[0], "price": "105.5", "condition": "Gte"},
                    {"id": ids[1], "price": "95", "condition": "Lte"},
                ],
            },
            {"marketId": other, "subscriptions": [{"id": ids[2], "price": "2000.01", "condition": "Gte"}]},
        ]
    }
    # without marketIds: every market with an alert, by id, paged over markets
    r = await client.post(f"{ALERTS}/markets", headers=alice.headers, json={"limit": 1, "offset": 1})
    assert [m["marketId"] for m in r.json()["markets"]] == [sorted([market, other])[1]]
    r = await client.post(f"{ALERTS}/markets", headers=alice.headers, json={"marketIds": ["XRPUSDT"]})
    assert r.json() == {"markets": [{"marketId": "XRPUSDT", "subscriptions": []}]}

    r = await client.request("DELETE", ALERTS, headers=alice.headers, json={"ids": [ids[0], ids[2]]})
    assert (r.status_code, r.json()) == (200, {})
    r = await client.post(f"{ALERTS}/markets", headers=alice.headers, json={})
    assert r.json() == {
        "markets": [
            {"marketId": market, "subscriptions": [{"id": ids[1], "price": "95", "condition": "Lte"}]}
        ]
    }
    # deleting again (or an alert that fired meanwhile) is not an error
    r = await client.request("DELETE", ALERTS, headers=alice.headers, json={"ids": [ids[0]]})
    assert (r.status_code, r.json()) == (200, {})


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"marketId": "BTCUSDT", "price": "100.001", "condition": "Gte"}, 400, "price"),
        ({"marketId": "BTCUSDT", "price": 100, "condition": "Gte"}, 400, "price"),
        ({"marketId": "BTCUSDT", "price": "-1", "condition": "Gte"}, 400, "price"),
        ({"marketId": "BTCUSDT", "price": "abc", "condition": "Gte"}, 400, "price"),
        ({"marketId": "BTCUSDT", "price": "100", "condition": "Gt"}, 400, "condition"),
        ({"marketId": "BTCUSDT", "price": "100"}, 400, "condition"),
        ({"marketId": "btc usdt", "price": "100", "condition": "Gte"}, 400, "marketId"),
        ({"marketId": "NOPEUSDT", "price": "100", "condition": "Gte"}, 404, "marketId"),
        ({"marketId": "BTCUSDT", "price": "100", "condition": "Gte", "note": "x"}, 400, "note"),
    ],
)
async def test_bad_price_alerts_are_refused(client, alice, market, body, status, field):
    r = await client.post(ALERTS, headers=alice.headers, json=body)
    assert (r.status_code, r.json()["details"]["field"]) == (status, field), r.text


async def test_price_alerts_need_the_callers_own_account(client, alice, bob, market):
    body = {"marketId": market, "price": "100", "condition": "Gte"}
    r = await client.post(ALERTS, headers=alice.auth, json=body)
    assert (r.status_code, r.json()["details"]["field"]) == (400, "accountId")
    as_bob = {**alice.auth, "accountId": bob.account_id}
    assert (await client.post(ALERTS, headers=as_bob, json=body)).status_code == 404
    assert (await client.post(f"{ALERTS}/markets", headers=as_bob, json={})).status_code == 404
    assert (await client.request("DELETE", ALERTS, headers=as_bob, json={"ids": ["1"]})).status_code == 404


async def test_one_trader_never_sees_or_deletes_anothers_alerts(client, alice, bob, market):
    r = await client.post(
        ALERTS, headers=bob.headers, json={"marketId": market, "price": "100", "condition": "Gte"}
    )
    bobs = r.json()["id"]
    r = await client.post(f"{ALERTS}/markets", headers=alice.headers, json={"marketIds": [market]})
    assert r.json() == {"markets": [{"marketId": market, "subscriptions": []}]}
    r = await client.request("DELETE", ALERTS, headers=alice.headers, json={"ids": [bobs]})
    assert r.status_code == 200
    r = await client.post(f"{ALERTS}/markets", headers=bob.headers, json={})
    assert [s["id"] for s in r.json()["markets"][0]["subscriptions"]] == [bobs]


async def test_at_most_200_active_alerts_per_account(client, container, alice, market):
    principal = Principal.of(alice.uid, "alice", frozenset({Role.TRADER}))
    for i in range(200):
        await container.price_alerts.subscribe(principal, alice.account_id, market, f"{i + 1}", "Gte")
    r = await client.post(
        ALERTS, headers=alice.headers, json={"marketId": market, "price": "1", "condition": "Lte"}
    )
    assert (r.status_code, r.json()["code"]) == (400, "rejected")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"marketIds": "BTCUSDT"}, "marketIds"),
        ({"marketIds": ["btc"]}, "marketIds[0]"),
    ],
)
async def test_bad_alert_list_bodies_are_400(client, alice, body, field):
    r = await client.post(f"{ALERTS}/markets", headers=alice.headers, json=body)
    assert r.status_code == 400 and r.json()["details"]["field"] == field


# --- permissions ------------------------------------------------------------------------------

TRADER_ROUTES = [
    ("POST", TRADER, {}),
    ("GET", f"{TRADER}/unread-count", None),
    ("POST", f"{TRADER}/mark-as-read", {"ids": []}),
    ("POST", f"{TRADER}/mark-all-as-read", None),
    ("POST", ALERTS, {"marketId": "BTCUSDT", "price": "1", "condition": "Gte"}),
    ("POST", f"{ALERTS}/markets", {}),
    ("DELETE", ALERTS, {"ids": []}),
]
ADMIN_ROUTES = [
    ("POST", ADMIN_N, {}),
    ("GET", f"{ADMIN_N}/unread-count", None),
    ("POST", f"{ADMIN_N}/mark-as-read", {"ids": []}),
    ("POST", f"{ADMIN_N}/mark-all-as-read", None),
]


@pytest.mark.parametrize(("method", "path", "body"), TRADER_ROUTES + ADMIN_ROUTES)
async def test_anonymous_callers_are_401(client, method, path, body):
    assert (await client.request(method, path, json=body)).status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_traders_are_403_on_the_staff_inbox(client, alice, method, path, body):
    assert (await client.request(method, path, json=body, headers=alice.headers)).status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), TRADER_ROUTES)
async def test_staff_without_trading_ui_are_403_on_trader_routes(client, support, method, path, body):
    assert (await client.request(method, path, json=body, headers=support.headers)).status_code == 403


# --- raised by the platform -------------------------------------------------------------------


class FailingSender:
    async def post(self, target, ip, body):
        return SendOutcome(503)


async def test_a_given_up_callback_raises_one_staff_notification(client, container, clock, ops):
    await container.ledger.create_asset("USDT", "Tether", 2, "Crypto")
    account = (await container.identity.create_user("payee", "payee-pass-123")).account.account_id
    callbacks = CallbackService(
        container.uow,
        clock,
        CallbackPolicy(["hooks.example.com"]),
        _Resolver(),
        FailingSender(),
        DeliverySettings(retry=RetryPolicy(max_attempts=2, base_delay_seconds=1)),
    )
    transfer = await container.transfers.deposit(
        ADMIN, account, "d1", "USDT", "10", "https://hooks.example.com/cb?token=s3cret", RequestMeta()
    )
    assert await callbacks.deliver_due() == 1  # attempt 1 fails, retried later
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=ops.auth)).json() == {"count": 0}
    clock.advance(seconds=5)
    assert await callbacks.deliver_due() == 1  # attempt 2 fails: given up
    clock.advance(minutes=30)
    assert await callbacks.deliver_due() == 0
    r = await client.post(ADMIN_N, headers=ops.auth, json={"types": ["CallbackDeliveryFailed"]})
    (note,) = r.json()["notifications"]
    assert note["data"] == {
        "type": "CallbackDeliveryFailed",
        "transferId": transfer.transfer_id,
        "deliveryId": note["data"]["deliveryId"],
        "url": "https://hooks.example.com/cb",  # the query (a token) is not shown
        "attempts": 2,
        "lastError": "HTTP 503",
    }
    assert "s3cret" not in str(note)


class _Resolver:
    async def resolve(self, host, port):
        return ["93.184.216.34"]


async def test_halting_a_market_raises_one_staff_notification(client, container, ops, market):
    await update_market(container, market, status="Halted")
    await update_market(container, market, fullName="Bitcoin / Tether")  # still halted: no second one
    await update_market(container, market, status="Active")
    r = await client.post(ADMIN_N, headers=ops.auth, json={})
    (note,) = r.json()["notifications"]
    assert (note["type"], note["data"]) == (
        "MarketHalted",
        {"type": "MarketHalted", "marketId": market, "by": "ops"},
    )
    await update_market(container, market, status="Halted")
    r = await client.post(ADMIN_N, headers=ops.auth, json={"types": ["MarketHalted"]})
    assert len(r.json()["notifications"]) == 2


@pytest.mark.ledger_tampered
async def test_a_failed_ledger_check_raises_a_staff_notification(client, container, ops):
    from sqlalchemy import text

    from bourse.domain.ledger import EXTERNAL, Bucket, account_owner, move

    await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
    async with container.uow() as uow:
        await uow.ledger.apply(
            move(
                "deposit",
                "USDT",
                Decimal(5),
                (EXTERNAL, "available"),
                (account_owner("A1"), Bucket.AVAILABLE),
            )
        )
        await uow.commit()
    assert (await check_and_notify(container)).clean
    assert (await client.get(f"{ADMIN_N}/unread-count", headers=ops.auth)).json() == {"count": 0}
    async with container.engine.connect() as conn:
        await conn.execute(text("UPDATE ledger_accounts SET balance = 7 WHERE owner = 'acct:A1'"))
        await conn.commit()
    assert not (await check_and_notify(container)).clean
    r = await client.post(ADMIN_N, headers=ops.auth, json={})
    (note,) = r.json()["notifications"]
    assert note["type"] == "LedgerCheckFailed"
    assert note["data"]["problems"]["mismatches"] == 1
