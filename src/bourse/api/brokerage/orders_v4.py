"""Front office v4 orders and executions (brokerage-platform.md, v4 "orders"): spot orders and
derivative (Cfd, Perpetual) orders together.

Same rules as v3 (trading-ui, the caller's ``accountId`` header); the v4 order
shape adds the market's type and full name, the commission asset and
``leverage`` (1 for spot). Executions come oldest first; ``isExceeded`` says more exist
beyond ``limit``; spot has no positions (``positionId`` null, realized PnL 0). Order ids
and execution ids are one id space across spot and derivatives, so the lists merge by id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from bourse.api.brokerage.derivatives import execution_json, order_v4_json
from bourse.api.brokerage.orders_v3 import OrderListRequest, order_query
from bourse.api.common.auth import Services, require
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import Operation, Principal
from bourse.domain.order_views import execution_v4, order_v4
from bourse.service.derivatives_records import OrderListQuery, PositionExecution
from bourse.service.trading import ExecutionView

router = APIRouter(prefix="/frontoffice/api/v4", tags=["brokerage: orders v4"])

Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]
AccountHeader = Annotated[str | None, Header(alias="accountId")]

DEFAULT_LIMIT = 100


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class ExecutionsRequest(_Body):
    orderIds: list[str] | None = None
    limit: int | None = None


class OrderExecutionsRequest(_Body):
    limit: int | None = None
    lastExecutionId: str | None = None


def _executions(
    views: list[ExecutionView], exceeded: bool, derivative: list[PositionExecution], limit: int
) -> JSONResponse:
    """Spot and derivative executions merged by id (oldest first), at most ``limit``."""
    rows: list[tuple[int, Any]] = [(v.execution.execution_id, v) for v in views]
    rows += [(e.execution_id, e) for e in derivative]
    rows.sort(key=lambda r: r[0])
    return JSONResponse(
        {
            "executions": [
                execution_json(r, with_pnl=True)
                if isinstance(r, PositionExecution)
                else execution_v4(r.execution, r.commission_in_rat)
                for _, r in rows[:limit]
            ],
            "isExceeded": exceeded or len(rows) > limit,
        }
    )


def _order_ids(values: list[str] | None) -> list[int] | None:
    if values is None:
        return None
    return [int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) <= 18]


@router.get("/orders/{orderId}")
async def get_order(
    orderId: str, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    derivative = await services.derivatives.get_order(principal, account_id, orderId)
    if derivative is not None:
        return JSONResponse({"order": order_v4_json(derivative)})
    view = await services.trading.get(principal, account_id, orderId)
    return JSONResponse({"order": order_v4(view.order, view.market)})


@router.post("/order-list")
async def order_list(
    body: OrderListRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    query = order_query(body)
    views = await services.trading.list_orders(principal, account_id, query)
    derivative = await services.derivatives.list_orders(
        principal,
        account_id,
        OrderListQuery(
            query.created_from, query.created_to, query.statuses, query.last_order_id, query.limit
        ),
    )
    rows = [(v.order.order_id, order_v4(v.order, v.market)) for v in views]
    rows += [(d.order.order_id, order_v4_json(d)) for d in derivative]
    rows.sort(key=lambda r: r[0], reverse=True)
    return JSONResponse({"data": [body for _, body in rows[: query.limit]]})


@router.post("/orders/executions/list")
async def executions(
    body: ExecutionsRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    limit = body.limit or DEFAULT_LIMIT
    views, exceeded = await services.trading.executions(
        principal, account_id, order_ids=body.orderIds, limit=limit
    )
    derivative = await services.derivatives.order_executions(
        principal, account_id, order_ids=_order_ids(body.orderIds), after_id=None, limit=limit + 1
    )
    return _executions(views, exceeded, derivative, limit)


@router.post("/orders/{orderId}/executions/list")
async def order_executions(
    orderId: str,
    body: OrderExecutionsRequest,
    principal: Trader,
    services: Services,
    account_id: AccountHeader = None,
) -> JSONResponse:
    limit = body.limit or DEFAULT_LIMIT
    derivative = await services.derivatives.get_order(principal, account_id, orderId)
    if derivative is not None:
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", field="limit")
        after = body.lastExecutionId
        if after is not None and not after.isdigit():
            raise InvalidInput("lastExecutionId must be an execution id", field="lastExecutionId")
        rows = await services.derivatives.order_executions(
            principal,
            account_id,
            order_ids=[derivative.order.order_id],
            after_id=None if after is None else int(after),
            limit=limit + 1,
        )
        return _executions([], False, rows, limit)
    views, exceeded = await services.trading.executions(
        principal,
        account_id,
        order_id=orderId,
        last_execution_id=body.lastExecutionId,
        limit=limit,
    )
    return _executions(views, exceeded, [], limit)
