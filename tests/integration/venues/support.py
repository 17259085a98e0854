"""Helpers for hedging tests: a paper venue, hedge settings on a Dealer Cfd market, the external
orders as stored, the paper venue object the job talks to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bourse.adapters.db import venue_tables as vt
from bourse.service.context import RequestMeta
from tests.integration.trading.support import ADMIN


async def paper_venue(container: Any, venue_id: str = "paper", **paper: Any) -> str:
    await container.hedging.create_venue(
        ADMIN, {"venueId": venue_id, "kind": "Paper", "name": "Paper venue", "paper": paper}, RequestMeta()
    )
    return venue_id


async def set_paper_mode(container: Any, venue_id: str, **paper: Any) -> None:
    await container.hedging.update_venue(
        ADMIN, venue_id, {"name": "Paper venue", "paper": paper}, RequestMeta()
    )


async def hedge(
    container: Any,
    market: str,
    venue: str,
    *,
    ratio: str = "0.5",
    timeout: int = 30,
    symbol: str | None = None,
) -> None:
    body = {"venueId": venue, "venueSymbol": symbol or market, "hedgeRatio": ratio, "timeoutSeconds": timeout}
    await container.hedging.set_hedging(ADMIN, market, body, RequestMeta())


async def external_orders(container: Any) -> list[Any]:
    async with container.uow() as uow:
        conn = uow.connection
        x = vt.external_orders
        return list((await conn.execute(select(x).order_by(x.c.created_at, x.c.external_order_id))).all())


def paper(container: Any, venue_id: str = "paper") -> Any:
    """The paper venue object the job sends to (its ``requests`` log)."""
    return container.hedging.connector.made(venue_id)
