"""A real exchange through ccxt's private API (``ccxt.async_support``): the ``Ccxt`` venue.

One ccxt exchange object per venue, made with the venue's API keys (decrypted by the service
just before, never stored in the clear) and kept while the venue's settings are unchanged.
Calls: ``create_order`` (a market order with our external order id as ``clientOrderId``),
``fetch_order`` (by the exchange's id, else by ``clientOrderId`` where the exchange supports it),
``cancel_order``. ccxt's errors are translated here, so the service sees only the venue error
kinds of ``domain.venues``:

- ``RequestTimeout`` -> VenueTimeout (the exchange may or may not have the order);
- ``InvalidOrder`` (incl. ``OrderNotFound``), ``InsufficientFunds``, ``BadSymbol``,
  ``BadRequest`` -> VenueRejected (asking again cannot help);
- every other error (network, rate limit, authentication, maintenance, unexpected) -> VenueUnavailable.

ccxt is float-based: amounts go out as floats (hedge amounts are at most a market's amount scale,
well within a float's 15 significant digits) and come back through ``str``, so 0.1 reads as
Decimal("0.1").

ccxt's ``decimal_to_precision`` (behind ``amount_to_precision`` and so behind ``create_order``)
sets the CURRENT decimal context's rounding to ROUND_HALF_UP and traps Underflow, in place. The
context object is shared by every task that inherited it, so one hedge would change how every
later ``quantize`` in the process rounds. Every ccxt call here therefore runs in a context of
its own (``ccxt_context``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any

import ccxt.async_support as ccxt_async

from bourse.domain.values import AssetId
from bourse.domain.venues import (
    VenueCredentials,
    VenueError,
    VenueOrder,
    VenueOrderRef,
    VenueOrderRequest,
    VenueOrderState,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)

DEFAULT_TIMEOUT_SECONDS = 10.0
_MAX_ERROR = 300

ExchangeFactory = Callable[[str, dict[str, Any]], Any]


def ccxt_exchange(exchange_id: str, config: dict[str, Any]) -> Any:
    return getattr(ccxt_async, exchange_id)(config)


def ccxt_context() -> AbstractContextManager[Context]:
    """A copy of the decimal context for one ccxt call: what ccxt changes in it stays there."""
    return localcontext()


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def translate(error: Exception, what: str) -> VenueError:
    """ccxt's (and its HTTP layer's) exception as one of ours; the caller raises it ``from`` the original."""
    text = f"{what}: {type(error).__name__}: {str(error)[:_MAX_ERROR]}"
    if isinstance(error, ccxt_async.RequestTimeout):
        return VenueTimeout(text)
    rejected = (
        ccxt_async.InvalidOrder,
        ccxt_async.InsufficientFunds,
        ccxt_async.BadSymbol,
        ccxt_async.BadRequest,
    )
    if isinstance(error, rejected):
        return VenueRejected(text)
    return VenueUnavailable(text)


_STATES = {
    "open": VenueOrderState.OPEN,
    "closed": VenueOrderState.FILLED,
    "canceled": VenueOrderState.CANCELLED,
    "cancelled": VenueOrderState.CANCELLED,
    "expired": VenueOrderState.CANCELLED,
    "rejected": VenueOrderState.REJECTED,
}


def parse_order(raw: Any, fallback: VenueOrderState = VenueOrderState.OPEN) -> VenueOrder:
    """ccxt's unified order structure as a ``VenueOrder``. An order with no status (some exchanges
    answer a create or cancel with the id only) is ``fallback``."""
    if not isinstance(raw, dict) or raw.get("id") in (None, ""):
        raise VenueUnavailable(f"the exchange's answer is not an order: {str(raw)[:_MAX_ERROR]}")
    amount = _decimal(raw.get("amount")) or Decimal(0)
    filled = _decimal(raw.get("filled")) or Decimal(0)
    state = _STATES.get(str(raw.get("status")).lower(), fallback) if raw.get("status") else fallback
    if state is VenueOrderState.OPEN and filled > 0:
        state = VenueOrderState.PARTIALLY_FILLED
    if state is VenueOrderState.FILLED and amount and filled < amount:
        # Closed with a remainder: the exchange ended it (an IOC/market order's unfilled rest).
        state = VenueOrderState.CANCELLED
    commission, asset = Decimal(0), None
    fees = raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])
    for fee in fees:
        if isinstance(fee, dict) and _decimal(fee.get("cost")) is not None:
            commission += _decimal(fee.get("cost")) or Decimal(0)
            asset = asset or (AssetId(fee["currency"]) if fee.get("currency") else None)
    client_id = raw.get("clientOrderId")
    return VenueOrder(
        lp_order_id=str(raw["id"]),
        client_order_id=None if client_id is None else str(client_id),
        state=state,
        amount=amount,
        filled=filled,
        average_price=_decimal(raw.get("average")),
        commission=commission,
        commission_asset=asset,
        reason=None
        if state not in (VenueOrderState.REJECTED, VenueOrderState.CANCELLED)
        else raw.get("status"),
    )


class CcxtVenue:
    """The ``Venue`` port over one ccxt exchange object (``client``, made by ``factory``)."""

    def __init__(
        self,
        exchange_id: str,
        credentials: VenueCredentials,
        *,
        sandbox: bool = False,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        factory: ExchangeFactory = ccxt_exchange,
    ) -> None:
        config: dict[str, Any] = {
            "apiKey": credentials.api_key,
            "secret": credentials.secret,
            "timeout": max(1, int(timeout_seconds * 1000)),
            "enableRateLimit": True,
        }
        if credentials.password:
            config["password"] = credentials.password
        self.exchange_id = exchange_id
        with ccxt_context():
            self.client = factory(exchange_id, config)
        if sandbox:
            try:
                with ccxt_context():
                    self.client.set_sandbox_mode(True)
            except Exception as e:  # ccxt: NotSupported when the exchange has no test environment
                raise VenueUnavailable(f"{exchange_id} has no sandbox: {e}") from e

    async def place(self, request: VenueOrderRequest) -> VenueOrder:
        what = f"{self.exchange_id} create_order {request.symbol} {request.client_order_id}"
        try:
            with ccxt_context():
                raw = await self.client.create_order(
                    request.symbol,
                    "market",
                    request.side.value.lower(),
                    float(request.amount),
                    None,
                    {"clientOrderId": request.client_order_id},
                )
        except Exception as e:
            raise translate(e, what) from e
        return parse_order(raw)

    async def get(self, ref: VenueOrderRef) -> VenueOrder:
        what = f"{self.exchange_id} fetch_order {ref.symbol} {ref.lp_order_id or ref.client_order_id}"
        try:
            with ccxt_context():
                if ref.lp_order_id is not None:
                    raw = await self.client.fetch_order(ref.lp_order_id, ref.symbol)
                else:
                    raw = await self.client.fetch_order(
                        "", ref.symbol, {"clientOrderId": ref.client_order_id}
                    )
        except Exception as e:
            raise translate(e, what) from e
        return parse_order(raw)

    async def cancel(self, ref: VenueOrderRef) -> VenueOrder:
        what = f"{self.exchange_id} cancel_order {ref.symbol} {ref.lp_order_id or ref.client_order_id}"
        try:
            with ccxt_context():
                if ref.lp_order_id is not None:
                    raw = await self.client.cancel_order(ref.lp_order_id, ref.symbol)
                else:
                    raw = await self.client.cancel_order(
                        "", ref.symbol, {"clientOrderId": ref.client_order_id}
                    )
        except Exception as e:
            raise translate(e, what) from e
        return parse_order(raw, fallback=VenueOrderState.CANCELLED)

    async def aclose(self) -> None:
        with ccxt_context():
            await self.client.close()
