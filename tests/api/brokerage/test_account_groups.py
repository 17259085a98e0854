"""Account groups: the back office's extension routes, and accountGroupId on new accounts."""

import pytest

from bourse.domain.identity import Role
from tests.conftest import bearer, login

BO = "/back-api/backoffice/v2"
DEFAULT = {"id": "default", "name": "Default", "marginCallLevel": "1", "stopOutLevel": "0.5"}


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


@pytest.fixture
async def support(client, container):
    await container.identity.create_user("sup", "support-pass-1", roles=(Role.SUPPORT,))
    return bearer(await login(client, "sup", "support-pass-1"))


@pytest.fixture
async def alice(client, container):
    created = await container.identity.create_user("alice", "alice-pass-1")
    return created, bearer(await login(client, "alice", "alice-pass-1"))


async def group_of(client, staff, account_id):
    r = await client.get(f"{BO}/accounts/{account_id}/account-group", headers=staff)
    assert r.status_code == 200, r.text
    return r.json()["accountGroupId"]


async def test_the_default_group_exists_and_holds_every_account(client, staff, alice):
    created, _ = alice
    assert (await client.get(f"{BO}/account-groups", headers=staff)).json() == [DEFAULT]
    assert (await client.get(f"{BO}/account-groups/default", headers=staff)).json() == DEFAULT
    assert await group_of(client, staff, created.account.account_id) == "default"


async def test_create_list_and_update(client, staff):
    r = await client.post(
        f"{BO}/account-groups",
        headers=staff,
        json={"id": "vip", "name": "VIP", "marginCallLevel": "1.5", "stopOutLevel": "0.8"},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "vip", "name": "VIP", "marginCallLevel": "1.5", "stopOutLevel": "0.8"}
    # levels default to 1 and 0.5
    r = await client.post(f"{BO}/account-groups", headers=staff, json={"id": "retail", "name": "Retail"})
    assert r.json() == {"id": "retail", "name": "Retail", "marginCallLevel": "1", "stopOutLevel": "0.5"}
    listed = (await client.get(f"{BO}/account-groups", headers=staff)).json()
    assert [g["id"] for g in listed] == ["default", "retail", "vip"]

    r = await client.put(f"{BO}/account-groups/vip", headers=staff, json={"name": "Very important"})
    assert r.json() == {
        "id": "vip",
        "name": "Very important",
        "marginCallLevel": "1.5",
        "stopOutLevel": "0.8",
    }
    r = await client.put(
        f"{BO}/account-groups/vip", headers=staff, json={"marginCallLevel": "2", "stopOutLevel": "1.2"}
    )
    assert (r.json()["marginCallLevel"], r.json()["stopOutLevel"]) == ("2", "1.2")
    assert (await client.get(f"{BO}/account-groups/vip", headers=staff)).json() == r.json()


async def test_duplicate_id_is_a_conflict(client, staff):
    r = await client.post(f"{BO}/account-groups", headers=staff, json={"id": "default", "name": "Again"})
    assert r.status_code == 409
    assert (await client.get(f"{BO}/account-groups/default", headers=staff)).json() == DEFAULT


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "g", "name": "G", "marginCallLevel": "0.5", "stopOutLevel": "0.5"}, "stopOutLevel"),
        ({"id": "g", "name": "G", "marginCallLevel": "0.4"}, "stopOutLevel"),
        ({"id": "g", "name": "G", "marginCallLevel": "-1", "stopOutLevel": "-2"}, "marginCallLevel"),
        ({"id": "g", "name": "G", "stopOutLevel": "0"}, "stopOutLevel"),
        ({"id": "g", "name": "G", "marginCallLevel": "101"}, "marginCallLevel"),
        ({"id": "g", "name": "G", "marginCallLevel": 1.5}, "marginCallLevel"),
        ({"id": "g", "name": "G", "marginCallLevel": "lots"}, "marginCallLevel"),
        ({"name": "G"}, "id"),
        ({"id": "g"}, "name"),
        ({"id": "g", "name": ""}, "name"),
        ({"id": "no spaces", "name": "G"}, "id"),
        ({"id": "g", "name": "G", "leverage": "10"}, "leverage"),
    ],
)
async def test_bad_groups_are_refused(client, staff, body, field):
    r = await client.post(f"{BO}/account-groups", headers=staff, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert [g["id"] for g in (await client.get(f"{BO}/account-groups", headers=staff)).json()] == ["default"]


async def test_updates_are_checked_as_a_whole(client, staff):
    # the default's margin call is at 1: a stop out at 1.2 would come first
    r = await client.put(f"{BO}/account-groups/default", headers=staff, json={"stopOutLevel": "1.2"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "stopOutLevel"
    r = await client.put(f"{BO}/account-groups/default", headers=staff, json={"id": "other"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "id"
    assert (await client.get(f"{BO}/account-groups/default", headers=staff)).json() == DEFAULT
    assert (
        await client.put(f"{BO}/account-groups/nope", headers=staff, json={"name": "X"})
    ).status_code == 404
    assert (await client.get(f"{BO}/account-groups/nope", headers=staff)).status_code == 404


async def test_new_accounts_take_the_group_named(client, staff, alice):
    created, _ = alice
    uid = created.user.uid
    await client.post(f"{BO}/account-groups", headers=staff, json={"id": "vip", "name": "VIP"})
    r = await client.post(
        f"{BO}/users/{uid}/accounts", headers=staff, json={"accountName": "Pro", "accountGroupId": "vip"}
    )
    assert r.status_code == 201, r.text
    assert await group_of(client, staff, r.json()["accountId"]) == "vip"
    r = await client.post(f"{BO}/users/{uid}/accounts", headers=staff, json={"accountName": "Plain"})
    assert await group_of(client, staff, r.json()["accountId"]) == "default"


async def test_an_unknown_group_opens_no_account(client, staff, alice):
    created, _ = alice
    uid = created.user.uid
    r = await client.post(
        f"{BO}/users/{uid}/accounts", headers=staff, json={"accountName": "Pro", "accountGroupId": "nope"}
    )
    assert r.status_code == 404
    assert r.json()["details"]["field"] == "accountGroupId"
    accounts = (await client.get(f"{BO}/users/{uid}/accounts", headers=staff)).json()
    assert [a["accountName"] for a in accounts] == ["Main"]


async def test_move_an_account_between_groups(client, container, staff, alice):
    created, _ = alice
    account_id = created.account.account_id
    await client.post(f"{BO}/account-groups", headers=staff, json={"id": "vip", "name": "VIP"})
    path = f"{BO}/accounts/{account_id}/account-group"
    r = await client.put(path, headers=staff, json={"accountGroupId": "vip"})
    assert r.status_code == 204
    assert await group_of(client, staff, account_id) == "vip"
    assert (await client.put(path, headers=staff, json={"accountGroupId": "nope"})).status_code == 404
    assert await group_of(client, staff, account_id) == "vip"
    missing = f"{BO}/accounts/NOPE/account-group"
    assert (await client.put(missing, headers=staff, json={"accountGroupId": "vip"})).status_code == 404
    assert (await client.get(missing, headers=staff)).status_code == 404
    async with container.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT action, subject, details->>'accountGroupId' FROM audit_log"
                " WHERE action LIKE 'account_group.%' ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("account_group.created", "account-group:vip", None),
        ("account_group.assigned", f"account:{account_id}", "vip"),
    ]


ROUTES = [
    ("GET", f"{BO}/account-groups", None, True),
    ("GET", f"{BO}/account-groups/default", None, True),
    ("POST", f"{BO}/account-groups", {"id": "g", "name": "G"}, False),
    ("PUT", f"{BO}/account-groups/default", {"name": "G"}, False),
    ("GET", f"{BO}/accounts/X/account-group", None, True),
    ("PUT", f"{BO}/accounts/X/account-group", {"accountGroupId": "default"}, False),
]


@pytest.mark.parametrize(("method", "path", "body", "read"), ROUTES)
async def test_permissions(client, alice, support, method, path, body, read):
    _, trader = alice
    assert (await client.request(method, path, json=body)).status_code == 401
    assert (await client.request(method, path, json=body, headers=trader)).status_code == 403
    # reads need view-common (support has it), changes manage-accounts (support has not)
    status = (await client.request(method, path, json=body, headers=support)).status_code
    assert (status != 403) if read else (status == 403)
