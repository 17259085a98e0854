"""The brokerage history server (brokerage-platform.md, "History server"), mounted at ``/api``.

Shapes here, rules in ``domain/history.py`` and ``service/history.py``. Amounts are JSON numbers,
as the spec shows them, written exactly (``ExactJSONResponse``: Decimal text, never a float), and
request bodies are read with JSON numbers as Decimal. Where the spec's list response has no
``limit`` object (balances, commissions) it gets one too: ``{"isExceeded": true}`` says more rows
matched than the page holds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from bourse.api.common.auth import Services, require
from bourse.api.common.exact_json import ExactJSONResponse, read_exact_json
from bourse.domain.identity import Operation, Principal
from bourse.service.history import Page

router = APIRouter(prefix="/api", tags=["brokerage: history"], default_response_class=ExactJSONResponse)

ActiveAccounts = Annotated[Principal, Depends(require(Operation.VIEW_ACTIVE_ACCOUNTS))]
Balances = Annotated[Principal, Depends(require(Operation.VIEW_BALANCES))]
Billing = Annotated[Principal, Depends(require(Operation.VIEW_BILLING_INFO))]
Commissions = Annotated[Principal, Depends(require(Operation.VIEW_COMMISSIONS))]
Markups = Annotated[Principal, Depends(require(Operation.VIEW_MARKUP_REVENUE))]
Orders = Annotated[Principal, Depends(require(Operation.VIEW_ORDERS))]
Trades = Annotated[Principal, Depends(require(Operation.VIEW_TRADES))]
Transfers = Annotated[Principal, Depends(require(Operation.VIEW_TRANSFERS))]
Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]


def _listing(page: Page) -> ExactJSONResponse:
    return ExactJSONResponse({"data": page.rows, "limit": {"isExceeded": page.exceeded}})


@router.post("/active-accounts")
async def active_accounts(request: Request, principal: ActiveAccounts, services: Services) -> Any:
    total = await services.history.active_accounts(principal, await read_exact_json(request))
    return ExactJSONResponse({"total": total})


@router.get("/users/{userId}/balances")
async def user_balance(userId: str, principal: Balances, services: Services) -> Any:
    return ExactJSONResponse({"totalBalanceInRAT": await services.history.user_balance(principal, userId)})


@router.post("/users/balances")
async def user_balances(request: Request, principal: Balances, services: Services) -> Any:
    return _listing(await services.history.user_balances(principal, await read_exact_json(request)))


@router.post("/accounts/balances")
async def account_balances(request: Request, principal: Balances, services: Services) -> Any:
    return _listing(await services.history.account_balances(principal, await read_exact_json(request)))


@router.post("/billing/billing-info")
async def billing_info(request: Request, principal: Billing, services: Services) -> Any:
    return ExactJSONResponse(await services.history.billing_info(principal, await read_exact_json(request)))


@router.post("/commissions/accounts-assets")
async def commissions_accounts_assets(request: Request, principal: Commissions, services: Services) -> Any:
    body = await read_exact_json(request)
    return _listing(await services.history.commissions_accounts_assets(principal, body))


@router.post("/commissions/users-assets")
async def commissions_users_assets(request: Request, principal: Commissions, services: Services) -> Any:
    body = await read_exact_json(request)
    return _listing(await services.history.commissions_users_assets(principal, body))


@router.post("/commissions/users")
async def commissions_users(request: Request, principal: Commissions, services: Services) -> Any:
    return _listing(await services.history.commissions_users(principal, await read_exact_json(request)))


@router.post("/commissions/accounts")
async def commissions_accounts(request: Request, principal: Commissions, services: Services) -> Any:
    return _listing(await services.history.commissions_accounts(principal, await read_exact_json(request)))


@router.post("/commissions/assets")
async def commissions_assets(request: Request, principal: Commissions, services: Services) -> Any:
    return _listing(await services.history.commissions_assets(principal, await read_exact_json(request)))


@router.post("/v1/markups/revenue")
async def markup_revenue(request: Request, principal: Markups, services: Services) -> Any:
    # The spec's answer is a bare array: a client pages with limit/offset until a short page.
    page = await services.history.markup_revenue(principal, await read_exact_json(request))
    return ExactJSONResponse(page.rows)


@router.post("/open-orders")
async def open_orders(request: Request, principal: Orders, services: Services) -> Any:
    page = await services.history.open_orders(principal, await read_exact_json(request))
    return ExactJSONResponse({"total": page.total, "data": page.rows})


@router.post("/orders")
async def orders(request: Request, principal: Orders, services: Services) -> Any:
    return _listing(await services.history.orders(principal, await read_exact_json(request)))


@router.post("/external-orders")
async def external_orders(request: Request, principal: Orders, services: Services) -> Any:
    return _listing(await services.history.external_orders(principal, await read_exact_json(request)))


@router.post("/trades")
async def trades(request: Request, principal: Trades, services: Services) -> Any:
    return _listing(await services.history.trades(principal, await read_exact_json(request)))


@router.post("/unsolicited-trades")
async def unsolicited_trades(request: Request, principal: Trades, services: Services) -> Any:
    return _listing(await services.history.unsolicited_trades(principal, await read_exact_json(request)))


@router.post("/transfers")
async def transfers(request: Request, principal: Transfers, services: Services) -> Any:
    return _listing(await services.history.transfers(principal, await read_exact_json(request)))


@router.get("/history/orders/{orderId}")
async def own_order(orderId: str, principal: Trader, services: Services) -> Any:
    # The spec answers an array: the order's (latest) state is its one element.
    return ExactJSONResponse([await services.history.own_order(principal, orderId)])


@router.post("/history/orders/list")
async def own_orders(request: Request, principal: Trader, services: Services) -> Any:
    account = request.headers.get("accountId")
    rows = await services.history.own_orders(principal, account, await read_exact_json(request))
    return ExactJSONResponse(rows)
