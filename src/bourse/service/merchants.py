"""Merchants for OTC fee sharing: create, change, list, and which users are theirs.

Every call needs manage-accounts (checked here, so no edge can forget it). A user
belongs to at most one merchant: assigning a user who is another merchant's is a
Conflict (unassign first). App keys are issued apart (``bourse admin
create-app-key COMPANY_ID``); the fee sharing API accepts a key only while a
merchant with that company id exists (docs/api/feeshare.md).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import Conflict, InvalidInput, NotFound
from bourse.domain.feeshare import (
    Merchant,
    MerchantUser,
    changed_merchant,
    check_company_id,
    fee_pool,
    new_merchant,
)
from bourse.domain.identity import Operation, Principal
from bourse.domain.ledger import Balance, Bucket
from bourse.domain.values import UserId
from bourse.service.context import RequestMeta
from bourse.service.ports import Clock, UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class MerchantDetails:
    merchant: Merchant
    users: list[MerchantUser]
    fee_pool: list[Balance]  # available balance per asset the pool was ever paid in


def _not_found(company_id: int) -> NotFound:
    return NotFound(f"merchant {company_id} not found", field="companyId")


class MerchantService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, principal: Principal, body: Mapping[str, Any], meta: RequestMeta) -> Merchant:
        """Conflict if the company id exists; InvalidInput if rateSymbol is not an asset."""
        principal.require(Operation.MANAGE_ACCOUNTS)
        merchant = new_merchant(body, self._clock.now())
        async with self._uow() as uow:
            await _check_symbol(uow, merchant)
            await uow.merchants.add(merchant)
            await _audit(uow, principal, AuditAction.MERCHANT_CREATED, merchant, meta)
            await uow.commit()
        return merchant

    async def list(self, principal: Principal) -> builtins.list[Merchant]:
        principal.require(Operation.MANAGE_ACCOUNTS)
        async with self._uow() as uow:
            return await uow.merchants.list()

    async def get(self, principal: Principal, company_id: int | str) -> MerchantDetails:
        principal.require(Operation.MANAGE_ACCOUNTS)
        company = check_company_id(company_id)
        async with self._uow() as uow:
            merchant = await uow.merchants.get(company)
            if merchant is None:
                raise _not_found(company)
            users = await uow.merchants.users(company)
            pool = [b for b in await uow.ledger.balances(fee_pool(company)) if b.bucket == Bucket.AVAILABLE]
        return MerchantDetails(merchant, users, pool)

    async def update(
        self, principal: Principal, company_id: int | str, body: Mapping[str, Any], meta: RequestMeta
    ) -> Merchant:
        """The share terms apply to the days collected after the change (a record keeps its own)."""
        principal.require(Operation.MANAGE_ACCOUNTS)
        company = check_company_id(company_id)
        async with self._uow() as uow:
            current = await uow.merchants.get(company, for_update=True)
            if current is None:
                raise _not_found(company)
            merchant = changed_merchant(current, body, self._clock.now())
            await _check_symbol(uow, merchant)
            await uow.merchants.update(merchant)
            await _audit(uow, principal, AuditAction.MERCHANT_UPDATED, merchant, meta)
            await uow.commit()
        return merchant

    async def users(self, principal: Principal, company_id: int | str) -> builtins.list[MerchantUser]:
        return (await self.get(principal, company_id)).users

    async def assign_user(
        self, principal: Principal, company_id: int | str, user: UserId | str, meta: RequestMeta
    ) -> None:
        """``user``: a uid, or (a str) a username. Assigning a user to their own merchant again is a no-op."""
        principal.require(Operation.MANAGE_ACCOUNTS)
        company = check_company_id(company_id)
        async with self._uow() as uow:
            if await uow.merchants.get(company) is None:
                raise _not_found(company)
            uid = await _uid(uow, user)
            current = await uow.merchants.assign_user(uid, company, self._clock.now())
            if current != company:
                raise Conflict(
                    f"user {uid} belongs to merchant {current}; unassign them there first", field="userId"
                )
            await _audit_user(uow, principal, AuditAction.MERCHANT_USER_ASSIGNED, company, uid, meta)
            await uow.commit()

    async def unassign_user(
        self, principal: Principal, company_id: int | str, user: UserId | str, meta: RequestMeta
    ) -> None:
        """NotFound unless the user is this merchant's."""
        principal.require(Operation.MANAGE_ACCOUNTS)
        company = check_company_id(company_id)
        async with self._uow() as uow:
            uid = await _uid(uow, user)
            if not await uow.merchants.unassign_user(uid, company):
                raise NotFound(f"user {uid} is not a user of merchant {company}", field="userId")
            await _audit_user(uow, principal, AuditAction.MERCHANT_USER_UNASSIGNED, company, uid, meta)
            await uow.commit()


async def _uid(uow: UnitOfWork, user: UserId | str) -> UserId:
    if isinstance(user, str):
        record = await uow.users.get_by_username(user)
    else:
        record = await uow.users.get(user)
    if record is None:
        raise NotFound(f"user {user} not found", field="userId")
    return record.uid


async def _check_symbol(uow: UnitOfWork, merchant: Merchant) -> None:
    if await uow.assets.get(merchant.terms.rate_symbol) is None:
        raise InvalidInput(f"rateSymbol {merchant.terms.rate_symbol} is not an asset", field="rateSymbol")


async def _audit(
    uow: UnitOfWork, principal: Principal, action: AuditAction, merchant: Merchant, meta: RequestMeta
) -> None:
    terms = merchant.terms
    await uow.audit.append(
        AuditEntry(
            principal.username,
            action,
            f"merchant:{merchant.company_id}",
            meta.request_id,
            meta.ip,
            {
                "name": merchant.name,
                "incomeDivideRate": str(terms.income_rate),
                "volumeDivideRate": str(terms.volume_rate),
                "maxDivideRate": str(terms.max_rate),
                "rateSymbol": terms.rate_symbol,
            },
        )
    )


async def _audit_user(
    uow: UnitOfWork,
    principal: Principal,
    action: AuditAction,
    company_id: int,
    uid: UserId,
    meta: RequestMeta,
) -> None:
    await uow.audit.append(
        AuditEntry(
            principal.username, action, f"merchant:{company_id}", meta.request_id, meta.ip, {"uid": uid}
        )
    )
