"""CFD and perpetual trading for the front office (brokerage spec v4), and the entry points the
derivatives jobs call.

Every trader call names the account it acts on (the ``accountId`` header, else the caller's
default account where the spec has no header); an account, order or position of anyone else
is "not found". Orders on a Dealer market fill against the house at the price source's bid/ask
widened by the markup (PricingService); a Market order fills in the same transaction that
stores it, a Limit order rests until the dealer's price reaches it, a stop order waits for the
mark to reach its activation price. Nothing is held for a resting order: its margin and fee are
checked again when it fills.

One use case is one unit of work: the account's derivative lock, the positions (FOR UPDATE),
the ledger accounts (locked in id order), the ledger transaction, the rows and the audit entry
commit together. The maths is ``bourse.domain.positions``/``margin``/``triggers``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from time import monotonic
from typing import TypeVar

import structlog

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import (
    BourseError,
    BusinessRejection,
    Conflict,
    IdempotencyConflict,
    InvalidInput,
    InvariantViolation,
    MarginRequired,
    NotFound,
)
from bourse.domain.fees import CommissionRule, select_rule
from bourse.domain.funding import (
    FUNDING_KIND,
    SWAP_KIND,
    funding_payment,
    funding_times,
    settle_payment,
    swap_payment,
)
from bourse.domain.identity import Principal
from bourse.domain.ledger import Bucket, account_owner
from bourse.domain.margin import (
    Collateral,
    PositionMark,
    isolated_level,
    liquidation_price_cross,
    maintenance_margin,
    margin_call_due,
    margin_state,
    stop_out_due,
    stop_out_order,
)
from bourse.domain.markets import Market, MarketType
from bourse.domain.matching.spec import MarketStatus
from bourse.domain.notifications import TraderNotificationType, trader_notification
from bourse.domain.orders import OrderStatus, OrderType, Side, StopStatus, TimeInForce, is_stop
from bourse.domain.positions import (
    EXACT,
    ZERO,
    AccountKind,
    CloseReason,
    MarginType,
    Position,
    PositionSide,
    apply_fill,
    check_lots,
    derivative_fee,
    liquidation_price_isolated,
    notional,
    resolve_leverage,
    round_to,
)
from bourse.domain.pricing import DealerQuote, ExecutionMode, FundingRate, PriceUnavailable, is_stale
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
from bourse.domain.values import AccountId, AssetId, UserId, format_decimal
from bourse.service.accounts import AccountService
from bourse.service.context import RequestMeta
from bourse.service.derivatives_book import book_price, close_in_book, closed_something, place_in_book
from bourse.service.derivatives_context import (
    DERIVATIVE_TYPES,
    Contract,
    Levels,
    Rates,
    collateral,
    contract,
    contract_of,
    contracts,
    levels,
    mark_of,
    order_min_fee,
    position_marks,
    selected_assets,
)
from bourse.service.derivatives_events import Changes, order_changes, publish
from bourse.service.derivatives_fills import FillPrice, crosses, execute, record_deficit, reject
from bourse.service.derivatives_records import (
    ClosedPositionQuery,
    ClosedPositionRow,
    Deficit,
    DeficitKind,
    DerivativeOrder,
    DerivativeOrderRequest,
    DerivativeReject,
    ExecutionQuery,
    FeeAssetMismatch,
    FundingPayment,
    MarginAssetUnavailable,
    MarketTypeMismatch,
    OrderListQuery,
    OrderSource,
    PositionClosed,
    PositionExecution,
    SwapPayment,
)
from bourse.service.ledger import post
from bourse.service.notifications import NotificationService
from bourse.service.ports import Clock, DerivativeBook, EventBus, UnitOfWork, UnitOfWorkFactory
from bourse.service.pricing import PricingService

_T = TypeVar("_T")
log = structlog.get_logger("bourse.derivatives")
MAX_LIMIT = 1000
# A stop-out closes one position at a time; a bound keeps one check finite whatever happens.
MAX_STOP_OUT_CLOSES = 100
# How old the spot margin pre-check's list of accounts with positions may be (may_hold_positions).
MAY_HOLD_TTL_SECONDS = 1.0
SYSTEM_ACTOR = "system:derivatives"
# The payment jobs' cursors (``derivative_job_cursors.job``) and how much one pass pays per market.
FUNDING_JOB = "Funding"
SWAP_JOB = "Swap"
PAYMENT_BATCH = 100
PERCENT_SCALE = 2
_SOURCE_OF = {
    CloseReason.TRADER: OrderSource.MANUAL,
    CloseReason.TAKE_PROFIT: OrderSource.TAKE_PROFIT,
    CloseReason.STOP_LOSS: OrderSource.STOP_LOSS,
    CloseReason.TRAILING_STOP: OrderSource.TRAILING_STOP,
    CloseReason.STOP_OUT: OrderSource.STOP_OUT,
}


# --- what the use cases answer -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderView:
    order: DerivativeOrder
    market: Market | None
    realized_pnl_in_rat: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderPreview:
    required_margin_in_rat: Decimal | None
    quote_amount: Decimal
    commission_in_rat: Decimal | None
    margin_level: Decimal | None
    take_profit: TriggerValues | None
    stop_loss: TriggerValues | None


@dataclass(frozen=True, slots=True)
class PositionView:
    position: Position
    market: Market
    base_amount: Decimal
    mark: Decimal | None
    unrealized_pnl: Decimal | None
    rate_to_rat: Decimal | None
    liquidation_price: Decimal | None
    margin_level: Decimal | None  # Isolated: the position's own; Cross: the account's
    triggers: Triggers | None
    maintenance_margin: Decimal | None = None  # margin * the group's stopOutLevel (open positions)


@dataclass(frozen=True, slots=True)
class ClosedPositionView:
    row: ClosedPositionRow
    market: Market | None


@dataclass(frozen=True, slots=True)
class MarginAssetView:
    asset_id: AssetId
    asset_name: str
    available: Decimal
    total: Decimal
    margin_ratio: Decimal
    is_selected: bool


@dataclass(frozen=True, slots=True)
class MarginCheck:
    """What one margin check did: the stop-out closes, whether a margin call was sent."""

    closed: list[OrderView]
    margin_call_sent: bool


class _NoLongerDue(Exception):
    """A stop-out close found, under the account's lock, that the level no longer asks for it."""


@dataclass(frozen=True, slots=True)
class _MarginSnapshot:
    uid: UserId
    level: Decimal | None
    isolated: dict[str, Decimal | None]
    losses: list[tuple[Position, Decimal]]
    levels: Levels
    # open positions without a fresh mark or a RAT rate: the account cannot be evaluated now
    unpriced: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """A take profit or stop loss sized one of four ways (order-data, trigger-data)."""

    type: TriggerType
    size: Decimal
    trailing: bool = False


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    market_id: str
    side: Side
    type: OrderType
    lots: Decimal
    price: Decimal | None = None
    leverage: int | None = None
    margin_type: MarginType = MarginType.CROSS
    take_profit: TriggerSpec | None = None
    stop_loss: TriggerSpec | None = None


@dataclass(frozen=True, slots=True)
class PositionTriggers:
    """What ``PUT /positions/{id}/triggers`` sets: ``take_profit`` levels ``(price, lots)``
    (lots None: the whole position), a stop loss (price; limit price; trailing with a rate)."""

    take_profit: tuple[tuple[Decimal, Decimal | None], ...] = ()
    stop_loss: Decimal | None = None
    stop_limit_price: Decimal | None = None
    trailing: bool = False
    trailing_rate: Decimal | None = None


def parse_id(value: str, what: str, field: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise NotFound(f"{what} {value} not found", field=field)
    return int(value)


# --- the service -------------------------------------------------------------------------------


class DerivativesService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        accounts: AccountService,
        pricing: PricingService,
        root_asset: str,
        notifications: NotificationService | None = None,
        bus: EventBus | None = None,
        *,
        book: DerivativeBook | None = None,
    ) -> None:
        self._uow = uow
        # OrderBook markets: their engine runners (orders, cancels and closes go there).
        self._book = book
        self._notifications = notifications
        self._bus = bus
        self._clock = clock
        self._accounts = accounts
        self._pricing = pricing
        self._root = AssetId(root_asset)
        # ``may_hold_positions``: accounts with open positions as last read (at most a second ago,
        # one read shared by concurrent callers), and when each account last placed an order here.
        self._may_hold: set[AccountId] = set()
        self._may_hold_read: float | None = None
        # How long the set of accounts holding positions is trusted (tests lengthen it).
        self.may_hold_ttl = MAY_HOLD_TTL_SECONDS
        self._may_hold_reading: asyncio.Future[None] | None = None
        self._placed_at: dict[AccountId, float] = {}
        self._unpriced_logged: dict[AccountId, list[str]] = {}

    def _publish(self, changes: Sequence[Changes]) -> None:
        """Tell the bus what a committed use case changed (derivative-orders, positions, balances)."""
        publish(self._bus, self._clock.now(), changes)

    # --- who ---------------------------------------------------------------------------------

    async def account(self, principal: Principal, account_id: str | None) -> AccountId:
        """The caller's own account named by the ``accountId`` header; 404 for anyone else's."""
        if not account_id:
            raise InvalidInput("the accountId header is required", field="accountId")
        return (await self._accounts.owned_account(principal, account_id)).account_id

    async def account_or_default(self, principal: Principal, account_id: str | None) -> AccountId:
        """The header's account, else the caller's default account (routes the spec gives no header)."""
        if account_id:
            return await self.account(principal, account_id)
        async with self._uow() as uow:
            record = await uow.accounts.default_for_user(principal.uid)
        if record is None:
            raise NotFound("the caller has no default account", field="accountId")
        return record.account_id

    # --- reading around an order -------------------------------------------------------------

    async def _order_book(self, market: Market) -> bool:
        settings = await self._pricing.settings(market.id)
        return settings is not None and settings.execution_mode is ExecutionMode.ORDER_BOOK

    @staticmethod
    def _product(market: Market, product: MarketType | None) -> None:
        if market.type not in DERIVATIVE_TYPES or (product is not None and market.type is not product):
            expected = product.value if product is not None else "Cfd or Perpetual"
            raise MarketTypeMismatch(
                f"market {market.id} is a {market.type.value} market, not {expected}", field="marketId"
            )

    @staticmethod
    def _rule(rules: list[CommissionRule] | None, c: Contract) -> CommissionRule:
        if rules is None:
            raise NotFound("account not found", field="accountId")
        rule = select_rule(rules, c.market)
        if rule.cfd is not None and rule.cfd.asset_id is not None and rule.cfd.asset_id != c.settlement_asset:
            raise FeeAssetMismatch(
                f"the commission rule {rule.id} charges derivative fees in {rule.cfd.asset_id}, but"
                f" {c.market.id} settles in {c.settlement_asset}",
                ruleId=rule.id,
            )
        return rule

    async def _quote(self, market_id: str) -> DealerQuote | None:
        try:
            return await self._pricing.dealer_quote(market_id)
        except PriceUnavailable:
            return None

    async def _mark(self, market_id: str) -> Decimal | None:
        mark = await self._pricing.mark(market_id)
        return None if mark is None else mark.mark

    async def _marks(self, market_ids: Sequence[str]) -> dict[str, Decimal]:
        if not market_ids:
            return {}
        return {m: v.mark for m, v in (await self._pricing.marks(sorted(set(market_ids)))).items()}

    async def _fresh_marks(self, market_ids: Sequence[str]) -> dict[str, Decimal]:
        """The marks no older than their market's ``stale_after_seconds`` (a market without price
        source settings has none): what a margin level may be computed from."""
        if not market_ids:
            return {}
        now = self._clock.now()
        fresh = {}
        for m, v in (await self._pricing.marks(sorted(set(market_ids)))).items():
            settings = await self._pricing.settings(m)
            if settings is not None and not is_stale(v.at, now, settings.stale_after_seconds):
                fresh[m] = v.mark
        return fresh

    @staticmethod
    async def _unpriced(
        positions: Sequence[Position], specs: dict[str, Contract], marks: dict[str, Decimal], rates: Rates
    ) -> list[str]:
        """The open positions whose level cannot be computed now: no fresh mark of their market, or
        no RAT rate of their settlement asset (counting them at their entry, or leaving them out,
        would give a wrong level)."""
        out = []
        for p in positions:
            c = specs.get(p.market_id)
            if p.is_open and (
                c is None or p.market_id not in marks or await rates.get(c.settlement_asset) is None
            ):
                out.append(p.position_id)
        return out

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
                    "lots": format(order.lots.normalize(), "f"),
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

    # --- what the jobs call ------------------------------------------------------------------

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

    async def pay_funding(self, rate: FundingRate) -> int:
        """For the funding job: pay one stored funding rate of a Perpetual market to each position
        that was open at ``rate.applied_at``, on the lots it had then (a position closed since
        still pays; one opened after does not): ``base * mark * rate`` at the moment's mark
        (``funding_payment``; a positive rate: longs pay, shorts receive), each its own ledger
        transaction against ``sys:house`` with business key
        ``funding:<market>:<applied_at>:<position>`` and a ``funding_payments`` row, so a re-run
        pays nothing twice. A charge beyond the account's available is paid in part and the rest
        is a deficit (PositionDeficit). How many positions were paid."""
        async with self._uow() as uow:
            c = await contract(uow, rate.market_id)
            positions = await uow.derivatives.positions_at(rate.market_id, rate.applied_at)
        paid = 0
        for p in positions:
            key = f"funding:{rate.market_id}:{rate.applied_at.isoformat()}:{p.position_id}"

            def row(tx_id: int | None, amount: Decimal, deficit: Decimal, p: Position = p) -> FundingPayment:
                return FundingPayment(
                    rate.market_id,
                    rate.applied_at,
                    p.position_id,
                    p.account_id,
                    rate.rate,
                    rate.mark,
                    c.settlement_asset,
                    amount,
                    deficit,
                    tx_id,
                    self._clock.now(),
                )

            amount = funding_payment(p, c.spec, rate.mark, rate.rate)
            if await self._pay(p, c, c.settlement_asset, amount, key, FUNDING_KIND, DeficitKind.FUNDING, row):
                paid += 1
        return paid

    async def pay_swaps(self, day: date, market_id: str | None = None) -> int:
        """For the swap job: each Cfd market's (or only ``market_id``'s) daily swap for ``day`` to
        the positions open at ``day`` 00:00 UTC, on the lots they had then (a position closed since
        still pays), at the mark of that moment (``PricingService.mark_at``; the position's entry
        before the market's first mark), in the leg's asset; the size is what the trader receives.
        One ledger transaction each with business key ``swap:<position>:<day>`` and a
        ``swap_payments`` row, so a re-run pays nothing twice. How many were paid."""
        midnight = datetime.combine(day, time(0), tzinfo=UTC)
        async with self._uow() as uow:
            markets = [
                m
                for m in await uow.markets.list()
                if m.type is MarketType.CFD and m.swap_settings and market_id in (None, m.id)
            ]
            specs = {m.id: await contract_of(uow, m) for m in markets}
            positions = {m.id: await uow.derivatives.positions_at(m.id, midnight) for m in markets}
            scales = {a.id: a.scale for a in await uow.assets.list()}
        paid = 0
        for market in markets:
            c, swap = specs[market.id], market.swap_settings
            assert swap is not None
            if not positions[market.id]:
                continue
            at_midnight = await self._pricing.mark_at(market.id, midnight)
            for p in positions[market.id]:
                leg = swap.long if p.side is PositionSide.LONG else swap.short
                asset_scale = scales.get(leg.asset_id) if leg is not None else None
                mark = at_midnight.mark if at_midnight is not None else p.entry_price
                due = swap_payment(p, c.spec, swap, mark, asset_scale)
                if due is None:
                    continue
                asset, amount = due
                key = f"swap:{p.position_id}:{day.isoformat()}"

                def row(
                    tx_id: int | None,
                    amount: Decimal,
                    deficit: Decimal,
                    p: Position = p,
                    asset: AssetId = asset,
                ) -> SwapPayment:
                    return SwapPayment(
                        p.market_id,
                        day,
                        p.position_id,
                        p.account_id,
                        asset,
                        amount,
                        deficit,
                        tx_id,
                        self._clock.now(),
                    )

                if await self._pay(p, c, asset, amount, key, SWAP_KIND, DeficitKind.SWAP, row):
                    paid += 1
        return paid

    async def _pay(
        self,
        position: Position,
        c: Contract,
        asset: AssetId,
        amount: Decimal,
        key: str,
        kind: str,
        deficit_kind: DeficitKind,
        row: Callable[[int | None, Decimal, Decimal], FundingPayment | SwapPayment],
    ) -> bool:
        """One payment to (> 0) or from (< 0) the position's account, in one transaction; False when
        it was paid before (its row exists). The position may have closed since its moment: what
        was due then is due still."""
        account = position.account_id
        owner = account_owner(account)
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.derivatives.lock_account(account)
            # What available does not cover comes out of the paying position's own margin (in its
            # settlement asset, while it is open): the trader pays with money it holds before
            # the house absorbs anything. The row is locked before the ledger, as a fill does.
            current = await uow.derivatives.get_position(position.position_id, for_update=True)
            payer = (
                current if current is not None and current.is_open and asset == c.settlement_asset else None
            )
            available, _ = await uow.derivatives.lock_funds(owner, asset)
            tx, from_margin, deficit = settle_payment(
                owner,
                asset,
                amount,
                available,
                key,
                margin=payer.margin if payer is not None else ZERO,
                kind=kind,
                details={"marketId": c.market.id, "positionId": position.position_id},
            )
            tx_id = None
            if tx is not None:
                try:
                    tx_id = await post(uow, tx, actor=SYSTEM_ACTOR, subject=f"account:{account}")
                except Conflict:
                    return False  # its business key was posted before: paid already
            record = row(tx_id, amount, deficit)
            added = (
                await uow.derivatives.add_funding_payment(record)
                if isinstance(record, FundingPayment)
                else await uow.derivatives.add_swap_payment(record)
            )
            if not added:
                return False
            if payer is not None and from_margin > 0:
                # The margin bucket went down by ``from_margin`` in ``tx``: so does the position's
                # margin (the bucket is the sum of the open positions' margin). An existing
                # position's opening order is kept: the order id given is not written.
                await uow.derivatives.save_positions(
                    [replace(payer, margin=payer.margin - from_margin, updated_at=now)], 0
                )
            if deficit > 0:
                await record_deficit(
                    uow,
                    Deficit(
                        business_key=f"deficit:{key}",
                        account_id=account,
                        market_id=c.market.id,
                        asset=asset,
                        amount=deficit,
                        kind=deficit_kind,
                        created_at=now,
                        position_id=position.position_id,
                    ),
                    actor=SYSTEM_ACTOR,
                    meta=None,
                    root=self._root,
                )
            await uow.commit()
        self._publish([Changes.of_balances(account, [asset])])
        return True

    async def run_funding(self, now: datetime | None = None) -> int:
        """One pass of the funding job: for every Perpetual market, pay each stored funding rate
        after the market's cursor (oldest first, up to ``now``) with ``pay_funding``, then move
        the cursor past it, so each funding moment is paid once and a late or restarted job
        catches up. How many positions were paid. A market whose payment fails keeps its cursor
        (retried next pass)."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            markets = [m.id for m in await uow.markets.list() if m.type is MarketType.PERPETUAL]
        paid = 0
        for market_id in markets:
            async with self._uow() as uow:
                cursor = await uow.derivatives.job_cursor(FUNDING_JOB, market_id)
            for rate in await self._pricing.funding_rates_after(market_id, cursor, PAYMENT_BATCH):
                if rate.applied_at > now:
                    break
                got = await self._guarded(self.pay_funding(rate))
                if got is None:
                    break
                paid += got
                await self._advance(FUNDING_JOB, market_id, rate.applied_at)
        return paid

    async def run_swaps(self, now: datetime | None = None) -> int:
        """One pass of the swap job: for every Cfd market with swap settings, pay each day whose
        00:00 UTC is after the market's cursor and not after ``now`` (``pay_swaps``), then move the
        cursor to it: each day is paid once, missed days are caught up (a market never paid
        starts at the first 00:00 after its first position opened). How many were paid."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            markets = [m.id for m in await uow.markets.list() if m.type is MarketType.CFD and m.swap_settings]
        paid = 0
        for market_id in markets:
            async with self._uow() as uow:
                cursor = await uow.derivatives.job_cursor(SWAP_JOB, market_id)
                first = await uow.derivatives.first_opened_at(market_id) if cursor is None else None
            if cursor is not None:
                since = cursor
            elif first is not None:
                since = first - timedelta(microseconds=1)  # a position opened at 00:00 pays that day
            else:
                continue  # no position ever: nothing was due
            for midnight in funding_times(time(0), 24, since, now)[:PAYMENT_BATCH]:
                got = await self._guarded(self.pay_swaps(midnight.date(), market_id))
                if got is None:
                    break
                paid += got
                await self._advance(SWAP_JOB, market_id, midnight)
        return paid

    async def _advance(self, job: str, market_id: str, through: datetime) -> None:
        async with self._uow() as uow:
            await uow.derivatives.set_job_cursor(job, market_id, through, self._clock.now())
            await uow.commit()

    async def run_dealer_orders(self) -> int:
        """One pass of the dealer job: ``process_order`` for every live derivative order (oldest
        first); how many changed. An order whose processing fails is left for the next pass."""
        async with self._uow() as uow:
            live = await uow.derivatives.live_orders()
        changed = 0
        for order in live:
            if await self._guarded(self.process_order(order.order_id)) is not None:
                changed += 1
        return changed

    async def run_triggers(self) -> int:
        """One pass of the trigger job: ``apply_triggers`` for every open position of every market;
        how many closes were placed."""
        async with self._uow() as uow:
            markets = [m.id for m in await uow.markets.list() if m.type in DERIVATIVE_TYPES]
            ids = [p.position_id for m in markets for p in await uow.derivatives.market_positions(m)]
        placed = 0
        for position_id in ids:
            placed += len(await self._guarded(self.apply_triggers(position_id)) or [])
        return placed

    async def run_margin(self) -> int:
        """One pass of the margin job: ``check_margin`` for every account with an open position; how
        many positions were stopped out."""
        async with self._uow() as uow:
            accounts = await uow.derivatives.accounts_with_positions()
        closed = 0
        for account in accounts:
            check = await self._guarded(self.check_margin(account))
            closed += 0 if check is None else len(check.closed)
        return closed

    @staticmethod
    async def _guarded(step: Awaitable[_T]) -> _T | None:
        """One item of a job pass: a refusal (no price, a closed position, ...) skips that item."""
        try:
            return await step
        except InvariantViolation:
            raise  # a bug: the job must say so, not skip it
        except BourseError:
            return None

    async def process_order(self, order_id: int, now: datetime | None = None) -> OrderView | None:
        """For the dealer job: expire a Gtd order past its cancellation date; activate a waiting stop
        whose activation price the mark reached (buy: mark >= activation, sell: mark <= it; a Stop
        then fills at the dealer's price, a StopLimit rests as a limit); fill a resting limit the
        dealer's price reaches (at that price, never worse than the limit). Margin and fee are
        checked when it fills (refused: Cancelled with the reason). Nothing happens on a halted
        market or outside its session. The order when it changed, else None."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            peek = await uow.derivatives.get_order(order_id)
            if peek is None or not peek.is_live:
                return None
            c = await contract(uow, peek.market_id)
            rules = await uow.commissions.rules_for_account(peek.account_id)
            record = await uow.accounts.get(peek.account_id)
        rule = self._rule(rules, c)
        assert record is not None
        quote = await self._quote(c.market.id)
        mark = await self._mark(c.market.id)
        async with self._uow() as uow:
            await uow.derivatives.lock_account(peek.account_id)
            order = await uow.derivatives.get_order(order_id, for_update=True)
            if order is None or not order.is_live:
                return None
            changed = await self._progress(uow, order, c, rule, record.account_type, quote, mark, now)
            if changed is None:
                return None
            await uow.derivatives.update_order(changed)
            await self._audit(uow, SYSTEM_ACTOR, AuditAction.DERIVATIVE_ORDER_PLACED, changed, None)
            view = await self._order_view(uow, changed, c.market)
            changes = await order_changes(uow, changed)
            await uow.commit()
        self._publish([changes])
        return view

    async def _progress(
        self,
        uow: UnitOfWork,
        order: DerivativeOrder,
        c: Contract,
        rule: CommissionRule,
        account_type: str,
        quote: DealerQuote | None,
        mark: Decimal | None,
        now: datetime,
    ) -> DerivativeOrder | None:
        waiting = order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
        if order.cancellation_date is not None and order.cancellation_date <= now:
            return order.but(
                status=OrderStatus.EXPIRED,
                stop_status=StopStatus.CANCELLED if waiting else order.stop_status,
                updated_at=now,
            )
        if order.reduce_only and order.position_id is not None:
            # A resting close (a stop loss's limit close) of a position closed another way meanwhile
            # (the trader, a take profit, a stop-out) has nothing left to close.
            position = await uow.derivatives.get_position(order.position_id)
            if position is None or not position.is_open:
                return reject(order, DerivativeReject.POSITION_CLOSED, now)
        market = c.market
        if market.status is MarketStatus.HALTED or (
            market.calendar is not None and not market.calendar.is_open(now)
        ):
            return None
        current = order
        if waiting:
            assert order.activation_price is not None
            if mark is None:
                return None
            reached = (
                mark >= order.activation_price if order.side is Side.BUY else mark <= order.activation_price
            )
            if not reached:
                return None
            current = order.but(
                stop_status=StopStatus.ACTIVATED,
                status=OrderStatus.PLACED if order.type is OrderType.STOP_LIMIT else order.status,
                updated_at=now,
            )
        at_market = current.type in (OrderType.MARKET, OrderType.STOP)
        if at_market and quote is None:
            return reject(current, DerivativeReject.PRICE_UNAVAILABLE, now)
        if quote is not None and (at_market or crosses(current, quote)):
            return await self._fill(uow, current, c, account_type, rule, quote, mark, now, SYSTEM_ACTOR, None)
        return None if current is order else current

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
        return lots.normalize(), share.normalize()

    # --- triggers ----------------------------------------------------------------------------

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

    # --- margin ------------------------------------------------------------------------------

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
                    {"ratio": format(ratio.normalize(), "f")},
                )
            )
            await uow.commit()

    async def margin_ratios(self) -> dict[AssetId, Decimal]:
        async with self._uow() as uow:
            return await uow.derivatives.margin_ratios()


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")


def _adjusted(c: Collateral, delta: Decimal) -> Collateral:
    """The collateral after a fill's realized PnL and fee (never below zero)."""
    return replace(c, amount=max(ZERO, c.amount + delta))
