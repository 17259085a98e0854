"""Front office v3: the caller's own accounts and the asset list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from bourse.api.common.auth import Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.values import format_decimal

router = APIRouter(prefix="/frontoffice/api/v3", tags=["brokerage: front office"])

Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]


class MyAccountOut(BaseModel):
    accountId: str
    accountName: str
    accountType: str
    totalBalanceInRAT: str


class FrontAssetOut(BaseModel):
    assetId: str
    assetName: str
    isRootAsset: bool


@router.get("/accounts", response_model=list[MyAccountOut])
async def my_accounts(services: Services, principal: Trader) -> list[MyAccountOut]:
    views, rates = await services.accounts.my_accounts_valued(principal)
    return [
        MyAccountOut(
            accountId=v.account.account_id,
            accountName=v.account.name,
            accountType=v.account.account_type,
            totalBalanceInRAT=format_decimal(v.total_in(rates)),
        )
        for v in views
    ]


@router.get("/assets", response_model=list[FrontAssetOut])
async def assets(services: Services, _: Trader) -> list[FrontAssetOut]:
    rat = services.accounts.root_asset
    return [
        FrontAssetOut(assetId=a.id, assetName=a.name, isRootAsset=a.id == rat)
        for a in await services.ledger.list_assets()
    ]
