"""HTTP helpers for the derivatives API tests: traders (hedging default accounts, netting ones
opened for them), a Dealer Cfd market at 100/100, orders posted with the spec's body shape."""

from __future__ import annotations

import re
from typing import Any

from bourse.domain.identity import Role
from bourse.service.context import RequestMeta
from tests.api.brokerage.test_orders_v3 import Trader, trader
from tests.integration.trading.support import ADMIN, USDT, D, deposit

FO = "/frontoffice/api"
CFD = f"{FO}/cfd/v4"
PERP = f"{FO}/perpetual/v4"
V4 = f"{FO}/v4"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
JSON_V4 = {"Content-Type": "application/json; x-api-version=4.0"}


async def make_trader(
    client: Any, container: Any, name: str, *, usdt: str = "1000", roles: Any = None
) -> Trader:
    return await trader(client, container, name, usdt=usdt, roles=roles or (Role.TRADER,))


async def netting_account(container: Any, who: Trader, *, usdt: str = "1000") -> Trader:
    """A Netting account opened for ``who`` (same login, its own accountId header)."""
    async with container.uow() as uow:
        record = await uow.accounts.get(who.account_id)
    account = await container.accounts.open_account(
        ADMIN, record.uid, "netting", "Netting", None, RequestMeta()
    )
    await deposit(container, account.account_id, USDT, D(usdt))
    headers = {k: v for k, v in who.headers.items() if k != "accountId"}
    return Trader(headers, account.account_id)


def order_body(**fields: Any) -> dict[str, Any]:
    """The spec's /orders body with real values (a market buy of 2 lots at leverage 10)."""
    body: dict[str, Any] = {
        "marketId": "BTCCFD",
        "orderType": "Market",
        "side": "Buy",
        "requestedLotAmount": "2",
        "timeInForce": "Gtc",
        "leverage": 10,
    }
    body.update(fields)
    return {"order": {k: v for k, v in body.items() if v is not None}}


async def post_order(client: Any, who: Trader, path: str = f"{CFD}/orders", **fields: Any) -> dict[str, Any]:
    r = await client.post(path, headers={**who.headers, **JSON_V4}, json=order_body(**fields))
    assert r.status_code == 200, r.text
    return dict(r.json()["order"])


async def open_position(client: Any, who: Trader, **fields: Any) -> str:
    """A filled market order's position id (read back through GET /v4/orders/{id})."""
    placed = await post_order(client, who, **fields)
    assert placed["status"] == "Filled", placed
    r = await client.get(f"{V4}/orders/{placed['orderId']}", headers=who.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["order"]["positionId"])
