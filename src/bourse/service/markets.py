"""Markets: create, change, find. One unit of work per call.

``get`` and ``list`` are for the core (the trading engine reads the market it
runs); the back-office calls take the caller's principal and check its
operation here, so no dialect can forget it. After a change commits, the market
is published on the bus as ``markets.<marketId>`` (the engine runner listens to
learn status changes without polling).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import (
    Market,
    MarketQuery,
    MarketStatus,
    apply_fields,
    check_assets,
    new_market,
    to_millis,
)
from bourse.domain.notifications import market_halted
from bourse.domain.values import AssetId
from bourse.service.context import RequestMeta
from bourse.service.ports import Clock, EventBus, UnitOfWork, UnitOfWorkFactory


def market_event(market: Market) -> dict[str, Any]:
    return {
        "marketId": market.id,
        "status": market.status.value,
        "isHidden": market.is_hidden,
        "ts": to_millis(market.updated_at),
    }


class MarketService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, bus: EventBus | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._bus = bus

    # --- the core's view ----------------------------------------------------------------------

    async def get(self, market_id: str) -> Market:
        """NotFound if there is no such market (hidden ones included)."""
        async with self._uow() as uow:
            market = await uow.markets.get(market_id)
        if market is None:
            raise NotFound(f"market {market_id} not found", field="marketId")
        return market

    async def list(self) -> list[Market]:
        """Every market (hidden ones included), by id."""
        async with self._uow() as uow:
            return await uow.markets.list()

    async def listed(self, principal: Principal) -> builtins.list[Market]:
        """What traders see listed: every market but the hidden ones, by id."""
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            return await uow.markets.list(MarketQuery(include_hidden=False))

    async def shown(self, principal: Principal, market_id: str) -> Market:
        """One market for a trader: hidden ones too (not listed, but readable by id)."""
        principal.require(Operation.TRADING_UI)
        return await self.get(market_id)

    # --- back office --------------------------------------------------------------------------

    async def search(self, principal: Principal, query: MarketQuery) -> builtins.list[Market]:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            return await uow.markets.list(query)

    async def create(self, principal: Principal, fields: Mapping[str, Any], meta: RequestMeta) -> Market:
        """A new market from a back-office body; Conflict if its id exists."""
        principal.require(Operation.MANAGE_MARKETS)
        market = new_market(fields, self._clock.now())
        async with self._uow() as uow:
            await _check_assets(uow, market)
            await uow.markets.add(market)
            await _audit(uow, principal, AuditAction.MARKET_CREATED, market, meta, sorted(fields))
            await uow.commit()
        self._publish(market)
        return market

    async def update(
        self, principal: Principal, market_id: str, fields: Mapping[str, Any], meta: RequestMeta
    ) -> Market:
        """Apply a back-office PUT body (absent fields unchanged); NotFound if there is no such market."""
        principal.require(Operation.MANAGE_MARKETS)
        async with self._uow() as uow:
            current = await uow.markets.get(market_id, for_update=True)
            if current is None:
                raise NotFound(f"market {market_id} not found", field="marketId")
            market = apply_fields(current, fields, self._clock.now())
            await _check_assets(uow, market)
            await uow.markets.update(market)
            await _audit(uow, principal, AuditAction.MARKET_UPDATED, market, meta, sorted(fields))
            if market.status is MarketStatus.HALTED and current.status is not MarketStatus.HALTED:
                # Staff hear of a halt in the same transaction as the change (service/notifications.py).
                await uow.notifications.add_admin(
                    market_halted(market.id, principal.username, self._clock.now())
                )
            await uow.commit()
        self._publish(market)
        return market

    def _publish(self, market: Market) -> None:
        if self._bus is not None:
            self._bus.publish(f"markets.{market.id}", market_event(market))


async def _check_assets(uow: UnitOfWork, market: Market) -> None:
    base = await uow.assets.get(AssetId(market.base_asset))
    if base is None:
        raise InvalidInput(f"unknown asset {market.base_asset}", field="baseAssetId")
    quote = await uow.assets.get(AssetId(market.quote_asset))
    if quote is None:
        raise InvalidInput(f"unknown asset {market.quote_asset}", field="quoteAssetId")
    check_assets(market, base, quote)
    if market.swap_settings is not None:
        for leg, name in ((market.swap_settings.short, "short"), (market.swap_settings.long, "long")):
            if leg is not None and await uow.assets.get(leg.asset_id) is None:
                raise InvalidInput(
                    f"unknown asset {leg.asset_id}", field=f"swapSettings.{name}PositionSettings"
                )


async def _audit(
    uow: UnitOfWork,
    principal: Principal,
    action: AuditAction,
    market: Market,
    meta: RequestMeta,
    fields: list[str],
) -> None:
    await uow.audit.append(
        AuditEntry(
            principal.username,
            action,
            f"market:{market.id}",
            meta.request_id,
            meta.ip,
            {"fields": fields, "status": market.status.value},
        )
    )
