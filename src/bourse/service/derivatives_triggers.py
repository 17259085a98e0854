"""A position's take profit and stop loss: setting them, sizing them (trigger-data), and the
trigger job's evaluation that closes what fires.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, localcontext

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import Principal
from bourse.domain.positions import EXACT, Position
from bourse.domain.pricing import PriceUnavailable
from bourse.domain.triggers import (
    StopLoss,
    Triggers,
    TriggerType,
    TriggerValues,
    evaluate,
    new_trailing_stop,
    take_profit_ladder,
    trailing_rate_from_price,
    trigger_values,
    validate_trailing_rate,
)
from bourse.domain.values import AccountId
from bourse.service.context import RequestMeta
from bourse.service.derivatives_base import SYSTEM_ACTOR
from bourse.service.derivatives_book import closed_something
from bourse.service.derivatives_context import Contract, contract
from bourse.service.derivatives_events import Changes, order_changes
from bourse.service.derivatives_positions import DerivativesPositions
from bourse.service.derivatives_records import DerivativeOrder, PositionClosed
from bourse.service.derivatives_views import OrderView, PositionTriggers, TriggerSpec


class DerivativesTriggers(DerivativesPositions):
    # --- triggers ----------------------------------------------------------------------------

    async def apply_triggers(self, position_id: str, now: datetime | None = None) -> list[OrderView]:
        """For the trigger job: evaluate the position's take profit ladder, stop loss and trailing
        stop against the market's mark; close what fires (reduce-only orders with source and reason
        TakeProfit, StopLoss or TrailingStop; a stop loss with a limit price rests as a limit close)
        and store the triggers as they stand after (levels done, trailing stop moved, OCO), all in
        one transaction. Nothing fires while the market has no mark; a firing waits (nothing is
        stored) while it has no fresh dealer price. The orders it placed."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            peek = await uow.derivatives.get_position(position_id)
            if peek is None or not peek.is_open:
                return []
            c = await contract(uow, peek.market_id)
            rules = await uow.commissions.rules_for_account(peek.account_id)
            record = await uow.accounts.get(peek.account_id)
        rule = self._rule(rules, c)
        assert record is not None
        mark = await self._mark(c.market.id)
        if mark is None:
            return []
        if await self._order_book(c.market):
            return await self._book_triggers(peek.account_id, position_id, c, mark, now)
        quote = await self._quote(c.market.id)
        async with self._uow() as uow:
            await uow.derivatives.lock_account(peek.account_id)
            position = await uow.derivatives.get_position(position_id, for_update=True)
            if position is None or not position.is_open:
                return []
            stored = (await uow.derivatives.triggers([position_id])).get(position_id)
            if stored is None:
                return []
            firings, after = evaluate(position, stored, mark, c.spec)
            if firings and quote is None:
                return []
            orders: list[DerivativeOrder] = []
            for firing in firings:
                current = await uow.derivatives.get_position(position_id, for_update=True)
                if current is None or not current.is_open:
                    break
                assert quote is not None
                orders.append(
                    await self._close_in(
                        uow,
                        current,
                        c,
                        rule,
                        record.account_type,
                        quote,
                        mark,
                        min(firing.lots, current.lots),
                        firing.reason,
                        firing.limit_price,
                        now,
                        SYSTEM_ACTOR,
                        None,
                    )
                )
            left = await uow.derivatives.get_position(position_id)
            changes = [await order_changes(uow, o) for o in orders]
            if left is not None and left.is_open and after != stored:
                await uow.derivatives.save_triggers(position_id, None if after.is_empty else after)
                changes.append(Changes.of_position(position.account_id, position_id))
            views = [await self._order_view(uow, o, c.market) for o in orders]
            await uow.commit()
        self._publish(changes)
        return views

    async def _book_triggers(
        self, account: AccountId, position_id: str, c: Contract, mark: Decimal, now: datetime
    ) -> list[OrderView]:
        """Triggers of a position on an OrderBook market: what fires is closed by reduce-only
        orders through the market's runner; the triggers' new state is stored once the closes did
        their work (a market close that found no liquidity leaves them as they were: they fire
        again on the next pass)."""
        async with self._uow() as uow:
            position = await uow.derivatives.get_position(position_id)
            stored = (await uow.derivatives.triggers([position_id])).get(position_id)
        if position is None or not position.is_open or stored is None:
            return []
        firings, after = evaluate(position, stored, mark, c.spec)
        views: list[OrderView] = []
        for firing in firings:
            async with self._uow() as uow:
                current = await uow.derivatives.get_position(position_id)
            if current is None or not current.is_open:
                break
            view = await self._close(
                account,
                position_id,
                min(firing.lots, current.lots),
                firing.reason,
                actor=SYSTEM_ACTOR,
                now=now,
                limit_price=firing.limit_price,
            )
            views.append(view)
            if not closed_something(view.order):
                return views
        async with self._uow() as uow:
            await uow.derivatives.lock_account(account)
            left = await uow.derivatives.get_position(position_id)
            if left is not None and left.is_open and after != stored:
                await uow.derivatives.save_triggers(position_id, None if after.is_empty else after)
                await uow.commit()
        return views

    async def set_triggers(
        self,
        principal: Principal,
        account_id: str | None,
        position_id: str,
        wanted: PositionTriggers,
        meta: RequestMeta | None = None,
    ) -> str:
        """Replace the position's take profit and stop loss (absent: removed). Each must lie beyond
        the current mark (a take profit in the profit direction, a stop loss in the loss one)."""
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            peek = await self._own_position(uow, account, position_id)
            c = await contract(uow, peek.market_id)
        mark = await self._mark(c.market.id)
        needs_mark = bool(wanted.take_profit) or wanted.stop_loss is not None or wanted.trailing
        if mark is None and needs_mark:
            raise PriceUnavailable(f"market {c.market.id} has no mark price yet", marketId=c.market.id)
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.derivatives.lock_account(account)
            position = await self._own_position(uow, account, position_id, for_update=True)
            if not position.is_open:
                raise PositionClosed(f"position {position_id} is closed", positionId=position_id)
            triggers = self._triggers(position, c, wanted, mark)
            await uow.derivatives.save_triggers(position.position_id, triggers)
            meta = meta or RequestMeta()
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.POSITION_TRIGGERS_CHANGED,
                    f"account:{account}",
                    meta.request_id,
                    meta.ip,
                    {
                        "positionId": position_id,
                        "takeProfit": [
                            [str(p), None if q is None else str(q)] for p, q in wanted.take_profit
                        ],
                        "stopLoss": None if wanted.stop_loss is None else str(wanted.stop_loss),
                        "isTrailing": wanted.trailing,
                        "at": now.isoformat(),
                    },
                )
            )
            await uow.commit()
        self._publish([Changes.of_position(account, position_id)])
        return position_id

    @staticmethod
    def _triggers(
        position: Position, c: Contract, wanted: PositionTriggers, mark: Decimal | None
    ) -> Triggers | None:
        if not wanted.take_profit and wanted.stop_loss is None and not wanted.trailing:
            return None
        assert mark is not None
        base = position.base(c.spec)
        triggers = Triggers()
        if wanted.take_profit:
            levels_ = []
            for price, lots in wanted.take_profit:
                v = trigger_values(
                    "tp",
                    position.side,
                    position.entry_price,
                    base,
                    c.spec,
                    TriggerType.PRICE,
                    price,
                    reference=mark,
                )
                levels_.append((v.price, position.lots if lots is None else lots))
            triggers.take_profit = take_profit_ladder(levels_, position.lots)
        if wanted.trailing:
            if wanted.trailing_rate is not None:
                rate = validate_trailing_rate(wanted.trailing_rate)
            elif wanted.stop_loss is not None:
                v = trigger_values(
                    "sl",
                    position.side,
                    position.entry_price,
                    base,
                    c.spec,
                    TriggerType.PRICE,
                    wanted.stop_loss,
                    reference=mark,
                )
                rate = trailing_rate_from_price(v.price, mark)
            else:
                raise InvalidInput("a trailing stop needs stopLoss.price or stopLoss.rate", field="stopLoss")
            triggers.stop_loss = new_trailing_stop(position.side, mark, rate, c.spec, wanted.stop_limit_price)
        elif wanted.stop_loss is not None:
            v = trigger_values(
                "sl",
                position.side,
                position.entry_price,
                base,
                c.spec,
                TriggerType.PRICE,
                wanted.stop_loss,
                reference=mark,
            )
            triggers.stop_loss = StopLoss(v.price, wanted.stop_limit_price)
        if triggers.stop_loss is not None and triggers.stop_loss.limit_price is not None:
            with localcontext(EXACT):
                if triggers.stop_loss.limit_price <= 0 or triggers.stop_loss.limit_price % c.spec.tick_size:
                    raise InvalidInput(
                        "stopLoss.limitPrice must be a positive multiple of the tick", field="stopLoss"
                    )
        return triggers

    async def trigger_data(
        self,
        principal: Principal,
        account_id: str | None,
        position_id: str,
        take_profit: TriggerSpec | None,
        stop_loss: TriggerSpec | None,
    ) -> tuple[TriggerValues | None, TriggerValues | None]:
        """The position's take profit and stop loss, sized as given, in all four forms (checked
        against the current mark when there is one, else the entry)."""
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            position = await self._own_position(uow, account, position_id)
            c = await contract(uow, position.market_id)
        if not position.is_open:
            raise PositionClosed(f"position {position_id} is closed", positionId=position_id)
        mark = await self._mark(c.market.id)
        base = position.base(c.spec)
        return (
            self._convert("tp", take_profit, position.side, position.entry_price, base, c, mark),
            self._convert("sl", stop_loss, position.side, position.entry_price, base, c, mark),
        )
