"""Derivative positions: their views, closes (the trader's and the platform's: triggers,
stop-out), the close calculation, executions and closed positions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

from bourse.domain.audit import AuditAction
from bourse.domain.errors import BusinessRejection, InvalidInput, NotFound
from bourse.domain.fees import CommissionRule
from bourse.domain.identity import Principal
from bourse.domain.margin import (
    Collateral,
    PositionMark,
    isolated_level,
    liquidation_price_cross,
    maintenance_margin,
    margin_state,
)
from bourse.domain.markets import Market
from bourse.domain.matching.spec import MarketStatus
from bourse.domain.orders import OrderStatus, OrderType, TimeInForce
from bourse.domain.positions import (
    EXACT,
    CloseReason,
    MarginType,
    Position,
    liquidation_price_isolated,
    round_to,
)
from bourse.domain.pricing import DealerQuote
from bourse.domain.values import AccountId, normalized
from bourse.service.context import RequestMeta
from bourse.service.derivatives_base import MAX_LIMIT, SYSTEM_ACTOR
from bourse.service.derivatives_book import close_in_book
from bourse.service.derivatives_context import (
    Contract,
    Levels,
    Rates,
    collateral,
    contract,
    contracts,
    levels,
    mark_of,
    order_min_fee,
    position_marks,
)
from bourse.service.derivatives_events import order_changes
from bourse.service.derivatives_fills import crosses
from bourse.service.derivatives_orders import DerivativesOrders
from bourse.service.derivatives_records import (
    ClosedPositionQuery,
    DerivativeOrder,
    DerivativeReject,
    ExecutionQuery,
    OrderSource,
    PositionClosed,
    PositionExecution,
)
from bourse.service.derivatives_views import ClosedPositionView, OrderView, PositionView
from bourse.service.ports import UnitOfWork

PERCENT_SCALE = 2
_SOURCE_OF = {
    CloseReason.TRADER: OrderSource.MANUAL,
    CloseReason.TAKE_PROFIT: OrderSource.TAKE_PROFIT,
    CloseReason.STOP_LOSS: OrderSource.STOP_LOSS,
    CloseReason.TRAILING_STOP: OrderSource.TRAILING_STOP,
    CloseReason.STOP_OUT: OrderSource.STOP_OUT,
}


class _NoLongerDue(Exception):
    """A stop-out close found, under the account's lock, that the level no longer asks for it."""


class DerivativesPositions(DerivativesOrders):
    # --- positions ---------------------------------------------------------------------------

    async def positions(
        self,
        principal: Principal,
        account_id: str | None,
        *,
        open_only: bool = True,
        last_position_id: str | None = None,
        limit: int = 100,
    ) -> list[PositionView]:
        account = await self.account(principal, account_id)
        _check_limit(limit)
        async with self._uow() as uow:
            rows = await uow.derivatives.positions(
                account, open_only=open_only, last_position_id=last_position_id, limit=limit
            )
        return await self._position_views(account, rows)

    async def position(self, principal: Principal, account_id: str | None, position_id: str) -> PositionView:
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            position = await self._own_position(uow, account, position_id)
        return (await self._position_views(account, [position]))[0]

    async def _own_position(
        self, uow: UnitOfWork, account: AccountId, position_id: str, *, for_update: bool = False
    ) -> Position:
        position = await uow.derivatives.get_position(position_id, for_update=for_update)
        if position is None or position.account_id != account:
            raise NotFound(f"position {position_id} not found", field="positionId")
        return position

    async def _position_views(self, account: AccountId, rows: Sequence[Position]) -> list[PositionView]:
        if not rows:
            return []
        async with self._uow() as uow:
            rates = Rates(uow, self._root)
            open_positions = await uow.derivatives.open_positions(account)
            specs = await contracts(uow, [p.market_id for p in [*rows, *open_positions]])
            marks = await self._fresh_marks(list(specs))
            held = await collateral(uow, account, rates)
            pm = await position_marks(open_positions, specs, marks, rates)
            lv = await levels(uow, account)
            triggers = await uow.derivatives.triggers([p.position_id for p in rows])
            state = margin_state(held, pm)
            # Without a fresh mark (or a RAT rate) a position's PnL and level are unknown, and so
            # is the account's cross level (and every Cross liquidation price) while one is.
            unpriced = set(await self._unpriced(open_positions, specs, marks, rates))
            cross_known = not any(
                p.position_id in unpriced for p in open_positions if p.margin_type is MarginType.CROSS
            )
            views = []
            for p in rows:
                c = specs[p.market_id]
                mark = None if p.position_id in unpriced else marks.get(p.market_id)
                rate = await rates.get(c.settlement_asset)
                known = p.is_open and (
                    mark is not None if p.margin_type is MarginType.ISOLATED else cross_known
                )
                views.append(
                    PositionView(
                        position=p,
                        market=c.market,
                        base_amount=p.base(c.spec),
                        mark=mark,
                        unrealized_pnl=None
                        if mark is None or not p.is_open
                        else p.unrealized_pnl(mark, c.spec),
                        rate_to_rat=rate,
                        liquidation_price=self._liquidation(p, c, lv, held, pm) if known else None,
                        margin_level=(
                            isolated_level(p, c.spec, mark_of(p, marks))
                            if p.margin_type is MarginType.ISOLATED
                            else state.level
                        )
                        if known
                        else None,
                        triggers=triggers.get(p.position_id),
                        maintenance_margin=maintenance_margin(p, c.spec, lv.stop_out) if p.is_open else None,
                    )
                )
        return views

    @staticmethod
    def _liquidation(
        p: Position, c: Contract, lv: Levels, held: list[Collateral], pm: list[PositionMark]
    ) -> Decimal | None:
        if not p.is_open:
            return None
        if p.margin_type is MarginType.ISOLATED:
            return liquidation_price_isolated(p, c.spec, lv.stop_out)
        return liquidation_price_cross(held, pm, p.market_id, lv.stop_out)

    # --- closing -----------------------------------------------------------------------------

    async def close(
        self,
        principal: Principal,
        account_id: str | None,
        position_id: str,
        lots: Decimal | None,
        meta: RequestMeta | None = None,
    ) -> OrderView:
        """Close ``lots`` (all when None) of the account's position at the dealer's price now."""
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            position = await self._own_position(uow, account, position_id)
            c = await contract(uow, position.market_id)
        if c.market.status is MarketStatus.HALTED:
            raise BusinessRejection(
                f"market {c.market.id} is halted", reason=DerivativeReject.MARKET_HALTED.value
            )
        if c.market.calendar is not None and not c.market.calendar.is_open(self._clock.now()):
            raise BusinessRejection(
                f"market {c.market.id} is outside its trading session",
                reason=DerivativeReject.SESSION_CLOSED.value,
            )
        view = await self._close(
            account, position_id, lots, CloseReason.TRADER, actor=principal.username, meta=meta
        )
        if view.order.status is not OrderStatus.FILLED and not (
            view.order.in_book and view.order.executed_lots > 0
        ):
            raise BusinessRejection(
                f"the close was refused: {view.order.reject_reason or view.order.cancel_reason}",
                reason=view.order.reject_reason,
                orderId=str(view.order.order_id),
            )
        return view

    async def close_position(
        self,
        account_id: AccountId,
        position_id: str,
        lots: Decimal | None,
        reason: CloseReason,
        now: datetime | None = None,
        *,
        limit_price: Decimal | None = None,
    ) -> OrderView:
        """For the jobs (triggers, stop-out): close ``lots`` (all when None) of a position at the
        dealer's price, or rest a reduce-only limit close at ``limit_price`` (a stop loss's limit).
        The order carries ``reason`` and its source. PositionClosed when nothing is left to close;
        PriceUnavailable when the market has no fresh price. Market status and session are not
        checked: the platform's own closes protect the account whatever the market does."""
        return await self._close(
            account_id, position_id, lots, reason, actor=SYSTEM_ACTOR, now=now, limit_price=limit_price
        )

    async def _close(
        self,
        account: AccountId,
        position_id: str,
        lots: Decimal | None,
        reason: CloseReason,
        *,
        actor: str,
        now: datetime | None = None,
        limit_price: Decimal | None = None,
        meta: RequestMeta | None = None,
        still_due: Callable[[UnitOfWork], Awaitable[bool]] | None = None,
    ) -> OrderView:
        """``still_due``: asked under the account's lock before a Dealer close; False: _NoLongerDue
        and nothing is written."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            peek = await uow.derivatives.get_position(position_id)
            if peek is None or peek.account_id != account:
                raise NotFound(f"position {position_id} not found", field="positionId")
            c = await contract(uow, peek.market_id)
            rules = await uow.commissions.rules_for_account(account)
            record = await uow.accounts.get(account)
        rule = self._rule(rules, c)
        assert record is not None
        if await self._order_book(c.market):
            async with self._uow() as uow:
                position = await self._own_position(uow, account, position_id)
            if not position.is_open:
                raise PositionClosed(f"position {position_id} is closed", positionId=position_id)
            amount = position.lots if lots is None else lots
            self._check_close_lots(c, position, amount)
            order = await close_in_book(self._book, position, c, amount, reason, limit_price)
            return await self._book_view(actor, order, c.market, meta)
        quote = await self._pricing.dealer_quote(c.market.id)  # PriceUnavailable: nothing to close at
        mark = await self._mark(c.market.id)
        async with self._uow() as uow:
            await uow.derivatives.lock_account(account)
            position = await self._own_position(uow, account, position_id, for_update=True)
            if not position.is_open:
                raise PositionClosed(f"position {position_id} is closed", positionId=position_id)
            if still_due is not None and not await still_due(uow):
                raise _NoLongerDue(position_id)
            amount = position.lots if lots is None else lots
            self._check_close_lots(c, position, amount)
            order = await self._close_in(
                uow,
                position,
                c,
                rule,
                record.account_type,
                quote,
                mark,
                amount,
                reason,
                limit_price,
                now,
                actor,
                meta,
            )
            view = await self._order_view(uow, order, c.market)
            changes = await order_changes(uow, order)
            await uow.commit()
        self._publish([changes])
        return view

    async def _close_in(
        self,
        uow: UnitOfWork,
        position: Position,
        c: Contract,
        rule: CommissionRule,
        account_type: str,
        quote: DealerQuote,
        mark: Decimal | None,
        lots: Decimal,
        reason: CloseReason,
        limit_price: Decimal | None,
        now: datetime,
        actor: str,
        meta: RequestMeta | None,
    ) -> DerivativeOrder:
        """A reduce-only close order of ``lots`` of the (locked, open) position, filled now at the
        dealer's price, or resting when it is a limit close the price has not reached; written and
        audited in the caller's unit of work."""
        order = DerivativeOrder(
            order_id=await uow.derivatives.new_order_id(),
            market_id=c.market.id,
            account_id=position.account_id,
            side=position.side.closing_side,
            type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            lots=lots,
            remaining_lots=lots,
            leverage=position.leverage,
            margin_type=position.margin_type,
            status=OrderStatus.STARTED,
            commission_asset=c.settlement_asset,
            created_at=now,
            updated_at=now,
            price=limit_price,
            position_id=position.position_id,
            reduce_only=True,
            source=_SOURCE_OF[reason],
            reason=reason,
            min_fee=await order_min_fee(rule, c, Rates(uow, self._root)),
        )
        await uow.derivatives.add_order(order)
        if limit_price is None or crosses(order, quote):
            # a reduce-only close: the close-only market rule `_fill` passes never applies to it
            order = await self._fill(uow, order, c, account_type, rule, quote, mark, now, actor, meta)
        else:
            order = order.but(status=OrderStatus.PLACED)
        await uow.derivatives.update_order(order)
        await self._audit(uow, actor, AuditAction.DERIVATIVE_ORDER_PLACED, order, meta)
        return order

    @staticmethod
    def _check_close_lots(c: Contract, position: Position, lots: Decimal) -> None:
        field = "closePositionLotAmount"
        if not lots.is_finite() or lots <= 0:
            raise InvalidInput(f"{field} must be positive", field=field)
        with localcontext(EXACT):
            if lots % c.spec.lot_step:
                raise InvalidInput(
                    f"{field} must be a multiple of the lot step {c.spec.lot_step}", field=field
                )
        if lots > position.lots:
            raise InvalidInput(f"{field} is more than the position's {position.lots} lots", field=field)

    async def close_calculation(
        self,
        principal: Principal,
        account_id: str | None,
        position_id: str,
        lots: Decimal | None,
        percent: Decimal | None,
    ) -> tuple[Decimal, Decimal]:
        """(lots, percent of the position) from either: a percent becomes lots rounded down to the
        lot step; lots become a percent with two decimals (half-even)."""
        if (lots is None) == (percent is None):
            raise InvalidInput(
                "give one of closePositionLotAmount and closePositionLotAmountInPercent",
                field="closePositionLotAmount",
            )
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            position = await self._own_position(uow, account, position_id)
            c = await contract(uow, position.market_id)
        if not position.is_open:
            raise PositionClosed(f"position {position_id} is closed", positionId=position_id)
        with localcontext(EXACT):
            if percent is not None:
                if not 0 < percent <= 100:
                    raise InvalidInput(
                        "closePositionLotAmountInPercent must be above 0 and at most 100",
                        field="closePositionLotAmountInPercent",
                    )
                steps = (position.lots * percent / 100 / c.spec.lot_step).to_integral_value(
                    rounding=ROUND_FLOOR
                )
                lots = steps * c.spec.lot_step
                if lots <= 0:
                    raise InvalidInput(
                        "closePositionLotAmountInPercent is less than one lot step",
                        field="closePositionLotAmountInPercent",
                    )
            assert lots is not None
            self._check_close_lots(c, position, lots)
            share = round_to(lots * 100 / position.lots, PERCENT_SCALE, ROUND_HALF_EVEN)
        return normalized(lots), normalized(share)

    # --- executions and closed positions -----------------------------------------------------

    async def position_executions(
        self,
        principal: Principal,
        account_id: str | None,
        *,
        position_ids: Sequence[str] | None = None,
        position_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[PositionExecution]:
        """The account's executions of the given positions (or one position: 404 if not its own),
        oldest first."""
        _check_limit(limit)
        if offset < 0:
            raise InvalidInput("offset must not be negative", field="offset")
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            ids: tuple[str, ...] | None = None
            if position_id is not None:
                ids = ((await self._own_position(uow, account, position_id)).position_id,)
            elif position_ids is not None:
                ids = tuple(position_ids)
            return await uow.derivatives.executions(
                account, ExecutionQuery(position_ids=ids, offset=offset, limit=limit)
            )

    async def closed_positions(
        self, principal: Principal, account_id: str | None, query: ClosedPositionQuery
    ) -> tuple[list[ClosedPositionView], bool]:
        """The account's closes, newest order first; whether more than ``query.limit`` exist."""
        _check_limit(query.limit)
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            rows = await uow.derivatives.closed_positions(
                account,
                ClosedPositionQuery(
                    query.created_from, query.created_to, query.last_order_id, query.limit + 1
                ),
            )
            markets: dict[str, Market | None] = {}
            for r in rows:
                if r.execution.market_id not in markets:
                    markets[r.execution.market_id] = await uow.markets.get(r.execution.market_id)
        return [ClosedPositionView(r, markets[r.execution.market_id]) for r in rows[: query.limit]], len(
            rows
        ) > query.limit


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
