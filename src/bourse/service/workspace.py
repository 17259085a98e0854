"""The trader's workspace: UI settings, layouts and templates (domain/workspace.py).

Everything is the caller's own: the user id comes from the principal, never from the
request, so another user's layout id is simply not found. Writes of one user take
turns (``uow.workspace.lock_user``), which keeps the layout limit and the order exact
under concurrent requests. Every change writes its audit entry in its own transaction
(actor the username; subject ``ui_settings:<uid>``, ``layout:<uid>:<layoutId>`` or
``layouts:<uid>`` for the order, layout ids being unique per user only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import BusinessRejection, Conflict, InvalidInput, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.workspace import (
    MAX_LAYOUTS_PER_USER,
    Layout,
    SettingsPatch,
    Tab,
    Template,
    UiSettings,
    parse_id,
    reorder,
    settings_json,
    with_tabs,
)
from bourse.service.context import RequestMeta
from bourse.service.ports import Clock, UnitOfWork, UnitOfWorkFactory


class WorkspaceService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    # --- settings -------------------------------------------------------------------------------

    async def settings(self, principal: Principal) -> UiSettings:
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            return await uow.workspace.settings(principal.uid) or UiSettings()

    async def change_settings(
        self, principal: Principal, patch: SettingsPatch, meta: RequestMeta
    ) -> UiSettings:
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            await uow.workspace.lock_user(principal.uid)
            wanted = patch.selected_layout_id if patch.select_layout else None
            if wanted is not None and await uow.workspace.layout(principal.uid, wanted) is None:
                raise InvalidInput(
                    f"selectedLayoutId {wanted} is not one of your layouts", field="selectedLayoutId"
                )
            before = await uow.workspace.settings(principal.uid) or UiSettings()
            settings = patch.apply(before)
            await uow.workspace.save_settings(principal.uid, settings, self._clock.now())
            await _audit(
                uow,
                principal,
                AuditAction.UI_SETTINGS_CHANGED,
                f"ui_settings:{principal.uid}",
                meta,
                {"before": settings_json(before), "after": settings_json(settings)},
            )
            await uow.commit()
        return settings

    # --- layouts --------------------------------------------------------------------------------

    async def layouts(self, principal: Principal) -> list[Layout]:
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            return await uow.workspace.layouts(principal.uid)

    async def create_layout(self, principal: Principal, layout: Layout, meta: RequestMeta) -> Layout:
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            await uow.workspace.lock_user(principal.uid)
            await _check_markets(uow, layout.market_ids())
            if await uow.workspace.layout(principal.uid, layout.id) is not None:
                raise Conflict(f"you have a layout with id {layout.id} already", field="id")
            if len(await uow.workspace.layouts(principal.uid)) >= MAX_LAYOUTS_PER_USER:
                raise BusinessRejection(
                    f"at most {MAX_LAYOUTS_PER_USER} layouts per user; delete one first",
                    field="id",
                    limit=MAX_LAYOUTS_PER_USER,
                )
            if not await uow.workspace.add_layout(principal.uid, layout, self._clock.now()):
                raise Conflict(f"you have a layout with id {layout.id} already", field="id")
            await _audit_layout(uow, principal, AuditAction.LAYOUT_CREATED, layout, meta)
            await uow.commit()
        return layout

    async def replace_tabs(
        self, principal: Principal, layout_id: str, tabs: tuple[Tab, ...], meta: RequestMeta
    ) -> Layout:
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            await uow.workspace.lock_user(principal.uid)
            current = await self._own(uow, principal, layout_id)
            layout = with_tabs(current, tabs)
            await _check_markets(uow, layout.market_ids())
            await uow.workspace.update_layout(principal.uid, layout, self._clock.now())
            await _audit_layout(uow, principal, AuditAction.LAYOUT_CHANGED, layout, meta)
            await uow.commit()
        return layout

    async def rename_layout(
        self, principal: Principal, layout_id: str, name: str, meta: RequestMeta
    ) -> Layout:
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            await uow.workspace.lock_user(principal.uid)
            current = await self._own(uow, principal, layout_id)
            layout = Layout(current.id, name, current.tabs)
            await uow.workspace.update_layout(principal.uid, layout, self._clock.now())
            await _audit_layout(
                uow, principal, AuditAction.LAYOUT_RENAMED, layout, meta, {"previousName": current.name}
            )
            await uow.commit()
        return layout

    async def delete_layout(self, principal: Principal, layout_id: str, meta: RequestMeta) -> None:
        """Deleting the selected layout clears the selection."""
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            await uow.workspace.lock_user(principal.uid)
            layout = await self._own(uow, principal, layout_id)
            await uow.workspace.delete_layout(principal.uid, layout_id)
            settings = await uow.workspace.settings(principal.uid)
            selected = settings is not None and settings.selected_layout_id == layout_id
            if settings is not None and selected:
                cleared = SettingsPatch(select_layout=True, selected_layout_id=None).apply(settings)
                await uow.workspace.save_settings(principal.uid, cleared, self._clock.now())
            await _audit_layout(
                uow, principal, AuditAction.LAYOUT_DELETED, layout, meta, {"selectionCleared": selected}
            )
            await uow.commit()

    async def order_layouts(
        self, principal: Principal, layout_ids: list[str], meta: RequestMeta
    ) -> list[str]:
        """``layout_ids`` must list each of the caller's layouts once; an id that is not theirs is 404."""
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            await uow.workspace.lock_user(principal.uid)
            current = [layout.id for layout in await uow.workspace.layouts(principal.uid)]
            for i, layout_id in enumerate(layout_ids):
                if layout_id not in current:
                    raise NotFound(f"layout {layout_id} not found", field=f"layoutOrder[{i}]")
            order = reorder(current, layout_ids)
            await uow.workspace.set_order(principal.uid, order, self._clock.now())
            await _audit(
                uow,
                principal,
                AuditAction.LAYOUTS_ORDERED,
                f"layouts:{principal.uid}",
                meta,
                {"before": current, "after": order},
            )
            await uow.commit()
        return order

    async def templates(self, principal: Principal) -> list[Template]:
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            return await uow.workspace.templates()

    async def _own(self, uow: UnitOfWork, principal: Principal, layout_id: str) -> Layout:
        parse_id(layout_id, "id")
        layout = await uow.workspace.layout(principal.uid, layout_id)
        if layout is None:
            raise NotFound(f"layout {layout_id} not found", field="id")
        return layout


async def _check_markets(uow: UnitOfWork, market_ids: Mapping[str, str]) -> None:
    for market_id, field in market_ids.items():
        if await uow.markets.get(market_id) is None:
            raise InvalidInput(f"{field}: there is no market {market_id}", field=field)


async def _audit(
    uow: UnitOfWork,
    principal: Principal,
    action: AuditAction,
    subject: str,
    meta: RequestMeta,
    details: dict[str, Any],
) -> None:
    await uow.audit.append(AuditEntry(principal.username, action, subject, meta.request_id, meta.ip, details))


async def _audit_layout(
    uow: UnitOfWork,
    principal: Principal,
    action: AuditAction,
    layout: Layout,
    meta: RequestMeta,
    extra: dict[str, Any] | None = None,
) -> None:
    # The subject names the user: layout ids are unique per user only.
    details = {"layoutId": layout.id, "name": layout.name, "tabs": len(layout.tabs), **(extra or {})}
    await _audit(uow, principal, action, f"layout:{principal.uid}:{layout.id}", meta, details)
