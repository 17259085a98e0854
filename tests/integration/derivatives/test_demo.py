"""The demo's derivative markets: seeded once, tradable at once (Dealer mode, manual price)."""

from __future__ import annotations

from decimal import Decimal

from bourse.cli.demo import seed_and_print
from bourse.domain.identity import Principal
from bourse.domain.markets import MarketType
from bourse.domain.orders import OrderStatus
from bourse.domain.pricing import ExecutionMode
from tests.conftest import make_settings
from tests.integration.derivatives.support import order


async def test_the_demo_seeds_margin_ratios_and_a_cfd_and_a_perpetual(container, db_url):
    for _ in range(2):  # a second start changes nothing
        await seed_and_print(make_settings(), db_url)

    assert await container.derivatives.margin_ratios() == {
        "USDT": Decimal(1),
        "BTC": Decimal("0.9"),
        "ETH": Decimal("0.85"),
    }
    async with container.uow() as uow:
        markets = {m: await uow.markets.get(m) for m in ("BTCUSDT.CFD", "ETHUSDT.PERP")}
        user = await uow.users.get_by_username("alice")
        assert user is not None
        account = await uow.accounts.default_for_user(user.uid)
        roles = await uow.users.roles(user.uid)
    assert markets["BTCUSDT.CFD"].type is MarketType.CFD
    assert markets["ETHUSDT.PERP"].type is MarketType.PERPETUAL
    assert markets["ETHUSDT.PERP"].funding_interval_in_hours == 8
    for market_id in markets:
        settings = await container.pricing.settings(market_id)
        assert settings is not None and settings.execution_mode is ExecutionMode.DEALER

    await container.pricing.tick()
    view = await container.derivatives.place(
        Principal.of(user.uid, "alice", roles),
        account.account_id,
        MarketType.CFD,
        order("BTCUSDT.CFD", "Buy", "0.1", leverage=10),
    )
    assert view.order.status is OrderStatus.FILLED
    # Bought at the ask with the 0.1% markup: 60010 * 1.001 = 60070.01, times 0.1 lots.
    assert view.order.executed_quote == Decimal("6007.001")
