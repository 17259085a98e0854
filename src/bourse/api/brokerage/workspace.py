"""Front office v3 trader workspace (brokerage-platform.md "Trading UI settings", "Layouts",
"Templates"): every route requires trading-ui and acts on the caller's own workspace only.

Writes answer 204 without a body (201 for a new layout); a malformed body is 400 with
``details.field``; a layout id that is not the caller's is 404. docs/api/brokerage.md
"Trader workspace".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from bourse.api.brokerage.jsonbody import read_json
from bourse.api.common.auth import Meta, Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.workspace import (
    MAX_LAYOUT_BYTES,
    layout_json,
    parse_layout_name,
    parse_layout_order,
    parse_layout_tabs,
    parse_new_layout,
    parse_settings_patch,
    settings_json,
    template_json,
)

router = APIRouter(prefix="/frontoffice/api/v3/ui", tags=["brokerage: trader workspace"])

Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]
# Room for whitespace around a layout at its limit; the stored JSON itself is checked exactly.
LAYOUT_BODY_MAX = 4 * MAX_LAYOUT_BYTES


@router.get("/settings")
async def get_settings(principal: Trader, services: Services) -> JSONResponse:
    return JSONResponse(settings_json(await services.workspace.settings(principal)))


@router.patch("/settings", status_code=204)
async def patch_settings(request: Request, principal: Trader, services: Services, meta: Meta) -> Response:
    patch = parse_settings_patch(await read_json(request))
    await services.workspace.change_settings(principal, patch, meta)
    return Response(status_code=204)


@router.get("/layouts")
async def list_layouts(principal: Trader, services: Services) -> JSONResponse:
    layouts = await services.workspace.layouts(principal)
    return JSONResponse({"layouts": [layout_json(layout) for layout in layouts]})


@router.post("/layouts", status_code=201)
async def create_layout(request: Request, principal: Trader, services: Services, meta: Meta) -> Response:
    layout = parse_new_layout(await read_json(request, LAYOUT_BODY_MAX))
    await services.workspace.create_layout(principal, layout, meta)
    return Response(status_code=201)


# Registered before /layouts/{layoutId}: "order" is this route, never a layout id.
@router.put("/layouts/order", status_code=204)
async def order_layouts(request: Request, principal: Trader, services: Services, meta: Meta) -> Response:
    await services.workspace.order_layouts(principal, parse_layout_order(await read_json(request)), meta)
    return Response(status_code=204)


@router.put("/layouts/{layoutId}", status_code=204)
async def replace_layout(
    layoutId: str, request: Request, principal: Trader, services: Services, meta: Meta
) -> Response:
    tabs = parse_layout_tabs(await read_json(request, LAYOUT_BODY_MAX))
    await services.workspace.replace_tabs(principal, layoutId, tabs, meta)
    return Response(status_code=204)


@router.delete("/layouts/{layoutId}", status_code=204)
async def delete_layout(layoutId: str, principal: Trader, services: Services, meta: Meta) -> Response:
    await services.workspace.delete_layout(principal, layoutId, meta)
    return Response(status_code=204)


@router.put("/layouts/{layoutId}/name", status_code=204)
async def rename_layout(
    layoutId: str, request: Request, principal: Trader, services: Services, meta: Meta
) -> Response:
    name = parse_layout_name(await read_json(request))
    await services.workspace.rename_layout(principal, layoutId, name, meta)
    return Response(status_code=204)


@router.get("/templates")
async def list_templates(principal: Trader, services: Services) -> JSONResponse:
    templates = await services.workspace.templates(principal)
    return JSONResponse({"templates": [template_json(t) for t in templates]})
