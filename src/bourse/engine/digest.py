"""The book digest a market's checkpoint records: a state hash updated per change, not per book.

``MatchingEngine.state_hash`` hashes the whole book, which costs time in
proportion to the book on every commit. The digest hashes the same canonical
content (every resting order, every waiting stop, the last price and the
engine's counters) as a multiset: each entry has its own SHA-256, and the digest
is their sum modulo 2**256 plus the header's. Changing one order changes only
its term, so a commit costs O(orders it touched), and a book rebuilt from the
database yields the same digest as the running engine exactly when it holds the
same orders, stops, last price and counters.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bourse.domain.matching import EngineState, PlaceOrder, RestingOrder

_MOD = 2**256


def _h(*items: Any) -> int:
    text = "|".join("" if i is None else str(i) for i in items)
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


def resting_term(o: RestingOrder) -> int:
    return _h(
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


def stop_term(cmd: PlaceOrder, seq: int) -> int:
    t = cmd.terms
    return _h(
        "s",
        seq,
        cmd.order_id,
        cmd.account_id,
        cmd.side.value,
        cmd.quantity,
        cmd.price,
        cmd.client_order_id,
        t.order_type.value,
        t.time_in_force.value,
        int(t.post_only),
        t.stop_price,
        t.expire_at,
        None if t.stp is None else t.stp.value,
    )


def header_term(last_price: int | None, order_seq: int, trade_seq: int) -> int:
    return _h("h", last_price, order_seq, trade_seq)


class BookDigest:
    __slots__ = ("_header", "_sum", "_terms")

    def __init__(self) -> None:
        self._terms: dict[int, int] = {}
        self._sum = 0
        self._header = header_term(None, 0, 0)

    @classmethod
    def of(cls, state: EngineState) -> BookDigest:
        digest = cls()
        for o in state.orders:
            digest.set(o.order_id, resting_term(o))
        for s in state.stops:
            digest.set(s.order.order_id, stop_term(s.order, s.seq))
        digest.set_header(state.last_price, state.order_seq, state.trade_seq)
        return digest

    def set(self, order_id: int, term: int | None) -> None:
        """The order's entry is now ``term`` (None: it left the book)."""
        old = self._terms.pop(order_id, None)
        if old is not None:
            self._sum = (self._sum - old) % _MOD
        if term is not None:
            self._terms[order_id] = term
            self._sum = (self._sum + term) % _MOD

    def set_header(self, last_price: int | None, order_seq: int, trade_seq: int) -> None:
        self._header = header_term(last_price, order_seq, trade_seq)

    def hexdigest(self) -> str:
        return format((self._sum + self._header) % _MOD, "064x")

    def __len__(self) -> int:
        return len(self._terms)
