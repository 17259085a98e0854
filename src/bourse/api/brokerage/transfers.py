"""Back-office transfers (brokerage-platform.md, "Transfers"), mounted at /back-api/backoffice/transfers.

Shapes here, rules in ``service/transfers.py``; the transfer JSON is
``domain.transfers.transfer_view``, the same body the callbacks carry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.identity import Operation, Principal
from bourse.domain.transfers import TransferStatus, TransferType, transfer_view

router = APIRouter(prefix="/back-api/backoffice/transfers", tags=["brokerage: transfers"])

Manager = Annotated[Principal, Depends(require(Operation.MANAGE_TRANSFERS))]
Viewer = Annotated[Principal, Depends(require(Operation.VIEW_TRANSFERS))]


class TransferRequest(BaseModel):
    # Amounts are decimal strings; a JSON number is refused rather than guessed at.
    model_config = ConfigDict(extra="ignore", strict=True)

    deduplicationId: str
    accountId: str
    amount: str
    assetId: str
    callbackUrl: str | None = None


class SettleRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    accountId: str
    transferId: str
    callbackUrl: str | None = None


class TransferOut(BaseModel):
    transferId: str
    deduplicationId: str
    assetId: str
    type: TransferType
    status: TransferStatus
    amount: str
    createdAt: str
    updatedAt: str


@router.post("/deposit", status_code=201, response_model=TransferOut)
async def deposit(
    body: TransferRequest, principal: Manager, services: Services, meta: Meta
) -> dict[str, Any]:
    transfer = await services.transfers.deposit(
        principal, body.accountId, body.deduplicationId, body.assetId, body.amount, body.callbackUrl, meta
    )
    return transfer_view(transfer)


@router.post("/withdrawal", status_code=201, response_model=TransferOut)
async def withdrawal(
    body: TransferRequest, principal: Manager, services: Services, meta: Meta
) -> dict[str, Any]:
    transfer = await services.transfers.withdraw(
        principal, body.accountId, body.deduplicationId, body.assetId, body.amount, body.callbackUrl, meta
    )
    return transfer_view(transfer)


@router.post("/withdrawal-confirm", status_code=204, response_class=Response)
async def withdrawal_confirm(
    body: SettleRequest, principal: Manager, services: Services, meta: Meta
) -> Response:
    await services.transfers.confirm(principal, body.accountId, body.transferId, body.callbackUrl, meta)
    return Response(status_code=204)


@router.post("/withdrawal-cancel", status_code=204, response_class=Response)
async def withdrawal_cancel(
    body: SettleRequest, principal: Manager, services: Services, meta: Meta
) -> Response:
    await services.transfers.cancel(principal, body.accountId, body.transferId, body.callbackUrl, meta)
    return Response(status_code=204)


@router.get("/accounts/{accountId}", response_model=list[TransferOut])
async def list_for_account(accountId: str, principal: Viewer, services: Services) -> list[dict[str, Any]]:
    return [transfer_view(t) for t in await services.transfers.list_for_account(principal, accountId)]


@router.get("/{transferId}", response_model=TransferOut)
async def get_transfer(transferId: str, principal: Viewer, services: Services) -> dict[str, Any]:
    return transfer_view(await services.transfers.get(principal, transferId))
