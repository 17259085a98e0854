"""Orders, executions, trades and engine checkpoints on PostgreSQL.

The engine runner writes a whole tick at once, so every write here takes a batch
and is one statement over ``unnest`` arrays, whatever the batch size.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import trading_tables as tt
from bourse.adapters.db.array_literals import LITERALS, bigints, booleans, numerics, texts
from bourse.adapters.db.array_literals import cast as _array  # an array as unnest reads it
from bourse.adapters.db.ledger_repos import LedgerTail, SqlLedgerRepository
from bourse.domain.fees import FeeType
from bourse.domain.ledger import Bucket, LedgerTransaction
from bourse.domain.order_views import Execution
from bourse.domain.orders import OrderStatus, OrderType, Side, StopStatus, TimeInForce
from bourse.domain.trading import (
    BatchWrite,
    Checkpoint,
    FeeTerms,
    Order,
    OrderQuery,
    Prepared,
)
from bourse.domain.values import AccountId, AssetId

# A batch's order ids, the available balances its new orders draw on and the market's committed batch
# count, in one round trip (one statement: one snapshot).
_PREPARE = text(
    """
WITH b AS (
    SELECT la.owner, la.asset, la.balance
      FROM ledger_accounts la
      JOIN unnest(CAST(:o AS text[]), CAST(:a AS text[])) AS k(o, a)
        ON la.owner = k.o AND la.asset = k.a AND la.bucket = :bucket
)
SELECT (SELECT array_agg(nextval('order_ids')) FROM generate_series(1, :n)) AS ids,
       (SELECT array_agg(owner ORDER BY owner, asset) FROM b) AS owners,
       (SELECT array_agg(asset ORDER BY owner, asset) FROM b) AS assets,
       (SELECT array_agg(balance ORDER BY owner, asset) FROM b) AS balances,
       (SELECT batches FROM engine_checkpoints WHERE market_id = :market) AS batches
"""
)

_RESERVE = text(
    """
INSERT INTO order_client_ids (account_id, client_order_id, order_id, fingerprint, created_at)
SELECT a, c, o, f, now()
  FROM unnest(CAST(:a AS text[]), CAST(:c AS text[]), CAST(:o AS bigint[]), CAST(:f AS bytea[]))
       WITH ORDINALITY AS t(a, c, o, f, ord)
 ORDER BY ord
ON CONFLICT DO NOTHING
RETURNING account_id, client_order_id
"""
)

_OWNERS = text(
    """
SELECT r.account_id, r.client_order_id, r.order_id, r.fingerprint
  FROM order_client_ids r
  JOIN unnest(CAST(:a AS text[]), CAST(:c AS text[])) AS k(a, c)
    ON r.account_id = k.a AND r.client_order_id = k.c
"""
)

# Every column of ``orders``, in one order, with the array type unnest reads it as.
_ORDER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("order_id", "bigint"),
    ("market_id", "text"),
    ("account_id", "text"),
    ("client_order_id", "text"),
    ("fingerprint", "bytea"),
    ("side", "text"),
    ("type", "text"),
    ("time_in_force", "text"),
    ("post_only", "boolean"),
    ("price", "numeric"),
    ("stop_price", "numeric"),
    ("reserve_price", "numeric"),
    ("quantity", "numeric"),
    ("remaining", "numeric"),
    ("executed_quote", "numeric"),
    ("commission", "numeric"),
    ("commission_asset", "text"),
    ("fee_rule_id", "text"),
    ("fee_type", "text"),
    ("maker_fee", "numeric"),
    ("taker_fee", "numeric"),
    ("min_fee", "numeric"),
    ("status", "text"),
    ("stop_status", "text"),
    ("source", "text"),
    ("reject_reason", "text"),
    ("cancel_reason", "text"),
    ("locked_asset", "text"),
    ("locked_amount", "numeric"),
    ("locked_remaining", "numeric"),
    ("hold_tx_id", "bigint"),
    ("engine_seq", "bigint"),
    ("cancellation_date", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_NAMES = ", ".join(name for name, _ in _ORDER_COLUMNS)


_UNNEST = ", ".join(_array(name, kind) for name, kind in _ORDER_COLUMNS)
_UNNEST_CHANGED = ", ".join(_array(f"u_{name}", kind) for name, kind in _ORDER_COLUMNS)

# What changes after an order is placed: where it stands, its money and its place in the book.
_MUTABLE = (
    "remaining",
    "executed_quote",
    "commission",
    "status",
    "stop_status",
    "reject_reason",
    "cancel_reason",
    "locked_remaining",
    "engine_seq",
    "updated_at",
)
_KINDS = dict(_ORDER_COLUMNS)


def _batch_ctes(with_ledger: bool, upsert: bool) -> str:
    """A whole batch as common table expressions: its trades (their ids come back), new orders,
    changed orders, executions (joined to their trade by the market's trade number), the market's
    checkpoint and the batch's audit entry. ``with_ledger``: after the ledger write's own CTEs in
    the same statement (``SqlLedgerRepository.write_with``), the orders' ``hold_tx_id`` and the
    executions' ``e_tx`` are positions of transactions in it (from 1), read through ``src``, and
    the audit entry gets the transaction ids from there too. ``upsert``: changed orders are
    upserted from all their columns (``u_<column>``) instead of updated (see below)."""
    names = [name for name, _ in _ORDER_COLUMNS]
    if with_ledger:
        held = ", ".join("h.id" if n == "hold_tx_id" else f"x.{n}" for n in names)
        orders = (
            f"o AS (INSERT INTO orders ({_NAMES}) SELECT {held} FROM unnest({_UNNEST}) AS x({_NAMES}) "  # noqa: S608
            "LEFT JOIN src h ON h.ord = x.hold_tx_id), "
        )
        tx, tx_join = "l.id", "JOIN src l ON l.ord = x.tx "
        details = (
            "CAST(:a_details AS jsonb) || jsonb_build_object('tx_ids', jsonb_build_array((SELECT min(id) FROM src), "
            "(SELECT max(id) FROM src)), 'count', (SELECT count(*) FROM src))"
        )
    else:
        orders = f"o AS (INSERT INTO orders ({_NAMES}) SELECT * FROM unnest({_UNNEST})), "  # noqa: S608
        tx, tx_join, details = "x.tx", "", "CAST(:a_details AS jsonb)"
    if upsert:
        # An upsert, not an UPDATE: this statement may start before the batch ahead of it has
        # committed (the runner sends it once that one's statement has returned). An UPDATE reads
        # its snapshot and would miss an order that batch inserted; ON CONFLICT waits for the
        # inserting transaction and then updates the row as committed. (An order updated by that
        # batch is waited for and re-read by either.)
        changed = (
            f"u AS (INSERT INTO orders ({_NAMES}) SELECT * FROM unnest({_UNNEST_CHANGED}) "  # noqa: S608
            "ON CONFLICT (order_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _MUTABLE)
            + "), "
        )
    else:
        changed = (
            "u AS (UPDATE orders o SET "  # noqa: S608
            + ", ".join(f"{c} = u.{c}" for c in _MUTABLE)
            + f" FROM unnest({_array('u_order_id', 'bigint')}, "
            + ", ".join(_array(f"u_{c}", _KINDS[c]) for c in _MUTABLE)
            + ") AS u(order_id, "
            + ", ".join(_MUTABLE)
            + ") WHERE o.order_id = u.order_id), "
        )
    return (
        "t AS ("  # noqa: S608
        "INSERT INTO trades (market_id, market_seq, price, amount, quote_amount, taker_side, maker_order_id, "
        "taker_order_id, created_at) "
        f"SELECT :market, s, p, q, qa, ts, mo, tk, :now FROM unnest({_array('t_seq', 'bigint')}, "
        f"{_array('t_price', 'numeric')}, {_array('t_amount', 'numeric')}, {_array('t_quote', 'numeric')}, "
        f"{_array('t_side', 'text')}, {_array('t_maker', 'bigint')}, {_array('t_taker', 'bigint')}) "
        "WITH ORDINALITY AS x(s, p, q, qa, ts, mo, tk, ord) ORDER BY ord "
        "RETURNING market_seq, trade_id), "
        + orders
        + changed
        + "e AS (INSERT INTO executions (order_id, account_id, market_id, trade_id, side, price, amount, "  # noqa: S608
        "quote_amount, commission, commission_asset, is_maker, ledger_tx_id, created_at) "
        f"SELECT x.o, x.a, :market, t.trade_id, x.s, x.p, x.q, x.qa, x.c, :quote_asset, x.mk, {tx}, :now "
        f"FROM unnest({_array('e_order', 'bigint')}, {_array('e_account', 'text')}, {_array('e_seq', 'bigint')}, "
        f"{_array('e_side', 'text')}, {_array('e_price', 'numeric')}, {_array('e_amount', 'numeric')}, "
        f"{_array('e_quote', 'numeric')}, {_array('e_fee', 'numeric')}, {_array('e_maker', 'boolean')}, "
        f"{_array('e_tx', 'bigint')}) WITH ORDINALITY AS x(o, a, seq, s, p, q, qa, c, mk, tx, ord) "
        f"JOIN t ON t.market_seq = x.seq {tx_join}ORDER BY x.ord), "
        "c AS (INSERT INTO engine_checkpoints (market_id, state_hash, last_seq, trade_seq, last_price, "
        "updated_at, batches) VALUES (:market, :c_hash, :c_seq, :c_trade_seq, :c_price, :now, 1) "
        "ON CONFLICT (market_id) DO UPDATE SET state_hash = EXCLUDED.state_hash, last_seq = EXCLUDED.last_seq, "
        "trade_seq = EXCLUDED.trade_seq, last_price = EXCLUDED.last_price, updated_at = EXCLUDED.updated_at, "
        "batches = engine_checkpoints.batches + 1), "
        # the batch's audit entry (the audit log's own table, as SqlAuditLog writes it), saving a round trip
        "a AS (INSERT INTO audit_log (actor, action, subject, details) "
        f"SELECT CAST(:a_actor AS text), :a_action, :a_subject, {details} "
        "WHERE CAST(:a_actor AS text) IS NOT NULL)"
    )


# Foreign keys are checked at the end of the statement, when every part of it is in.
_WRITE_BATCH = text(f"WITH {_batch_ctes(False, False)} SELECT market_seq, trade_id FROM t")  # noqa: S608 - constant lists
# The runner's: after the ledger write, or alone once it has written (the batch ahead may not have
# committed yet, so changed orders are upserted).
_WRITE_BATCH_UPSERT = text(f"WITH {_batch_ctes(False, True)} SELECT market_seq, trade_id FROM t")  # noqa: S608
_WITH_LEDGER_CTES = _batch_ctes(True, True)
_WITH_LEDGER_SELECT = (
    "(SELECT array_agg(market_seq ORDER BY market_seq) FROM t) AS trade_seqs, "
    "(SELECT array_agg(trade_id ORDER BY market_seq) FROM t) AS trade_ids"
)


def _plus_one(position: int | None) -> int | None:
    return None if position is None else position + 1


def _order_row(order: Order) -> tuple[Any, ...]:
    """The order's values in ``_ORDER_COLUMNS``' order (a tuple: the batch transposes them)."""
    fee = order.fee
    stop_status = order.stop_status
    return (
        order.order_id,
        order.market_id,
        order.account_id,
        order.client_order_id,
        order.fingerprint,
        order.side.value,
        order.type.value,
        order.time_in_force.value,
        order.post_only,
        order.price,
        order.stop_price,
        order.reserve_price,
        order.quantity,
        order.remaining,
        order.executed_quote,
        order.commission,
        order.commission_asset,
        None if fee is None else fee.rule_id,
        None if fee is None else fee.fee_type.value,
        None if fee is None else fee.maker,
        None if fee is None else fee.taker,
        None if fee is None else fee.min_fee,
        order.status.value,
        None if stop_status is None else stop_status.value,
        order.source,
        order.reject_reason,
        order.cancel_reason,
        order.locked_asset,
        order.locked_amount,
        order.locked_remaining,
        order.hold_tx_id,
        order.engine_seq,
        order.cancellation_date,
        order.created_at,
        order.updated_at,
    )


_POSITION = {name: i for i, (name, _) in enumerate(_ORDER_COLUMNS)}
_EMPTY_COLUMNS: list[tuple[Any, ...]] = [() for _ in _ORDER_COLUMNS]


def _columns(orders: Sequence[Order], names: Sequence[str]) -> dict[str, str]:
    """Each named column of ``orders`` as one array literal (rows transposed by ``zip``, in C)."""
    columns = list(zip(*map(_order_row, orders), strict=True)) or _EMPTY_COLUMNS
    return {name: LITERALS[_KINDS[name]](columns[_POSITION[name]]) for name in names}


def _order(row: Any) -> Order:
    fee = (
        FeeTerms(row.fee_rule_id, FeeType(row.fee_type), row.maker_fee, row.taker_fee, row.min_fee)
        if row.fee_type is not None
        else None
    )
    return Order(
        order_id=int(row.order_id),
        market_id=row.market_id,
        account_id=AccountId(row.account_id),
        side=Side(row.side),
        type=OrderType(row.type),
        time_in_force=TimeInForce(row.time_in_force),
        quantity=row.quantity,
        remaining=row.remaining,
        status=OrderStatus(row.status),
        commission_asset=AssetId(row.commission_asset),
        created_at=row.created_at,
        updated_at=row.updated_at,
        post_only=row.post_only,
        price=row.price,
        stop_price=row.stop_price,
        reserve_price=row.reserve_price,
        client_order_id=row.client_order_id,
        fingerprint=row.fingerprint,
        executed_quote=row.executed_quote,
        commission=row.commission,
        fee=fee,
        stop_status=None if row.stop_status is None else StopStatus(row.stop_status),
        source=row.source,
        reject_reason=row.reject_reason,
        cancel_reason=row.cancel_reason,
        locked_asset=None if row.locked_asset is None else AssetId(row.locked_asset),
        locked_amount=row.locked_amount,
        locked_remaining=row.locked_remaining,
        hold_tx_id=None if row.hold_tx_id is None else int(row.hold_tx_id),
        engine_seq=None if row.engine_seq is None else int(row.engine_seq),
        cancellation_date=row.cancellation_date,
    )


def _execution(row: Any) -> Execution:
    return Execution(
        execution_id=int(row.execution_id),
        order_id=int(row.order_id),
        account_id=AccountId(row.account_id),
        market_id=row.market_id,
        trade_id=int(row.trade_id),
        side=Side(row.side),
        price=row.price,
        amount=row.amount,
        quote_amount=row.quote_amount,
        commission=row.commission,
        commission_asset=AssetId(row.commission_asset),
        is_maker=row.is_maker,
        created_at=row.created_at,
    )


class SqlTradingRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    # --- the runner's writes -----------------------------------------------------------------

    async def reserve_client_ids(
        self, entries: Sequence[tuple[AccountId, str, int, bytes]]
    ) -> set[tuple[str, str]]:
        if not entries:
            return set()
        # One order of insertion for every writer: concurrent ticks never wait on each other in a cycle.
        ordered = sorted(entries, key=lambda e: (e[0], e[1]))
        rows = await self._c.execute(
            _RESERVE,
            {
                "a": [e[0] for e in ordered],
                "c": [e[1] for e in ordered],
                "o": [e[2] for e in ordered],
                "f": [e[3] for e in ordered],
            },
        )
        return {(r.account_id, r.client_order_id) for r in rows}

    async def client_id_owners(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, bytes]]:
        if not keys:
            return {}
        rows = await self._c.execute(_OWNERS, {"a": [k[0] for k in keys], "c": [k[1] for k in keys]})
        return {(r.account_id, r.client_order_id): (int(r.order_id), bytes(r.fingerprint)) for r in rows}

    async def prepare(self, count: int, keys: Sequence[tuple[str, str]], market_id: str = "") -> Prepared:
        row = (
            await self._c.execute(
                _PREPARE,
                {
                    "n": count,
                    "o": [k[0] for k in keys],
                    "a": [k[1] for k in keys],
                    "bucket": Bucket.AVAILABLE.value,
                    "market": market_id,
                },
            )
        ).one()
        ids = [int(i) for i in row.ids or ()]
        balances = dict(
            zip(zip(row.owners or (), row.assets or (), strict=True), row.balances or (), strict=True)
        )
        return Prepared(ids, balances, int(row.batches or 0))

    async def write_batch_and_ledger(
        self,
        batch: BatchWrite,
        txs: Sequence[LedgerTransaction],
        hold_positions: Mapping[int, int],
        execution_positions: Sequence[int],
    ) -> tuple[builtins.list[int], dict[int, int]]:
        if not txs:
            return [], await self.write_batch(batch)
        ledger = SqlLedgerRepository(self._c)
        params = self._params(batch, whole=True)
        # Positions from 1, as the ledger write's ``src`` numbers its transactions.
        params["hold_tx_id"] = bigints([_plus_one(hold_positions.get(o.order_id)) for o in batch.new_orders])
        params["e_tx"] = bigints([p + 1 for p in execution_positions])
        written = await ledger.write_with(txs, LedgerTail(_WITH_LEDGER_CTES, _WITH_LEDGER_SELECT, params))
        if written is not None:
            tx_ids, row = written
            return tx_ids, dict(
                zip(map(int, row.trade_seqs or ()), map(int, row.trade_ids or ()), strict=True)
            )
        # An account not known yet (its first use since start): the ledger write creates it first,
        # then the rest.
        tx_ids = await ledger.apply_many(txs, savepoint=False)
        params["hold_tx_id"] = bigints(
            [None if (p := hold_positions.get(o.order_id)) is None else tx_ids[p] for o in batch.new_orders]
        )
        params["e_tx"] = bigints([tx_ids[p] for p in execution_positions])
        if batch.audit is not None:
            details = {**batch.audit.details, "tx_ids": [min(tx_ids), max(tx_ids)], "count": len(tx_ids)}
            params["a_details"] = json.dumps(details)
        rows = await self._c.execute(_WRITE_BATCH_UPSERT, params)
        return tx_ids, {int(r.market_seq): int(r.trade_id) for r in rows}

    async def write_batch(self, batch: BatchWrite) -> dict[int, int]:
        rows = await self._c.execute(_WRITE_BATCH, self._params(batch))
        return {int(r.market_seq): int(r.trade_id) for r in rows}

    @staticmethod
    def _params(batch: BatchWrite, *, whole: bool = False) -> dict[str, Any]:
        """``whole``: every column of the changed orders (for the upsert of ``_batch_ctes``)."""
        trades, executions, cp, audit = batch.trades, batch.executions, batch.checkpoint, batch.audit
        params: dict[str, Any] = {
            "market": cp.market_id,
            "now": cp.updated_at,
            "quote_asset": batch.quote_asset,
            "t_seq": bigints([t.market_seq for t in trades]),
            "t_price": numerics([t.price for t in trades]),
            "t_amount": numerics([t.amount for t in trades]),
            "t_quote": numerics([t.quote_amount for t in trades]),
            "t_side": texts([t.taker_side.value for t in trades]),
            "t_maker": bigints([t.maker_order_id for t in trades]),
            "t_taker": bigints([t.taker_order_id for t in trades]),
            "e_order": bigints([r.fill.order_id for r in executions]),
            "e_account": texts([r.fill.account_id for r in executions]),
            "e_seq": bigints([r.trade_seq for r in executions]),
            "e_side": texts([r.fill.side.value for r in executions]),
            "e_price": numerics([r.fill.price for r in executions]),
            "e_amount": numerics([r.fill.amount for r in executions]),
            "e_quote": numerics([r.fill.quote_amount for r in executions]),
            "e_fee": numerics([r.fill.commission for r in executions]),
            "e_maker": booleans([r.fill.is_maker for r in executions]),
            "e_tx": bigints([r.ledger_tx_id for r in executions]),
            "c_hash": cp.state_hash,
            "c_seq": cp.last_seq,
            "c_trade_seq": cp.trade_seq,
            "c_price": cp.last_price,
            "a_actor": None if audit is None else audit.actor,
            "a_action": None if audit is None else audit.action.value,
            "a_subject": None if audit is None else audit.subject,
            "a_details": None if audit is None else json.dumps(audit.details),
        }
        params.update(_columns(batch.new_orders, [n for n, _ in _ORDER_COLUMNS]))
        changed = _columns(
            batch.changed_orders, [n for n, _ in _ORDER_COLUMNS] if whole else ("order_id", *_MUTABLE)
        )
        params.update({f"u_{k}": v for k, v in changed.items()})
        return params

    # --- reads -------------------------------------------------------------------------------

    async def checkpoint(self, market_id: str) -> Checkpoint | None:
        c = tt.engine_checkpoints
        row = (await self._c.execute(select(c).where(c.c.market_id == market_id))).first()
        if row is None:
            return None
        return Checkpoint(
            row.market_id,
            row.state_hash,
            int(row.last_seq),
            int(row.trade_seq),
            row.last_price,
            row.updated_at,
            int(row.batches),
        )

    async def last_trade(self, market_id: str) -> tuple[int, Decimal] | None:
        t = tt.trades
        row = (
            await self._c.execute(
                select(t.c.market_seq, t.c.price)
                .where(t.c.market_id == market_id)
                .order_by(t.c.market_seq.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else (int(row.market_seq), row.price)

    async def live_orders(self, market_id: str) -> builtins.list[Order]:
        o = tt.orders
        rows = await self._c.execute(
            select(o)
            .where(and_(o.c.market_id == market_id, o.c.status.in_(tt.LIVE_STATUSES)))
            .order_by(o.c.order_id)
        )
        return [_order(r) for r in rows]

    async def get_order(self, order_id: int) -> Order | None:
        o = tt.orders
        row = (await self._c.execute(select(o).where(o.c.order_id == order_id))).first()
        return None if row is None else _order(row)

    async def orders_by_ids(self, order_ids: Sequence[int]) -> builtins.list[Order]:
        if not order_ids:
            return []
        o = tt.orders
        rows = await self._c.execute(select(o).where(o.c.order_id.in_(list(order_ids))))
        return [_order(r) for r in rows]

    async def list_orders(self, account_id: AccountId, query: OrderQuery) -> builtins.list[Order]:
        o = tt.orders
        conditions = [o.c.account_id == account_id]
        if query.created_from is not None:
            conditions.append(o.c.created_at >= query.created_from)
        if query.created_to is not None:
            conditions.append(o.c.created_at <= query.created_to)
        if query.statuses:
            conditions.append(o.c.status.in_([s.value for s in query.statuses]))
        if query.last_order_id is not None:
            conditions.append(o.c.order_id < query.last_order_id)
        rows = await self._c.execute(
            select(o).where(and_(*conditions)).order_by(o.c.order_id.desc()).limit(query.limit)
        )
        return [_order(r) for r in rows]

    async def executions(
        self, account_id: AccountId, order_ids: Sequence[int] | None, after_id: int | None, limit: int
    ) -> builtins.list[Execution]:
        e = tt.executions
        conditions = [e.c.account_id == account_id]
        if order_ids is not None:
            conditions.append(e.c.order_id.in_(list(order_ids)))
        if after_id is not None:
            conditions.append(e.c.execution_id > after_id)
        rows = await self._c.execute(
            select(e).where(and_(*conditions)).order_by(e.c.execution_id).limit(limit)
        )
        return [_execution(r) for r in rows]
