"""A seeded random walk through the whole service: orders of every kind by hedging and netting
accounts, price moves, closes, triggers, stops, margin checks, funding. After every step the money
must add up: what was deposited is exactly what the accounts, the house and the fee account hold;
each account's margin bucket is exactly the margin of its open positions; no account is negative
(the database refuses it) and every loss the house absorbed has its deficit row."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from bourse.adapters.db import derivatives_tables as dt
from bourse.domain.errors import BourseError
from bourse.domain.pricing import FundingRate
from bourse.service.derivatives import PositionTriggers
from tests.integration.derivatives.support import (
    D,
    fees,
    hedging_trader,
    house,
    make_cfd,
    money,
    netting_trader,
    place,
    set_price,
)

DEPOSIT = D(300)


async def _check(container, traders) -> None:
    total = await house(container) + await fees(container)
    async with container.uow() as uow:
        for t in traders:
            positions = await uow.derivatives.open_positions(t.account_id)
            m = await money(container, t.account_id)
            assert m.margin == sum((p.margin for p in positions), D(0)), t.account_id
            assert m.available >= 0
            total += m.available + m.margin
        conn = uow.connection  # type: ignore[attr-defined]
        deficits = (await conn.execute(select(func.coalesce(func.sum(dt.deficits.c.amount), 0)))).scalar_one()
    # Every movement is between these owners: together they still hold exactly the deposits.
    assert total == DEPOSIT * len(traders), (total, deficits)


@pytest.mark.parametrize("seed", [7, 2024])
async def test_random_walk_keeps_the_books(container, clock, seed):
    rng = random.Random(seed)
    market = await make_cfd(container, "RNDCFD")
    traders = [
        await hedging_trader(container, "hedge1", usdt=str(DEPOSIT)),
        await hedging_trader(container, "hedge2", usdt=str(DEPOSIT)),
        await netting_trader(container, "net1", usdt=str(DEPOSIT)),
        await netting_trader(container, "net2", usdt=str(DEPOSIT)),
    ]
    price = D(100)
    for _ in range(120):
        who = rng.choice(traders)
        action = rng.random()
        try:
            if action < 0.35:
                lots = str(rng.choice(["0.5", "1", "2", "3"]))
                side = rng.choice(["Buy", "Sell"])
                kind = rng.random()
                if kind < 0.6:
                    await place(
                        container,
                        who,
                        market,
                        side,
                        lots,
                        leverage=rng.choice([5, 20, 100]),
                        margin_type="Isolated" if rng.random() < 0.3 else "Cross",
                    )
                elif kind < 0.8:
                    limit = (price + rng.choice([-3, -1, 1, 3])).quantize(D("0.01"))
                    await place(container, who, market, side, lots, str(limit), leverage=10)
                else:
                    activation = (price + (2 if side == "Buy" else -2)).quantize(D("0.01"))
                    await place(
                        container,
                        who,
                        market,
                        side,
                        lots,
                        type="Stop",
                        activation=str(activation),
                        leverage=10,
                    )
            elif action < 0.55:
                price = max(D(60), (price * (1 + D(rng.randint(-120, 120)) / 1000)).quantize(D("0.01")))
                await set_price(container, market, str(price), str(price + D("0.1")))
            elif action < 0.7:
                positions = await container.derivatives.positions(who.principal, who.account_id)
                if positions:
                    p = rng.choice(positions).position
                    lots = p.lots if rng.random() < 0.5 else max(D("0.01"), (p.lots / 2).quantize(D("0.01")))
                    await container.derivatives.close(who.principal, who.account_id, p.position_id, lots)
            elif action < 0.8:
                positions = await container.derivatives.positions(who.principal, who.account_id)
                if positions:
                    v = rng.choice(positions)
                    mark = v.mark or v.position.entry_price
                    up, down = (mark * D("1.03")).quantize(D("0.01")), (mark * D("0.97")).quantize(D("0.01"))
                    tp, sl = (up, down) if v.position.side.value == "Long" else (down, up)
                    await container.derivatives.set_triggers(
                        who.principal,
                        who.account_id,
                        v.position.position_id,
                        PositionTriggers(
                            take_profit=((tp, None),), stop_loss=sl, trailing=rng.random() < 0.3
                        ),
                    )
            elif action < 0.9:
                async with container.uow() as uow:
                    live = await uow.derivatives.live_orders(market)
                    open_ids = [p.position_id for p in await uow.derivatives.market_positions(market)]
                for o in live:
                    await container.derivatives.process_order(o.order_id)
                for pid in open_ids:
                    await container.derivatives.apply_triggers(pid)
            elif action < 0.97:
                for t in traders:
                    await container.derivatives.check_margin(t.account_id)
            else:
                mark = (await container.pricing.mark(market)).mark
                clock.advance(minutes=1)
                await container.derivatives.pay_funding(
                    FundingRate(market, clock.now(), 8, D("0.0075") * rng.choice([1, -1]), mark, mark)
                )
        except BourseError as e:
            # Refusals a trader can meet (a bad trailing distance, closing a closed position, ...)
            # are fine; what matters is the books after them.
            assert e.code in {"invalid_input", "position_closed", "rejected", "price_unavailable"}, e
        await _check(container, traders)
        clock.advance(seconds=1)
