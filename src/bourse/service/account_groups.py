"""Account groups: create, change, list, and which group an account is in.

Reads need view-common, changes manage-accounts (checked here, so no edge can
forget it). Groups are never deleted: every account always names one.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from bourse.domain.account_groups import AccountGroup, changed_group, new_group
from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.values import AccountId
from bourse.service.context import RequestMeta
from bourse.service.ports import Clock, UnitOfWork, UnitOfWorkFactory


def _group_not_found(group_id: str) -> NotFound:
    return NotFound(f"account group {group_id} not found", field="accountGroupId")


class AccountGroupService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def list(self, principal: Principal) -> builtins.list[AccountGroup]:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            return await uow.account_groups.list()

    async def get(self, principal: Principal, group_id: str) -> AccountGroup:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            group = await uow.account_groups.get(group_id)
        if group is None:
            raise _group_not_found(group_id)
        return group

    async def create(self, principal: Principal, body: Mapping[str, Any], meta: RequestMeta) -> AccountGroup:
        """Conflict if the id exists."""
        principal.require(Operation.MANAGE_ACCOUNTS)
        group = new_group(body)
        async with self._uow() as uow:
            await uow.account_groups.add(group, self._clock.now())
            await _audit(uow, principal, AuditAction.ACCOUNT_GROUP_CREATED, group, meta)
            await uow.commit()
        return group

    async def update(
        self, principal: Principal, group_id: str, body: Mapping[str, Any], meta: RequestMeta
    ) -> AccountGroup:
        """Fields present in ``body`` change; the levels are checked together after the change."""
        principal.require(Operation.MANAGE_ACCOUNTS)
        async with self._uow() as uow:
            current = await uow.account_groups.get(group_id, for_update=True)
            if current is None:
                raise _group_not_found(group_id)
            group = changed_group(current, body)
            await uow.account_groups.update(group, self._clock.now())
            await _audit(uow, principal, AuditAction.ACCOUNT_GROUP_UPDATED, group, meta)
            await uow.commit()
        return group

    async def group_of(self, principal: Principal, account_id: AccountId) -> str:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            group_id = await uow.account_groups.group_of_account(account_id)
        if group_id is None:
            raise NotFound(f"account {account_id} not found", field="accountId")
        return group_id

    async def assign(
        self, principal: Principal, account_id: AccountId, group_id: str, meta: RequestMeta
    ) -> None:
        """Move an account into an existing group."""
        principal.require(Operation.MANAGE_ACCOUNTS)
        async with self._uow() as uow:
            if await uow.account_groups.get(group_id) is None:
                raise _group_not_found(group_id)
            if not await uow.account_groups.set_account_group(account_id, group_id):
                raise NotFound(f"account {account_id} not found", field="accountId")
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.ACCOUNT_GROUP_ASSIGNED,
                    f"account:{account_id}",
                    meta.request_id,
                    meta.ip,
                    {"accountGroupId": group_id},
                )
            )
            await uow.commit()


async def _audit(
    uow: UnitOfWork, principal: Principal, action: AuditAction, group: AccountGroup, meta: RequestMeta
) -> None:
    await uow.audit.append(
        AuditEntry(
            principal.username,
            action,
            f"account-group:{group.id}",
            meta.request_id,
            meta.ip,
            {
                "name": group.name,
                "marginCallLevel": str(group.margin_call_level),
                "stopOutLevel": str(group.stop_out_level),
            },
        )
    )
