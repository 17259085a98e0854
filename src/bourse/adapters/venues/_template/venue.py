"""<Name> venue: the ``Venue`` port over <library or API>. A template: copy it, then replace each
``_call_*`` body with the venue's call and each ``_ERRORS`` entry with its error classes.

What the copy must keep: the three methods' contracts (``service.ports.Venue``), our client order
id sent with every order, amounts through ``Decimal(str(...))``, and only ``VenueError`` kinds
escaping (translated with ``raise ... from e``). README.md says where to register it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

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

ClientFactory = Callable[[VenueCredentials, float], Any]

# The venue's own words for an order's state.
_STATES: dict[str, VenueOrderState] = {
    "new": VenueOrderState.OPEN,
    "partially_filled": VenueOrderState.PARTIALLY_FILLED,
    "filled": VenueOrderState.FILLED,
    "rejected": VenueOrderState.REJECTED,
    "cancelled": VenueOrderState.CANCELLED,
}

# The library's exception classes, most specific first, and the kind each becomes. A copy lists
# the real ones (e.g. ``(lib.Timeout, VenueTimeout)``); an error matching none is VenueUnavailable.
_ERRORS: tuple[tuple[type[Exception], type[VenueError]], ...] = (
    (TimeoutError, VenueTimeout),
    (ValueError, VenueRejected),
)


def translate(error: Exception, what: str) -> VenueError:
    for library_error, kind in _ERRORS:
        if isinstance(error, library_error):
            return kind(f"{what}: {type(error).__name__}: {error}")
    return VenueUnavailable(f"{what}: {type(error).__name__}: {error}")


def parse(raw: dict[str, Any]) -> VenueOrder:
    """The venue's order answer as a ``VenueOrder``."""
    try:
        return VenueOrder(
            lp_order_id=str(raw["id"]),
            client_order_id=raw.get("client_id"),
            state=_STATES[str(raw["state"])],
            amount=Decimal(str(raw["amount"])),
            filled=Decimal(str(raw.get("filled", "0"))),
            average_price=None if raw.get("avg_price") is None else Decimal(str(raw["avg_price"])),
            commission=Decimal(str(raw.get("fee", "0"))),
            commission_asset=raw.get("fee_asset"),
        )
    except (KeyError, ValueError, ArithmeticError) as e:
        raise VenueUnavailable(f"unreadable order answer: {raw!r:.300}") from e


class TemplateVenue:
    def __init__(
        self, credentials: VenueCredentials, factory: ClientFactory, *, timeout_seconds: float
    ) -> None:
        self.client = factory(credentials, timeout_seconds)

    async def place(self, request: VenueOrderRequest) -> VenueOrder:
        try:
            raw = await self._call_place(request)
        except Exception as e:
            raise translate(e, f"place {request.symbol} {request.client_order_id}") from e
        return parse(raw)

    async def get(self, ref: VenueOrderRef) -> VenueOrder:
        try:
            raw = await self._call_get(ref)
        except Exception as e:
            raise translate(e, f"get {ref.symbol} {ref.lp_order_id or ref.client_order_id}") from e
        return parse(raw)

    async def cancel(self, ref: VenueOrderRef) -> VenueOrder:
        try:
            raw = await self._call_cancel(ref)
        except Exception as e:
            raise translate(e, f"cancel {ref.symbol} {ref.lp_order_id or ref.client_order_id}") from e
        return parse(raw)

    # --- the venue's calls: replace these bodies in a copy -------------------------------------

    async def _call_place(self, request: VenueOrderRequest) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.create_order(
            symbol=request.symbol,
            side=request.side.value.lower(),
            amount=str(request.amount),
            client_id=request.client_order_id,
        )
        return result

    async def _call_get(self, ref: VenueOrderRef) -> dict[str, Any]:
        if ref.lp_order_id is not None:
            result: dict[str, Any] = await self.client.get_order(ref.symbol, order_id=ref.lp_order_id)
        else:
            result = await self.client.get_order(ref.symbol, client_id=ref.client_order_id)
        return result

    async def _call_cancel(self, ref: VenueOrderRef) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.cancel_order(
            ref.symbol, order_id=ref.lp_order_id, client_id=ref.client_order_id
        )
        return result
