"""Demo data for ``bourse demo``: idempotent, printed with the URL and logins."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from rich.console import Console

from bourse.bootstrap import Container, build
from bourse.config import Settings
from bourse.domain.errors import Conflict, NotFound
from bourse.domain.identity import Principal, Role
from bourse.domain.values import UserId
from bourse.service.context import RequestMeta

DEMO_USERS = (
    ("admin", "admin-demo-pass", (Role.ADMIN,)),
    ("operator", "operator-demo-pass", (Role.OPERATOR,)),
    ("alice", "alice-demo-pass", (Role.TRADER,)),
    ("bob", "bob-demo-pass", (Role.TRADER,)),
)
DEMO_SERVICE_TOKEN = "demo-wallet"
DEMO_ASSETS = (
    ("USDT", "Tether USD", 6, "Crypto"),
    ("BTC", "Bitcoin", 8, "Crypto"),
    ("ETH", "Ether", 8, "Crypto"),
    ("EUR", "Euro", 2, "Fiat"),
)
DEMO_MARKETS = (
    ("BTC", "USDT", "Bitcoin / Tether USD", 2, 6),
    ("ETH", "USDT", "Ether / Tether USD", 2, 5),
    ("ETH", "BTC", "Ether / Bitcoin", 6, 5),
)
# Derivative markets: Dealer mode, priced by an operator-set (Manual) bid/ask with a 0.1% markup.
DEMO_DERIVATIVES = (
    # market id, type, base, full name, max leverage, bid, ask
    ("BTCUSDT.CFD", "Cfd", "BTC", "Bitcoin CFD", 100, "60000", "60010"),
    ("ETHUSDT.PERP", "Perpetual", "ETH", "Ether perpetual", 50, "3000", "3001"),
)
DEMO_MARGIN_RATIOS = (("USDT", "1"), ("BTC", "0.9"), ("ETH", "0.85"))
DEMO_DEPOSITS = (
    ("alice", "USDT", "10000"),
    ("alice", "BTC", "1.5"),
    ("bob", "USDT", "5000"),
    ("bob", "ETH", "20"),
)


async def seed_and_print(settings: Settings, url: str) -> None:
    container = build(settings, url)
    try:
        accounts: dict[str, str] = {}
        for username, password, roles in DEMO_USERS:
            try:
                created = await container.identity.create_user(
                    username, password, email=f"{username}@demo.bourse", roles=roles, actor="demo"
                )
                accounts[username] = created.account.account_id
            except Conflict:  # seeded by an earlier demo run
                async with container.uow() as uow:
                    record = await uow.users.get_by_username(username)
                    assert record is not None
                    account = await uow.accounts.default_for_user(record.uid)
                    assert account is not None
                    accounts[username] = account.account_id
        for asset_id, name, scale, kind in DEMO_ASSETS:
            with contextlib.suppress(Conflict):
                await container.ledger.create_asset(asset_id, name, scale, kind)
        demo_admin = Principal.of(UserId(0), "demo", frozenset({Role.ADMIN}))
        for base, quote, full_name, price_scale, amount_scale in DEMO_MARKETS:
            body = {
                "baseAssetId": base,
                "quoteAssetId": quote,
                "fullName": full_name,
                "displayName": f"{base}/{quote}",
                "type": "Spot",
                "status": "Active",
                "priceScale": price_scale,
                "amountScale": amount_scale,
                "tickSize": str(Decimal(1).scaleb(-price_scale)),
                "lotStep": str(Decimal(1).scaleb(-amount_scale)),
                "minAmount": str(Decimal(1).scaleb(-amount_scale)),
                "priceDeviation": "0.2",
                "slippageRate": "0.05",
            }
            with contextlib.suppress(Conflict):
                await container.markets.create(demo_admin, body, RequestMeta.cli())
        await _seed_derivatives(container, demo_admin)
        for username, asset_id, amount in DEMO_DEPOSITS:
            # deduplicationId makes the seed deposit happen once, however often the demo starts.
            await container.transfers.deposit(
                demo_admin,
                accounts[username],
                f"demo-seed-{username}-{asset_id}",
                asset_id,
                amount,
                None,
                RequestMeta.cli(),
            )
        # Tokens are shown once only, so the demo token is replaced on every start.
        with contextlib.suppress(NotFound):
            await container.credentials.revoke_service_token(DEMO_SERVICE_TOKEN)
        token = await container.credentials.create_service_token(DEMO_SERVICE_TOKEN, ("ext-orders",))
    finally:
        await container.aclose()

    out = Console(highlight=False, soft_wrap=True)
    base = f"http://{settings.host}:{settings.port}"
    out.print(f"\n[bold]bourse demo[/bold] at [link]{base}[/link]  (API docs: {base}/docs)")
    out.print(f"data dir: {settings.data_dir.resolve()}")
    out.print("logins (POST /auth/token, OAuth2 password form):")
    for username, password, roles in DEMO_USERS:
        out.print(f"  {username:<9} {password:<20} {', '.join(r.value for r in roles)}")
    out.print("balances: alice 10000 USDT + 1.5 BTC, bob 5000 USDT + 20 ETH")
    out.print(f"markets: {', '.join(f'{b}{q}' for b, q, *_ in DEMO_MARKETS)}")
    out.print(f"derivatives (Dealer, manual price): {', '.join(m for m, *_ in DEMO_DERIVATIVES)}")
    out.print(f"ext-orders service token ({DEMO_SERVICE_TOKEN}): {token.token}\n")


async def _seed_derivatives(container: Container, demo_admin: Principal) -> None:
    """Margin ratios, one Cfd and one Perpetual market; a market's price source is set only the first
    time (an operator's later price is kept)."""
    for asset_id, ratio in DEMO_MARGIN_RATIOS:
        await container.derivatives.set_margin_ratio("demo", asset_id, Decimal(ratio), RequestMeta.cli())
    for market_id, kind, base, full_name, max_leverage, bid, ask in DEMO_DERIVATIVES:
        body: dict[str, Any] = {
            "marketId": market_id,
            "baseAssetId": base,
            "quoteAssetId": "USDT",
            "fullName": full_name,
            "displayName": market_id,
            "type": kind,
            "status": "Active",
            "priceScale": 2,
            "amountScale": 2,
            "tickSize": "0.01",
            "lotStep": "0.01",
            "minAmount": "0.01",
            "lotSize": 1,
            "minLotAmount": "0.01",
            "maxLotAmount": 100,
            "maxLeverage": max_leverage,
            "isConstLeverage": False,
            "priceDeviation": "0.2",
            "slippageRate": "0.05",
        }
        if kind == "Perpetual":
            body |= {"fundingStartTime": "00:00:00", "fundingIntervalInHours": 8}
        else:
            leg = {"swapSize": "-0.01", "assetId": "USDT"}
            body["swapSettings"] = {
                "type": "Percent",
                "longPositionSettings": leg,
                "shortPositionSettings": leg,
            }
        with contextlib.suppress(Conflict):
            await container.markets.create(demo_admin, body, RequestMeta.cli())
        if await container.pricing.settings(market_id) is None:
            await container.pricing.set_price_source(
                demo_admin,
                market_id,
                {
                    "executionMode": "Dealer",
                    "sourceKind": "Manual",
                    "bid": bid,
                    "ask": ask,
                    "markupRate": "0.001",
                },
                RequestMeta.cli(),
            )
