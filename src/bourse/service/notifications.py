"""Notifications: the traders' own inboxes and the shared staff inbox (domain/notifications.py).

Raising: ``raise_admin`` and ``notify_trader`` each store one notification in their own
unit of work (a trader's is then published on the bus as ``notifications.<uid>``). A
part of the platform that notices the condition inside its own unit of work (a
callback given up, a market halted) adds the notification there instead, with
``uow.notifications.add_admin(...)`` and a builder from the domain, so it is stored
exactly when the change is.

Reading: a trader sees only their own notifications (with an ``accountId``, only that
account's and the ones about the user as a whole); staff with ``view-common`` see every
admin notification, each with their own read marks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bourse.domain.errors import NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.notifications import (
    AdminNotificationType,
    Notification,
    NotificationQuery,
    TraderNotificationType,
    admin_notification,
    notification_json,
    trader_notification,
)
from bourse.domain.values import AccountId, UserId
from bourse.service.accounts import AccountService
from bourse.service.ports import Clock, EventBus, UnitOfWorkFactory


def topic(uid: UserId) -> str:
    return f"notifications.{uid}"


class NotificationService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, bus: EventBus, accounts: AccountService) -> None:
        self._uow = uow
        self._clock = clock
        self._bus = bus
        self._accounts = accounts

    # --- raising --------------------------------------------------------------------------------

    async def raise_admin(
        self,
        kind: AdminNotificationType | str,
        title: str,
        body: str,
        details: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> int | None:
        """Store one staff notification; its id, or None if ``dedupe_key`` was raised before."""
        note = admin_notification(kind, title, body, details, self._clock.now(), dedupe_key)
        async with self._uow() as uow:
            notification_id = await uow.notifications.add_admin(note)
            await uow.commit()
        return notification_id

    async def notify_trader(
        self,
        uid: UserId,
        kind: TraderNotificationType | str,
        title: str,
        body: str,
        details: Mapping[str, Any] | None = None,
        *,
        account_id: AccountId | None = None,
    ) -> Notification:
        note = trader_notification(uid, kind, title, body, details, self._clock.now(), account_id)
        async with self._uow() as uow:
            (stored,) = await uow.notifications.add_trader([note])
            await uow.commit()
        self.publish([(uid, stored)])
        return stored

    def publish(self, stored: Sequence[tuple[UserId, Notification]]) -> None:
        """After commit: each trader notification to its user's ``notifications.<uid>`` topic."""
        for uid, notification in stored:
            self._bus.publish(topic(uid), notification_json(notification))

    # --- traders --------------------------------------------------------------------------------

    async def _scope(self, principal: Principal, account_id: str | None) -> AccountId | None:
        principal.require(Operation.TRADING_UI)
        if not account_id:
            return None
        return (await self._accounts.owned_account(principal, account_id)).account_id

    async def trader_list(
        self, principal: Principal, account_id: str | None, query: NotificationQuery
    ) -> list[Notification]:
        scope = await self._scope(principal, account_id)
        async with self._uow() as uow:
            return await uow.notifications.list_trader(principal.uid, scope, query)

    async def trader_unread(self, principal: Principal, account_id: str | None) -> int:
        scope = await self._scope(principal, account_id)
        async with self._uow() as uow:
            return await uow.notifications.trader_unread(principal.uid, scope)

    async def trader_mark_read(
        self, principal: Principal, account_id: str | None, ids: Sequence[int] | None
    ) -> int:
        """Mark ``ids`` (None: all) read; every id must be one of the caller's (404, nothing marked)."""
        scope = await self._scope(principal, account_id)
        async with self._uow() as uow:
            if ids is not None:
                known = await uow.notifications.trader_existing(principal.uid, scope, ids)
                _all_known(ids, known)
            count = await uow.notifications.mark_trader_read(principal.uid, scope, ids, self._clock.now())
            await uow.commit()
        return count

    # --- staff ----------------------------------------------------------------------------------

    async def admin_list(self, principal: Principal, query: NotificationQuery) -> list[Notification]:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            return await uow.notifications.list_admin(principal.uid, query)

    async def admin_unread(self, principal: Principal) -> int:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            return await uow.notifications.admin_unread(principal.uid)

    async def admin_mark_read(self, principal: Principal, ids: Sequence[int] | None) -> int:
        """Marks are the caller's own: another staff user still sees the notification unread."""
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            if ids is not None:
                _all_known(ids, await uow.notifications.admin_existing(ids))
            count = await uow.notifications.mark_admin_read(principal.uid, ids, self._clock.now())
            await uow.commit()
        return count


def _all_known(ids: Sequence[int], known: set[int]) -> None:
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFound(f"notification {missing[0]} not found", field="ids")
