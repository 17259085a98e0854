"""The orders', trades' and executions' references, checked per statement by triggers (ADR 0012,
migration 0023) where foreign keys checked them per row: the same refusals, SQLSTATE 23503 and
constraint names, and nothing written; a referenced row cannot go, and ids never change."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bourse.adapters.db.ledger_repos import _constraint, _sqlstate
from tests.integration.trading.support import make_market, make_trader, place

# Every column an order row needs; {market} and {account} are filled in per case.
_ORDER = (
    "INSERT INTO orders (order_id, market_id, account_id, side, type, time_in_force, post_only, quantity, "
    "remaining, executed_quote, commission, commission_asset, status, locked_amount, locked_remaining, created_at, "
    "updated_at) "
    "VALUES (nextval('order_ids'), {market}, {account}, 'Buy', 'Limit', 'Gtc', false, 1, 1, 0, 0, 'USDT', 'Placed', "
    "0, 0, now(), now())"
)
_TRADE = (
    "INSERT INTO trades (market_id, market_seq, price, amount, quote_amount, taker_side, created_at) "
    "VALUES ({market}, 1000000, 1, 1, 1, 'Buy', now())"
)
_EXECUTION = (
    "INSERT INTO executions (order_id, account_id, market_id, trade_id, side, price, amount, quote_amount, "
    "commission, commission_asset, is_maker, ledger_tx_id, created_at) "
    "VALUES ({order}, 'x', 'x', {trade}, 'Buy', 1, 1, 1, 0, 'USDT', false, 1, now())"
)


async def _traded(container: Any) -> dict[str, Any]:
    """A market where bob sold to alice: one trade, two executions, two orders."""
    market = await make_market(container)
    alice = await make_trader(container, "alice", usdt="1000")
    bob = await make_trader(container, "bob", btc="1")
    await place(container, bob, market, "Sell", "0.1", "100.00")
    bought = await place(container, alice, market, "Buy", "0.1", "100.00")
    await container.trading.engines.aclose()
    async with container.engine.connect() as conn:
        trade = (await conn.execute(text("SELECT max(trade_id) FROM trades"))).scalar_one()
    return {
        "market": f"'{market}'",
        "account": f"'{alice.account_id}'",
        "order": str(bought.order.order_id),
        "trade": str(trade),
    }


async def _refused(container: Any, sql: str) -> DBAPIError:
    """``sql`` (statements separated by "; ", the last one refused) in one transaction, rolled back."""
    *before, last = sql.split("; ")
    async with container.engine.connect() as conn:
        counts = await _counts(conn)
        for statement in before:
            await conn.execute(text(statement))
        with pytest.raises(DBAPIError) as refused:
            await conn.execute(text(last))
        await conn.rollback()
        assert await _counts(conn) == counts  # nothing written, nothing removed
    return refused.value


async def _counts(conn: Any) -> tuple[int, ...]:
    row = (
        await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM trades), "
                "(SELECT count(*) FROM executions), (SELECT count(*) FROM markets), "
                "(SELECT count(*) FROM accounts)"
            )
        )
    ).one()
    return tuple(row)


@pytest.mark.parametrize(
    ("template", "fields", "constraint"),
    [
        (_ORDER, {"market": "'NOPE'"}, "fk_orders_market_id_markets"),
        (_ORDER, {"account": "'no-such-account'"}, "fk_orders_account_id_accounts"),
        (_TRADE, {"market": "'NOPE'"}, "fk_trades_market_id_markets"),
        (_EXECUTION, {"order": "-1"}, "fk_executions_order_id_orders"),
        (_EXECUTION, {"trade": "-1"}, "fk_executions_trade_id_trades"),
    ],
)
async def test_a_row_naming_a_missing_market_account_order_or_trade_is_refused(
    container: Any, template: str, fields: dict[str, str], constraint: str
) -> None:
    known = await _traded(container)
    refused = await _refused(container, template.format(**{**known, **fields}))
    assert (_sqlstate(refused), _constraint(refused)) == ("23503", constraint)


async def test_rows_naming_what_exists_are_written(container: Any) -> None:
    """The checks refuse only what is missing: the same statements with real references go in."""
    known = await _traded(container)
    async with container.engine.begin() as conn:
        await conn.execute(text(_ORDER.format(**known)))
        await conn.execute(text(_TRADE.format(**known)))
        await conn.execute(text(_EXECUTION.format(**known)))


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("DELETE FROM trades", "fk_executions_trade_id_trades"),
        ("DELETE FROM orders", "fk_executions_order_id_orders"),
        # The market's checkpoint (a foreign key of its own) goes first, so the orders' check is met.
        ("DELETE FROM engine_checkpoints; DELETE FROM markets", "fk_orders_market_id_markets"),
    ],
)
async def test_a_referenced_row_cannot_be_deleted(container: Any, sql: str, constraint: str) -> None:
    await _traded(container)
    refused = await _refused(container, sql)
    assert (_sqlstate(refused), _constraint(refused)) == ("23503", constraint)


async def test_an_account_with_orders_cannot_be_deleted(container: Any) -> None:
    known = await _traded(container)
    refused = await _refused(container, f"DELETE FROM accounts WHERE account_id = {known['account']}")
    assert _sqlstate(refused) == "23503"


async def test_unreferenced_rows_may_still_be_deleted(container: Any) -> None:
    """What a foreign key allowed stays allowed: the executions first, then their trades."""
    await _traded(container)
    async with container.engine.begin() as conn:
        await conn.execute(text("DELETE FROM executions"))
        await conn.execute(text("DELETE FROM trades"))
        assert (await conn.execute(text("SELECT count(*) FROM trades"))).scalar_one() == 0


@pytest.mark.parametrize(
    ("sql", "sqlstate", "constraint"),
    [
        ("UPDATE orders SET order_id = order_id + 1000000", "23001", "orders_references_kept"),
        ("UPDATE orders SET market_id = 'NOPE'", "23001", "orders_references_kept"),
        ("UPDATE orders SET account_id = 'elsewhere'", "23001", "orders_references_kept"),
        ("UPDATE trades SET trade_id = trade_id + 1000000", "23001", "trades_references_kept"),
        ("UPDATE trades SET market_id = 'NOPE'", "23001", "trades_references_kept"),
        ("UPDATE executions SET order_id = -1", "23001", "executions_references_kept"),
        ("UPDATE executions SET trade_id = -1", "23001", "executions_references_kept"),
        ("UPDATE markets SET market_id = 'RENAMED'", "23001", "markets_references_kept"),
        ("UPDATE accounts SET account_id = 'renamed'", "23001", "accounts_references_kept"),
        ("TRUNCATE orders", "23503", "orders_references_kept"),
        ("TRUNCATE trades", "23503", "trades_references_kept"),
    ],
)
async def test_ids_and_references_never_change(
    container: Any, sql: str, sqlstate: str, constraint: str
) -> None:
    await _traded(container)
    refused = await _refused(container, sql)
    assert (_sqlstate(refused), _constraint(refused)) == (sqlstate, constraint)


async def test_an_update_that_names_but_keeps_a_key_is_allowed(container: Any) -> None:
    """Only a change is refused: an UPDATE listing a key column with its own value goes through."""
    known = await _traded(container)
    async with container.engine.begin() as conn:
        await conn.execute(text(f"UPDATE orders SET market_id = market_id WHERE order_id = {known['order']}"))
        await conn.execute(text("UPDATE markets SET market_id = market_id"))
