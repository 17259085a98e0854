"""Back office: assets (Settings) and user accounts with balances."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.ledger import Asset
from bourse.domain.values import UserId, format_decimal
from bourse.service.accounts import AccountView

router = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: back office"])

ViewCommon = Annotated[Principal, Depends(require(Operation.VIEW_COMMON))]
ManageAssets = Annotated[Principal, Depends(require(Operation.MANAGE_ASSETS))]
ManageAccounts = Annotated[Principal, Depends(require(Operation.MANAGE_ACCOUNTS))]


class AssetOut(BaseModel):
    id: str
    name: str
    scale: int
    type: str
    source: str

    @classmethod
    def of(cls, a: Asset) -> AssetOut:
        return cls(id=a.id, name=a.name, scale=a.scale, type=a.type.value, source=a.source)


class AssetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    scale: int = Field(strict=True)
    type: str


class AssetUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    scale: int | None = Field(default=None, strict=True)
    type: str | None = None


class BalanceOut(BaseModel):
    assetId: str
    locked: str
    total: str


class AccountOut(BaseModel):
    accountId: str
    accountName: str
    accountType: str
    balances: list[BalanceOut]

    @classmethod
    def of(cls, view: AccountView) -> AccountOut:
        return cls(
            accountId=view.account.account_id,
            accountName=view.account.name,
            accountType=view.account.account_type,
            balances=[
                BalanceOut(assetId=b.asset_id, locked=format_decimal(b.locked), total=format_decimal(b.total))
                for b in view.balances
            ],
        )


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accountName: str
    accountGroupId: str | None = None
    accountType: str | None = None


class AccountCreatedOut(BaseModel):
    accountId: str


@router.get("/assets/list", response_model=list[AssetOut])
async def list_assets(services: Services, _: ViewCommon) -> list[AssetOut]:
    return [AssetOut.of(a) for a in await services.ledger.list_assets()]


@router.post("/internal-assets", status_code=201, response_model=AssetOut)
async def create_asset(body: AssetIn, services: Services, _: ManageAssets) -> AssetOut:
    return AssetOut.of(await services.ledger.create_asset(body.id, body.name, body.scale, body.type))


@router.put("/internal-assets/{asset_id}", status_code=204, response_class=Response)
async def update_asset(asset_id: str, body: AssetUpdateIn, services: Services, _: ManageAssets) -> Response:
    await services.ledger.update_asset(asset_id, name=body.name, scale=body.scale, type=body.type)
    return Response(status_code=204)


@router.get("/users/{user_id}/accounts", response_model=list[AccountOut])
async def user_accounts(user_id: int, services: Services, _: ViewCommon) -> list[AccountOut]:
    return [AccountOut.of(v) for v in await services.accounts.user_accounts(UserId(user_id))]


@router.post("/users/{user_id}/accounts", status_code=201, response_model=AccountCreatedOut)
async def open_account(
    user_id: int, body: AccountIn, services: Services, meta: Meta, principal: ManageAccounts
) -> AccountCreatedOut:
    account = await services.accounts.open_account(
        principal, UserId(user_id), body.accountName, body.accountType, body.accountGroupId, meta
    )
    return AccountCreatedOut(accountId=account.account_id)


@router.get("/users/{user_id}/accounts/{account_id}", response_model=AccountOut)
async def user_account(user_id: int, account_id: str, services: Services, _: ViewCommon) -> AccountOut:
    return AccountOut.of(await services.accounts.user_account(UserId(user_id), account_id))
