"""The money rules around the engine, without a database: holds, fills, fee caps, exactness, digest."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from decimal import localcontext
from enum import Enum

from bourse.domain.fees import FeeType, commission
from bourse.domain.ledger import FEES, Bucket, account_owner
from bourse.domain.markets import new_market
from bourse.domain.matching import MatchingEngine, PlaceOrder
from bourse.domain.orders import OrderId, OrderType, RejectReason, Side, TimeInForce
from bourse.domain.trading import (
    EXACT,
    FeeTerms,
    Order,
    OrderRequest,
    check_order,
    new_order,
    reservation,
    settle_trade,
)
from bourse.domain.values import AccountId, AssetId
from bourse.engine.digest import BookDigest

NOW = datetime(2025, 9, 9, 12, tzinfo=UTC)
MARKET = new_market(
    {
        "baseAssetId": "BTC",
        "quoteAssetId": "USDT",
        "priceScale": 8,
        "amountScale": 8,
        "priceDeviation": "0.5",
    },
    NOW,
)
PERCENT = FeeTerms("default", FeeType.PERCENT, D("0.1"), D("0.2"))


def order(order_id: int, side: Side, qty: str, price: str, fee: FeeTerms = PERCENT):
    o = new_order(
        order_id,
        AccountId(f"A{order_id}"),
        OrderRequest("BTCUSDT", side, OrderType.LIMIT, D(qty), D(price)),
        MARKET,
        NOW,
    )
    o.fee = fee
    held = reservation(o, MARKET, o.price if side is Side.BUY else None, 6)
    o.reserve_price = o.price if side is Side.BUY else None
    o.locked_asset, o.locked_amount, o.locked_remaining = held.asset, held.amount, held.amount
    return o


def test_a_buy_holds_its_cost_plus_the_larger_fee_and_a_sell_its_amount():
    assert order(1, Side.BUY, "2", "100").locked_amount == D("200.4")  # 0.2 % taker beats 0.1 % maker
    assert order(2, Side.SELL, "2", "100").locked_amount == D(2)


def test_big_amounts_stay_exact():
    price, qty = D("123456789012.12345678"), D("98765432.12345678")
    buy, sell = order(1, Side.BUY, str(qty), str(price)), order(2, Side.SELL, str(qty), str(price))
    s = settle_trade(MARKET, 1, buy, sell, price, qty, buyer_is_maker=True, quote_scale=6)
    exact = D(f"{12345678901212345678 * 9876543212345678}E-16")  # 36 digits, exactly
    assert price * qty != exact  # Decimal's default 28 digits would have rounded it
    assert s.buy.quote_amount == exact
    sums: dict[str, D] = {}
    with localcontext(EXACT):
        for p in s.transaction.postings:
            sums[p.asset] = sums.get(p.asset, D(0)) + p.amount
    assert set(sums.values()) == {D(0)}


def test_a_fill_moves_cost_fees_and_the_completed_buys_leftover_in_one_transaction():
    buy, sell = order(1, Side.BUY, "1", "101"), order(2, Side.SELL, "1", "100")
    s = settle_trade(MARKET, 7, buy, sell, D(100), D(1), buyer_is_maker=False, quote_scale=6)
    legs = [(p.owner, p.asset, p.bucket, p.amount) for p in s.transaction.postings]
    alice, bob = account_owner("A1"), account_owner("A2")
    # held 101 + 0.202 (0.2 % taker); paid 100 + 0.2 taker fee; 1.002 released with the fill
    assert legs == [
        (alice, "USDT", Bucket.LOCKED, D("-100.2")),
        (bob, "USDT", Bucket.AVAILABLE, D("99.9")),
        (FEES, "USDT", Bucket.AVAILABLE, D("0.3")),
        (bob, "BTC", Bucket.LOCKED, D(-1)),
        (alice, "BTC", Bucket.AVAILABLE, D(1)),
        (alice, "USDT", Bucket.LOCKED, D("-1.002")),
        (alice, "USDT", Bucket.AVAILABLE, D("1.002")),
    ]
    assert buy.locked_remaining == 0 and sell.locked_remaining == 0 and s.released == D("1.002")
    assert s.transaction.business_key == "trade:BTCUSDT:7"


def test_fees_never_overdraw_a_hold_or_exceed_a_fill():
    fixed = FeeTerms("fixed", FeeType.FIXED, D(5), D(5))
    buy, sell = order(1, Side.BUY, "1", "1", fixed), order(2, Side.SELL, "1", "1", fixed)
    # three fills of a third each: the 5 USDT fixed fee per fill is more than the hold's 5 fee reserve
    fees = []
    for seq, qty in enumerate((D("0.3"), D("0.3"), D("0.4")), 1):
        s = settle_trade(MARKET, seq, buy, sell, D(1), qty, buyer_is_maker=True, quote_scale=6)
        fees.append((s.buy.commission, s.sell.commission))
        assert s.sell.commission <= s.sell.quote_amount
    assert sum(f[0] for f in fees) == D(5) and buy.locked_remaining == 0
    assert fees[0][1] == D("0.3")  # capped at the fill's value


# 0.1 % maker, 0.2 % taker, at least 1 USDT a fill (a minFeeRAT of 1 with USDT the root asset).
MINIMUM = FeeTerms("min", FeeType.PERCENT, D("0.1"), D("0.2"), D(1))


def test_a_buy_holds_the_larger_of_its_max_fee_and_the_minimum():
    # 2 x 100 = 200: the fee would be 0.4 (taker), the minimum 1 wins
    assert order(1, Side.BUY, "2", "100", MINIMUM).locked_amount == D(201)
    # 10 x 100 = 1000: the taker fee 2 beats the minimum
    assert order(2, Side.BUY, "10", "100", MINIMUM).locked_amount == D(1002)
    # a sell holds its base amount only
    assert order(3, Side.SELL, "2", "100", MINIMUM).locked_amount == D(2)


def test_each_fill_pays_at_least_the_minimum_and_a_big_one_the_percentage():
    assert MINIMUM.fee(D(50), is_maker=True, scale=6) == D(1)  # 0.05 -> 1
    assert MINIMUM.fee(D(1000), is_maker=False, scale=6) == D(2)  # 0.2 % of 1000
    assert MINIMUM.max_fee(D(200), 6) == D(1)
    # without a minimum, exactly the rule's fee
    assert PERCENT.fee(D(50), is_maker=True, scale=6) == D("0.05")
    assert PERCENT.max_fee(D(200), 6) == D("0.4")


def test_partial_fills_each_pay_the_minimum_until_the_buyers_hold_cap_wins():
    buy = order(1, Side.BUY, "2", "100", MINIMUM)  # holds 200 + 1
    sell = order(2, Side.SELL, "2", "100", MINIMUM)
    paid = []
    for seq, qty in enumerate((D("0.5"), D("0.5"), D(1)), 1):
        s = settle_trade(MARKET, seq, buy, sell, D(100), qty, buyer_is_maker=True, quote_scale=6)
        paid.append((s.buy.commission, s.sell.commission))
    # the buyer's first fill (0.05 by the rule) pays the minimum its hold covered; later fills find
    # nothing spare beyond the cost of what is left, so the house forgoes their minimum. The seller
    # pays the minimum on each fill (0.1, 0.1, 0.2 by the rule).
    assert paid == [(D(1), D(1)), (D(0), D(1)), (D(0), D(1))]
    assert buy.locked_remaining == 0 and buy.commission == D(1) and sell.commission == D(3)


def test_a_sell_worth_less_than_the_minimum_pays_at_most_its_quote_amount():
    buy = order(1, Side.BUY, "1", "100", MINIMUM)
    sell = order(2, Side.SELL, "0.001", "100", MINIMUM)
    s = settle_trade(MARKET, 1, buy, sell, D(100), D("0.001"), buyer_is_maker=True, quote_scale=6)
    assert s.sell.quote_amount == D("0.1") and s.sell.commission == D("0.1")  # not 1
    assert s.buy.commission == D(1)
    legs = {(p.owner, p.bucket): p.amount for p in s.transaction.postings if p.asset == "USDT"}
    assert legs[(FEES, Bucket.AVAILABLE)] == D("1.1")
    assert (account_owner("A2"), Bucket.AVAILABLE) not in legs  # the seller gets nothing in USDT


def test_market_rules_before_the_engine():
    def reason(**kw):
        base = {
            "market_id": "BTCUSDT",
            "side": Side.BUY,
            "type": OrderType.LIMIT,
            "quantity": D(1),
            "price": D(100),
        }
        base.update(kw)
        return check_order(OrderRequest(**base), MARKET, D(100), NOW)

    assert reason() is None
    assert reason(price=D("100.000000001")) is RejectReason.INVALID_PRICE
    assert reason(price=D(151)) is RejectReason.PRICE_DEVIATION
    assert reason(time_in_force=TimeInForce.GTD) is RejectReason.INVALID_EXPIRY
    assert reason(type=OrderType.MARKET, price=None, post_only=True) is RejectReason.INVALID_TIME_IN_FORCE
    assert check_order(OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, D(1)), MARKET, None, NOW) is (
        RejectReason.NO_REFERENCE_PRICE
    )


def test_the_digest_follows_the_book_not_its_history():
    a, b = MatchingEngine(), MatchingEngine()
    for engine, ids in ((a, (1, 2, 3)), (b, (1, 2, 3))):
        for i in ids:
            engine.place(PlaceOrder(OrderId(i), AccountId("A"), Side.BUY, 10, 100 + i))
    b.place(PlaceOrder(OrderId(9), AccountId("B"), Side.SELL, 10, 200))
    assert BookDigest.of(a.state()).hexdigest() != BookDigest.of(b.state()).hexdigest()
    digest = BookDigest.of(a.state())
    digest.set(9, 12345)
    digest.set(9, None)
    assert digest.hexdigest() == BookDigest.of(a.state()).hexdigest()


def test_an_orders_fee_terms_charge_what_its_commission_rule_charges():
    # FeeTerms.fee skips building the rule per fill; the amounts must not move by a unit.
    for terms in (
        FeeTerms("pct", FeeType.PERCENT, D("0.1"), D("0.25")),
        FeeTerms("fixed", FeeType.FIXED, D("1.5"), D("0.0000005")),
    ):
        for quote in (D(0), D("0.00000001"), D("12.345678"), D("99999999.99999999")):
            for is_maker in (True, False):
                for scale in (0, 2, 6):
                    expected = commission(terms.rule(), quote, is_maker=is_maker, quote_scale=scale)
                    assert terms.fee(quote, is_maker=is_maker, scale=scale) == expected
    assert PERCENT.fee(D("12.345678"), is_maker=False, scale=6) == D("0.024692")  # 0.2 %, rounded up


def _order_with_every_field() -> Order:
    """An order whose every field is set to something other than its default."""
    from bourse.domain.orders import OrderStatus, StopStatus

    at = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    return Order(
        order_id=7,
        market_id="BTCUSDT",
        account_id=AccountId("A1"),
        side=Side.SELL,
        type=OrderType.STOP_LIMIT,
        time_in_force=TimeInForce.GTD,
        quantity=D("2"),
        remaining=D("1.5"),
        status=OrderStatus.PARTIALLY_FILLED,
        commission_asset=AssetId("USDT"),
        created_at=at,
        updated_at=at.replace(second=6),
        post_only=True,
        price=D("101.5"),
        stop_price=D("100"),
        reserve_price=D("102"),
        client_order_id="c-1",
        fingerprint=b"\x01\x02",
        executed_quote=D("50.75"),
        commission=D("0.05"),
        fee=FeeTerms("r1", FeeType.PERCENT, D("0.001"), D("0.002"), D("0.01")),
        stop_status=StopStatus.ACTIVATED,
        source="Api",
        reject_reason="no",
        cancel_reason="why",
        locked_asset=AssetId("BTC"),
        locked_amount=D("2"),
        locked_remaining=D("1.5"),
        hold_tx_id=11,
        engine_seq=12,
        cancellation_date=at.replace(year=2027),
    )


def test_an_order_copy_keeps_every_field_and_is_its_own_object() -> None:
    """The engine answers with copies of orders it keeps changing: a copy has every field of the
    original (each set here to something other than its default) and changes apart from it."""
    from dataclasses import fields

    from bourse.domain.orders import OrderStatus

    order = _order_with_every_field()
    defaults = Order(1, "M", AccountId("A"), Side.BUY, OrderType.LIMIT, TimeInForce.GTC, D(1), D(1),
                     OrderStatus.PLACED, AssetId("X"), NOW, NOW)  # fmt: skip
    assert all(getattr(order, f.name) != getattr(defaults, f.name) for f in fields(Order))
    copy = order.copy()
    assert copy == order and copy is not order
    copy.remaining = D("0")
    copy.status = OrderStatus.FILLED
    assert (order.remaining, order.status) == (D("1.5"), OrderStatus.PARTIALLY_FILLED)


def test_the_batch_statement_gets_each_order_column_from_the_field_of_that_name() -> None:
    """The engine's batch write sends the orders column by column (``trading_repos._columns``,
    rows transposed positionally): each column must carry the order's value of that name."""
    from bourse.adapters.db.array_literals import LITERALS
    from bourse.adapters.db.trading_repos import _ORDER_COLUMNS, _columns

    order, other = _order_with_every_field(), _order_with_every_field()
    other.fee = None
    other.stop_status = None
    fees = {"fee_rule_id": "rule_id", "fee_type": "fee_type", "maker_fee": "maker", "taker_fee": "taker",
            "min_fee": "min_fee"}  # fmt: skip

    def value(o: Order, name: str) -> object:
        v = (None if o.fee is None else getattr(o.fee, fees[name])) if name in fees else getattr(o, name)
        return v.value if isinstance(v, Enum) else v

    names = [name for name, _ in _ORDER_COLUMNS]
    columns = _columns([order, other], names)
    for name, kind in _ORDER_COLUMNS:
        assert columns[name] == LITERALS[kind]([value(order, name), value(other, name)]), name
    assert _columns([], ["order_id", "price"]) == {"order_id": "{}", "price": "{}"}
