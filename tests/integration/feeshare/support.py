"""A small OTC world for fee sharing tests: an ETH/BTC OTC market (coin BTC) charging 0.5%,
an ordinary BTC/USDT market, merchants, their users and outsiders, trades through the real
trading service on a day the clock is set to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from bourse.domain.fees import FeeType, RuleFees
from bourse.domain.feeshare import fee_pool
from bourse.domain.ledger import FEES, Bucket
from bourse.domain.values import AssetId
from bourse.service.context import RequestMeta
from bourse.service.fees import RuleTarget
from tests.integration.trading.support import ADMIN, Trader, make_market, make_trader, place

D = Decimal
BTC = AssetId("BTC")
DAY = date(2023, 10, 9)  # the spec example's day (in UTC here)
DAY_MS = 1696809600000
EXAMPLE_TERMS = {
    "incomeDivideRate": "0.2",
    "volumeDivideRate": "0.0004",
    "maxDivideRate": "0.001",
    "rateSymbol": "BTC",
}

OTC_MARKET = {
    "baseAssetId": "ETH",
    "quoteAssetId": "BTC",
    "priceScale": 4,
    "amountScale": 4,
    "tickSize": "0.0001",
    "lotStep": "0.0001",
    "minAmount": "0.0001",
    "isOtc": True,
}


@dataclass
class World:
    otc: str  # ETH/BTC, OTC, 0.5% fees
    spot: str  # BTC/USDT, not OTC, 0.1% fees


async def at(clock: Any, when: datetime) -> None:
    clock.current = when


async def make_world(container: Any, clock: Any) -> World:
    clock.current = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    spot = await make_market(container)
    otc = await make_market(container, **OTC_MARKET)
    await container.fees.add_rule(
        ADMIN,
        "default",
        RuleTarget(market_id=otc),
        RuleFees(FeeType.PERCENT, D("0.5"), D("0.5")),
        None,
        [],
        RequestMeta(),
    )
    return World(otc=otc, spot=spot)


async def make_merchant(container: Any, company_id: int, **terms: str) -> None:
    body = {"companyId": company_id, "name": f"Merchant {company_id}", **EXAMPLE_TERMS, **terms}
    await container.merchants.create(ADMIN, body, RequestMeta())


async def member(container: Any, name: str, company_id: int | None, **funds: str) -> Trader:
    trader = await make_trader(container, name, **funds)
    if company_id is not None:
        await container.merchants.assign_user(ADMIN, company_id, trader.principal.uid, RequestMeta())
    return trader


async def otc_trade(
    container: Any, world: World, buyer: Trader, seller: Trader, eth: str, price: str = "0.05"
) -> None:
    """``seller`` rests a sell, ``buyer`` takes it: one trade of eth * price BTC."""
    await place(container, seller, world.otc, "Sell", eth, price)
    view = await place(container, buyer, world.otc, "Buy", eth, price)
    assert view.order.remaining == 0, view


def next_morning(clock: Any, day: date = DAY, minutes: int = 10) -> None:
    clock.current = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(
        minutes=minutes
    )


async def pool(container: Any, company_id: int, asset: str = "BTC") -> Decimal:
    async with container.uow() as uow:
        return Decimal(
            await uow.ledger.balance(fee_pool(company_id), AssetId(asset), Bucket.AVAILABLE)
        ).normalize()


async def fees(container: Any, asset: str = "BTC") -> Decimal:
    async with container.uow() as uow:
        return Decimal(await uow.ledger.balance(FEES, AssetId(asset), Bucket.AVAILABLE)).normalize()


async def rows(container: Any, sql: str, **params: Any) -> list[Any]:
    async with container.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).mappings().all())


async def execute(container: Any, sql: str, **params: Any) -> None:
    async with container.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def records(container: Any, day: date = DAY) -> list[Any]:
    return await rows(
        container, "SELECT * FROM feeshare_records WHERE item_date = :d ORDER BY company_id, coin", d=day
    )
