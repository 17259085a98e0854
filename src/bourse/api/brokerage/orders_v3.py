"""Front office v3 spot orders (brokerage-platform.md "Orders", "Stop orders").

Every route requires trading-ui and the ``accountId`` header naming one of the
caller's accounts (missing: 400, anyone else's: 404). Amounts are strings.
Placing returns the order once its engine batch has committed: a rule the order
breaks (funds, tick, lot, limits, price deviation, session, post-only) is an
order with status Rejected and the reason in ``rejectDetails``, not an HTTP error;
a malformed body is 400 and an unknown market 404. ``clientOrderId`` (bourse
extension) makes a placement idempotent per account: a repeat returns the first
order, the same id with another body is 409.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from bourse.api.brokerage.derivatives import order_v3_json, stop_order_v3_json
from bourse.api.common.auth import Meta, Services, require
from bourse.api.common.hot_path import HotRoute
from bourse.api.common.responses import FastJSONResponse
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import Operation, Principal
from bourse.domain.order_requests import parse_order_request, parse_time
from bourse.domain.order_views import order_v3, stop_order_v3
from bourse.domain.orders import OrderStatus
from bourse.domain.trading import DEFAULT_LIST_LIMIT, OrderQuery
from bourse.domain.values import format_decimal
from bourse.service.trading import parse_order_id

router = APIRouter(prefix="/frontoffice/api/v3", tags=["brokerage: orders v3"])

Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]
AccountHeader = Annotated[str | None, Header(alias="accountId")]


class _Body(BaseModel):
    # Amounts are decimal strings; a JSON number is refused rather than guessed at.
    model_config = ConfigDict(extra="ignore", strict=True)


class OrderDataIn(_Body):
    marketId: str
    orderType: str
    side: str
    requestedPrice: str | None = None
    requestedBaseAmount: str | None = None
    requestedQuoteAmount: str | None = None


class OrderDataRequest(_Body):
    order: OrderDataIn


class OrderIn(_Body):
    marketId: str
    orderType: str
    side: str
    requestedPrice: str | None = None
    requestedAmount: str
    timeInForce: str | None = None
    cancellationDate: str | None = None
    postOnly: bool = False
    clientOrderId: str | None = None


class OrderRequest(_Body):
    order: OrderIn


class StopOrderIn(_Body):
    marketId: str
    orderType: str
    side: str
    requestedPrice: str | None = None
    activationPrice: str
    requestedAmount: str
    timeInForce: str | None = None
    cancellationDate: str | None = None
    clientOrderId: str | None = None


class StopOrderRequest(_Body):
    order: StopOrderIn


class OrderListRequest(_Body):
    createdAtFrom: str | None = None
    createdAtTo: str | None = None
    orderStatus: list[str] | None = None
    lastOrderId: str | None = None
    limit: int | None = None


def order_query(body: OrderListRequest) -> OrderQuery:
    statuses = []
    for value in body.orderStatus or []:
        try:
            statuses.append(OrderStatus(value))
        except ValueError:
            raise InvalidInput(
                f"orderStatus must be among {', '.join(s.value for s in OrderStatus)}", field="orderStatus"
            ) from None
    last = None
    if body.lastOrderId:
        if not body.lastOrderId.isdigit() or len(body.lastOrderId) > 18:
            raise InvalidInput("lastOrderId must be an order id", field="lastOrderId")
        last = int(body.lastOrderId)
    return OrderQuery(
        created_from=None if body.createdAtFrom is None else parse_time(body.createdAtFrom, "createdAtFrom"),
        created_to=None if body.createdAtTo is None else parse_time(body.createdAtTo, "createdAtTo"),
        statuses=tuple(statuses),
        last_order_id=last,
        limit=DEFAULT_LIST_LIMIT if body.limit is None else body.limit,
    )


def _order(view: dict[str, Any]) -> JSONResponse:
    return FastJSONResponse({"order": view})


@router.post("/order-data")
async def order_data(
    body: OrderDataRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    o = body.order
    preview = await services.trading.preview(
        principal,
        account_id,
        market_id=o.marketId,
        order_type=o.orderType,
        side=o.side,
        price=o.requestedPrice,
        base_amount=o.requestedBaseAmount,
        quote_amount=o.requestedQuoteAmount,
    )
    return _order(
        {
            "baseAmount": format_decimal(preview.base_amount),
            "quoteAmount": format_decimal(preview.quote_amount),
            "commissionAmount": format_decimal(preview.commission),
            "total": format_decimal(preview.total),
        }
    )


@router.post("/orders")
async def place_order(
    body: OrderRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    o = body.order
    request = parse_order_request(
        market_id=o.marketId,
        order_type=o.orderType,
        side=o.side,
        amount=o.requestedAmount,
        price=o.requestedPrice,
        time_in_force=o.timeInForce,
        cancellation_date=o.cancellationDate,
        post_only=o.postOnly,
        client_order_id=o.clientOrderId,
    )
    view = await services.trading.place(principal, account_id, request)
    return _order(order_v3(view.order, view.market))


# POST /orders without FastAPI's routing and dependencies (the same model, checks and endpoint).
HOT_ROUTES = (HotRoute("POST", f"{router.prefix}/orders", OrderRequest, Operation.TRADING_UI, place_order),)


@router.get("/orders/{orderId}")
async def get_order(
    orderId: str, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    view = await services.trading.get(principal, account_id, orderId)
    return _order(order_v3(view.order, view.market))


@router.delete("/orders/{orderId}")
async def cancel_order(
    orderId: str, principal: Trader, services: Services, meta: Meta, account_id: AccountHeader = None
) -> JSONResponse:
    parse_order_id(orderId)
    derivative = await services.derivatives.cancel(principal, account_id, orderId, meta=meta)
    if derivative is not None:  # a Cfd/Perpetual order (one id space with spot orders)
        return _order(order_v3_json(derivative))
    view = await services.trading.cancel(principal, account_id, orderId)
    return _order(order_v3(view.order, view.market))


@router.post("/order-list")
async def order_list(
    body: OrderListRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    views = await services.trading.list_orders(principal, account_id, order_query(body))
    return JSONResponse({"data": [order_v3(v.order, v.market) for v in views]})


@router.post("/stop-orders")
async def place_stop_order(
    body: StopOrderRequest, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    o = body.order
    request = parse_order_request(
        market_id=o.marketId,
        order_type=o.orderType,
        side=o.side,
        amount=o.requestedAmount,
        price=o.requestedPrice,
        stop_price=o.activationPrice,
        time_in_force=o.timeInForce,
        cancellation_date=o.cancellationDate,
        client_order_id=o.clientOrderId,
        stop_order=True,
    )
    view = await services.trading.place(principal, account_id, request)
    return _order(stop_order_v3(view.order, view.market))


@router.delete("/stop-orders/{stopOrderId}")
async def cancel_stop_order(
    stopOrderId: str, principal: Trader, services: Services, meta: Meta, account_id: AccountHeader = None
) -> JSONResponse:
    parse_order_id(stopOrderId, "stopOrderId")
    derivative = await services.derivatives.cancel(
        principal, account_id, stopOrderId, stop_only=True, meta=meta
    )
    if derivative is not None:
        return _order(stop_order_v3_json(derivative))
    view = await services.trading.cancel(principal, account_id, stopOrderId, stop_only=True)
    return _order(stop_order_v3(view.order, view.market))
