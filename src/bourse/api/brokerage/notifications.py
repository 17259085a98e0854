"""Notifications (brokerage-platform.md "Admin notifications", "Trader notifications") and price
alerts ("Notification subscriptions", front office v3).

Trader routes require trading-ui and show only the caller's own notifications; the
optional ``accountId`` header (one of the caller's accounts, else 404) narrows them to
that account's and the user-wide ones. Price alert routes require the header. Admin
routes require view-common; read marks are each staff user's own. docs/api/brokerage.md
"Notifications".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from bourse.api.brokerage.jsonbody import read_json
from bourse.api.common.auth import Meta, Services, require
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import Operation, Principal
from bourse.domain.notifications import (
    notification_json,
    parse_admin_query,
    parse_ids_body,
    parse_trader_query,
)

router = APIRouter(tags=["brokerage: notifications"])

Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]
Staff = Annotated[Principal, Depends(require(Operation.VIEW_COMMON))]
AccountHeader = Annotated[str | None, Header(alias="accountId")]

TRADER = "/notification/api/v1/trader-notifications"
ADMIN = "/notification/api/v1/admin-notifications"
ALERTS = "/frontoffice/api/v3/notification-subscriptions/marketPrice"


def _fields(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]}", field=unknown[0])
    return body


# --- trader notifications ---------------------------------------------------------------------


@router.post(TRADER)
async def trader_list(
    request: Request, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    query = parse_trader_query(await read_json(request, required=False))
    items = await services.notifications.trader_list(principal, account_id, query)
    return JSONResponse({"notifications": [notification_json(n) for n in items]})


@router.get(f"{TRADER}/unread-count")
async def trader_unread(
    principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    return JSONResponse({"count": await services.notifications.trader_unread(principal, account_id)})


@router.post(f"{TRADER}/mark-as-read")
async def trader_mark_read(
    request: Request, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    ids = parse_ids_body(await read_json(request))
    await services.notifications.trader_mark_read(principal, account_id, ids)
    return JSONResponse({})


@router.post(f"{TRADER}/mark-all-as-read")
async def trader_mark_all_read(
    principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    await services.notifications.trader_mark_read(principal, account_id, None)
    return JSONResponse({})


# --- admin notifications ----------------------------------------------------------------------


@router.post(ADMIN)
async def admin_list(request: Request, principal: Staff, services: Services) -> JSONResponse:
    query = parse_admin_query(await read_json(request, required=False))
    items = await services.notifications.admin_list(principal, query)
    return JSONResponse({"notifications": [notification_json(n) for n in items]})


@router.get(f"{ADMIN}/unread-count")
async def admin_unread(principal: Staff, services: Services) -> JSONResponse:
    return JSONResponse({"count": await services.notifications.admin_unread(principal)})


@router.post(f"{ADMIN}/mark-as-read")
async def admin_mark_read(request: Request, principal: Staff, services: Services) -> JSONResponse:
    await services.notifications.admin_mark_read(principal, parse_ids_body(await read_json(request)))
    return JSONResponse({})


@router.post(f"{ADMIN}/mark-all-as-read")
async def admin_mark_all_read(principal: Staff, services: Services) -> JSONResponse:
    await services.notifications.admin_mark_read(principal, None)
    return JSONResponse({})


# --- price alerts -----------------------------------------------------------------------------


@router.post(f"{ALERTS}/markets")
async def alerts_by_market(
    request: Request, principal: Trader, services: Services, account_id: AccountHeader = None
) -> JSONResponse:
    body = _fields(await read_json(request, required=False) or {}, ("marketIds", "limit", "offset"))
    market_ids = body.get("marketIds")
    if market_ids is not None and not isinstance(market_ids, list):
        raise InvalidInput("marketIds must be a list of market ids", field="marketIds")
    markets = await services.price_alerts.by_markets(
        principal, account_id, market_ids, body.get("limit"), body.get("offset")
    )
    return JSONResponse({"markets": markets})


@router.post(ALERTS)
async def subscribe(
    request: Request, principal: Trader, services: Services, meta: Meta, account_id: AccountHeader = None
) -> JSONResponse:
    body = _fields(await read_json(request), ("marketId", "price", "condition"))
    alert = await services.price_alerts.subscribe(
        principal, account_id, body.get("marketId"), body.get("price"), body.get("condition"), meta
    )
    return JSONResponse({"id": str(alert.id)})


@router.delete(ALERTS)
async def unsubscribe(
    request: Request, principal: Trader, services: Services, meta: Meta, account_id: AccountHeader = None
) -> JSONResponse:
    ids = parse_ids_body(await read_json(request))
    await services.price_alerts.unsubscribe(principal, account_id, ids, meta)
    return JSONResponse({})
