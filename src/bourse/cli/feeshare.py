"""``bourse merchant ...`` and ``bourse feeshare run``: OTC fee sharing from the command line."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from bourse.bootstrap import Container
from bourse.cli.runtime import load_settings, print_json, run_with_container
from bourse.domain.feeshare import merchant_json, merchant_user_json, parse_day
from bourse.domain.identity import Principal, Role
from bourse.domain.values import UserId, normalized
from bourse.service.context import RequestMeta

merchant_app = typer.Typer(help="Merchants for OTC fee sharing", no_args_is_help=True)
feeshare_app = typer.Typer(help="OTC fee sharing runs", no_args_is_help=True)

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
Rate = Annotated[str | None, typer.Option(help="a fraction from 0 to 1 (0.2 = 20%), at most 16 decimals")]


def _terms(
    name: str | None, income: str | None, volume: str | None, maximum: str | None, symbol: str | None
) -> dict[str, Any]:
    fields = {
        "name": name,
        "incomeDivideRate": income,
        "volumeDivideRate": volume,
        "maxDivideRate": maximum,
        "rateSymbol": symbol,
    }
    return {k: v for k, v in fields.items() if v is not None}


@merchant_app.command("create")
def create(
    company_id: str,
    name: Annotated[str, typer.Option("--name")],
    income_rate: Annotated[str, typer.Option("--income-rate", help="incomeDivideRate: share of the fees")],
    volume_rate: Annotated[
        str, typer.Option("--volume-rate", help="volumeDivideRate: floor, share of the volume")
    ],
    max_rate: Annotated[str, typer.Option("--max-rate", help="maxDivideRate: cap, share of the volume")],
    rate_symbol: Annotated[str, typer.Option("--rate-symbol", help="asset the share is also shown in")],
    data_dir: DataDir = None,
) -> None:
    """Create merchant COMPANY_ID (a positive integer) with its share terms. Issue its app key with
    `bourse admin create-app-key COMPANY_ID`."""

    async def work(c: Container) -> None:
        body = {"companyId": company_id, **_terms(name, income_rate, volume_rate, max_rate, rate_symbol)}
        print_json(merchant_json(await c.merchants.create(CLI_ADMIN, body, RequestMeta.cli())))

    run_with_container(load_settings(data_dir), work)


@merchant_app.command("set-share")
def set_share(
    company_id: str,
    income_rate: Annotated[str | None, typer.Option("--income-rate")] = None,
    volume_rate: Annotated[str | None, typer.Option("--volume-rate")] = None,
    max_rate: Annotated[str | None, typer.Option("--max-rate")] = None,
    rate_symbol: Annotated[str | None, typer.Option("--rate-symbol")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    data_dir: DataDir = None,
) -> None:
    """Change a merchant's share terms (or name); days collected later use them."""

    async def work(c: Container) -> None:
        body = _terms(name, income_rate, volume_rate, max_rate, rate_symbol)
        print_json(merchant_json(await c.merchants.update(CLI_ADMIN, company_id, body, RequestMeta.cli())))

    run_with_container(load_settings(data_dir), work)


@merchant_app.command("assign-user")
def assign_user(username: str, company_id: str, data_dir: DataDir = None) -> None:
    """Make USERNAME a user of merchant COMPANY_ID (a user belongs to at most one merchant)."""

    async def work(c: Container) -> None:
        await c.merchants.assign_user(CLI_ADMIN, company_id, username, RequestMeta.cli())
        print_json({"username": username, "companyId": int(company_id), "assigned": True})

    run_with_container(load_settings(data_dir), work)


@merchant_app.command("unassign-user")
def unassign_user(username: str, company_id: str, data_dir: DataDir = None) -> None:
    """Take USERNAME out of merchant COMPANY_ID."""

    async def work(c: Container) -> None:
        await c.merchants.unassign_user(CLI_ADMIN, company_id, username, RequestMeta.cli())
        print_json({"username": username, "companyId": int(company_id), "assigned": False})

    run_with_container(load_settings(data_dir), work)


@merchant_app.command("show")
def show(company_id: str, data_dir: DataDir = None) -> None:
    """A merchant, its users and its fee pool."""

    async def work(c: Container) -> None:
        d = await c.merchants.get(CLI_ADMIN, company_id)
        print_json(
            {
                **merchant_json(d.merchant),
                "users": [merchant_user_json(u) for u in d.users],
                "feePool": [
                    {"assetId": b.asset, "balance": str(normalized(Decimal(b.amount)))} for b in d.fee_pool
                ],
            }
        )

    run_with_container(load_settings(data_dir), work)


@feeshare_app.command("run")
def run(
    date: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD, a past UTC day (default: yesterday)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Collect, calculate and settle one day's OTC fee sharing; running it again settles nothing twice."""

    async def work(c: Container) -> None:
        day = parse_day(date) if date else c.clock.now().astimezone(UTC).date() - timedelta(days=1)
        print_json((await c.feeshare.run_day(day, actor="cli")).json())

    run_with_container(load_settings(data_dir), work)
