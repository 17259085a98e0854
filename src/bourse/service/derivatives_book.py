"""Derivative orders on OrderBook markets: what the derivatives service sends to the market's
engine runner (``ports.DerivativeBook``) instead of filling against the house.

The runner is the only writer of such a market's orders and positions (ADR 0007, ADR 0008
"Order-book execution"): a new order, a cancel, and every close (the trader's, a trigger's, a
stop-out's) is a command to it, answered once its batch committed. Here: the checks that need
no book (lots, tick, expiry, leverage: a broken rule travels with the command so the runner
stores the order Rejected), the close orders' shape, and the trigger pass that fires closes.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bourse.domain.errors import InvalidInput
from bourse.domain.markets import Market
from bourse.domain.orders import OrderType, TimeInForce
from bourse.domain.positions import AccountKind, CloseReason, Position, resolve_leverage
from bourse.domain.values import AccountId
from bourse.service.derivatives_context import Contract
from bourse.service.derivatives_records import (
    BookOrderRequest,
    DerivativeOrder,
    DerivativeOrderRequest,
    DerivativeReject,
    ExecutionModeUnsupported,
    OrderSource,
)
from bourse.service.ports import DerivativeBook

SOURCE_OF = {
    CloseReason.TRADER: OrderSource.MANUAL,
    CloseReason.TAKE_PROFIT: OrderSource.TAKE_PROFIT,
    CloseReason.STOP_LOSS: OrderSource.STOP_LOSS,
    CloseReason.TRAILING_STOP: OrderSource.TRAILING_STOP,
    CloseReason.STOP_OUT: OrderSource.STOP_OUT,
}


def need_book(book: DerivativeBook | None, market: Market) -> DerivativeBook:
    if book is None:
        raise ExecutionModeUnsupported(
            f"market {market.id} executes on the order book, and no engine runs here", marketId=market.id
        )
    return book


async def place_in_book(
    book: DerivativeBook | None,
    account: AccountId,
    request: DerivativeOrderRequest,
    c: Contract,
    kind: AccountKind,
    positions: list[Position],
    broken: DerivativeReject | None,
) -> DerivativeOrder:
    """Send a new order to the market's runner; the order as committed (possibly Rejected).
    A netting order without a leverage trades at its open position's."""
    runner = need_book(book, c.market)
    if request.type in (OrderType.STOP, OrderType.STOP_LIMIT):
        raise ExecutionModeUnsupported(
            f"stop orders on the order-book market {c.market.id} are not supported yet", marketId=c.market.id
        )
    leverage = request.leverage
    mine = [p for p in positions if p.is_open and p.market_id == c.market.id]
    if leverage is None and kind is AccountKind.NETTING and mine:
        leverage = mine[0].leverage
    try:
        leverage = resolve_leverage(c.spec, leverage)
    except InvalidInput:
        leverage, broken = max(1, leverage or 1), broken or DerivativeReject.INVALID_LEVERAGE
    return await runner.place_derivative(
        BookOrderRequest(account, replace(request, leverage=leverage), reject=broken)
    )


async def close_in_book(
    book: DerivativeBook | None,
    position: Position,
    c: Contract,
    lots: Decimal,
    reason: CloseReason,
    limit_price: Decimal | None,
) -> DerivativeOrder:
    """A reduce-only close of ``lots`` of the position through the runner: a Market order (the
    unfilled rest is cancelled), or a resting Limit close at ``limit_price`` (a stop loss's limit).
    The platform's closes (every reason but Trader) first cancel the account's other waiting
    orders that could close the position, so they always fit."""
    runner = need_book(book, c.market)
    request = DerivativeOrderRequest(
        market_id=c.market.id,
        side=position.side.closing_side,
        type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        lots=lots,
        price=limit_price,
        time_in_force=TimeInForce.IOC if limit_price is None else TimeInForce.GTC,
        leverage=position.leverage,
        margin_type=position.margin_type,
    )
    return await runner.place_derivative(
        BookOrderRequest(
            position.account_id,
            request,
            close_position_id=position.position_id,
            reason=reason,
            source=SOURCE_OF[reason],
            preempt=reason is not CloseReason.TRADER,
        )
    )


def closed_something(order: DerivativeOrder) -> bool:
    """A book close did its work: it filled (some), or it rests as a limit close."""
    return order.executed_lots > 0 or order.is_live
