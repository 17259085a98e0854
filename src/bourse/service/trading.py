"""Spot trading for the front office: preview, place, cancel, find orders and executions.

Every call names the account it acts on (the brokerage ``accountId`` header); an
account of anyone else is "not found", as is an order of another account. Placing
and cancelling go to the market's engine runner (``ports.OrderEngines``) and
return once the runner's batch has committed; reads go to the database.

Accounts never change owner, so a confirmed (user, account) pair is remembered:
the hot path (placing an order) then costs no ownership query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from enum import StrEnum
from typing import TypeVar

from bourse.domain.errors import BusinessRejection, InvalidInput, NotFound
from bourse.domain.fees import CommissionRule, commission, max_commission, min_fee_in_asset, select_rule
from bourse.domain.identity import Principal
from bourse.domain.markets import Market, MarketQuery, MarketType
from bourse.domain.order_requests import OrderRequest
from bourse.domain.order_views import Execution
from bourse.domain.orders import OrderType, RejectReason, Side, StopStatus, is_stop
from bourse.domain.trading import EXACT, Order, OrderQuery
from bourse.domain.values import AccountId, AssetId, parse_decimal
from bourse.service.accounts import AccountService
from bourse.service.derivatives_context import Rates
from bourse.service.derivatives_records import MarketTypeMismatch
from bourse.service.ports import MarginGuard, OrderEngines, UnitOfWork, UnitOfWorkFactory

MARKET_TTL_SECONDS = 1.0
MAX_EXECUTIONS = 1000


@dataclass(frozen=True, slots=True)
class OrderView:
    order: Order
    market: Market | None


@dataclass(frozen=True, slots=True)
class Preview:
    base_amount: Decimal
    quote_amount: Decimal
    commission: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class ExecutionView:
    execution: Execution
    commission_in_rat: Decimal | None


def parse_order_id(value: str, field: str = "orderId") -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise NotFound(f"order {value} not found", field=field)
    return int(value)


class TradingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        engines: OrderEngines,
        accounts: AccountService,
        root_asset: str,
        margin: MarginGuard | None = None,
    ) -> None:
        self._uow = uow
        self.engines = engines
        # A spot order's hold must leave the account's Cross derivative positions covered.
        self._margin = margin
        self._accounts = accounts
        self._root = AssetId(root_asset)
        self._owned: set[tuple[int, str]] = set()
        self._markets: dict[str, tuple[float, Market]] = {}

    # --- who and where -----------------------------------------------------------------------

    async def account(self, principal: Principal, account_id: str | None) -> AccountId:
        """The caller's own account named by the ``accountId`` header; 404 for anyone else's."""
        if not account_id:
            raise InvalidInput("the accountId header is required", field="accountId")
        key = (int(principal.uid), account_id)
        if key not in self._owned:
            await self._accounts.owned_account(principal, account_id)
            if len(self._owned) > 200_000:
                self._owned.clear()
            self._owned.add(key)
        return AccountId(account_id)

    async def market(self, market_id: str) -> Market | None:
        running = self.engines.market(market_id)
        if running is not None:
            return running
        cached = self._markets.get(market_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._uow() as uow:
            market = await uow.markets.get(market_id)
        if market is not None:
            self._markets[market_id] = (now + MARKET_TTL_SECONDS, market)
        return market

    async def _view(self, order: Order) -> OrderView:
        return OrderView(order, await self.market(order.market_id))

    async def _own_order(self, uow: UnitOfWork, account_id: AccountId, order_id: str) -> Order:
        order = await uow.trading.get_order(parse_order_id(order_id))
        if order is None or order.account_id != account_id:
            raise NotFound(f"order {order_id} not found", field="orderId")
        return order

    # --- commands ----------------------------------------------------------------------------

    async def place(self, principal: Principal, account_id: str | None, request: OrderRequest) -> OrderView:
        """The order once committed: Placed, Filled, ... or Rejected with its reason."""
        account = await self.account(principal, account_id)
        market = await self.market(request.market_id)
        if market is not None and market.type is not MarketType.SPOT:
            raise MarketTypeMismatch(f"market {market.id} is a {market.type.value} market", field="marketId")
        if market is not None:
            await self._check_margin(account, market, request)
        return await self._view(await self.engines.place(account, request))

    async def _check_margin(self, account: AccountId, market: Market, request: OrderRequest) -> None:
        """A pre-check (MarginRequired): the order's hold must not take money that backs the
        account's open Cross derivative positions. The hold is valued at the order's price (its
        stop price, a market buy at the last price; fees not counted); the engine does not check
        again when it places the hold, so an order racing a derivative fill can slip through."""
        if self._margin is None or not await self._margin.may_hold_positions(account):
            return
        if request.side is Side.SELL:
            asset, amount = market.base_asset, request.quantity
        else:
            price = request.price or request.stop_price or self.engines.last_price(market.id)
            if price is None:
                return
            with localcontext(EXACT):
                asset, amount = market.quote_asset, price * request.quantity
        async with self._uow() as uow:
            await self._margin.check_release(uow, account, asset, amount)

    async def cancel(
        self, principal: Principal, account_id: str | None, order_id: str, *, stop_only: bool = False
    ) -> OrderView:
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            order = await self._own_order(uow, account, order_id)
        if stop_only and not is_stop(order.type):
            raise NotFound(f"stop order {order_id} not found", field="stopOrderId")
        self._cancellable(order, stop_only)
        cancelled = await self.engines.cancel(order.market_id, account, order.order_id, stop_only=stop_only)
        if cancelled is None:  # it filled, expired or triggered in the meantime
            async with self._uow() as uow:
                order = await self._own_order(uow, account, order_id)
            self._cancellable(order, stop_only)
            raise BusinessRejection(f"order {order_id} can no longer be cancelled", orderId=order_id)
        return await self._view(cancelled)

    @staticmethod
    def _cancellable(order: Order, stop_only: bool) -> None:
        if stop_only and order.stop_status is not StopStatus.WAITING_FOR_ACTIVATION:
            state = order.stop_status.value if order.stop_status is not None else order.status.value
            raise BusinessRejection(
                f"stop order {order.order_id} is {state}; only a waiting stop order can be cancelled",
                orderId=str(order.order_id),
            )
        if not order.is_live:
            raise BusinessRejection(
                f"order {order.order_id} is {order.status.value}; only live orders can be cancelled",
                orderId=str(order.order_id),
            )

    # --- reads -------------------------------------------------------------------------------

    async def get(self, principal: Principal, account_id: str | None, order_id: str) -> OrderView:
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            order = await self._own_order(uow, account, order_id)
        return await self._view(order)

    async def list_orders(
        self, principal: Principal, account_id: str | None, query: OrderQuery
    ) -> list[OrderView]:
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            orders = await uow.trading.list_orders(account, query)
        return [await self._view(o) for o in orders]

    async def executions(
        self,
        principal: Principal,
        account_id: str | None,
        *,
        order_ids: list[str] | None = None,
        order_id: str | None = None,
        last_execution_id: str | None = None,
        limit: int = 100,
    ) -> tuple[list[ExecutionView], bool]:
        """The account's executions, oldest first, and whether more than ``limit`` exist."""
        if not 1 <= limit <= MAX_EXECUTIONS:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXECUTIONS}", field="limit")
        after = None
        if last_execution_id is not None:
            if not last_execution_id.isdigit():
                raise InvalidInput("lastExecutionId must be an execution id", field="lastExecutionId")
            after = int(last_execution_id)
        account = await self.account(principal, account_id)
        async with self._uow() as uow:
            ids: list[int] | None = None
            if order_id is not None:
                ids = [(await self._own_order(uow, account, order_id)).order_id]
            elif order_ids is not None:
                ids = []
                for value in order_ids:
                    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
                        raise InvalidInput("orderIds must be order ids", field="orderIds")
                    ids.append(int(value))
            rows = await uow.trading.executions(account, ids, after, limit + 1)
            rates: dict[AssetId, Decimal | None] = {}
            views = []
            for e in rows[:limit]:
                if e.commission_asset not in rates:
                    rates[e.commission_asset] = await self._rate_to_root(uow, e.commission_asset)
                rate = rates[e.commission_asset]
                views.append(ExecutionView(e, None if rate is None else e.commission * rate))
        return views, len(rows) > limit

    async def _rate_to_root(self, uow: UnitOfWork, asset: AssetId) -> Decimal | None:
        """The price of ``asset`` in the root asset from the latest trade of a direct market."""
        if asset == self._root:
            return Decimal(1)
        for base, quote, invert in ((asset, self._root, False), (self._root, asset, True)):
            markets = await uow.markets.list(MarketQuery(base_asset_ids=(base,), quote_asset_ids=(quote,)))
            for market in markets:
                last = await uow.trading.last_trade(market.id)
                if last is not None and last[1] > 0:
                    return (1 / last[1]) if invert else last[1]
        return None

    # --- preview -----------------------------------------------------------------------------

    async def preview(
        self,
        principal: Principal,
        account_id: str | None,
        *,
        market_id: str,
        order_type: str,
        side: str,
        price: str | None,
        base_amount: str | None,
        quote_amount: str | None,
    ) -> Preview:
        """What an order would cost: at the requested price, or the last price for a market order.
        A market order pays the taker fee; a limit order is shown with the larger of maker and taker;
        either at least the rule's minimum fee (``minFeeRAT`` in the quote asset at the current
        prices, as the order would fix it), a sell's at most its quote amount."""
        account = await self.account(principal, account_id)
        kind = _member(OrderType, order_type, "orderType")
        direction = _member(Side, side, "side")
        if (base_amount is None) == (quote_amount is None):
            raise InvalidInput(
                "give exactly one of requestedBaseAmount and requestedQuoteAmount",
                field="requestedBaseAmount",
            )
        async with self._uow() as uow:
            market = await uow.markets.get(market_id)
            if market is None:
                raise NotFound(f"market {market_id} not found", field="marketId")
            if kind is OrderType.MARKET or kind is OrderType.STOP:
                last = self.engines.last_price(market_id)
                if last is None:
                    trade = await uow.trading.last_trade(market_id)
                    last = None if trade is None else trade[1]
                if last is None:
                    raise BusinessRejection(
                        "the market has no last price yet", reason=RejectReason.NO_REFERENCE_PRICE.value
                    )
                unit = last
            else:
                if price is None:
                    raise InvalidInput("requestedPrice is required for limit orders", field="requestedPrice")
                unit = _positive(price, "requestedPrice")
            rules = await uow.commissions.rules_for_account(account)
            quote_asset = await uow.assets.get(market.quote_asset)
            if rules is None:
                raise NotFound(f"account {account} not found", field="accountId")
            scale = quote_asset.scale if quote_asset is not None else 18
            # The minimum fee as an order placed now would fix it (the engine's conversion).
            minimum = select_rule(rules, market).min_fee_rat
            min_fee = (
                None
                if minimum is None
                else min_fee_in_asset(minimum, await Rates(uow, self._root).get(market.quote_asset), scale)
            )
        with localcontext(EXACT):
            return self._priced(
                market, rules, kind, direction, unit, base_amount, quote_amount, scale, min_fee
            )

    @staticmethod
    def _priced(
        market: Market,
        rules: list[CommissionRule],
        kind: OrderType,
        direction: Side,
        unit: Decimal,
        base_amount: str | None,
        quote_amount: str | None,
        scale: int,
        min_fee: Decimal | None = None,
    ) -> Preview:
        if base_amount is not None:
            base = _positive(base_amount, "requestedBaseAmount")
        else:
            wanted = _positive(quote_amount, "requestedQuoteAmount")
            base = (wanted / unit / market.lot_step).to_integral_value(rounding=ROUND_DOWN) * market.lot_step
        quote = base * unit
        rule = select_rule(rules, market)
        fee = (
            commission(rule, quote, is_maker=False, quote_scale=scale)
            if kind is OrderType.MARKET or kind is OrderType.STOP
            else max_commission(rule, quote, scale)
        )
        if min_fee is not None and fee < min_fee:
            fee = min_fee  # each fill pays at least the rule's minimum
        if direction is Side.SELL and fee > quote:
            fee = quote  # a seller's fee never exceeds what the fill brings (domain.trading)
        total = quote + fee if direction is Side.BUY else quote - fee
        return Preview(base, quote, fee, total)


E = TypeVar("E", bound=StrEnum)


def _member(kind: type[E], value: str, field: str) -> E:
    for member in kind:
        if value == member.value:
            return member
    raise InvalidInput(f"{field} must be one of {', '.join(m.value for m in kind)}", field=field)


def _positive(value: object, field: str) -> Decimal:
    number = parse_decimal(value, field)
    if number <= 0:
        raise InvalidInput(f"{field} must be positive", field=field)
    return number
