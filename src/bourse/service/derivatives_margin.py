"""Margin: the margin job's check (margin calls, stop-out), the spot side's margin guard
(``may_hold_positions``, ``check_release``), margin levels, assets and ratios.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from time import monotonic

import structlog

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import InvalidInput, MarginRequired, NotFound
from bourse.domain.identity import Principal
from bourse.domain.ledger import Bucket, account_owner
from bourse.domain.margin import isolated_level, margin_call_due, margin_state, stop_out_due, stop_out_order
from bourse.domain.notifications import TraderNotificationType, trader_notification
from bourse.domain.positions import ZERO, CloseReason, MarginType, Position
from bourse.domain.pricing import PriceUnavailable
from bourse.domain.values import AccountId, AssetId, UserId, format_decimal, normalized
from bourse.service.context import RequestMeta
from bourse.service.derivatives_base import SYSTEM_ACTOR, _adjusted
from bourse.service.derivatives_book import closed_something
from bourse.service.derivatives_context import (
    Levels,
    Rates,
    collateral,
    contracts,
    levels,
    position_marks,
    selected_assets,
)
from bourse.service.derivatives_positions import DerivativesPositions, _NoLongerDue
from bourse.service.derivatives_records import MarginAssetUnavailable, PositionClosed
from bourse.service.derivatives_views import MarginAssetView, MarginCheck, OrderView
from bourse.service.ports import UnitOfWork

log = structlog.get_logger("bourse.derivatives")
# A stop-out closes one position at a time; a bound keeps one check finite whatever happens.
MAX_STOP_OUT_CLOSES = 100


@dataclass(frozen=True, slots=True)
class _MarginSnapshot:
    uid: UserId
    level: Decimal | None
    isolated: dict[str, Decimal | None]
    losses: list[tuple[Position, Decimal]]
    levels: Levels
    # open positions without a fresh mark or a RAT rate: the account cannot be evaluated now
    unpriced: list[str] = field(default_factory=list)


class DerivativesMargin(DerivativesPositions):
    # --- margin ------------------------------------------------------------------------------

    async def check_margin(self, account_id: AccountId, now: datetime | None = None) -> MarginCheck:
        """For the margin job, one account: send the trader a ``MarginCall`` notification when its
        cross level (or an isolated position's own level) went below the group's margin call level
        (once per crossing: re-armed when back at or above it), then stop out: while the cross level
        is below the stop-out level, close the Cross position with the biggest unrealized loss (in
        RAT; ties oldest first) and evaluate again; an isolated position below the stop-out level on
        its own level is closed. Every close is a reduce-only order with source and reason StopOut.
        A position whose market has no fresh price cannot be closed now and is passed over."""
        now = now or self._clock.now()
        closed: list[OrderView] = []
        skipped: set[str] = set()
        notified = False
        for _ in range(MAX_STOP_OUT_CLOSES):
            snap = await self._margin_snapshot(account_id)
            if snap is None:
                break
            if snap.unpriced:
                # No margin call and no stop-out on a level that cannot be computed; said once per
                # account until it can be evaluated again.
                if self._unpriced_logged.get(account_id) != snap.unpriced:
                    self._unpriced_logged[account_id] = snap.unpriced
                    log.warning("margin.cannot_evaluate", account_id=account_id, position_ids=snap.unpriced)
                break
            self._unpriced_logged.pop(account_id, None)
            notified = await self._margin_calls(account_id, snap, now) or notified
            target = self._stop_out_target(snap, skipped)
            if target is None:
                break
            try:
                view = await self._stop_out(account_id, target, skipped, now)
            except (PriceUnavailable, PositionClosed):
                skipped.add(target)
                continue
            if view is None:
                continue  # the level recovered before the close got the lock: evaluate again
            closed.append(view)
            if view.order.in_book and not closed_something(view.order):
                skipped.add(target)  # no liquidity in the book now: the next pass tries again
        return MarginCheck(closed, notified)

    async def _margin_snapshot(
        self, account: AccountId, uow: UnitOfWork | None = None
    ) -> _MarginSnapshot | None:
        """The account's levels now (read in ``uow`` when given: the stop-out's re-check under the
        account's lock)."""
        if uow is None:
            async with self._uow() as own:
                return await self._margin_snapshot(account, own)
        positions = await uow.derivatives.open_positions(account)
        if not positions:
            return None
        record = await uow.accounts.get(account)
        assert record is not None
        specs = await contracts(uow, [p.market_id for p in positions])
        marks = await self._fresh_marks(list(specs))
        rates = Rates(uow, self._root)
        lv = await levels(uow, account)
        unpriced = await self._unpriced(positions, specs, marks, rates)
        if unpriced:
            return _MarginSnapshot(record.uid, None, {}, [], lv, unpriced)
        held = await collateral(uow, account, rates)
        pm = await position_marks(positions, specs, marks, rates)
        state = margin_state(held, pm)
        isolated = {
            p.position_id: isolated_level(p, spec, mark)
            for p, spec, mark, _ in pm
            if p.margin_type is MarginType.ISOLATED
        }
        losses = [
            (p, p.unrealized_pnl(mark, spec) * rate)
            for p, spec, mark, rate in pm
            if p.margin_type is MarginType.CROSS
        ]
        return _MarginSnapshot(record.uid, state.level, isolated, losses, lv)

    async def _margin_calls(self, account: AccountId, snap: _MarginSnapshot, now: datetime) -> bool:
        scopes: list[tuple[str, Decimal | None]] = [("cross", snap.level)]
        scopes += [(f"position:{pid}", level) for pid, level in snap.isolated.items()]
        notes = []
        async with self._uow() as uow:
            for scope, level in scopes:
                armed = await uow.derivatives.margin_call_armed(account, scope)
                notify, armed_after = margin_call_due(level, snap.levels.margin_call, armed)
                if armed_after != armed:
                    await uow.derivatives.set_margin_call_armed(account, scope, armed_after, now)
                if notify:
                    assert level is not None
                    what = "account" if scope == "cross" else f"position {scope.split(':', 1)[1]}"
                    notes.append(
                        trader_notification(
                            snap.uid,
                            TraderNotificationType.MARGIN_CALL,
                            "Margin call",
                            f"The margin level of your {what} is {format_decimal(level)}, below the margin call"
                            f" level {format_decimal(snap.levels.margin_call)}: add funds or reduce positions.",
                            {
                                "accountId": account,
                                "positionId": None if scope == "cross" else scope.split(":", 1)[1],
                                "marginLevel": format_decimal(level),
                                "marginCallLevel": format_decimal(snap.levels.margin_call),
                                "stopOutLevel": format_decimal(snap.levels.stop_out),
                            },
                            now,
                            account,
                        )
                    )
            stored = await uow.notifications.add_trader(notes) if notes else []
            await uow.commit()
        if self._notifications is not None and stored:
            self._notifications.publish([(snap.uid, n) for n in stored])
        return bool(stored)

    async def _stop_out(
        self, account: AccountId, target: str, skipped: set[str], now: datetime
    ) -> OrderView | None:
        """Close ``target`` for a stop-out chosen from a snapshot read without the account's lock;
        None (nothing closed) when, re-read under the lock, it is no longer the position to close
        (a deposit, a price move or another close came in between)."""

        async def still_due(uow: UnitOfWork) -> bool:
            fresh = await self._margin_snapshot(account, uow)
            return fresh is not None and self._stop_out_target(fresh, skipped) == target

        try:
            return await self._close(
                account, target, None, CloseReason.STOP_OUT, actor=SYSTEM_ACTOR, now=now, still_due=still_due
            )
        except _NoLongerDue:
            return None

    @staticmethod
    def _stop_out_target(snap: _MarginSnapshot, skipped: set[str]) -> str | None:
        for pid, level in sorted(snap.isolated.items()):
            if pid not in skipped and stop_out_due(level, snap.levels.stop_out):
                return pid
        if stop_out_due(snap.level, snap.levels.stop_out):
            for pid in stop_out_order(snap.losses):
                if pid not in skipped:
                    return pid
        return None

    async def may_hold_positions(self, account_id: AccountId) -> bool:
        """``MarginGuard``: False when the account had no open position at the last read (at most
        ``may_hold_ttl`` seconds ago) and placed no derivative order in this process lately, so a
        spot order needs no margin pre-check (no database round trip before its engine).
        Concurrent callers share one read."""
        now = monotonic()
        if self._may_hold_read is None or now - self._may_hold_read > self.may_hold_ttl:
            if self._may_hold_reading is None or self._may_hold_reading.done():
                self._may_hold_reading = asyncio.ensure_future(self._read_may_hold())
            await asyncio.shield(self._may_hold_reading)
        placed = self._placed_at.get(account_id)
        # a recent order's position may have committed after the read: it counts until read again
        recent = placed is not None and now - placed < 2 * self.may_hold_ttl + 5
        return account_id in self._may_hold or recent

    async def _read_may_hold(self) -> None:
        read_at = monotonic()
        async with self._uow() as uow:
            accounts = await uow.derivatives.accounts_with_positions()
        self._may_hold = set(accounts)
        self._may_hold_read = read_at
        self._placed_at = {
            a: t for a, t in self._placed_at.items() if read_at - t < 2 * self.may_hold_ttl + 5
        }

    async def check_release(
        self, uow: UnitOfWork, account_id: AccountId, asset_id: AssetId, amount: Decimal
    ) -> None:
        """``MarginGuard``: refuse (MarginRequired) taking ``amount`` of ``asset_id`` out of the
        account's available when, after it, the cross margin level would be below the group's
        margin call level or equity below used margin: that money backs the open Cross positions
        (an unrealized loss, their margin) and leaving would turn a later stop-out into a house
        deficit. Only an asset the account counts as margin is checked; no Cross position, nothing
        to check. Runs in the caller's unit of work under the account's derivative lock, so no
        derivative fill of the account changes the picture until it commits."""
        await uow.derivatives.lock_account(account_id)
        positions = await uow.derivatives.open_positions(account_id)
        if not any(p.margin_type is MarginType.CROSS for p in positions):
            return
        rates = Rates(uow, self._root)
        held = await collateral(uow, account_id, rates)
        if all(c.asset_id != asset_id for c in held):
            return
        specs = await contracts(uow, [p.market_id for p in positions])
        marks = await self._fresh_marks(list(specs))
        unpriced = await self._unpriced(positions, specs, marks, rates)
        if unpriced:
            # the level cannot be computed now: the money may be backing a loss nobody can see
            raise MarginRequired(
                f"{asset_id} backs open Cross positions whose margin level cannot be evaluated now"
                " (no fresh mark price); try again once the market is priced",
                accountId=account_id,
                assetId=asset_id,
                positionIds=unpriced,
            )
        pm = await position_marks(positions, specs, marks, rates)
        lv = await levels(uow, account_id)
        after = margin_state([_adjusted(c, -amount) if c.asset_id == asset_id else c for c in held], pm)
        if after.level is None:
            return
        if after.level < lv.margin_call or after.equity < after.used:
            raise MarginRequired(
                f"{format_decimal(amount)} {asset_id} backs the account's open Cross positions: its margin"
                f" level would fall to {format_decimal(after.level)}, below the margin call level"
                f" {format_decimal(lv.margin_call)}",
                accountId=account_id,
                assetId=asset_id,
                marginLevel=format_decimal(after.level),
                marginCallLevel=format_decimal(lv.margin_call),
            )

    async def margin_levels(self, principal: Principal, account_id: str | None) -> Levels:
        account = await self.account_or_default(principal, account_id)
        async with self._uow() as uow:
            return await levels(uow, account)

    async def margin_assets(self, principal: Principal, account_id: str | None) -> list[MarginAssetView]:
        """Every asset with a margin ratio: the account's available and total of it, whether it counts."""
        account = await self.account_or_default(principal, account_id)
        owner = account_owner(account)
        async with self._uow() as uow:
            ratios = await uow.derivatives.margin_ratios()
            selection = await uow.derivatives.margin_selection(account)
            chosen = set(selected_assets(self._root, selection, ratios))
            balances: dict[tuple[str, str], Decimal] = {
                (str(b.asset), str(b.bucket)): b.amount for b in await uow.ledger.balances(owner)
            }
            views = []
            for asset_id, ratio in sorted(ratios.items()):
                asset = await uow.assets.get(asset_id)
                available = balances.get((asset_id, Bucket.AVAILABLE.value), ZERO)
                total = available + sum(
                    (balances.get((asset_id, b.value), ZERO) for b in (Bucket.LOCKED, Bucket.MARGIN)), ZERO
                )
                views.append(
                    MarginAssetView(
                        asset_id,
                        asset.name if asset else asset_id,
                        available,
                        total,
                        ratio,
                        asset_id in chosen,
                    )
                )
        return views

    async def select_margin_asset(
        self,
        principal: Principal,
        account_id: str | None,
        asset_id: str,
        selected: bool,
        meta: RequestMeta | None = None,
    ) -> None:
        """Count (or stop counting) ``asset_id`` as the account's collateral. Selecting needs a margin ratio."""
        account = await self.account_or_default(principal, account_id)
        now = self._clock.now()
        async with self._uow() as uow:
            asset = await uow.assets.get(AssetId(asset_id))
            if asset is None:
                raise NotFound(f"asset {asset_id} not found", field="assetId")
            ratios = await uow.derivatives.margin_ratios()
            if selected and asset.id not in ratios and asset.id != self._root:
                raise MarginAssetUnavailable(
                    f"asset {asset_id} has no margin ratio and cannot be a margin asset", field="assetId"
                )
            await uow.derivatives.lock_account(account)
            await uow.derivatives.set_margin_selection(account, asset.id, selected, now)
            meta = meta or RequestMeta()
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.MARGIN_ASSET_SELECTED if selected else AuditAction.MARGIN_ASSET_UNSELECTED,
                    f"account:{account}",
                    meta.request_id,
                    meta.ip,
                    {"assetId": asset.id},
                )
            )
            await uow.commit()

    async def set_margin_ratio(
        self, actor: str, asset_id: str, ratio: Decimal, meta: RequestMeta | None = None
    ) -> None:
        """Platform setting (CLI): how much of an asset's value counts as collateral (0 < ratio <= 1)."""
        if not ratio.is_finite() or not 0 < ratio <= 1:
            raise InvalidInput("a margin ratio is above 0 and at most 1", field="ratio")
        async with self._uow() as uow:
            asset = await uow.assets.get(AssetId(asset_id))
            if asset is None:
                raise NotFound(f"asset {asset_id} not found", field="assetId")
            await uow.derivatives.set_margin_ratio(asset.id, ratio, self._clock.now())
            meta = meta or RequestMeta()
            await uow.audit.append(
                AuditEntry(
                    actor,
                    AuditAction.MARGIN_RATIO_SET,
                    f"asset:{asset.id}",
                    meta.request_id,
                    meta.ip,
                    {"ratio": format(normalized(ratio), "f")},
                )
            )
            await uow.commit()

    async def margin_ratios(self) -> dict[AssetId, Decimal]:
        async with self._uow() as uow:
            return await uow.derivatives.margin_ratios()
