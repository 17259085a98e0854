"""Property test of an OrderBook derivative market's tick (``engine/derivatives_tick.py``, no I/O):
random batches of orders (Limit, Market, Stop, StopLimit, both sides, two leverages), cancels and
reduce-only closes from two Hedging and two Netting accounts, run as the runner runs them (one
tick per batch, its ledger transactions applied, its orders and positions carried over).

After every batch: every transaction is balanced and nothing but the house is negative; the
accounts' buckets (available + locked + margin) plus ``sys:house`` plus ``sys:fees`` are the
deposits; each account's margin bucket is its open positions' margin; its locked bucket is what
its live orders still hold; and with no live order nothing is locked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bourse.domain.fees import CommissionRule, FeeType
from bourse.domain.ledger import FEES, HOUSE, Bucket, account_owner
from bourse.domain.markets import new_market
from bourse.domain.matching import EngineState, MatchingEngine
from bourse.domain.order_requests import to_millis
from bourse.domain.orders import OrderType, Side, TimeInForce
from bourse.domain.positions import AccountKind, ContractSpec, Position
from bourse.domain.values import AccountId, AssetId
from bourse.engine.derivatives_tick import DerivativeTick, is_waiting_stop
from bourse.engine.digest import BookDigest
from bourse.service.derivatives_context import Contract
from bourse.service.derivatives_records import BookOrderRequest, DerivativeOrder, DerivativeOrderRequest

D = Decimal
USDT = AssetId("USDT")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEPOSIT = D(1000)
ACCOUNTS = [AccountId("h1"), AccountId("h2"), AccountId("n1"), AccountId("n2")]
KINDS = {a: AccountKind.HEDGING if a.startswith("h") else AccountKind.NETTING for a in ACCOUNTS}
RULE = CommissionRule("default", "default", 0, True, None, None, FeeType.PERCENT, D("0.1"), D("0.1"), None)
MARKET = new_market(
    {
        "marketId": "BOOK",
        "type": "Cfd",
        "baseAssetId": "BTC",
        "quoteAssetId": "USDT",
        "priceScale": 2,
        "amountScale": 2,
        "tickSize": "0.01",
        "lotStep": "0.01",
        "minAmount": "0.01",
        "lotSize": 1,
        "maxLeverage": 100,
        "slippageRate": "0.2",
    },
    T0,
)
CONTRACT = Contract(MARKET, ContractSpec.of(MARKET, 6))


@dataclass
class Runner:
    """What the runner keeps between batches, and the ledger the batches post to."""

    engine: MatchingEngine = field(
        default_factory=lambda: MatchingEngine.restore(
            EngineState((), (), None, 0, 0, to_millis(T0)), MARKET.spec().engine_rules(), MARKET.status
        )
    )
    live: dict[int, DerivativeOrder] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    order_seq: int = 0
    trade_seq: int = 0
    next_order: int = 1
    next_position: int = 1
    ledger: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def __post_init__(self) -> None:
        self.digest = BookDigest.of(self.engine.state())
        for a in ACCOUNTS:
            self.ledger[(account_owner(a), Bucket.AVAILABLE)] = DEPOSIT

    def batch(self, commands: list[tuple[Any, ...]], now: datetime) -> None:
        tick = DerivativeTick(
            CONTRACT,
            self.engine,
            self.live,
            self.positions,
            self.digest,
            self.order_seq,
            self.trade_seq,
            now,
            D(1),
        )
        tick.kinds = KINDS
        tick.available = {
            (account_owner(a), USDT): self.ledger[(account_owner(a), Bucket.AVAILABLE)] for a in ACCOUNTS
        }
        tick.apply(self.engine.on_time(to_millis(now)))
        tick.expire_stops()
        tick.run_stops()
        for command in commands:
            self._command(tick, command)
        if not tick.has_effects:
            return
        tick.update_digest()
        count = tick.new_position_count
        if count:
            tick.assign_position_ids([str(self.next_position + i) for i in range(count)])
            self.next_position += count
        txs, _ = tick.ledger_transactions()
        for tx in txs:
            assert sum((p.amount for p in tx.postings), D(0)) == 0, tx
            for p in tx.postings:
                assert p.asset == USDT
                self.ledger[(p.owner, p.bucket)] += p.amount
        self.order_seq, self.trade_seq = tick.order_seq, tick.trade_seq
        for order_id, order in tick.touched.items():
            if order.is_live and (order.engine_seq is not None or is_waiting_stop(order)):
                self.live[order_id] = order
            else:
                self.live.pop(order_id, None)
        for position_id, position in tick.changed_positions.items():
            if position.is_open:
                self.positions[position_id] = position
            else:
                self.positions.pop(position_id, None)

    def _command(self, tick: DerivativeTick, command: tuple[Any, ...]) -> None:
        kind = command[0]
        if kind == "cancel":
            mine = sorted(o for o, order in {**self.live, **tick.touched}.items() if order.is_live)
            if mine:
                order_id = mine[command[1] % len(mine)]
                tick.cancel(tick.order(order_id).account_id, order_id)
            return
        if kind == "close":
            _, who, limit = command
            account = ACCOUNTS[who]
            open_ = tick.open_positions(account)
            if not open_:
                return
            p = open_[0]
            request = DerivativeOrderRequest(
                market_id=MARKET.id,
                side=p.side.closing_side,
                type=OrderType.MARKET if limit is None else OrderType.LIMIT,
                lots=p.lots,
                price=limit,
                time_in_force=TimeInForce.IOC if limit is None else TimeInForce.GTC,
                leverage=p.leverage,
                margin_type=p.margin_type,
            )
            book = BookOrderRequest(account, request, close_position_id=p.position_id, preempt=limit is None)
        else:
            _, who, side, otype, lots, price, stop, leverage = command
            request = DerivativeOrderRequest(
                market_id=MARKET.id,
                side=side,
                type=otype,
                lots=lots,
                price=price if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
                activation_price=stop if otype in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
                time_in_force=TimeInForce.IOC if otype is OrderType.MARKET else TimeInForce.GTC,
                leverage=leverage,
            )
            book = BookOrderRequest(ACCOUNTS[who], request)
        tick.place(self.next_order, book, RULE, KINDS[book.account_id], None)
        self.next_order += 1

    def check(self) -> None:
        total = D(0)
        for (owner, bucket), amount in self.ledger.items():
            total += amount
            if owner != HOUSE:
                assert amount >= 0, (owner, bucket, amount)
        assert total == DEPOSIT * len(ACCOUNTS)
        assert set(self.ledger) <= {
            *(
                (account_owner(a), b)
                for a in ACCOUNTS
                for b in (Bucket.AVAILABLE, Bucket.LOCKED, Bucket.MARGIN)
            ),
            (HOUSE, Bucket.AVAILABLE),
            (FEES, Bucket.AVAILABLE),
        }
        for a in ACCOUNTS:
            owner = account_owner(a)
            margins = sum((p.margin for p in self.positions.values() if p.account_id == a), D(0))
            assert self.ledger[(owner, Bucket.MARGIN)] == margins, a
            held = sum((o.locked_remaining for o in self.live.values() if o.account_id == a), D(0))
            assert self.ledger[(owner, Bucket.LOCKED)] == held, a
            if KINDS[a] is AccountKind.NETTING:
                assert len([p for p in self.positions.values() if p.account_id == a]) <= 1
        if not self.live:
            assert all(self.ledger[(account_owner(a), Bucket.LOCKED)] == 0 for a in ACCOUNTS)
        assert all(p.lots > 0 for p in self.positions.values())
        assert self.digest.hexdigest() == BookDigest.of(self.engine.state()).hexdigest()


prices = st.integers(min_value=-2, max_value=2).map(lambda k: D(100) + k)
place = st.tuples(
    st.just("place"),
    st.integers(0, 3),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from(
        [OrderType.LIMIT, OrderType.LIMIT, OrderType.MARKET, OrderType.STOP, OrderType.STOP_LIMIT]
    ),
    st.integers(1, 300).map(lambda n: D(n) / 100),
    prices,
    prices,
    st.sampled_from([10, 10, 10, 5]),
)
command = st.one_of(
    place,
    place,
    place,
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("close"), st.integers(0, 3), st.one_of(st.none(), prices)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(command, min_size=1, max_size=5), min_size=3, max_size=30))
def test_book_batches_conserve_money_and_keep_margin_and_holds_in_step(batches):
    runner = Runner()
    now = T0
    for commands in batches:
        now += timedelta(seconds=1)
        runner.batch(commands, now)
        runner.check()
    # Everything cancelled: nothing stays locked.
    for order_id in sorted(runner.live):
        runner.batch([("cancel", 0)], now)
    assert not runner.live
    runner.check()
