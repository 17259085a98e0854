"""Derivative orders: the preview, placing (a Dealer fill in the order's own transaction, resting
and stop orders; an OrderBook market's orders go to its runner), cancels and reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from time import monotonic

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import BusinessRejection, IdempotencyConflict, InvalidInput, NotFound
from bourse.domain.fees import CommissionRule
from bourse.domain.identity import Principal
from bourse.domain.margin import margin_state
from bourse.domain.markets import Market, MarketType
from bourse.domain.matching.spec import MarketStatus
from bourse.domain.orders import OrderStatus, OrderType, StopStatus, TimeInForce, is_stop
from bourse.domain.positions import (
    EXACT,
    ZERO,
    AccountKind,
    PositionSide,
    apply_fill,
    check_lots,
    derivative_fee,
    notional,
    resolve_leverage,
)
from bourse.domain.pricing import DealerQuote
from bourse.domain.triggers import TriggerValues, trigger_values, validate_trailing_rate
from bourse.domain.values import AccountId, normalized
from bourse.service.context import RequestMeta
from bourse.service.derivatives_base import MAX_LIMIT, DerivativesBase, _adjusted
from bourse.service.derivatives_book import book_price, place_in_book
from bourse.service.derivatives_context import (
    Contract,
    Rates,
    collateral,
    contract,
    contracts,
    order_min_fee,
    position_marks,
)
from bourse.service.derivatives_events import Changes, order_changes
from bourse.service.derivatives_fills import FillPrice, crosses, execute, reject
from bourse.service.derivatives_records import (
    DerivativeOrder,
    DerivativeOrderRequest,
    DerivativeReject,
    ExecutionQuery,
    OrderListQuery,
    PositionExecution,
)
from bourse.service.derivatives_views import OrderPreview, OrderView, PreviewRequest, TriggerSpec
from bourse.service.ports import UnitOfWork


def parse_id(value: str, what: str, field: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise NotFound(f"{what} {value} not found", field=field)
    return int(value)


class DerivativesOrders(DerivativesBase):
    # --- order preview -----------------------------------------------------------------------

    async def preview(
        self, principal: Principal, account_id: str | None, product: MarketType, request: PreviewRequest
    ) -> OrderPreview:
        """What the order would need (margin and fee in RAT, its quote amount), the account's margin
        level after it, and its take profit and stop loss in all four forms."""
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            c = await contract(uow, request.market_id)
            self._product(c.market, product)
            rules = await uow.commissions.rules_for_account(account)
            record = await uow.accounts.get(account)
        rule = self._rule(rules, c)
        assert record is not None
        check_lots(c.spec, request.lots)
        leverage = resolve_leverage(c.spec, request.leverage)
        if request.price is not None:
            price = request.price
        elif await self._order_book(c.market):
            async with self._uow() as uow:
                price = await book_price(uow, c.market.id, request.side)  # PriceUnavailable: 400
        else:
            quote = await self._pricing.dealer_quote(c.market.id)  # PriceUnavailable: 400
            price = FillPrice.of(quote, request.side).price
        side = PositionSide.of(request.side)
        base = c.spec.base(request.lots)
        take_profit = self._convert("tp", request.take_profit, side, price, base, c)
        stop_loss = self._convert("sl", request.stop_loss, side, price, base, c)
        async with self._uow() as uow:
            rates = Rates(uow, self._root)
            rate = await rates.get(c.settlement_asset)
            # At least the rule's minimum, as an order placed now would fix it.
            fee = derivative_fee(
                rule,
                notional(price, request.lots, c.spec),
                request.lots,
                c.spec.settlement_scale,
                await order_min_fee(rule, c, rates),
            )
            positions = await uow.derivatives.open_positions(account)
            specs = await contracts(uow, [p.market_id for p in positions] + [c.market.id])
            held = await collateral(uow, account, rates)
        marks = await self._fresh_marks(list(specs))
        # The order's own market is priced by the price it would trade at now (the dealer quote is
        # fresh by definition; a book market may have no mark before its first trade).
        marks.setdefault(c.market.id, price)
        # The order applied to a copy of the account's positions with nothing to pay from: what it
        # would hold and realize, and where the level would stand after it.
        result = apply_fill(
            kind=AccountKind(record.account_type),
            spec=c.spec,
            positions=[p for p in positions if p.market_id == c.market.id],
            side=request.side,
            lots=request.lots,
            price=price,
            leverage=leverage,
            margin_type=request.margin_type,
            fee=fee,
            available=Decimal(10) ** 19,
            new_position_id="preview",
            now=self._clock.now(),
            business_key="preview",
            asset=c.settlement_asset,
            account_id=account,
        )
        after = {p.position_id: p for p in positions}
        for p in [*result.changed, *([result.opened] if result.opened else [])]:
            after[p.position_id] = p
        collateral_after = [
            _adjusted(h, result.realized_pnl - result.fee) if h.asset_id == c.settlement_asset else h
            for h in held
        ]
        async with self._uow() as uow:
            rates = Rates(uow, self._root)
            pm = await position_marks(list(after.values()), specs, marks, rates)
            # a position without a fresh mark or RAT rate: the level after the order is unknown
            unpriced = await self._unpriced(list(after.values()), specs, marks, rates)
        state = margin_state(collateral_after, pm)
        with localcontext(EXACT):
            return OrderPreview(
                required_margin_in_rat=None if rate is None else result.margin_held * rate,
                quote_amount=price * base,
                commission_in_rat=None if rate is None else fee * rate,
                margin_level=None if unpriced else state.level,
                take_profit=take_profit,
                stop_loss=stop_loss,
            )

    @staticmethod
    def _convert(
        kind: str,
        spec_: TriggerSpec | None,
        side: PositionSide,
        entry: Decimal,
        base: Decimal,
        c: Contract,
        reference: Decimal | None = None,
    ) -> TriggerValues | None:
        if spec_ is None:
            return None
        return trigger_values(
            "tp" if kind == "tp" else "sl",
            side,
            entry,
            base,
            c.spec,
            spec_.type,
            spec_.size,
            reference=reference,
        )

    # --- placing -----------------------------------------------------------------------------

    async def place(
        self,
        principal: Principal,
        account_id: str | None,
        product: MarketType,
        request: DerivativeOrderRequest,
        meta: RequestMeta | None = None,
    ) -> OrderView:
        """The order as stored: Filled (a Market order, or a Limit the dealer's price reaches now),
        Placed (a resting Limit), Started/WaitingForActivation (a stop order), or Rejected with
        its reason. A repeated ``clientOrderId`` with the same body answers the first order."""
        account = await self.account(principal, account_id)
        self._placed_at[account] = monotonic()  # the spot margin pre-check looks at it now
        now = self._clock.now()
        async with self._uow() as uow:
            c = await contract(uow, request.market_id)
            self._product(c.market, product)
            rules = await uow.commissions.rules_for_account(account)
            record = await uow.accounts.get(account)
        in_book = await self._order_book(c.market)
        rule = self._rule(rules, c)
        assert record is not None
        if in_book:
            return await self._place_book(principal, account, request, c, record.account_type, now, meta)
        quote = (
            await self._quote(c.market.id) if request.type in (OrderType.MARKET, OrderType.LIMIT) else None
        )
        mark = await self._mark(c.market.id)
        fingerprint = request.fingerprint() if request.client_order_id is not None else None
        async with self._uow() as uow:
            await uow.derivatives.lock_account(account)
            if request.client_order_id is not None:
                existing = await uow.derivatives.order_by_client_id(account, request.client_order_id)
                if existing is not None:
                    return await self._replay(uow, existing, fingerprint, c.market)
            order_id = await uow.derivatives.new_order_id()
            order, reason = self._new_order(order_id, account, request, c, now, fingerprint)
            # The minimum fee is fixed with the order, in the settlement asset at today's rate.
            order = order.but(min_fee=await order_min_fee(rule, c, Rates(uow, self._root)))
            if not await uow.derivatives.add_order(order):  # cannot happen under the account lock
                raise IdempotencyConflict(
                    "clientOrderId was used by a concurrent order", field="clientOrderId"
                )
            if reason is not None:
                order = reject(order, reason, now)
            elif is_stop(order.type):
                order = order.but(stop_status=StopStatus.WAITING_FOR_ACTIVATION)
            elif order.type is OrderType.MARKET and quote is None:
                order = reject(order, DerivativeReject.PRICE_UNAVAILABLE, now)
            elif order.type is OrderType.MARKET or (quote is not None and crosses(order, quote)):
                assert quote is not None
                order = await self._fill(
                    uow, order, c, record.account_type, rule, quote, mark, now, principal.username, meta
                )
            elif order.time_in_force is TimeInForce.IOC:
                order = order.but(status=OrderStatus.CANCELLED, updated_at=now)
            elif order.time_in_force is TimeInForce.FOK:
                order = reject(order, DerivativeReject.FOK_NOT_FILLABLE, now)
            else:
                order = await self._rest(uow, order, c, record.account_type, now)
            await uow.derivatives.update_order(order)
            await self._audit(uow, principal.username, AuditAction.DERIVATIVE_ORDER_PLACED, order, meta)
            view = await self._order_view(uow, order, c.market)
            changes = await order_changes(uow, order)
            await uow.commit()
        self._publish([changes])
        return view

    async def _place_book(
        self,
        principal: Principal,
        account: AccountId,
        request: DerivativeOrderRequest,
        c: Contract,
        account_type: str,
        now: datetime,
        meta: RequestMeta | None,
    ) -> OrderView:
        """An order on an OrderBook market: matched by the market's runner, which stores it."""
        async with self._uow() as uow:
            positions = await uow.derivatives.open_positions(account, c.market.id)
        broken = self._rule_broken(request, c, now)
        order = await place_in_book(
            self._book, account, request, c, AccountKind(account_type), positions, broken
        )
        return await self._book_view(principal.username, order, c.market, meta)

    async def _book_view(
        self,
        actor: str,
        order: DerivativeOrder,
        market: Market,
        meta: RequestMeta | None,
        cancelled: bool = False,
    ) -> OrderView:
        """Audit what the runner committed (its own transaction holds the money moved) and show it."""
        action = AuditAction.DERIVATIVE_ORDER_CANCELLED if cancelled else AuditAction.DERIVATIVE_ORDER_PLACED
        async with self._uow() as uow:
            await self._audit(uow, actor, action, order, meta)
            view = await self._order_view(uow, order, market)
            await uow.commit()
        return view

    async def _rest(
        self, uow: UnitOfWork, order: DerivativeOrder, c: Contract, account_type: str, now: datetime
    ) -> DerivativeOrder:
        """A limit order that does not fill now rests (on a close-only market only if it reduces)."""
        if c.market.status is MarketStatus.CLOSE_ONLY:
            positions = await uow.derivatives.open_positions(order.account_id, c.market.id)
            kind = AccountKind(account_type)
            mine = [p for p in positions if p.is_open]
            if not (
                kind is AccountKind.NETTING
                and mine
                and mine[0].side.closing_side is order.side
                and order.lots <= mine[0].lots
            ):
                return reject(order, DerivativeReject.MARKET_CLOSE_ONLY, now)
        return order.but(status=OrderStatus.PLACED, updated_at=now)

    async def _fill(
        self,
        uow: UnitOfWork,
        order: DerivativeOrder,
        c: Contract,
        account_type: str,
        rule: CommissionRule,
        quote: DealerQuote,
        mark: Decimal | None,
        now: datetime,
        actor: str,
        meta: RequestMeta | None,
    ) -> DerivativeOrder:
        return await execute(
            uow,
            order=order,
            c=c,
            kind=AccountKind(account_type),
            rule=rule,
            fill=FillPrice.of(quote, order.side),
            rates=Rates(uow, self._root),
            now=now,
            mark=mark,
            actor=actor,
            meta=meta,
            close_only_market=c.market.status is MarketStatus.CLOSE_ONLY,
        )

    def _new_order(
        self,
        order_id: int,
        account: AccountId,
        request: DerivativeOrderRequest,
        c: Contract,
        now: datetime,
        fingerprint: bytes | None,
    ) -> tuple[DerivativeOrder, DerivativeReject | None]:
        """The order as asked (status Started) and the first rule it breaks, if any."""
        reason: DerivativeReject | None = None
        try:
            leverage = resolve_leverage(c.spec, request.leverage)
        except InvalidInput:
            leverage, reason = max(1, request.leverage or 1), DerivativeReject.INVALID_LEVERAGE
        order = DerivativeOrder(
            order_id=order_id,
            market_id=c.market.id,
            account_id=account,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            lots=request.lots,
            remaining_lots=request.lots,
            leverage=leverage,
            margin_type=request.margin_type,
            status=OrderStatus.STARTED,
            commission_asset=c.settlement_asset,
            created_at=now,
            updated_at=now,
            price=request.price,
            activation_price=request.activation_price,
            triggers=request.triggers,
            cancellation_date=request.cancellation_date,
            client_order_id=request.client_order_id,
            fingerprint=fingerprint,
        )
        return order, self._rule_broken(request, c, now) or reason

    @staticmethod
    def _rule_broken(request: DerivativeOrderRequest, c: Contract, now: datetime) -> DerivativeReject | None:
        market, spec = c.market, c.spec
        if market.status is MarketStatus.HALTED:
            return DerivativeReject.MARKET_HALTED
        if market.calendar is not None and not market.calendar.is_open(now):
            return DerivativeReject.SESSION_CLOSED
        if spec.min_lots is not None and request.lots < spec.min_lots:
            return DerivativeReject.AMOUNT_BELOW_MINIMUM
        if spec.max_lots is not None and request.lots > spec.max_lots:
            return DerivativeReject.AMOUNT_ABOVE_MAXIMUM
        try:
            check_lots(spec, request.lots)
        except InvalidInput:
            return DerivativeReject.INVALID_QUANTITY
        with localcontext(EXACT):
            if request.price is not None and request.price % spec.tick_size:
                return DerivativeReject.INVALID_PRICE
            if request.activation_price is not None and request.activation_price % spec.tick_size:
                return DerivativeReject.INVALID_STOP_PRICE
            t = request.triggers
            for value in (t.take_profit, t.stop_loss, t.stop_limit_price):
                if value is not None and value % spec.tick_size:
                    return DerivativeReject.INVALID_TRIGGER
        if t.trailing_rate is not None:
            try:
                validate_trailing_rate(t.trailing_rate)
            except InvalidInput:
                return DerivativeReject.INVALID_TRIGGER
        if request.time_in_force is TimeInForce.GTD:
            if request.cancellation_date is None or request.cancellation_date <= now:
                return DerivativeReject.INVALID_EXPIRY
        elif request.cancellation_date is not None:
            return DerivativeReject.INVALID_EXPIRY
        return None

    async def _replay(
        self, uow: UnitOfWork, existing: DerivativeOrder, fingerprint: bytes | None, market: Market
    ) -> OrderView:
        if existing.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "clientOrderId was used for another order",
                field="clientOrderId",
                orderId=str(existing.order_id),
            )
        return await self._order_view(uow, existing, market)

    async def _audit(
        self,
        uow: UnitOfWork,
        actor: str,
        action: AuditAction,
        order: DerivativeOrder,
        meta: RequestMeta | None,
    ) -> None:
        meta = meta or RequestMeta()
        await uow.audit.append(
            AuditEntry(
                actor,
                action,
                f"account:{order.account_id}",
                meta.request_id,
                meta.ip,
                {
                    "orderId": str(order.order_id),
                    "marketId": order.market_id,
                    "side": order.side.value,
                    "orderType": order.type.value,
                    "lots": format(normalized(order.lots), "f"),
                    "status": order.status.value,
                    "reason": order.reason.value,
                    "positionId": order.position_id,
                    "rejectDetails": order.reject_reason,
                },
            )
        )

    # --- orders: cancel and read -------------------------------------------------------------

    async def cancel(
        self,
        principal: Principal,
        account_id: str | None,
        order_id: str,
        *,
        stop_only: bool = False,
        meta: RequestMeta | None = None,
    ) -> OrderView | None:
        """Cancel a live derivative order of the account; None when ``order_id`` names no
        derivative order (a spot order, or nothing: the spot path answers)."""
        account = await self.account(principal, account_id)
        oid = parse_id(order_id, "order", "stopOrderId" if stop_only else "orderId")
        now = self._clock.now()
        async with self._uow() as uow:
            peek = await uow.derivatives.get_order(oid)
        if peek is not None and peek.in_book:
            return await self._cancel_book(principal, account, peek, stop_only, meta)
        async with self._uow() as uow:
            await uow.derivatives.lock_account(account)
            order = await uow.derivatives.get_order(oid, for_update=True)
            if order is None:
                return None
            if order.account_id != account:
                raise NotFound(f"order {order_id} not found", field="orderId")
            if stop_only and order.stop_status is not StopStatus.WAITING_FOR_ACTIVATION:
                if not is_stop(order.type):
                    raise NotFound(f"stop order {order_id} not found", field="stopOrderId")
                state = order.stop_status.value if order.stop_status is not None else order.status.value
                raise BusinessRejection(
                    f"stop order {order_id} is {state}; only a waiting stop order can be cancelled",
                    orderId=order_id,
                )
            if not order.is_live:
                raise BusinessRejection(
                    f"order {order_id} is {order.status.value}; only live orders can be cancelled",
                    orderId=order_id,
                )
            order = order.but(
                status=OrderStatus.CANCELLED,
                stop_status=StopStatus.CANCELLED
                if order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
                else order.stop_status,
                updated_at=now,
            )
            await uow.derivatives.update_order(order)
            await self._audit(uow, principal.username, AuditAction.DERIVATIVE_ORDER_CANCELLED, order, meta)
            market = await uow.markets.get(order.market_id)
            view = await self._order_view(uow, order, market)
            await uow.commit()
        self._publish([Changes(account, order_ids=[order.order_id])])
        return view

    async def _cancel_book(
        self,
        principal: Principal,
        account: AccountId,
        order: DerivativeOrder,
        stop_only: bool,
        meta: RequestMeta | None,
    ) -> OrderView:
        """Cancel an order resting in an OrderBook market's book: through its runner."""
        if order.account_id != account:
            raise NotFound(f"order {order.order_id} not found", field="orderId")
        if stop_only and order.stop_status is not StopStatus.WAITING_FOR_ACTIVATION:
            raise NotFound(f"stop order {order.order_id} not found", field="stopOrderId")
        book = self._book
        cancelled = None
        if order.is_live and book is not None:
            cancelled = await book.cancel_derivative(order.market_id, account, order.order_id)
        if cancelled is None:
            async with self._uow() as uow:
                now = await uow.derivatives.get_order(order.order_id)
            state = (now or order).status.value
            raise BusinessRejection(
                f"order {order.order_id} is {state}; only live orders can be cancelled",
                orderId=str(order.order_id),
            )
        async with self._uow() as uow:
            market = await uow.markets.get(order.market_id)
        assert market is not None
        return await self._book_view(principal.username, cancelled, market, meta, cancelled=True)

    async def get_order(
        self, principal: Principal, account_id: str | None, order_id: str
    ) -> OrderView | None:
        """The account's derivative order; None when ``order_id`` names no derivative order of it."""
        account = await self.account(principal, account_id)
        if not order_id.isdigit() or len(order_id) > 18:
            return None
        async with self._uow() as uow:
            order = await uow.derivatives.get_order(int(order_id))
            if order is None or order.account_id != account:
                return None
            return await self._order_view(uow, order, await uow.markets.get(order.market_id))

    async def list_orders(
        self, principal: Principal, account_id: str | None, query: OrderListQuery
    ) -> list[OrderView]:
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            orders = await uow.derivatives.list_orders(account, query)
            markets: dict[str, Market | None] = {}
            views = []
            for o in orders:
                if o.market_id not in markets:
                    markets[o.market_id] = await uow.markets.get(o.market_id)
                views.append(await self._order_view(uow, o, markets[o.market_id]))
        return views

    async def _order_view(self, uow: UnitOfWork, order: DerivativeOrder, market: Market | None) -> OrderView:
        pnl_rat: Decimal | None = ZERO
        if order.executed_lots > 0:
            rows = await uow.derivatives.executions(
                order.account_id, ExecutionQuery(order_ids=(order.order_id,), limit=MAX_LIMIT)
            )
            with localcontext(EXACT):
                for e in rows:
                    if e.rate_to_rat is None:
                        pnl_rat = None
                        break
                    pnl_rat = (pnl_rat or ZERO) + e.realized_pnl * e.rate_to_rat
        return OrderView(order, market, pnl_rat)

    async def order_executions(
        self,
        principal: Principal,
        account_id: str | None,
        *,
        order_ids: Sequence[int] | None,
        after_id: int | None,
        limit: int,
    ) -> list[PositionExecution]:
        """The account's derivative executions (of ``order_ids`` if given), oldest first after
        ``after_id``, at most ``limit`` (the caller merges them with the spot executions)."""
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            return await uow.derivatives.executions(
                account,
                ExecutionQuery(
                    order_ids=None if order_ids is None else tuple(order_ids), after_id=after_id, limit=limit
                ),
            )

    async def owns_order(self, principal: Principal, account_id: str | None, order_id: str) -> bool:
        return await self.get_order(principal, account_id, order_id) is not None
