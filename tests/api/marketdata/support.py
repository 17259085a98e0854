"""Helpers for market data tests: a market, trades stored as the trading engine stores them, events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text

from bourse.domain.errors import Conflict
from bourse.domain.identity import Principal, Role
from bourse.domain.values import UserId
from bourse.service.context import RequestMeta

ADMIN = Principal.of(UserId(1), "ops", frozenset({Role.ADMIN}))
T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)  # a Tuesday


async def make_market(container, base: str = "BTC", quote: str = "USDT", price_scale: int = 2) -> str:
    for asset, scale in ((base, 8), (quote, 6)):
        with contextlib.suppress(Conflict):
            await container.ledger.create_asset(asset, asset, scale, "Crypto")
    market = await container.markets.create(
        ADMIN,
        {"baseAssetId": base, "quoteAssetId": quote, "priceScale": price_scale, "amountScale": 6},
        RequestMeta(),
    )
    return market.id


async def insert_trades(
    container, market_id: str, trades: Sequence[tuple[str, str, datetime]], taker_side: str = "Buy"
) -> list[int]:
    """Rows in the trades table, as the engine commits them; returns their trade ids."""
    ids = []
    async with container.engine.begin() as conn:
        seq = (
            await conn.execute(
                text("SELECT coalesce(max(market_seq), 0) FROM trades WHERE market_id = :m"), {"m": market_id}
            )
        ).scalar()
        for price, amount, at in trades:
            seq += 1
            ids.append(
                (
                    await conn.execute(
                        text(
                            "INSERT INTO trades (market_id, market_seq, price, amount, quote_amount, taker_side, "
                            "created_at) VALUES (:m, :s, :p, :a, :q, :side, :at) RETURNING trade_id"
                        ),
                        {
                            "m": market_id,
                            "s": seq,
                            "p": Decimal(price),
                            "a": Decimal(amount),
                            "q": Decimal(price) * Decimal(amount),
                            "side": taker_side,
                            "at": at,
                        },
                    )
                ).scalar()
            )
    return ids


def trade_event(
    market_id: str, trade_id: int, price: str, amount: str, at: datetime, taker_side: str = "Buy"
) -> dict:
    """A trades.<marketId> event of the exchange contract."""
    return {
        "marketId": market_id,
        "tradeId": trade_id,
        "price": price,
        "amount": amount,
        "quoteAmount": str(Decimal(price) * Decimal(amount)),
        "takerSide": taker_side,
        "ts": int(at.timestamp() * 1000),
    }


def book_event(market_id: str, seq: int, bids, asks, at: datetime = T0) -> dict:
    return {"marketId": market_id, "seq": seq, "bids": bids, "asks": asks, "ts": int(at.timestamp() * 1000)}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def stored_candles(container, market_id: str, interval: str) -> list[dict]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM candles WHERE market_id = :m AND interval = :i ORDER BY start"),
            {"m": market_id, "i": interval},
        )
        return [dict(r._mapping) for r in rows]
