"""The ``bourse`` command line: serve, demo, db, admin, ledger, merchant, feeshare, market."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bourse.bootstrap import Container, build
from bourse.cli.runtime import Cli, ServeLock, database, load_settings, print_json, run_with_container
from bourse.config import Settings
from bourse.logs import configure_logging

app = Cli(
    help="bourse: crypto trading and brokerage platform", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database commands", no_args_is_help=True)
admin_app = typer.Typer(help="Users, roles and credentials", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
ledger_app = typer.Typer(help="Ledger commands", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
from bourse.cli.feeshare import feeshare_app, merchant_app  # noqa: E402

app.add_typer(merchant_app, name="merchant")
app.add_typer(feeshare_app, name="feeshare")
from bourse.cli.pricing import market_app  # noqa: E402

app.add_typer(market_app, name="market")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="BOURSE_DATA_DIR",
        help="where the embedded PostgreSQL keeps its data",
        show_default="./var",
    ),
]
Host = Annotated[str | None, typer.Option("--host", help="bind address", show_default="127.0.0.1")]
Port = Annotated[int | None, typer.Option("--port", help="bind port", show_default="8000")]


def _serve(settings: Settings, on_ready: object = None) -> None:
    # The web stack is imported here, not at the top: the other commands start faster without it.
    import uvicorn

    from bourse.api.app import create_app

    ServeLock(settings.data_dir).acquire()
    configure_logging(settings.log_level, settings.log_json)
    url = database(settings)
    container = build(settings, url)
    if callable(on_ready):
        import asyncio

        asyncio.run(on_ready(settings, url))
    # uvicorn's defaults are the fast ones when their packages are installed (both are
    # dependencies): loop="auto" runs uvloop, http="auto" parses with httptools (h11 otherwise).
    # No access log of uvicorn's own: the edge middleware logs every request with its id.
    uvicorn.run(
        create_app(container),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def serve(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
    """Run the platform (all dialects) on one process."""
    _serve(load_settings(data_dir, host=host, port=port))


@app.command()
def demo(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
    """Serve with demo data (idempotent); prints the URL and the logins."""
    from bourse.cli.demo import seed_and_print

    _serve(load_settings(data_dir, host=host, port=port), on_ready=seed_and_print)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply pending migrations."""
    database(load_settings(data_dir))
    typer.echo("database is at the latest migration")


@admin_app.command("create-user")
def create_user(
    username: str,
    password: Annotated[str, typer.Option("--password", help="at least 8 characters")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="trader (default), admin, operator, accountant, support; repeatable"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user with a default trading account; prints uid, userId, username, accountId."""
    from bourse.domain.identity import parse_role

    async def work(c: Container) -> None:
        roles = tuple(parse_role(r) for r in (role or ["trader"]))
        created = await c.identity.create_user(
            username, password, email=email, phone=phone, roles=roles, actor="cli"
        )
        print_json(
            {
                "uid": created.user.uid,
                "userId": str(created.user.uid),
                "username": created.user.username,
                "accountId": created.account.account_id,
            }
        )

    run_with_container(load_settings(data_dir), work)


@admin_app.command("grant")
def grant(username: str, role: str, data_dir: DataDir = None) -> None:
    """Grant ROLE to USERNAME."""

    async def work(c: Container) -> None:
        added = await c.identity.grant(username, role, actor="cli")
        print_json({"username": username, "role": role, "granted": added})

    run_with_container(load_settings(data_dir), work)


@admin_app.command("revoke")
def revoke(username: str, role: str, data_dir: DataDir = None) -> None:
    """Take ROLE away from USERNAME."""

    async def work(c: Container) -> None:
        removed = await c.identity.revoke_role(username, role, actor="cli")
        print_json({"username": username, "role": role, "revoked": removed})

    run_with_container(load_settings(data_dir), work)


@admin_app.command("create-service-token")
def create_service_token(
    name: str,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="ext-orders (default); repeatable")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a service token for an ext-order caller; the token is shown once."""

    async def work(c: Container) -> None:
        new = await c.credentials.create_service_token(name, tuple(scope or ["ext-orders"]))
        print_json({"name": new.name, "token": new.token})

    run_with_container(load_settings(data_dir), work)


@admin_app.command("revoke-service-token")
def revoke_service_token(name: str, data_dir: DataDir = None) -> None:
    """Revoke the active service token called NAME."""

    async def work(c: Container) -> None:
        await c.credentials.revoke_service_token(name)
        print_json({"name": name, "revoked": True})

    run_with_container(load_settings(data_dir), work)


@admin_app.command("create-app-key")
def create_app_key(company_id: str, data_dir: DataDir = None) -> None:
    """Create an app key and secret for a merchant; the secret is shown once."""

    async def work(c: Container) -> None:
        new = await c.credentials.create_app_key(company_id)
        print_json({"appKey": new.app_key, "secret": new.secret})

    run_with_container(load_settings(data_dir), work)


@admin_app.command("revoke-app-key")
def revoke_app_key(app_key: str, data_dir: DataDir = None) -> None:
    """Revoke a merchant app key."""

    async def work(c: Container) -> None:
        await c.credentials.revoke_app_key(app_key)
        print_json({"appKey": app_key, "revoked": True})

    run_with_container(load_settings(data_dir), work)


@admin_app.command("set-margin-ratio")
def set_margin_ratio(asset: str, ratio: str, data_dir: DataDir = None) -> None:
    """Let traders count ASSET as margin collateral at RATIO of its value (0 < RATIO <= 1)."""
    from bourse.domain.values import format_decimal, parse_decimal
    from bourse.service.context import RequestMeta

    async def work(c: Container) -> None:
        value = parse_decimal(ratio, "ratio")
        await c.derivatives.set_margin_ratio("cli", asset, value, RequestMeta.cli())
        print_json({"assetId": asset, "marginRatio": format_decimal(value)})

    run_with_container(load_settings(data_dir), work)


@ledger_app.command("check")
def ledger_check(data_dir: DataDir = None) -> None:
    """Recompute every balance from the postings; exit 1 and name each mismatch if any (and notify staff)."""
    from bourse.cli.ledger import check_and_notify, print_check

    async def work(c: Container) -> bool:
        return print_check(await check_and_notify(c))

    if not run_with_container(load_settings(data_dir), work):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
