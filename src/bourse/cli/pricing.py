"""``bourse market price-source``: a derivative market's execution mode and price source (the demo
and operators without the back office use it; the same rules as the back-office PUT)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bourse.bootstrap import Container
from bourse.cli.runtime import load_settings, print_json, run_with_container
from bourse.domain.identity import Principal, Role
from bourse.domain.values import UserId
from bourse.service.context import RequestMeta
from bourse.service.pricing import price_source_json

market_app = typer.Typer(help="Markets: price sources of derivative markets", no_args_is_help=True)

CLI_ADMIN = Principal.of(UserId(0), "cli", frozenset({Role.ADMIN}))

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="BOURSE_DATA_DIR",
        help="where the embedded PostgreSQL keeps its data",
        show_default="./var",
    ),
]


def price_source_body(
    mode: str,
    kind: str | None,
    source_market: str | None,
    exchange: str | None,
    symbol: str | None,
    bid: str | None,
    ask: str | None,
    markup: str | None,
    stale_after: int | None,
) -> dict[str, Any]:
    """The back-office PUT body of the options given (absent ones are left out: their defaults apply)."""
    fields: dict[str, Any] = {
        "executionMode": mode,
        "sourceKind": kind,
        "sourceMarketId": source_market,
        "exchange": exchange,
        "symbol": symbol,
        "bid": bid,
        "ask": ask,
        "markupRate": markup,
        "staleAfterSeconds": stale_after,
    }
    return {k: v for k, v in fields.items() if v is not None}


@market_app.command("price-source")
def price_source(
    market_id: str,
    mode: Annotated[str, typer.Option("--mode", help="Dealer or OrderBook")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Market, Ccxt or Manual (none: no source)")
    ] = None,
    source_market: Annotated[
        str | None, typer.Option("--source-market", help="Market: the market whose book prices it")
    ] = None,
    exchange: Annotated[str | None, typer.Option("--exchange", help="Ccxt: exchange id (binance)")] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Ccxt: the exchange's symbol (BTC/USDT)")
    ] = None,
    bid: Annotated[str | None, typer.Option("--bid", help="Manual: the bid")] = None,
    ask: Annotated[str | None, typer.Option("--ask", help="Manual: the ask")] = None,
    markup: Annotated[
        str | None, typer.Option("--markup", help="markup rate, a fraction in [0, 0.5) (default 0)")
    ] = None,
    stale_after: Annotated[
        int | None, typer.Option("--stale-after", help="seconds without a price before the market halts (30)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Set MARKET_ID's execution mode, price source, markup and staleness limit (replaces them all)."""
    body = price_source_body(mode, kind, source_market, exchange, symbol, bid, ask, markup, stale_after)

    async def work(c: Container) -> None:
        view = await c.pricing.set_price_source(CLI_ADMIN, market_id, body, RequestMeta.cli())
        print_json(price_source_json(view))

    run_with_container(load_settings(data_dir), work)


@market_app.command("show-price-source")
def show_price_source(market_id: str, data_dir: DataDir = None) -> None:
    """MARKET_ID's pricing settings, latest quote and mark."""

    async def work(c: Container) -> None:
        print_json(price_source_json(await c.pricing.price_source(CLI_ADMIN, market_id)))

    run_with_container(load_settings(data_dir), work)
