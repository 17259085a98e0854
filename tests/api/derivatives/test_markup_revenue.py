"""Dealer markup revenue in the history server's ``/api/v1/markups/revenue``."""

from __future__ import annotations

import json
from decimal import Decimal

from bourse.domain.identity import Role
from tests.api.derivatives.support import make_trader, open_position
from tests.integration.derivatives.support import make_cfd, set_price


async def test_dealer_fills_show_their_markup_as_revenue(client, container):
    await make_cfd(container, bid="100", ask="101", markup="0.01")
    alice = await make_trader(client, container, "alice")
    position_id = await open_position(client, alice)  # 2 lots at 101 * 1.01 = 102.01: markup 2.02
    await set_price(container, "BTCCFD", "110", "111", markup="0.01")
    r = await client.post(
        f"/frontoffice/api/v4/positions/{position_id}/close", headers=alice.headers, json={}
    )
    assert r.status_code == 200, r.text  # sold at 110 * 0.99 = 108.9: markup 2.2
    staff = await make_trader(client, container, "acct", roles=(Role.ACCOUNTANT,))

    r = await client.post("/api/v1/markups/revenue", headers=staff.headers, json={})

    assert r.status_code == 200, r.text
    assert json.loads(r.text, parse_float=Decimal) == [
        {
            "marketId": "BTCCFD",
            "displayName": "BTC/USDT",
            "tradesCount": 2,
            "tradedVolume": Decimal("421.82"),
            "tradedVolumeInRat": Decimal("421.82"),
            "markupProfitInRat": Decimal("4.22"),
            "commissionProfitInRat": Decimal("0.42182"),
        }
    ]
