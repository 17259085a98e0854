"""The derivatives repository on PostgreSQL (tables in derivatives_tables.py).

Locking: every change to an account's positions first takes a transaction-level advisory lock
on the account (``lock_account``), so orders, closes, trigger and stop-out closes of one account
take turns whatever market they are on; then ``lock_funds`` locks the ledger accounts the fill
will write, in the ledger's own id order (``ledger_lock_accounts``, migration 0002), so the
ledger write that follows never waits for a row another writer holds while holding one it needs.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import derivatives_tables as dt
from bourse.adapters.db import trading_tables as tt
from bourse.domain.ledger import FEES, HOUSE, Bucket
from bourse.domain.orders import OrderStatus, OrderType, Side, StopStatus, TimeInForce
from bourse.domain.positions import CloseReason, MarginType, Position, PositionSide
from bourse.domain.triggers import StopLoss, TakeProfitLevel, Triggers
from bourse.domain.values import AccountId, AssetId
from bourse.service.derivatives_records import (
    ClosedPositionQuery,
    ClosedPositionRow,
    CollateralSeizure,
    Deficit,
    DerivativeOrder,
    ExecutionQuery,
    FundingPayment,
    OrderListQuery,
    OrderSource,
    PositionExecution,
    SwapPayment,
    TriggerRequest,
)

_LOCK_FUNDS = text(
    "SELECT owner, bucket, balance FROM ledger_lock_accounts("
    "CAST(:owner AS text[]), CAST(:asset AS text[]), CAST(:bucket AS text[]))"
)


def _position(r: Any) -> Position:
    return Position(
        position_id=str(r.position_id),
        account_id=AccountId(r.account_id),
        market_id=r.market_id,
        side=PositionSide(r.side),
        lots=r.lots,
        entry_price=r.entry_price,
        leverage=r.leverage,
        margin_type=MarginType(r.margin_type),
        margin=r.margin,
        realized_pnl=r.realized_pnl,
        opened_at=r.opened_at,
        updated_at=r.updated_at,
        closed_at=r.closed_at,
    )


def _position_values(p: Position) -> dict[str, Any]:
    return {
        "account_id": p.account_id,
        "market_id": p.market_id,
        "side": p.side.value,
        "lots": p.lots,
        "entry_price": p.entry_price,
        "leverage": p.leverage,
        "margin_type": p.margin_type.value,
        "margin": p.margin,
        "realized_pnl": p.realized_pnl,
        "opened_at": p.opened_at,
        "updated_at": p.updated_at,
        "closed_at": p.closed_at,
    }


def _order(r: Any) -> DerivativeOrder:
    return DerivativeOrder(
        order_id=int(r.order_id),
        market_id=r.market_id,
        account_id=AccountId(r.account_id),
        side=Side(r.side),
        type=OrderType(r.type),
        time_in_force=TimeInForce(r.time_in_force),
        lots=r.lots,
        remaining_lots=r.remaining_lots,
        leverage=r.leverage,
        margin_type=MarginType(r.margin_type),
        status=OrderStatus(r.status),
        commission_asset=AssetId(r.commission_asset),
        created_at=r.created_at,
        updated_at=r.updated_at,
        price=r.price,
        activation_price=r.activation_price,
        position_id=None if r.position_id is None else str(r.position_id),
        reduce_only=r.reduce_only,
        stop_status=None if r.stop_status is None else StopStatus(r.stop_status),
        source=OrderSource(r.source),
        reason=CloseReason(r.reason),
        triggers=TriggerRequest(
            take_profit=r.tp_price,
            stop_loss=r.sl_price,
            stop_limit_price=r.sl_limit_price,
            trailing=r.sl_trailing,
            trailing_rate=r.sl_trailing_rate,
        ),
        executed_base=r.executed_base,
        executed_quote=r.executed_quote,
        commission=r.commission,
        realized_pnl=r.realized_pnl,
        reject_reason=r.reject_reason,
        cancellation_date=r.cancellation_date,
        client_order_id=r.client_order_id,
        fingerprint=r.fingerprint,
        in_book=r.in_book,
        engine_seq=None if r.engine_seq is None else int(r.engine_seq),
        post_only=r.post_only,
        reserve_price=r.reserve_price,
        locked_amount=r.locked_amount,
        locked_remaining=r.locked_remaining,
        hold_tx_id=None if r.hold_tx_id is None else int(r.hold_tx_id),
        fee_type=r.fee_type,
        fee_size=r.fee_size,
        min_fee=r.min_fee,
        cancel_reason=r.cancel_reason,
    )


def _order_values(o: DerivativeOrder) -> dict[str, Any]:
    t = o.triggers
    return {
        "market_id": o.market_id,
        "account_id": o.account_id,
        "client_order_id": o.client_order_id,
        "fingerprint": o.fingerprint,
        "side": o.side.value,
        "type": o.type.value,
        "time_in_force": o.time_in_force.value,
        "lots": o.lots,
        "remaining_lots": o.remaining_lots,
        "price": o.price,
        "activation_price": o.activation_price,
        "leverage": o.leverage,
        "margin_type": o.margin_type.value,
        "position_id": None if o.position_id is None else int(o.position_id),
        "reduce_only": o.reduce_only,
        "status": o.status.value,
        "stop_status": None if o.stop_status is None else o.stop_status.value,
        "source": o.source.value,
        "reason": o.reason.value,
        "tp_price": t.take_profit,
        "sl_price": t.stop_loss,
        "sl_limit_price": t.stop_limit_price,
        "sl_trailing": t.trailing,
        "sl_trailing_rate": t.trailing_rate,
        "executed_base": o.executed_base,
        "executed_quote": o.executed_quote,
        "commission": o.commission,
        "commission_asset": o.commission_asset,
        "realized_pnl": o.realized_pnl,
        "reject_reason": o.reject_reason,
        "cancellation_date": o.cancellation_date,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
        "in_book": o.in_book,
        "engine_seq": o.engine_seq,
        "post_only": o.post_only,
        "reserve_price": o.reserve_price,
        "locked_amount": o.locked_amount,
        "locked_remaining": o.locked_remaining,
        "hold_tx_id": o.hold_tx_id,
        "fee_type": o.fee_type,
        "fee_size": o.fee_size,
        "min_fee": o.min_fee,
        "cancel_reason": o.cancel_reason,
    }


def _execution(r: Any) -> PositionExecution:
    return PositionExecution(
        execution_id=int(r.execution_id),
        order_id=int(r.order_id),
        position_id=str(r.position_id),
        account_id=AccountId(r.account_id),
        market_id=r.market_id,
        side=Side(r.side),
        reason=CloseReason(r.reason),
        lots=r.lots,
        base_amount=r.base_amount,
        price=r.price,
        raw_price=r.raw_price,
        markup=r.markup,
        fee=r.fee,
        fee_asset=AssetId(r.fee_asset),
        realized_pnl=r.realized_pnl,
        closed_lots=r.closed_lots,
        entry_price=r.entry_price,
        rate_to_rat=r.rate_to_rat,
        ledger_tx_id=int(r.ledger_tx_id),
        created_at=r.created_at,
    )


def _execution_values(e: PositionExecution) -> dict[str, Any]:
    return {
        "order_id": e.order_id,
        "position_id": int(e.position_id),
        "account_id": e.account_id,
        "market_id": e.market_id,
        "side": e.side.value,
        "reason": e.reason.value,
        "lots": e.lots,
        "base_amount": e.base_amount,
        "price": e.price,
        "raw_price": e.raw_price,
        "markup": e.markup,
        "fee": e.fee,
        "fee_asset": e.fee_asset,
        "realized_pnl": e.realized_pnl,
        "closed_lots": e.closed_lots,
        "entry_price": e.entry_price,
        "rate_to_rat": e.rate_to_rat,
        "ledger_tx_id": e.ledger_tx_id,
        "created_at": e.created_at,
    }


def _ids(values: Sequence[str]) -> list[int]:
    """Position ids as stored (bigint); an id that is not a number names no position."""
    return [int(v) for v in values if v.isdigit() and len(v) <= 18]


class SqlDerivativesRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    # --- locks and ids -----------------------------------------------------------------------

    async def lock_account(self, account_id: AccountId) -> None:
        await self._c.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"bourse.derivatives:{account_id}"},
        )

    async def lock_funds(self, owner: str, asset: AssetId) -> tuple[Decimal, Decimal]:
        keys = sorted(
            {
                (owner, str(asset), Bucket.AVAILABLE.value),
                (owner, str(asset), Bucket.MARGIN.value),
                (HOUSE, str(asset), Bucket.AVAILABLE.value),
                (FEES, str(asset), Bucket.AVAILABLE.value),
            }
        )
        rows = await self._c.execute(
            _LOCK_FUNDS,
            {
                "owner": [k[0] for k in keys],
                "asset": [k[1] for k in keys],
                "bucket": [k[2] for k in keys],
            },
        )
        balances = {(r.owner, r.bucket): r.balance for r in rows}
        return (
            balances.get((owner, Bucket.AVAILABLE.value), Decimal(0)),
            balances.get((owner, Bucket.MARGIN.value), Decimal(0)),
        )

    async def new_order_id(self) -> int:
        return int((await self._c.execute(select(tt.order_ids.next_value()))).scalar_one())

    async def new_position_id(self) -> str:
        return str((await self._c.execute(select(dt.position_ids.next_value()))).scalar_one())

    # --- positions ---------------------------------------------------------------------------

    async def open_positions(
        self, account_id: AccountId, market_id: str | None = None, *, for_update: bool = False
    ) -> builtins.list[Position]:
        p = dt.positions
        stmt = select(p).where(p.c.account_id == account_id, p.c.closed_at.is_(None))
        if market_id is not None:
            stmt = stmt.where(p.c.market_id == market_id)
        stmt = stmt.order_by(p.c.position_id)
        if for_update:
            stmt = stmt.with_for_update()
        return [_position(r) for r in await self._c.execute(stmt)]

    async def get_position(self, position_id: str, *, for_update: bool = False) -> Position | None:
        ids = _ids([position_id])
        if not ids:
            return None
        p = dt.positions
        stmt = select(p).where(p.c.position_id == ids[0])
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _position(row)

    async def positions(
        self, account_id: AccountId, *, open_only: bool, last_position_id: str | None, limit: int
    ) -> builtins.list[Position]:
        p = dt.positions
        stmt = select(p).where(p.c.account_id == account_id)
        if open_only:
            stmt = stmt.where(p.c.closed_at.is_(None))
        if last_position_id is not None:
            ids = _ids([last_position_id])
            stmt = stmt.where(p.c.position_id < (ids[0] if ids else 0))
        stmt = stmt.order_by(p.c.position_id.desc()).limit(limit)
        return [_position(r) for r in await self._c.execute(stmt)]

    async def save_positions(self, positions: Sequence[Position], open_order_id: int) -> None:
        p = dt.positions
        for position in positions:
            values = _position_values(position)
            stmt = pg_insert(p).values(
                position_id=int(position.position_id), open_order_id=open_order_id, **values
            )
            changing = {k: v for k, v in values.items() if k not in ("account_id", "market_id", "opened_at")}
            await self._c.execute(stmt.on_conflict_do_update(index_elements=["position_id"], set_=changing))

    async def market_positions(self, market_id: str) -> builtins.list[Position]:
        p = dt.positions
        rows = await self._c.execute(
            select(p).where(p.c.market_id == market_id, p.c.closed_at.is_(None)).order_by(p.c.position_id)
        )
        return [_position(r) for r in rows]

    async def positions_at(self, market_id: str, at: datetime) -> builtins.list[Position]:
        p, e = dt.positions, dt.position_executions
        # The lots a position had at ``at``: what its executions up to then opened or added, less
        # what they closed (an execution either opens/increases or closes, never both).
        change = case((e.c.closed_lots == 0, e.c.lots), else_=-e.c.closed_lots)
        lots_at = func.sum(change).label("lots_at")
        stmt = (
            select(p, lots_at)
            .join(e, e.c.position_id == p.c.position_id)
            .where(
                p.c.market_id == market_id,
                p.c.opened_at <= at,
                or_(p.c.closed_at.is_(None), p.c.closed_at > at),
                e.c.created_at <= at,
            )
            .group_by(p.c.position_id)
            .having(func.sum(change) > 0)
            .order_by(p.c.position_id)
        )
        out = []
        for r in await self._c.execute(stmt):
            position = _position(r)
            position.lots = r.lots_at
            out.append(position)
        return out

    async def first_opened_at(self, market_id: str) -> datetime | None:
        p = dt.positions
        value: datetime | None = await self._c.scalar(
            select(func.min(p.c.opened_at)).where(p.c.market_id == market_id)
        )
        return value

    async def accounts_with_positions(self) -> builtins.list[AccountId]:
        p = dt.positions
        rows = await self._c.execute(
            select(p.c.account_id).where(p.c.closed_at.is_(None)).distinct().order_by(p.c.account_id)
        )
        return [AccountId(r.account_id) for r in rows]

    # --- triggers ----------------------------------------------------------------------------

    async def triggers(self, position_ids: Sequence[str]) -> dict[str, Triggers]:
        ids = _ids(position_ids)
        if not ids:
            return {}
        tp, sl = dt.position_take_profits, dt.position_stop_losses
        out: dict[str, Triggers] = {}
        for r in await self._c.execute(
            select(tp).where(tp.c.position_id.in_(ids)).order_by(tp.c.position_id, tp.c.level)
        ):
            entry = out.setdefault(str(r.position_id), Triggers([], None))
            entry.take_profit.append(TakeProfitLevel(r.price, r.lots, r.done))
        for r in await self._c.execute(select(sl).where(sl.c.position_id.in_(ids))):
            entry = out.setdefault(str(r.position_id), Triggers([], None))
            entry.stop_loss = StopLoss(r.price, r.limit_price, r.trailing_rate, r.best_mark)
        return out

    async def save_triggers(self, position_id: str, triggers: Triggers | None) -> None:
        pid = int(position_id)
        tp, sl = dt.position_take_profits, dt.position_stop_losses
        await self._c.execute(delete(tp).where(tp.c.position_id == pid))
        await self._c.execute(delete(sl).where(sl.c.position_id == pid))
        if triggers is None:
            return
        if triggers.take_profit:
            await self._c.execute(
                insert(tp),
                [
                    {"position_id": pid, "level": i, "price": lvl.price, "lots": lvl.lots, "done": lvl.done}
                    for i, lvl in enumerate(triggers.take_profit)
                ],
            )
        s = triggers.stop_loss
        if s is not None:
            await self._c.execute(
                insert(sl).values(
                    position_id=pid,
                    price=s.price,
                    limit_price=s.limit_price,
                    trailing_rate=s.trailing_rate,
                    best_mark=s.best_mark,
                )
            )

    # --- orders ------------------------------------------------------------------------------

    async def add_order(self, order: DerivativeOrder) -> bool:
        o = dt.derivative_orders
        stmt = pg_insert(o).values(order_id=order.order_id, **_order_values(order))
        if order.client_order_id is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["account_id", "client_order_id"])
        result = await self._c.execute(stmt)
        return bool(result.rowcount)

    async def update_order(self, order: DerivativeOrder) -> None:
        o = dt.derivative_orders
        await self._c.execute(update(o).where(o.c.order_id == order.order_id).values(**_order_values(order)))

    async def get_order(self, order_id: int, *, for_update: bool = False) -> DerivativeOrder | None:
        o = dt.derivative_orders
        stmt = select(o).where(o.c.order_id == order_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _order(row)

    async def order_by_client_id(self, account_id: AccountId, client_order_id: str) -> DerivativeOrder | None:
        o = dt.derivative_orders
        row = (
            await self._c.execute(
                select(o).where(o.c.account_id == account_id, o.c.client_order_id == client_order_id)
            )
        ).first()
        return None if row is None else _order(row)

    async def list_orders(
        self, account_id: AccountId, query: OrderListQuery
    ) -> builtins.list[DerivativeOrder]:
        o = dt.derivative_orders
        stmt = select(o).where(o.c.account_id == account_id)
        if query.created_from is not None:
            stmt = stmt.where(o.c.created_at >= query.created_from)
        if query.created_to is not None:
            stmt = stmt.where(o.c.created_at <= query.created_to)
        if query.statuses:
            stmt = stmt.where(o.c.status.in_([s.value for s in query.statuses]))
        if query.last_order_id is not None:
            stmt = stmt.where(o.c.order_id < query.last_order_id)
        stmt = stmt.order_by(o.c.order_id.desc()).limit(query.limit)
        return [_order(r) for r in await self._c.execute(stmt)]

    async def book_orders(self, market_id: str) -> builtins.list[DerivativeOrder]:
        o = dt.derivative_orders
        stmt = select(o).where(o.c.market_id == market_id, o.c.in_book, o.c.status.in_(dt.LIVE_STATUSES))
        return [_order(r) for r in await self._c.execute(stmt.order_by(o.c.order_id))]

    async def new_position_ids(self, count: int) -> builtins.list[str]:
        if count <= 0:
            return []
        rows = await self._c.execute(
            text("SELECT nextval('position_ids') AS id FROM generate_series(1, :n)"), {"n": count}
        )
        return [str(r.id) for r in rows]

    async def live_orders(self, market_id: str | None = None) -> builtins.list[DerivativeOrder]:
        o = dt.derivative_orders
        stmt = select(o).where(o.c.status.in_(dt.LIVE_STATUSES), ~o.c.in_book)
        if market_id is not None:
            stmt = stmt.where(o.c.market_id == market_id)
        return [_order(r) for r in await self._c.execute(stmt.order_by(o.c.order_id))]

    # --- fills -------------------------------------------------------------------------------

    async def add_executions(self, executions: Sequence[PositionExecution]) -> builtins.list[int]:
        if not executions:
            return []
        e = dt.position_executions
        rows = await self._c.execute(
            insert(e).returning(e.c.execution_id, sort_by_parameter_order=True),
            [_execution_values(x) for x in executions],
        )
        return [int(r.execution_id) for r in rows]

    async def executions(
        self, account_id: AccountId, query: ExecutionQuery
    ) -> builtins.list[PositionExecution]:
        e = dt.position_executions
        stmt = select(e).where(e.c.account_id == account_id)
        if query.order_ids is not None:
            stmt = stmt.where(e.c.order_id.in_(list(query.order_ids)))
        if query.position_ids is not None:
            stmt = stmt.where(e.c.position_id.in_(_ids(query.position_ids)))
        if query.after_id is not None:
            stmt = stmt.where(e.c.execution_id > query.after_id)
        stmt = stmt.order_by(e.c.execution_id).offset(query.offset).limit(query.limit)
        return [_execution(r) for r in await self._c.execute(stmt)]

    async def closed_positions(
        self, account_id: AccountId, query: ClosedPositionQuery
    ) -> builtins.list[ClosedPositionRow]:
        e, o, p = dt.position_executions, dt.derivative_orders, dt.positions
        stmt = (
            select(e, o.c.type.label("order_type"), o.c.time_in_force, p.c.opened_at)
            .select_from(e.join(o, o.c.order_id == e.c.order_id).join(p, p.c.position_id == e.c.position_id))
            .where(e.c.account_id == account_id, e.c.closed_lots > 0)
        )
        if query.created_from is not None:
            stmt = stmt.where(e.c.created_at >= query.created_from)
        if query.created_to is not None:
            stmt = stmt.where(e.c.created_at <= query.created_to)
        if query.last_order_id is not None:
            stmt = stmt.where(e.c.order_id < query.last_order_id)
        stmt = stmt.order_by(e.c.order_id.desc(), e.c.execution_id.desc()).limit(query.limit)
        return [
            ClosedPositionRow(
                _execution(r), OrderType(r.order_type), TimeInForce(r.time_in_force), r.opened_at
            )
            for r in await self._c.execute(stmt)
        ]

    # --- margin settings ---------------------------------------------------------------------

    async def margin_ratios(self) -> dict[AssetId, Decimal]:
        m = dt.margin_ratios
        return {AssetId(r.asset_id): r.ratio for r in await self._c.execute(select(m).order_by(m.c.asset_id))}

    async def set_margin_ratio(self, asset_id: AssetId, ratio: Decimal, at: datetime) -> None:
        m = dt.margin_ratios
        stmt = pg_insert(m).values(asset_id=asset_id, ratio=ratio, updated_at=at)
        await self._c.execute(
            stmt.on_conflict_do_update(index_elements=["asset_id"], set_={"ratio": ratio, "updated_at": at})
        )

    async def margin_selection(self, account_id: AccountId) -> dict[AssetId, bool]:
        a = dt.account_margin_assets
        rows = await self._c.execute(
            select(a.c.asset_id, a.c.is_selected).where(a.c.account_id == account_id)
        )
        return {AssetId(r.asset_id): r.is_selected for r in rows}

    async def set_margin_selection(
        self, account_id: AccountId, asset_id: AssetId, selected: bool, at: datetime
    ) -> None:
        a = dt.account_margin_assets
        stmt = pg_insert(a).values(
            account_id=account_id, asset_id=asset_id, is_selected=selected, updated_at=at
        )
        await self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=["account_id", "asset_id"], set_={"is_selected": selected, "updated_at": at}
            )
        )

    async def margin_call_armed(self, account_id: AccountId, scope: str) -> bool:
        m = dt.margin_call_states
        row = (
            await self._c.execute(select(m.c.armed).where(m.c.account_id == account_id, m.c.scope == scope))
        ).first()
        return True if row is None else bool(row.armed)

    async def set_margin_call_armed(
        self, account_id: AccountId, scope: str, armed: bool, at: datetime
    ) -> None:
        m = dt.margin_call_states
        stmt = pg_insert(m).values(account_id=account_id, scope=scope, armed=armed, updated_at=at)
        await self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=["account_id", "scope"], set_={"armed": armed, "updated_at": at}
            )
        )

    # --- deficits, funding, swaps ------------------------------------------------------------

    async def add_deficit(self, deficit: Deficit) -> bool:
        d = dt.deficits
        stmt = pg_insert(d).values(
            business_key=deficit.business_key,
            account_id=deficit.account_id,
            market_id=deficit.market_id,
            position_id=None if deficit.position_id is None else int(deficit.position_id),
            order_id=deficit.order_id,
            asset=deficit.asset,
            amount=deficit.amount,
            kind=deficit.kind.value,
            created_at=deficit.created_at,
        )
        result = await self._c.execute(stmt.on_conflict_do_nothing(index_elements=["business_key"]))
        return bool(result.rowcount)

    async def add_seizure(self, seizure: CollateralSeizure) -> None:
        await self._c.execute(
            insert(dt.collateral_seizures).values(
                business_key=seizure.business_key,
                account_id=seizure.account_id,
                market_id=seizure.market_id,
                position_id=None if seizure.position_id is None else int(seizure.position_id),
                order_id=seizure.order_id,
                kind=seizure.kind.value,
                settlement_asset=seizure.settlement_asset,
                asset=seizure.asset,
                amount=seizure.amount,
                rate=seizure.rate,
                value=seizure.value,
                ledger_tx_id=seizure.ledger_tx_id,
                created_at=seizure.created_at,
            )
        )

    async def add_funding_payment(self, payment: FundingPayment) -> bool:
        f = dt.funding_payments
        stmt = pg_insert(f).values(
            market_id=payment.market_id,
            applied_at=payment.applied_at,
            position_id=int(payment.position_id),
            account_id=payment.account_id,
            rate=payment.rate,
            mark=payment.mark,
            asset=payment.asset,
            amount=payment.amount,
            deficit=payment.deficit,
            ledger_tx_id=payment.ledger_tx_id,
            created_at=payment.created_at,
        )
        result = await self._c.execute(
            stmt.on_conflict_do_nothing(index_elements=["market_id", "applied_at", "position_id"])
        )
        return bool(result.rowcount)

    async def add_swap_payment(self, payment: SwapPayment) -> bool:
        s = dt.swap_payments
        stmt = pg_insert(s).values(
            market_id=payment.market_id,
            day=payment.day,
            position_id=int(payment.position_id),
            account_id=payment.account_id,
            asset=payment.asset,
            amount=payment.amount,
            deficit=payment.deficit,
            ledger_tx_id=payment.ledger_tx_id,
            created_at=payment.created_at,
        )
        result = await self._c.execute(stmt.on_conflict_do_nothing(index_elements=["position_id", "day"]))
        return bool(result.rowcount)

    # --- the payment jobs' cursors -------------------------------------------------------------

    async def job_cursor(self, job: str, market_id: str) -> datetime | None:
        c = dt.derivative_job_cursors
        value: datetime | None = await self._c.scalar(
            select(c.c.through).where(c.c.job == job, c.c.market_id == market_id)
        )
        return value

    async def set_job_cursor(self, job: str, market_id: str, through: datetime, at: datetime) -> None:
        c = dt.derivative_job_cursors
        stmt = pg_insert(c).values(job=job, market_id=market_id, through=through, updated_at=at)
        await self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=["job", "market_id"],
                set_={"through": func.greatest(c.c.through, stmt.excluded.through), "updated_at": at},
            )
        )
