"""Back-office assets and accounts, front-office accounts and assets (brokerage spec shapes)."""

from decimal import Decimal

import pytest

from bourse.domain.identity import Role
from bourse.domain.ledger import EXTERNAL, Bucket, account_owner, move
from tests.conftest import bearer, login


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


@pytest.fixture
async def alice(client, container):
    created = await container.identity.create_user("alice", "alice-pass-1")
    return created, bearer(await login(client, "alice", "alice-pass-1"))


async def fund(container, account_id, asset, amount, bucket=Bucket.AVAILABLE):
    async with container.uow() as uow:
        await uow.ledger.apply(
            move(
                "test.fund",
                asset,
                Decimal(amount),
                (EXTERNAL, Bucket.AVAILABLE),
                (account_owner(account_id), bucket),
            )
        )
        await uow.commit()


async def test_asset_lifecycle_with_spec_shapes(client, staff):
    r = await client.post(
        "/back-api/backoffice/v2/internal-assets",
        headers=staff,
        json={"id": "USDT", "name": "Tether", "scale": 6, "type": "Crypto"},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "USDT", "name": "Tether", "scale": 6, "source": "Internal", "type": "Crypto"}
    r = await client.put(
        "/back-api/backoffice/v2/internal-assets/USDT",
        headers=staff,
        json={"name": "Tether USD", "scale": 6, "type": "Crypto"},
    )
    assert r.status_code == 204
    r = await client.get("/back-api/backoffice/v2/assets/list", headers=staff)
    assert r.json() == [
        {"name": "Tether USD", "id": "USDT", "scale": 6, "type": "Crypto", "source": "Internal"}
    ]


async def test_asset_errors(client, staff):
    body = {"id": "BTC", "name": "Bitcoin", "scale": 8, "type": "Crypto"}
    assert (
        await client.post("/back-api/backoffice/v2/internal-assets", headers=staff, json=body)
    ).status_code == 201
    dup = await client.post("/back-api/backoffice/v2/internal-assets", headers=staff, json=body)
    assert dup.status_code == 409
    bad_type = await client.post(
        "/back-api/backoffice/v2/internal-assets", headers=staff, json={**body, "id": "ETH", "type": "Stock"}
    )
    assert bad_type.status_code == 400 and bad_type.json()["details"]["field"] == "type"
    bad_scale = await client.post(
        "/back-api/backoffice/v2/internal-assets", headers=staff, json={**body, "id": "ETH", "scale": 40}
    )
    assert bad_scale.status_code == 400
    missing = await client.put(
        "/back-api/backoffice/v2/internal-assets/NOPE", headers=staff, json={"name": "x"}
    )
    assert missing.status_code == 404


async def test_assets_need_their_operations(client, alice):
    _, trader = alice
    assert (await client.get("/back-api/backoffice/v2/assets/list")).status_code == 401
    assert (await client.get("/back-api/backoffice/v2/assets/list", headers=trader)).status_code == 403
    r = await client.post(
        "/back-api/backoffice/v2/internal-assets",
        headers=trader,
        json={"id": "X", "name": "X", "scale": 2, "type": "Fiat"},
    )
    assert r.status_code == 403


async def test_user_accounts_with_balances(client, container, staff, alice):
    created, _ = alice
    await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
    account_id = created.account.account_id
    await fund(container, account_id, "USDT", "150.5")
    async with container.uow() as uow:
        await uow.ledger.place_hold(
            account_owner(account_id), "USDT", Decimal("50"), "test-hold", "test.hold"
        )
        await uow.commit()
    uid = created.user.uid
    r = await client.get(f"/back-api/backoffice/v2/users/{uid}/accounts", headers=staff)
    assert r.status_code == 200
    assert r.json() == [
        {
            "accountId": account_id,
            "accountName": "Main",
            "accountType": "Hedging",
            "balances": [{"assetId": "USDT", "locked": "50", "total": "150.5"}],
        }
    ]
    one = await client.get(f"/back-api/backoffice/v2/users/{uid}/accounts/{account_id}", headers=staff)
    assert one.json() == r.json()[0]


async def test_open_account_and_ownership(client, container, staff, alice):
    created, trader = alice
    bob = await container.identity.create_user("bob", "bob-pass-123")
    uid = created.user.uid
    r = await client.post(
        f"/back-api/backoffice/v2/users/{uid}/accounts",
        headers=staff,
        json={"accountName": "Second", "accountType": "Netting"},
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["accountId"]
    listed = await client.get(f"/back-api/backoffice/v2/users/{uid}/accounts", headers=staff)
    assert [a["accountId"] for a in listed.json()] == [created.account.account_id, new_id]
    # bob's account is not found under alice
    other = await client.get(
        f"/back-api/backoffice/v2/users/{uid}/accounts/{bob.account.account_id}", headers=staff
    )
    assert other.status_code == 404
    assert (
        await client.get("/back-api/backoffice/v2/users/999999/accounts", headers=staff)
    ).status_code == 404
    bad = await client.post(
        f"/back-api/backoffice/v2/users/{uid}/accounts",
        headers=staff,
        json={"accountName": "X", "accountType": "Margin"},
    )
    assert bad.status_code == 400
    # a trader cannot open accounts nor look at anyone's accounts in the back office
    assert (
        await client.post(
            f"/back-api/backoffice/v2/users/{uid}/accounts", headers=trader, json={"accountName": "Mine"}
        )
    ).status_code == 403
    assert (
        await client.get(f"/back-api/backoffice/v2/users/{bob.user.uid}/accounts", headers=trader)
    ).status_code == 403


async def test_front_office_accounts_and_assets(client, container, alice):
    created, trader = alice
    await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
    await container.ledger.create_asset("BTC", "Bitcoin", 8, "Crypto")
    await fund(container, created.account.account_id, "USDT", "99.25")
    await fund(container, created.account.account_id, "BTC", "1")
    other = await container.identity.create_user("bob", "bob-pass-123")
    await fund(container, other.account.account_id, "USDT", "1000")
    r = await client.get("/frontoffice/api/v3/accounts", headers=trader)
    assert r.status_code == 200
    # only alice's own account; BTC has no price yet, so only USDT counts towards RAT
    assert r.json() == [
        {
            "accountId": created.account.account_id,
            "accountName": "Main",
            "accountType": "Hedging",
            "totalBalanceInRAT": "99.25",
        }
    ]
    assets = await client.get("/frontoffice/api/v3/assets", headers=trader)
    assert sorted(assets.json(), key=lambda a: a["assetId"]) == [
        {"assetId": "BTC", "assetName": "Bitcoin", "isRootAsset": False},
        {"assetId": "USDT", "assetName": "Tether", "isRootAsset": True},
    ]
