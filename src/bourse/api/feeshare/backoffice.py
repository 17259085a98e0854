"""Merchants for OTC fee sharing in the back office (bourse extension; docs/api/feeshare.md).

``/back-api/backoffice/v2/merchants`` lists and creates merchants, ``/{companyId}`` reads and
changes one, ``/{companyId}/users[/{userId}]`` lists, assigns and unassigns its users. Every
route needs manage-accounts. Rates are decimal strings (fractions: 0.2 = 20%).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.feeshare import merchant_json, merchant_user_json
from bourse.domain.identity import Operation, Principal
from bourse.domain.values import UserId, format_decimal
from bourse.service.merchants import MerchantDetails

router = APIRouter(prefix="/back-api/backoffice/v2", tags=["feeshare: merchants"])

ManageAccounts = Annotated[Principal, Depends(require(Operation.MANAGE_ACCOUNTS))]
JsonObject = Annotated[dict[str, Any], Body()]


def details_view(d: MerchantDetails) -> dict[str, Any]:
    return {
        **merchant_json(d.merchant),
        "users": [merchant_user_json(u) for u in d.users],
        "feePool": [{"assetId": b.asset, "balance": format_decimal(b.amount)} for b in d.fee_pool],
    }


@router.get("/merchants")
async def list_merchants(services: Services, principal: ManageAccounts) -> list[dict[str, Any]]:
    return [merchant_json(m) for m in await services.merchants.list(principal)]


@router.post("/merchants", status_code=201)
async def create_merchant(
    body: JsonObject, services: Services, principal: ManageAccounts, meta: Meta
) -> dict[str, Any]:
    return merchant_json(await services.merchants.create(principal, body, meta))


@router.get("/merchants/{company_id}")
async def get_merchant(company_id: str, services: Services, principal: ManageAccounts) -> dict[str, Any]:
    return details_view(await services.merchants.get(principal, company_id))


@router.put("/merchants/{company_id}")
async def update_merchant(
    company_id: str, body: JsonObject, services: Services, principal: ManageAccounts, meta: Meta
) -> dict[str, Any]:
    return merchant_json(await services.merchants.update(principal, company_id, body, meta))


@router.get("/merchants/{company_id}/users")
async def merchant_users(
    company_id: str, services: Services, principal: ManageAccounts
) -> list[dict[str, Any]]:
    return [merchant_user_json(u) for u in await services.merchants.users(principal, company_id)]


@router.put("/merchants/{company_id}/users/{user_id}", status_code=204, response_class=Response)
async def assign_user(
    company_id: str, user_id: int, services: Services, principal: ManageAccounts, meta: Meta
) -> Response:
    await services.merchants.assign_user(principal, company_id, UserId(user_id), meta)
    return Response(status_code=204)


@router.delete("/merchants/{company_id}/users/{user_id}", status_code=204, response_class=Response)
async def unassign_user(
    company_id: str, user_id: int, services: Services, principal: ManageAccounts, meta: Meta
) -> Response:
    await services.merchants.unassign_user(principal, company_id, UserId(user_id), meta)
    return Response(status_code=204)
