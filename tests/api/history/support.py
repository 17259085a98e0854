"""A small trading history built through the real services, for the history server's tests.

Markets BTCUSDT and ETHBTC (so ETH converts into USDT through BTC); alice and bob deposit through
the transfers service and trade through the trading service, one minute apart:

    t0+1m  BTCUSDT  alice buys 0.5 @ 100 (rests); bob sells 0.1 at market  -> trade 0.1 @ 100
    t0+2m  BTCUSDT  bob sells 0.2 @ 110 (rests); alice buys 0.2 @ 110         -> trade 0.2 @ 110
    t0+3m  ETHBTC   bob sells 1 @ 0.05 (rests); alice buys 1 @ 0.05           -> trade 1 @ 0.05

Fees are the default 0.1 % on both sides, in the quote asset. Afterwards BTC is worth 110 USDT and
ETH 0.05 * 110 = 5.5 USDT; alice's first order is still open with 0.4 left; carol never traded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bourse.domain.errors import Conflict
from bourse.domain.identity import Principal, Role
from bourse.domain.values import AccountId
from bourse.service.context import RequestMeta
from tests.conftest import bearer, login
from tests.integration.trading.support import ADMIN, Trader, make_market, place

D = Decimal
MINUTE = timedelta(minutes=1)


@dataclass
class Person:
    uid: int
    account_id: str
    headers: dict[str, str]
    principal: Principal


@dataclass
class World:
    t0: datetime
    staff: dict[str, str]
    alice: Person
    bob: Person
    carol: Person
    orders: dict[str, str] = field(default_factory=dict)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def person(client: Any, container: Any, name: str, roles: tuple[Role, ...] = (Role.TRADER,)) -> Person:
    created = await container.identity.create_user(
        name, f"{name}-pass-123", email=f"{name}@example.com", roles=roles
    )
    token = await login(client, name, f"{name}-pass-123")
    principal = Principal.of(created.user.uid, name, created.user.roles)
    return Person(int(created.user.uid), str(created.account.account_id), bearer(token), principal)


async def staff_headers(
    client: Any, container: Any, name: str = "ops", role: Role = Role.ADMIN
) -> dict[str, str]:
    return (await person(client, container, name, (role,))).headers


async def deposit(container: Any, who: Person, asset: str, amount: str, dedup: str) -> None:
    await container.transfers.deposit(ADMIN, who.account_id, dedup, asset, amount, None, RequestMeta())


async def markets(container: Any) -> None:
    await make_market(container, displayName="BTC/USDT")
    await make_market(
        container,
        baseAssetId="ETH",
        quoteAssetId="BTC",
        displayName="ETH/BTC",
        priceScale=4,
        tickSize="0.0001",
    )


async def world(client: Any, container: Any, clock: Any) -> World:
    t0 = clock.now()
    await markets(container)
    staff = await staff_headers(client, container)
    alice = await person(client, container, "alice")
    bob = await person(client, container, "bob")
    carol = await person(client, container, "carol")
    await deposit(container, alice, "USDT", "1000", "a-usdt")
    await deposit(container, bob, "BTC", "2", "b-btc")
    await deposit(container, bob, "ETH", "10", "b-eth")
    w = World(t0, staff, alice, bob, carol)

    clock.advance(minutes=1)
    w.orders["a1"] = str((await place(container, _t(alice), "BTCUSDT", "Buy", "0.5", "100")).order.order_id)
    w.orders["b1"] = str((await place(container, _t(bob), "BTCUSDT", "Sell", "0.1")).order.order_id)
    clock.advance(minutes=1)
    w.orders["b2"] = str((await place(container, _t(bob), "BTCUSDT", "Sell", "0.2", "110")).order.order_id)
    w.orders["a2"] = str((await place(container, _t(alice), "BTCUSDT", "Buy", "0.2", "110")).order.order_id)
    clock.advance(minutes=1)
    w.orders["b3"] = str((await place(container, _t(bob), "ETHBTC", "Sell", "1", "0.05")).order.order_id)
    w.orders["a3"] = str((await place(container, _t(alice), "ETHBTC", "Buy", "1", "0.05")).order.order_id)
    clock.advance(minutes=1)
    return w


def _t(who: Person) -> Trader:
    return Trader(who.principal, AccountId(who.account_id))


async def place_for(container: Any, who: Person, *args: Any) -> Any:
    return await place(container, _t(who), *args)


async def ensure_asset(container: Any, asset: str, scale: int) -> None:
    with contextlib.suppress(Conflict):
        await container.ledger.create_asset(asset, asset, scale, "Crypto")
