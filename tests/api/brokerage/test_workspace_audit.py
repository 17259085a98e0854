"""The trader's workspace and price alerts are in the audit log: who changed what, in which request,
from where; a change that is refused leaves no entry (the entry is written in the change's own
transaction)."""

from __future__ import annotations

import pytest

from bourse.domain.identity import Role
from tests.conftest import bearer, login
from tests.integration.test_audit import IP, audit_rows
from tests.integration.trading.support import make_market

UI = "/frontoffice/api/v3/ui"
ALERTS = "/frontoffice/api/v3/notification-subscriptions/marketPrice"


class Who:
    def __init__(self, created, headers):
        self.uid = created.user.uid
        self.account_id = created.account.account_id
        self.auth = headers

    def req(self, request_id: str, with_account: bool = False) -> dict[str, str]:
        extra = {"accountId": self.account_id} if with_account else {}
        return {**self.auth, "X-Request-ID": request_id, **extra}


async def _user(client, container, name) -> Who:
    created = await container.identity.create_user(name, f"{name}-pass-123", roles=(Role.TRADER,))
    return Who(created, bearer(await login(client, name, f"{name}-pass-123")))


@pytest.fixture
async def alice(client, container):
    return await _user(client, container, "alice")


@pytest.fixture
async def bob(client, container):
    return await _user(client, container, "bob")


@pytest.fixture
async def market(container):
    return await make_market(container)


def layout(layout_id: str, name: str, pairs: list[str]) -> dict[str, object]:
    widget = {"id": "w1", "type": "BbpFavorites", "settings": {"pairs": pairs}}
    tab = {
        "id": "t1",
        "selectedWidgetId": "w1",
        "sizes": {"x": 0, "y": 0, "cols": 6, "rows": 4, "layerIndex": 0},
        "widgets": [widget],
    }
    return {"id": layout_id, "name": name, "tabs": [tab]}


def who_what(row) -> tuple[str, str, str, str | None, str | None]:
    return row["actor"], row["action"], row["subject"], row["request_id"], row["ip"]


async def workspace_rows(container):
    rows = await audit_rows(container)
    return [r for r in rows if r["action"].split(".")[0] in ("ui_settings", "layout", "layouts")]


async def test_every_workspace_change_is_audited_with_actor_object_request_and_ip(
    client, container, alice, market
):
    uid = alice.uid
    r = await client.post(
        f"{UI}/layouts", headers=alice.req("r-create"), json=layout("main", "Main", [market])
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"{UI}/layouts", headers=alice.req("r-create-2"), json=layout("spare", "Spare", []))
    assert r.status_code == 201, r.text
    r = await client.patch(
        f"{UI}/settings", headers=alice.req("r-settings"), json={"selectedLayoutId": "main", "theme": "Light"}
    )
    assert r.status_code == 204, r.text
    r = await client.put(
        f"{UI}/layouts/main", headers=alice.req("r-tabs"), json={"tabs": layout("main", "Main", [])["tabs"]}
    )
    assert r.status_code == 204, r.text
    r = await client.put(f"{UI}/layouts/main/name", headers=alice.req("r-rename"), json={"name": "Trading"})
    assert r.status_code == 204, r.text
    r = await client.put(
        f"{UI}/layouts/order", headers=alice.req("r-order"), json={"layoutOrder": ["spare", "main"]}
    )
    assert r.status_code == 204, r.text
    r = await client.delete(f"{UI}/layouts/main", headers=alice.req("r-delete"))
    assert r.status_code == 204, r.text

    rows = await workspace_rows(container)
    assert [who_what(r) for r in rows] == [
        ("alice", "layout.created", f"layout:{uid}:main", "r-create", IP),
        ("alice", "layout.created", f"layout:{uid}:spare", "r-create-2", IP),
        ("alice", "ui_settings.changed", f"ui_settings:{uid}", "r-settings", IP),
        ("alice", "layout.changed", f"layout:{uid}:main", "r-tabs", IP),
        ("alice", "layout.renamed", f"layout:{uid}:main", "r-rename", IP),
        ("alice", "layouts.ordered", f"layouts:{uid}", "r-order", IP),
        ("alice", "layout.deleted", f"layout:{uid}:main", "r-delete", IP),
    ]
    created, _, settings, changed, renamed, ordered, deleted = (r["details"] for r in rows)
    assert created == {"layoutId": "main", "name": "Main", "tabs": 1}
    assert settings["before"] == {
        "selectedLayoutId": None,
        "isIntroductionTourCompleted": False,
        "is24HTimeFormatUsed": True,
        "theme": "Dark",
    }
    assert settings["after"] == {**settings["before"], "selectedLayoutId": "main", "theme": "Light"}
    assert changed == {"layoutId": "main", "name": "Main", "tabs": 1}
    assert renamed == {"layoutId": "main", "name": "Trading", "tabs": 1, "previousName": "Main"}
    assert ordered == {"before": ["main", "spare"], "after": ["spare", "main"]}
    # main was the selected layout: deleting it cleared the selection, and the entry says so
    assert deleted == {"layoutId": "main", "name": "Trading", "tabs": 1, "selectionCleared": True}


async def test_a_refused_workspace_change_leaves_no_audit_entry(client, container, alice, bob, market):
    r = await client.post(f"{UI}/layouts", headers=alice.req("r-1"), json=layout("main", "Main", [market]))
    assert r.status_code == 201
    before = await workspace_rows(container)

    # someone else's layout, an unknown market, a duplicate id, a selection that is not one's own
    assert (
        await client.put(f"{UI}/layouts/main/name", headers=bob.req("x1"), json={"name": "X"})
    ).status_code == 404
    assert (await client.delete(f"{UI}/layouts/main", headers=bob.req("x2"))).status_code == 404
    bad = layout("other", "Other", ["NOPEUSDT"])
    assert (await client.post(f"{UI}/layouts", headers=alice.req("x3"), json=bad)).status_code == 400
    dup = layout("main", "Again", [])
    assert (await client.post(f"{UI}/layouts", headers=alice.req("x4"), json=dup)).status_code == 409
    r = await client.patch(f"{UI}/settings", headers=bob.req("x5"), json={"selectedLayoutId": "main"})
    assert r.status_code == 400

    assert await workspace_rows(container) == before


async def test_price_alert_subscribe_and_delete_are_audited_per_alert(client, container, alice, bob, market):
    ids = []
    for request_id, price, condition in (("a-1", "105.5", "Gte"), ("a-2", "95", "Lte")):
        r = await client.post(
            ALERTS,
            headers=alice.req(request_id, with_account=True),
            json={"marketId": market, "price": price, "condition": condition},
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    # bob cannot delete alice's alert: nothing is deleted, nothing audited
    r = await client.request("DELETE", ALERTS, headers=bob.req("b-1", with_account=True), json={"ids": ids})
    assert r.status_code == 200
    r = await client.request("DELETE", ALERTS, headers=alice.req("a-3", with_account=True), json={"ids": ids})
    assert r.status_code == 200
    # deleting again deletes nothing and writes nothing
    r = await client.request("DELETE", ALERTS, headers=alice.req("a-4", with_account=True), json={"ids": ids})
    assert r.status_code == 200

    created = await audit_rows(container, "price_alert.created")
    deleted = await audit_rows(container, "price_alert.deleted")
    assert [who_what(r) for r in created] == [
        ("alice", "price_alert.created", f"price_alert:{ids[0]}", "a-1", IP),
        ("alice", "price_alert.created", f"price_alert:{ids[1]}", "a-2", IP),
    ]
    assert [who_what(r) for r in deleted] == [
        ("alice", "price_alert.deleted", f"price_alert:{ids[0]}", "a-3", IP),
        ("alice", "price_alert.deleted", f"price_alert:{ids[1]}", "a-3", IP),
    ]
    account = alice.account_id
    assert [r["details"] for r in created] == [
        {"accountId": account, "marketId": market, "id": ids[0], "price": "105.5", "condition": "Gte"},
        {"accountId": account, "marketId": market, "id": ids[1], "price": "95", "condition": "Lte"},
    ]
    assert [r["details"] for r in deleted] == [r["details"] for r in created]


async def test_a_refused_price_alert_leaves_no_audit_entry(client, container, alice, market):
    r = await client.post(
        ALERTS,
        headers=alice.req("a-1", with_account=True),
        json={"marketId": market, "price": "100.0000001", "condition": "Gte"},
    )
    assert r.status_code == 400
    assert await audit_rows(container, "price_alert.created") == []
