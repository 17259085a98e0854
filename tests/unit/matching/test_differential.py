"""Our engine against the shared price-time reference (../shared/bench/lob/reference.py).

With self-trade prevention off and one account per order the two must agree on
every trade (maker, quantity, price, in order), on every cancel, and on the book
(each level's orders in time order with their open quantities).
"""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bourse.domain.matching import EngineRules, MatchingEngine
from bourse.domain.matching.events import EventKind
from bourse.domain.orders import SelfTradePrevention

from .support import BUY, SELL, book, cancel, fills, order

_CANDIDATES = [
    Path(__file__).resolve().parents[4] / "shared" / "bench" / "lob",
    Path("/work/shared/bench/lob"),
]
LOB_DIR = next((d for d in _CANDIDATES if (d / "reference.py").is_file()), None)


def _reference() -> ModuleType:
    if LOB_DIR is None:
        pytest.skip("the shared reference book (shared/bench/lob/reference.py beside the repo) is not there")
    spec = importlib.util.spec_from_file_location("lob_reference", LOB_DIR / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ref_book(ref: Any) -> dict[str, list[tuple[int, int, int]]]:
    def side(levels: Any, best_first: bool) -> list[tuple[int, int, int]]:
        prices = reversed(levels.keys()) if best_first else iter(levels.keys())
        return [(p, o[0], o[3]) for p in prices for o in levels[p] if o[3]]

    return {"bids": side(ref.bids, True), "asks": side(ref.asks, False)}


class Pair:
    """The reference and our engine fed the same ops."""

    def __init__(self, slow: bool = False) -> None:
        self.slow = slow
        self.ref = _reference().NaiveBook()
        self.ours = MatchingEngine(EngineRules(stp=SelfTradePrevention.NONE))
        self.prices: dict[int, int] = {}
        self.trades = 0
        self.traded = 0

    def add(self, oid: int, is_buy: bool, price: int, qty: int) -> None:
        self.prices[oid] = price
        expected = [
            (maker, oid, q, self.prices[maker]) for maker, q, _done in self.ref.add(oid, is_buy, price, qty)
        ]
        got = fills(self.ours.place(order(oid, BUY if is_buy else SELL, qty, price, slow=self.slow)))
        assert got == expected, f"order {oid}"
        self.trades += len(got)
        self.traded += sum(f[2] for f in got)

    def cancel(self, oid: int) -> None:
        live = self.ref.orders.get(oid)
        open_qty = live[3] if live is not None else None
        expected = self.ref.cancel(oid)
        events = self.ours.cancel(cancel(oid))
        assert (events[0][0] is EventKind.CANCELLED) == expected, f"cancel {oid}"
        if expected:
            assert events[0][3] == open_qty

    def same_book(self) -> None:
        assert book(self.ours) == _ref_book(self.ref)


op = st.one_of(
    st.tuples(st.just("L"), st.booleans(), st.integers(95, 105), st.integers(1, 20)),
    st.tuples(st.just("C"), st.integers(0, 10_000)),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=120), st.booleans())
def test_random_streams_trade_exactly_like_the_reference(ops: list[tuple[Any, ...]], slow: bool) -> None:
    pair = Pair(slow)
    placed: list[int] = []
    for o in ops:
        if o[0] == "L":
            oid = len(placed) + 1
            placed.append(oid)
            pair.add(oid, o[1], o[2], o[3])
        elif placed:
            pair.cancel(placed[o[1] % len(placed)])
        pair.same_book()


@pytest.mark.parametrize("slow", [False, True], ids=["fast path", "general path"])
def test_the_shared_stream_trades_exactly_like_the_reference(tmp_path: Path, slow: bool) -> None:
    _reference()
    assert LOB_DIR is not None
    n = 30_000
    subprocess.run(
        [sys.executable, str(LOB_DIR / "gen.py"), str(n)],
        env={"LOB_STREAM_DIR": str(tmp_path), "PATH": ""},
        check=True,
        capture_output=True,
    )
    with open(tmp_path / f"stream_{n}.pkl", "rb") as f:
        ops = pickle.load(f)
    pair = Pair(slow)
    for o in ops:
        if o[0] == "L":
            pair.add(o[1], o[2], o[3], o[4])
        else:
            pair.cancel(o[1])
    pair.same_book()
    assert (pair.trades, pair.traded) == (pair.ref.n_trades, pair.ref.traded_qty)
    assert pair.trades > 1_000
