"""Account groups (bourse extensions of the brokerage back office; the spec only names
``accountGroupId`` in ``POST /users/{userId}/accounts``).

``/back-api/backoffice/v2/account-groups`` lists, creates and changes groups;
``/back-api/backoffice/v2/accounts/{accountId}/account-group`` reads and sets an
account's group. Levels are decimal strings (ratios, 1 = 100%).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, ConfigDict

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.account_groups import AccountGroup
from bourse.domain.identity import Operation, Principal
from bourse.domain.values import AccountId, format_decimal

router = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: account groups"])

ViewCommon = Annotated[Principal, Depends(require(Operation.VIEW_COMMON))]
ManageAccounts = Annotated[Principal, Depends(require(Operation.MANAGE_ACCOUNTS))]
JsonObject = Annotated[dict[str, Any], Body()]


class AccountGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accountGroupId: str


def group_view(g: AccountGroup) -> dict[str, str]:
    return {
        "id": g.id,
        "name": g.name,
        "marginCallLevel": format_decimal(g.margin_call_level),
        "stopOutLevel": format_decimal(g.stop_out_level),
    }


@router.get("/account-groups")
async def list_groups(services: Services, principal: ViewCommon) -> list[dict[str, str]]:
    return [group_view(g) for g in await services.account_groups.list(principal)]


@router.post("/account-groups", status_code=201)
async def create_group(
    body: JsonObject, services: Services, principal: ManageAccounts, meta: Meta
) -> dict[str, str]:
    return group_view(await services.account_groups.create(principal, body, meta))


@router.get("/account-groups/{group_id}")
async def get_group(group_id: str, services: Services, principal: ViewCommon) -> dict[str, str]:
    return group_view(await services.account_groups.get(principal, group_id))


@router.put("/account-groups/{group_id}")
async def update_group(
    group_id: str, body: JsonObject, services: Services, principal: ManageAccounts, meta: Meta
) -> dict[str, str]:
    return group_view(await services.account_groups.update(principal, group_id, body, meta))


@router.get("/accounts/{account_id}/account-group")
async def account_group(account_id: str, services: Services, principal: ViewCommon) -> dict[str, str]:
    return {"accountGroupId": await services.account_groups.group_of(principal, AccountId(account_id))}


@router.put("/accounts/{account_id}/account-group", status_code=204, response_class=Response)
async def assign_group(
    account_id: str, body: AccountGroupIn, services: Services, principal: ManageAccounts, meta: Meta
) -> Response:
    await services.account_groups.assign(principal, AccountId(account_id), body.accountGroupId, meta)
    return Response(status_code=204)
