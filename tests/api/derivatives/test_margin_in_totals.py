"""The margin held by open positions is the trader's money: every balance view and total counts it
(as locked), the front office, the back office and the history server alike."""

from __future__ import annotations

import json
from decimal import Decimal

from bourse.domain.identity import Role
from tests.api.derivatives.support import make_trader, open_position
from tests.integration.derivatives.support import make_cfd

D = Decimal


def data(response):
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


async def test_balances_and_totals_count_the_margin_as_locked(client, container):
    await make_cfd(container)
    alice = await make_trader(client, container, "alice", usdt="1000")
    # 2 lots at 100, leverage 10: margin 20 held, fee 0.1% of 200 = 0.2 paid; 979.8 stays available.
    await open_position(client, alice)
    staff = await make_trader(client, container, "ops", roles=(Role.ADMIN,))
    async with container.uow() as uow:
        uid = (await uow.accounts.get(alice.account_id)).uid

    mine = data(await client.get("/frontoffice/api/v3/accounts", headers=alice.headers))
    assert [(a["accountId"], a["totalBalanceInRAT"]) for a in mine] == [(alice.account_id, "999.8")]

    account = data(
        await client.get(
            f"/back-api/backoffice/v2/users/{uid}/accounts/{alice.account_id}", headers=staff.headers
        )
    )
    assert account["balances"] == [{"assetId": "USDT", "locked": "20", "total": "999.8"}]

    total = data(await client.get(f"/api/users/{uid}/balances", headers=staff.headers))
    assert total == {"totalBalanceInRAT": D("999.8")}

    rows = data(
        await client.post(
            "/api/accounts/balances",
            headers=staff.headers,
            json={"filters": [{"entryType": "Equals", "field": "accountId", "value": alice.account_id}]},
        )
    )["data"]
    (usdt,) = rows
    assert (
        usdt["totalAssetAmount"],
        usdt["availableAssetAmount"],
        usdt["lockedAssetAmount"],
        usdt["lockedAssetAmountInRAT"],
        usdt["totalAssetAmountInRAT"],
    ) == (D("999.8"), D("979.8"), 20, 20, D("999.8"))
