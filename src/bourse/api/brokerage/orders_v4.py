"""Front office v4 spot orders and executions (brokerage-platform.md, v4 "orders").

Same rules as v3 (trading-ui, the caller's ``accountId`` header); the v4 order
shape adds the market's type and full name, the commission asset and
``leverage`` 1. Executions come oldest first; ``isExceeded`` says more exist
beyond ``limit``; spot has no positions (``positionId`` null, realized PnL 0).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from bourse.api.brokerage.orders_v3 import OrderListRequest, order_query
from bourse.api.common.auth import Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.order_views import execution_v4, order_v4
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


def _executions(views: list[ExecutionView], exceeded: bool) -> JSONResponse:
    return JSONResponse(
        {
            "executions": [execution_v4(v.execution, v.commission_in_rat) for v in views],
            "isExceeded": exceeded,
        }
    )


@router.get("/orders/{orderId}")
async def get_order(
    orderId: str, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    view = await services.trading.get(principal, account_id, orderId)
    return JSONResponse({"order": order_v4(view.order, view.market)})


@router.post("/order-list")
async def order_list(
    body: OrderListRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    views = await services.trading.list_orders(principal, account_id, order_query(body))
    return JSONResponse({"data": [order_v4(v.order, v.market) for v in views]})


@router.post("/orders/executions/list")
async def executions(
    body: ExecutionsRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    views, exceeded = await services.trading.executions(
        principal, account_id, order_ids=body.orderIds, limit=body.limit or DEFAULT_LIMIT
    )
    return _executions(views, exceeded)


@router.post("/orders/{orderId}/executions/list")
async def order_executions(
    orderId: str,
    body: OrderExecutionsRequest,
    principal: Trader,
    services: Services,
    account_id: AccountHeader = None,
) -> JSONResponse:
    views, exceeded = await services.trading.executions(
        principal,
        account_id,
        order_id=orderId,
        last_execution_id=body.lastExecutionId,
        limit=body.limit or DEFAULT_LIMIT,
    )
    return _executions(views, exceeded)
