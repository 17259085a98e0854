"""Helpers for trading tests: a BTC/USDT market, funded traders, balances, orders through the service."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bourse.domain.errors import Conflict
from bourse.domain.identity import Principal, Role
from bourse.domain.ledger import EXTERNAL, FEES, Bucket, account_owner, move
from bourse.domain.order_requests import OrderRequest
from bourse.domain.orders import OrderType, Side, TimeInForce
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.service.context import RequestMeta
from bourse.service.ledger import post
from bourse.service.trading import OrderView

ADMIN = Principal.of(UserId(1), "ops", frozenset({Role.ADMIN}))
BTC, ETH, USDT = AssetId("BTC"), AssetId("ETH"), AssetId("USDT")
D = Decimal

MARKET = {
    "baseAssetId": "BTC",
    "quoteAssetId": "USDT",
    "priceScale": 2,
    "amountScale": 4,
    "tickSize": "0.01",
    "lotStep": "0.0001",
    "minAmount": "0.0001",
    "priceDeviation": "0.5",
    "slippageRate": "0.05",
}


async def make_market(container: Any, **fields: Any) -> str:
    for asset, scale in (("BTC", 8), ("ETH", 8), ("USDT", 6)):
        with contextlib.suppress(Conflict):
            await container.ledger.create_asset(asset, asset, scale, "Crypto")
    market = await container.markets.create(ADMIN, {**MARKET, **fields}, RequestMeta())
    return str(market.id)


async def update_market(container: Any, market_id: str, **fields: Any) -> None:
    await container.markets.update(ADMIN, market_id, fields, RequestMeta())


@dataclass(frozen=True)
class Trader:
    principal: Principal
    account_id: AccountId


async def make_trader(
    container: Any, name: str, *, btc: str = "0", usdt: str = "0", eth: str = "0"
) -> Trader:
    created = await container.identity.create_user(name, f"{name}-pass-123")
    account = created.account.account_id
    trader = Trader(Principal.of(created.user.uid, name, created.user.roles), account)
    await deposit(container, account, BTC, D(btc))
    await deposit(container, account, USDT, D(usdt))
    await deposit(container, account, ETH, D(eth))
    return trader


async def deposit(container: Any, account: str, asset: AssetId, amount: Decimal) -> None:
    if amount <= 0:
        return
    async with container.uow() as uow:
        tx = move(
            "deposit", asset, amount, (EXTERNAL, Bucket.AVAILABLE), (account_owner(account), Bucket.AVAILABLE)
        )
        await post(uow, tx, actor="test", subject=f"account:{account}")
        await uow.commit()


async def balance(container: Any, account: str, asset: AssetId, bucket: str = Bucket.AVAILABLE) -> Decimal:
    async with container.uow() as uow:
        return Decimal(await uow.ledger.balance(account_owner(account), asset, bucket))


async def balances(container: Any, account: str) -> dict[str, tuple[Decimal, Decimal]]:
    """asset -> (available, locked), normalised."""
    out = {}
    for asset in (BTC, USDT):
        out[asset] = (
            (await balance(container, account, asset)).normalize(),
            (await balance(container, account, asset, Bucket.LOCKED)).normalize(),
        )
    return out


async def fees(container: Any, asset: AssetId = USDT) -> Decimal:
    async with container.uow() as uow:
        return Decimal(await uow.ledger.balance(FEES, asset, Bucket.AVAILABLE)).normalize()


def request(
    market: str,
    side: str,
    amount: str,
    price: str | None = None,
    *,
    type: str | None = None,
    tif: str = "Gtc",
    stop: str | None = None,
    post_only: bool = False,
    expires: Any = None,
    client_order_id: str | None = None,
) -> OrderRequest:
    kind = OrderType(type) if type else (OrderType.LIMIT if price is not None else OrderType.MARKET)
    return OrderRequest(
        market_id=market,
        side=Side(side),
        type=kind,
        quantity=D(amount),
        price=None if price is None else D(price),
        stop_price=None if stop is None else D(stop),
        time_in_force=TimeInForce(tif),
        post_only=post_only,
        cancellation_date=expires,
        client_order_id=client_order_id,
    )


async def place(container: Any, trader: Trader, *args: Any, **kwargs: Any) -> OrderView:
    view: OrderView = await container.trading.place(
        trader.principal, trader.account_id, request(*args, **kwargs)
    )
    return view
