"""Back-office transfers: deposits, withdrawals and their confirmation or cancellation.

Each call is one unit of work. The transfer row is inserted first; its unique
(account, deduplicationId) key makes concurrent duplicates wait for the first
and then find it, so exactly one of them moves money. The money movement, the
transfer's status, its audit entries and the callback delivery for the status
change commit together or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.callbacks import CallbackPolicy
from bourse.domain.errors import InvariantViolation, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.ledger import EXTERNAL, Bucket, account_owner, check_scale, move
from bourse.domain.transfers import (
    Transfer,
    TransferStatus,
    TransferType,
    callback_body,
    check_repeat,
    to_millis,
    transition,
    validate_amount,
    validate_deduplication_id,
)
from bourse.domain.values import AccountId, AssetId, parse_decimal
from bourse.service.context import RequestMeta
from bourse.service.ledger import audit_money_moved, post
from bourse.service.ports import Clock, MarginGuard, UnitOfWork, UnitOfWorkFactory

KIND_DEPOSIT = "transfer.deposit"
KIND_WITHDRAWAL_HOLD = "transfer.withdrawal.hold"
KIND_WITHDRAWAL_CONFIRM = "transfer.withdrawal.confirm"
KIND_WITHDRAWAL_CANCEL = "transfer.withdrawal.cancel"


def business_key(transfer_id: str) -> str:
    return f"transfer:{transfer_id}"


class TransferService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        callbacks: CallbackPolicy,
        margin: MarginGuard | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._callbacks = callbacks
        # Withdrawals of a margin asset must leave the account's Cross positions covered.
        self._margin = margin

    # --- commands ----------------------------------------------------------------------------

    async def deposit(
        self,
        principal: Principal,
        account_id: str,
        deduplication_id: str,
        asset_id: str,
        amount: object,
        callback_url: str | None,
        meta: RequestMeta,
    ) -> Transfer:
        """Credit ``amount`` at once; a repeated deduplicationId returns the first transfer."""
        return await self._create(
            TransferType.DEPOSIT,
            principal,
            account_id,
            deduplication_id,
            asset_id,
            amount,
            callback_url,
            meta,
        )

    async def withdraw(
        self,
        principal: Principal,
        account_id: str,
        deduplication_id: str,
        asset_id: str,
        amount: object,
        callback_url: str | None,
        meta: RequestMeta,
    ) -> Transfer:
        """Hold ``amount`` of the available balance until confirmed or cancelled.
        InsufficientFunds (nothing stored) when the available balance is short; MarginRequired
        (nothing stored) when the amount backs the account's open Cross derivative positions."""
        return await self._create(
            TransferType.WITHDRAWAL,
            principal,
            account_id,
            deduplication_id,
            asset_id,
            amount,
            callback_url,
            meta,
        )

    async def confirm(
        self,
        principal: Principal,
        account_id: str,
        transfer_id: str,
        callback_url: str | None,
        meta: RequestMeta,
    ) -> Transfer:
        """Pay a pending withdrawal out; confirming a completed one again changes nothing."""
        return await self._settle(
            principal, account_id, transfer_id, TransferStatus.COMPLETED, callback_url, meta
        )

    async def cancel(
        self,
        principal: Principal,
        account_id: str,
        transfer_id: str,
        callback_url: str | None,
        meta: RequestMeta,
    ) -> Transfer:
        """Release a pending withdrawal's hold; cancelling a cancelled one again changes nothing."""
        return await self._settle(
            principal, account_id, transfer_id, TransferStatus.CANCELLED, callback_url, meta
        )

    # --- queries -----------------------------------------------------------------------------

    async def get(self, principal: Principal, transfer_id: str) -> Transfer:
        principal.require(Operation.VIEW_TRANSFERS)
        async with self._uow() as uow:
            transfer = await uow.transfers.get(transfer_id)
        if transfer is None:
            raise NotFound(f"transfer {transfer_id} not found", field="transferId")
        return transfer

    async def list_for_account(self, principal: Principal, account_id: str) -> list[Transfer]:
        """Newest first."""
        principal.require(Operation.VIEW_TRANSFERS)
        async with self._uow() as uow:
            await _existing_account(uow, account_id)
            return await uow.transfers.list_for_account(AccountId(account_id))

    # --- the work ----------------------------------------------------------------------------

    def _callback_url(self, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        self._callbacks.check_url(url)
        return url

    async def _create(
        self,
        type_: TransferType,
        principal: Principal,
        account_id: str,
        deduplication_id: str,
        asset_id: str,
        amount_in: object,
        callback_url: str | None,
        meta: RequestMeta,
    ) -> Transfer:
        principal.require(Operation.MANAGE_TRANSFERS)
        validate_deduplication_id(deduplication_id)
        amount = validate_amount(parse_decimal(amount_in, "amount"))
        url = self._callback_url(callback_url)
        async with self._uow() as uow:
            account = await _existing_account(uow, account_id)
            asset = await uow.assets.get(AssetId(asset_id))
            if asset is None:
                raise NotFound(f"asset {asset_id} not found", field="assetId")
            check_scale(amount, asset.scale, "amount")

            existing = await uow.transfers.get_by_deduplication_id(account, deduplication_id)
            if existing is not None:
                return check_repeat(existing, type_, asset.id, amount)
            now = to_millis(self._clock.now())
            transfer = Transfer(
                transfer_id=str(uuid.uuid4()),
                account_id=account,
                deduplication_id=deduplication_id,
                asset_id=asset.id,
                type=type_,
                status=TransferStatus.COMPLETED if type_ is TransferType.DEPOSIT else TransferStatus.PENDING,
                amount=amount,
                hold_id=None,
                callback_url=url,
                created_at=now,
                updated_at=now,
            )
            if not await uow.transfers.add(transfer):
                # A concurrent twin committed first (the insert waited for it): answer as a repeat.
                twin = await uow.transfers.get_by_deduplication_id(account, deduplication_id)
                if twin is None:
                    raise InvariantViolation("transfer vanished after a duplicate insert")
                return check_repeat(twin, type_, asset.id, amount)

            owner = account_owner(account)
            actor = principal.username
            subject = f"transfer:{transfer.transfer_id}"
            if type_ is TransferType.DEPOSIT:
                tx = move(
                    KIND_DEPOSIT,
                    asset.id,
                    amount,
                    (EXTERNAL, Bucket.AVAILABLE),
                    (owner, Bucket.AVAILABLE),
                    business_key=business_key(transfer.transfer_id),
                    details={"transferId": transfer.transfer_id, "deduplicationId": deduplication_id},
                )
                await post(uow, tx, actor=actor, subject=subject, meta=meta)
            else:
                if self._margin is not None:
                    # In this unit of work, under the account's derivative lock: no fill of the
                    # account moves its margin between this check and the hold.
                    await self._margin.check_release(uow, account, asset.id, amount)
                hold = await uow.ledger.place_hold(
                    owner, asset.id, amount, business_key(transfer.transfer_id), KIND_WITHDRAWAL_HOLD
                )
                transfer = replace(transfer, hold_id=hold.id)
                await uow.transfers.update(transfer)
                # The hold's ledger transaction id is not returned by place_hold; the hold id names it.
                await uow.audit.append(
                    AuditEntry(
                        actor,
                        AuditAction.MONEY_MOVED,
                        subject,
                        meta.request_id,
                        meta.ip,
                        {
                            "kind": KIND_WITHDRAWAL_HOLD,
                            "hold_id": hold.id,
                            "owner": owner,
                            "asset": str(asset.id),
                            "amount": str(amount),
                            "from": Bucket.AVAILABLE.value,
                            "to": Bucket.LOCKED.value,
                        },
                    )
                )
            await self._notify(uow, transfer)
            await uow.commit()
        return transfer

    async def _settle(
        self,
        principal: Principal,
        account_id: str,
        transfer_id: str,
        target: TransferStatus,
        callback_url: str | None,
        meta: RequestMeta,
    ) -> Transfer:
        principal.require(Operation.MANAGE_TRANSFERS)
        url = self._callback_url(callback_url)
        async with self._uow() as uow:
            account = await _existing_account(uow, account_id)
            # The row lock makes a concurrent confirm and cancel take turns; the second sees
            # the first one's final status.
            transfer = await uow.transfers.get(transfer_id, for_update=True)
            if transfer is None or transfer.account_id != account:
                raise NotFound(
                    f"transfer {transfer_id} not found for account {account_id}", field="transferId"
                )
            if not transition(transfer, target):
                return transfer
            if transfer.hold_id is None:
                raise InvariantViolation(f"pending withdrawal {transfer_id} has no hold")
            if target is TransferStatus.COMPLETED:
                kind = KIND_WITHDRAWAL_CONFIRM
                tx_id = await uow.ledger.post_hold(transfer.hold_id, (EXTERNAL, Bucket.AVAILABLE), kind)
            else:
                kind = KIND_WITHDRAWAL_CANCEL
                tx_id = await uow.ledger.void_hold(transfer.hold_id, kind)
            await audit_money_moved(
                uow,
                tx_id,
                kind,
                actor=principal.username,
                subject=f"transfer:{transfer.transfer_id}",
                meta=meta,
                hold_id=transfer.hold_id,
            )
            transfer = replace(
                transfer,
                status=target,
                callback_url=url or transfer.callback_url,
                updated_at=max(to_millis(self._clock.now()), transfer.updated_at),
            )
            await uow.transfers.update(transfer)
            await self._notify(uow, transfer)
            await uow.commit()
        return transfer

    async def _notify(self, uow: UnitOfWork, transfer: Transfer) -> None:
        if transfer.callback_url:
            await uow.callbacks.enqueue(
                transfer.transfer_id, transfer.callback_url, callback_body(transfer), self._clock.now()
            )


async def _existing_account(uow: UnitOfWork, account_id: str) -> AccountId:
    account = await uow.accounts.get(AccountId(account_id))
    if account is None:
        raise NotFound(f"account {account_id} not found", field="accountId")
    return account.account_id
