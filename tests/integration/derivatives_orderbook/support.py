"""Helpers for OrderBook derivative markets: a Cfd market matched on our engine, balances by
bucket (available, locked, margin), the market's runner."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bourse.domain.ledger import Bucket, account_owner
from bourse.domain.positions import Position
from bourse.service.context import RequestMeta
from tests.integration.derivatives.support import CFD
from tests.integration.trading.support import ADMIN, USDT, make_market

D = Decimal


async def make_book_cfd(container: Any, market_id: str = "BTCBOOK", **fields: Any) -> str:
    """A Cfd market in OrderBook execution mode (lot step 0.01 lots, lot size 1, tick 0.01; market
    orders fill within 20% of the last price)."""
    await make_market(container, **{**CFD, "marketId": market_id, "slippageRate": "0.2", **fields})
    await container.pricing.set_price_source(ADMIN, market_id, {"executionMode": "OrderBook"}, RequestMeta())
    return market_id


@dataclass(frozen=True)
class Funds:
    available: Decimal
    locked: Decimal
    margin: Decimal


async def funds(container: Any, account: str) -> Funds:
    async with container.uow() as uow:
        owner = account_owner(account)
        return Funds(
            *[
                Decimal(await uow.ledger.balance(owner, USDT, bucket)).normalize()
                for bucket in (Bucket.AVAILABLE, Bucket.LOCKED, Bucket.MARGIN)
            ]
        )


def F(available: str, locked: str = "0", margin: str = "0") -> Funds:
    return Funds(D(available).normalize(), D(locked).normalize(), D(margin).normalize())


async def open_positions(container: Any, account: str) -> list[Position]:
    async with container.uow() as uow:
        return await uow.derivatives.open_positions(account)


async def runner(container: Any, market: str) -> Any:
    return await container.trading.engines.runner(market)
