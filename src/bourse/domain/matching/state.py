"""The engine's state as values: what a rebuild needs, and its canonical hash.

On start a market's book is rebuilt from the open orders in the database
(``MatchingEngine.restore``) and its ``state_hash`` must equal the one recorded
before shutdown or crash (architecture decision 5).
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from bourse.domain.matching.commands import PlaceOrder
from bourse.domain.orders import ClientOrderId, OrderId, Side
from bourse.domain.values import AccountId


class RestingOrder(NamedTuple):
    """A live order on the book, enough to rebuild it exactly (see ``MatchingEngine.restore``)."""

    order_id: OrderId
    account_id: AccountId
    side: Side
    price: int
    open_quantity: int
    quantity: int
    seq: int
    client_order_id: ClientOrderId | None = None
    expire_at: int | None = None


class WaitingStop(NamedTuple):
    order: PlaceOrder
    seq: int


class EngineState(NamedTuple):
    """Everything the engine's future behaviour depends on, besides its rules and status."""

    orders: tuple[RestingOrder, ...]
    stops: tuple[WaitingStop, ...]
    last_price: int | None
    order_seq: int
    trade_seq: int
    now: int


def _line(*items: Any) -> bytes:
    return ("|".join("" if i is None else str(i) for i in items) + "\n").encode()


def state_hash(state: EngineState) -> str:
    h = hashlib.sha256(b"bourse-book-v1\n")
    h.update(_line("last", state.last_price, "seq", state.order_seq, "trades", state.trade_seq))
    for o in sorted(state.orders, key=lambda o: (o.side is not Side.BUY, o.price, o.seq)):
        h.update(
            _line(
                "o",
                o.side.value,
                o.price,
                o.seq,
                o.order_id,
                o.open_quantity,
                o.quantity,
                o.account_id,
                o.client_order_id,
                o.expire_at,
            )
        )
    for s in sorted(state.stops, key=lambda s: s.seq):
        c, t = s.order, s.order.terms
        h.update(
            _line(
                "s",
                s.seq,
                c.order_id,
                c.account_id,
                c.side.value,
                c.quantity,
                c.price,
                c.client_order_id,
                t.order_type.value,
                t.time_in_force.value,
                int(t.post_only),
                t.stop_price,
                t.expire_at,
                None if t.stp is None else t.stp.value,
            )
        )
    return h.hexdigest()
