"""Seamless wallet (../shared/specs/wallet-ext-orders.md), mounted at /ext-orders.

Bodies are read only after the caller is authenticated, checked for shape here
and for meaning in ``domain/wallet.py``;
every response, errors included, is the spec's envelope (``envelope.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from bourse.api.common.auth import Meta, Services, current_service
from bourse.api.common.errors import register_renderer
from bourse.api.wallet import envelope
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import ServiceCaller
from bourse.domain.wallet import sent_fields
from bourse.service.wallet import EXT_ORDERS_SCOPE

PREFIXES = ("/ext-orders",)
router = APIRouter(prefix="/ext-orders", tags=["wallet"])
for _prefix in PREFIXES:
    register_renderer(_prefix, envelope.render_error)


async def ext_orders_caller(request: Request) -> ServiceCaller:
    caller = await current_service(request)
    caller.require_scope(EXT_ORDERS_SCOPE)
    return caller


Caller = Annotated[ServiceCaller, Depends(ext_orders_caller)]


class _Body(BaseModel):
    # Amounts are strings (DECIMAL(22,8)); a JSON number is refused rather than guessed at.
    model_config = ConfigDict(extra="ignore", strict=True)

    extRequestId: str
    username: str
    currency: str
    extRefId: str | None = None


class StakeBody(_Body):
    amount: str
    bonusAmount: str = "0"


class SettlementBody(_Body):
    totalOrderAmount: str
    pnlAmount: str
    totalOrderBonusAmount: str = "0"
    pnlBonusAmount: str = "0"


def _parse(model: type[_Body], raw: bytes) -> dict[str, Any]:
    try:
        body = model.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"{field}: {first['msg']}" if field else first["msg"], **({"field": field} if field else {})
        ) from None
    return body.model_dump()


def _body_schema(model: type[_Body]) -> dict[str, Any]:
    # The body is read by hand (after authentication), so OpenAPI is told its shape here.
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _respond(response: Mapping[str, Any]) -> JSONResponse:
    # Stored as JSONB, which does not keep key order; the envelope's order is the spec's.
    return JSONResponse({key: response[key] for key in envelope.ENVELOPE_KEYS})


@router.put(
    "/create",
    summary="Stake amount (and bonusAmount) from the user's wallet",
    openapi_extra=_body_schema(StakeBody),
)
async def create(request: Request, caller: Caller, services: Services, meta: Meta) -> JSONResponse:
    body = _parse(StakeBody, await request.body())
    return _respond(await services.wallet.create(caller, body, meta))


@router.put("/cancel", summary="Return a stake to the user's wallet", openapi_extra=_body_schema(StakeBody))
async def cancel(request: Request, caller: Caller, services: Services, meta: Meta) -> JSONResponse:
    body = _parse(StakeBody, await request.body())
    return _respond(await services.wallet.cancel(caller, body, meta))


@router.post(
    "/settlement",
    summary="Settle staked orders with a profit or loss",
    openapi_extra=_body_schema(SettlementBody),
)
async def settlement(request: Request, caller: Caller, services: Services, meta: Meta) -> JSONResponse:
    body = _parse(SettlementBody, await request.body())
    return _respond(await services.wallet.settle(caller, body, meta))


@router.get("/{extRequestId}", summary="A stored request of the caller, with its type")
async def query(extRequestId: str, caller: Caller, services: Services) -> JSONResponse:
    stored = await services.wallet.get(caller, extRequestId)
    data = {name: stored.request.get(name) for name in sent_fields(stored.type)}
    return envelope.success({**data, "type": stored.type.value})
