"""Positions: PnL, margin, fees, and what one fill does to a netting or hedging account's money."""

from datetime import time

import pytest

from bourse.domain.errors import InsufficientFunds, InvalidInput
from bourse.domain.fees import CfdFee, CommissionRule, FeeType
from bourse.domain.ledger import FEES, HOUSE
from bourse.domain.markets import new_market
from bourse.domain.orders import Side
from bourse.domain.positions import (
    AccountKind,
    ContractSpec,
    MarginType,
    PositionSide,
    apply_fill,
    check_lots,
    derivative_fee,
    initial_margin,
    liquidation_price_isolated,
    notional,
    resolve_leverage,
)
from tests.unit.derivatives.support import ACCOUNT, NOW, OWNER, SPEC, USDT, D, fill, legs, position

AVAIL = (OWNER, "available")
MARGIN = (OWNER, "margin")
HOUSE_AV = (HOUSE, "available")
FEES_AV = (FEES, "available")


# --- the contract --------------------------------------------------------------------------------


def test_contract_spec_of_a_market():
    market = new_market(
        {
            "baseAssetId": "BTC",
            "quoteAssetId": "USDT",
            "marketId": "BTCPERP",
            "type": "Perpetual",
            "priceScale": 1,
            "amountScale": 0,
            "tickSize": "0.5",
            "lotSize": 2,
            "minLotAmount": "1",
            "maxLotAmount": 500,
            "maxLeverage": 50,
            "isConstLeverage": True,
            "fundingStartTime": "00:00:00",
            "fundingIntervalInHours": 8,
        },
        NOW,
    )
    spec = ContractSpec.of(market, 2)
    assert spec == ContractSpec(
        market_id="BTCPERP",
        settlement_asset=USDT,
        lot_size=D(2),
        lot_step=D(1),
        min_lots=D(1),
        max_lots=D(500),
        tick_size=D("0.5"),
        price_scale=1,
        settlement_scale=2,
        max_leverage=50,
        const_leverage=True,
    )
    assert market.funding_start_time == time(0)
    # No lotSize and no maxLeverage: 1 base unit per lot, leverage 1 only.
    bare = ContractSpec.of(
        new_market({"baseAssetId": "ETH", "quoteAssetId": "USDT", "priceScale": 2, "amountScale": 2}, NOW), 6
    )
    assert (bare.lot_size, bare.max_leverage, bare.const_leverage) == (D(1), 1, False)


def test_lots_and_leverage_rules():
    check_lots(SPEC, D(7))
    for bad in (D(0), D("1.5"), D(1001)):
        with pytest.raises(InvalidInput):
            check_lots(SPEC, bad)
    assert resolve_leverage(SPEC, None) == 1
    assert resolve_leverage(SPEC, 25) == 25
    for bad in (0, 101):
        with pytest.raises(InvalidInput):
            resolve_leverage(SPEC, bad)
    const = ContractSpec(**{**{f: getattr(SPEC, f) for f in SPEC.__slots__}, "const_leverage": True})
    assert resolve_leverage(const, None) == 100
    with pytest.raises(InvalidInput):
        resolve_leverage(const, 10)


# --- PnL, margin, fees ---------------------------------------------------------------------------


def test_unrealized_pnl_long_and_short():
    # base = 3 lots * 0.01 = 0.03 BTC; (51234.5 - 50000) * 0.03 = 37.035 (exact, not rounded)
    assert position(PositionSide.LONG).unrealized_pnl(D("51234.5"), SPEC) == D("37.035")
    # short: (50000 - 51234.5) * 0.03 = -37.035
    assert position(PositionSide.SHORT).unrealized_pnl(D("51234.5"), SPEC) == D("-37.035")
    # short in profit: (50000 - 48000) * 0.03 = 60
    assert position(PositionSide.SHORT).unrealized_pnl(D("48000"), SPEC) == D("60.000")


def test_initial_margin_rounds_up():
    # 50000 * 0.03 / 10 = 150 exactly
    assert initial_margin(D("50000"), D("0.03"), 10, 2) == D("150.00")
    # 50000.5 * 0.03 / 3 = 1500.015 / 3 = 500.005 -> UP 500.01 (half-even would give 500.00)
    assert initial_margin(D("50000.5"), D("0.03"), 3, 2) == D("500.01")
    # 50000.5 * 0.03 / 7 = 214.2878571... -> UP 214.29
    assert initial_margin(D("50000.5"), D("0.03"), 7, 2) == D("214.29")
    # 0.5 * 0.01 / 100 = 0.00005 -> UP 0.01: a position never holds zero margin
    assert initial_margin(D("0.5"), D("0.01"), 100, 2) == D("0.01")


def test_derivative_fee():
    amount = notional(D("50000.5"), D(3), SPEC)
    assert amount == D("1500.015")  # 50000.5 * 3 * 0.01
    # cfd Percent 0.05%: 1500.015 * 0.05 / 100 = 0.75000750 -> UP 0.76
    assert derivative_fee(CfdFee(USDT, FeeType.PERCENT, D("0.05")), amount, D(3), 2) == D("0.76")
    # cfd Fixed 0.3 per lot: 0.3 * 3 = 0.90
    assert derivative_fee(CfdFee(USDT, FeeType.FIXED, D("0.3")), amount, D(3), 2) == D("0.90")
    rule = CommissionRule("r", "p", 0, True, None, None, FeeType.FIXED, D("0.2"), D("0.1"), None)
    # no cfd settings: the spot taker size as a Percent (even on a Fixed spot rule): 1500.015 * 0.1 / 100
    # = 1.500015 -> UP 1.51
    assert derivative_fee(rule, amount, D(3), 2) == D("1.51")
    with_cfd = CommissionRule(
        "r",
        "p",
        0,
        True,
        None,
        None,
        FeeType.PERCENT,
        D("0.2"),
        D("0.1"),
        None,
        CfdFee(None, FeeType.FIXED, D("1")),
    )
    assert derivative_fee(with_cfd, amount, D(3), 2) == D("3.00")


# --- netting ----------------------------------------------------------------------------------------


def test_derivative_fee_is_at_least_the_orders_minimum():
    amount = notional(D("50000.5"), D(3), SPEC)  # 1500.015
    percent = CfdFee(USDT, FeeType.PERCENT, D("0.05"))
    # 0.76 by the rule; a 2.00 minimum wins, a 0.50 one does not
    assert derivative_fee(percent, amount, D(3), 2, D("2.00")) == D("2.00")
    assert derivative_fee(percent, amount, D(3), 2, D("0.50")) == D("0.76")
    # no minimum (no minFeeRAT, or no RAT rate for the settlement asset): exactly the rule's fee
    assert derivative_fee(percent, amount, D(3), 2, None) == D("0.76")
    # the minimum is per fill: a tiny fill pays all of it
    assert derivative_fee(percent, notional(D(100), D(1), SPEC), D(1), 2, D("2.00")) == D("2.00")


def test_netting_open_holds_margin_and_fee():
    r = fill([], Side.BUY, "3", "50000", fee="0.90", available="1000")
    assert r.opened is not None and r.changed == []
    assert (r.opened.side, r.opened.lots, r.opened.entry_price, r.opened.margin) == (
        PositionSide.LONG,
        D(3),
        D(50000),
        D("150.00"),  # 50000 * 0.03 / 10
    )
    assert (r.margin_held, r.fee, r.deficit) == (D("150.00"), D("0.90"), D(0))
    assert legs(r) == {AVAIL: D("-150.90"), MARGIN: D("150.00"), FEES_AV: D("0.90")}
    assert (
        r.postings is not None and r.postings.kind == "position.fill" and r.postings.business_key == "fill:1"
    )


def test_netting_increase_averages_entry_and_adds_margin():
    r = fill([position()], Side.BUY, "1", "51001")
    assert r.opened is None
    (p,) = r.changed
    # entry (50000 * 3 + 51001 * 1) / 4 = 50250.25 exactly (not rounded to the price scale 1)
    # margin 150.00 + UP(51001 * 0.01 / 10 = 51.001) = 150.00 + 51.01 = 201.01
    assert (p.lots, p.entry_price, p.margin) == (D(4), D("50250.25"), D("201.01"))
    assert legs(r) == {AVAIL: D("-51.01"), MARGIN: D("51.01")}


def test_netting_increase_entry_realizes_exactly_the_true_pnl():
    # lot size 1000, price scale 2: bought 1000 @100.00 and 1000 @100.01, sold 2000 @100.01.
    spec = ContractSpec("M", USDT, D(1000), D(1), None, None, D("0.01"), 2, 6, 100, False)
    kw = dict(
        kind=AccountKind.NETTING,
        spec=spec,
        leverage=1,
        margin_type=MarginType.CROSS,
        fee=D(0),
        now=NOW,
        asset=USDT,
        account_id=ACCOUNT,
        available=D(10**9),
    )
    r1 = apply_fill(
        positions=[], side=Side.BUY, lots=D(1), price=D("100.00"), new_position_id="p", business_key="a", **kw
    )
    assert r1.opened is not None
    r2 = apply_fill(
        positions=[r1.opened],
        side=Side.BUY,
        lots=D(1),
        price=D("100.01"),
        new_position_id="q",
        business_key="b",
        **kw,
    )
    (pos,) = r2.changed
    assert pos.entry_price == D("100.005")  # not 100.00 (half-even at the price scale)
    r3 = apply_fill(
        positions=[pos],
        side=Side.SELL,
        lots=D(2),
        price=D("100.01"),
        new_position_id="r",
        business_key="c",
        **kw,
    )
    assert r3.realized_pnl == D(10)


def test_netting_increase_entry_is_rounded_against_the_trader():
    # 1 lot @ 50000 + 2 lots @ 50000.1 = 150000.2 / 3 = 50000.0666...: long rounds up, short down
    long = fill([position(lots="1")], Side.BUY, "2", "50000.1").changed[0]
    assert long.entry_price == D("50000.066666666666666667")
    short = fill([position(PositionSide.SHORT, lots="1")], Side.SELL, "2", "50000.1").changed[0]
    assert short.entry_price == D("50000.066666666666666666")


def test_netting_increase_with_another_leverage_or_margin_type_is_refused():
    with pytest.raises(InvalidInput) as e:
        fill([position()], Side.BUY, "1", "50000", leverage=5)
    assert e.value.details["field"] == "leverage"
    with pytest.raises(InvalidInput) as e:
        fill([position()], Side.BUY, "1", "50000", margin_type=MarginType.ISOLATED)
    assert e.value.details["field"] == "marginType"


def test_netting_reduce_realizes_pnl_and_releases_proportional_margin():
    p = position(lots="4", margin="200.00")  # 50000 * 0.04 / 10
    r = fill([p], Side.SELL, "1", "50500", fee="0.51")
    (after,) = r.changed
    # pnl (50500 - 50000) * 0.01 = 5.00; margin kept UP(200 * 3/4) = 150.00, released 50.00
    assert (r.closed_lots, r.realized_pnl, r.margin_released) == (D(1), D("5.00"), D("50.00"))
    assert (after.lots, after.margin, after.realized_pnl, after.is_open) == (
        D(3),
        D("150.00"),
        D("5.00"),
        True,
    )
    # available +50.00 released +5.00 profit -0.51 fee
    assert legs(r) == {MARGIN: D("-50.00"), AVAIL: D("54.49"), HOUSE_AV: D("-5.00"), FEES_AV: D("0.51")}
    assert p.lots == D(4)  # the input is not changed


def test_netting_close():
    r = fill([position()], Side.SELL, "3", "49000", fee="0.90")
    (after,) = r.changed
    # pnl (49000 - 50000) * 0.03 = -30.00; all 150.00 released
    assert (after.lots, after.margin, after.closed_at, after.is_open) == (D(0), D(0), NOW, False)
    assert (r.realized_pnl, r.margin_released, r.deficit, r.opened) == (D("-30.00"), D("150.00"), D(0), None)
    # available +150 released -30 loss -0.90 fee = +119.10
    assert legs(r) == {MARGIN: D("-150.00"), AVAIL: D("119.10"), HOUSE_AV: D("30.00"), FEES_AV: D("0.90")}


def test_netting_flip_closes_then_opens_the_rest():
    r = fill([position()], Side.SELL, "5", "49000", fee="0.90", available="849.10", new_position_id="p2")
    (closed,) = r.changed
    assert not closed.is_open and r.closed_lots == D(3)
    assert r.opened is not None
    # the rest: short 2 lots at 49000, margin 49000 * 0.02 / 10 = 98.00
    assert (r.opened.position_id, r.opened.side, r.opened.lots, r.opened.margin) == (
        "p2",
        PositionSide.SHORT,
        D(2),
        D("98.00"),
    )
    # margin -150 + 98 = -52; available +150 - 30 (loss) - 98 - 0.90 = +21.10
    assert legs(r) == {MARGIN: D("-52.00"), AVAIL: D("21.10"), HOUSE_AV: D("30.00"), FEES_AV: D("0.90")}


def test_partial_closes_release_margin_proportionally_and_the_last_all_that_is_left():
    # margin UP(50000.5 * 0.03 / 15 = 100.001) = 100.01
    p = position(entry="50000.5", margin="100.01", leverage=15)
    released = []
    for _ in range(3):
        r = fill([p], Side.SELL, "1", "50000.5")
        (p,) = r.changed
        released.append(r.margin_released)
    # kept UP(100.01 * 2/3 = 66.6733..) = 66.68 -> released 33.33; kept UP(66.68 / 2) = 33.34 -> 33.34; last 33.34
    assert released == [D("33.33"), D("33.34"), D("33.34")]
    assert sum(released) == D("100.01") and not p.is_open and p.margin == 0


def test_close_with_nothing_to_move_has_no_transaction():
    # margin 0.01 over 3 lots: closing one keeps UP(0.01 * 2/3) = 0.01, releases 0; no PnL, no fee
    r = fill([position(margin="0.01", leverage=100)], Side.SELL, "1", "50000")
    assert r.postings is None and r.margin_released == 0


# --- hedging ------------------------------------------------------------------------------------


def test_hedging_opens_a_position_per_fill_and_closes_by_id():
    long_ = fill([], Side.BUY, "2", "50000", kind=AccountKind.HEDGING, new_position_id="p1").opened
    assert long_ is not None
    short = fill([long_], Side.SELL, "1", "50100", kind=AccountKind.HEDGING, new_position_id="p2").opened
    assert short is not None and short.side is PositionSide.SHORT and long_.is_open
    r = fill([long_, short], Side.SELL, "2", "50200", kind=AccountKind.HEDGING, close_position_id="p1")
    (closed,) = r.changed
    # (50200 - 50000) * 0.02 = 4.00; margin 50000 * 0.02 / 10 = 100.00 released
    assert (closed.position_id, closed.is_open, r.realized_pnl, r.margin_released) == (
        "p1",
        False,
        D("4.00"),
        D("100.00"),
    )
    assert r.opened is None


def test_a_close_by_id_never_flips_or_opens():
    short = position(PositionSide.SHORT, lots="1", position_id="p2")
    with pytest.raises(InvalidInput) as e:
        fill([short], Side.BUY, "2", "50000", kind=AccountKind.HEDGING, close_position_id="p2")
    assert e.value.details["field"] == "closePositionLotAmount"
    with pytest.raises(InvalidInput) as e:
        fill([short], Side.SELL, "1", "50000", kind=AccountKind.HEDGING, close_position_id="p2")
    assert e.value.details["field"] == "side"
    with pytest.raises(InvalidInput):
        fill([short], Side.BUY, "1", "50000", kind=AccountKind.HEDGING, close_position_id="nope")
    # netting accounts close by id the same way (trigger closes): reduce-only
    r = fill([short], Side.BUY, "1", "49000", close_position_id="p2")
    assert r.opened is None and r.realized_pnl == D("10.00")  # (50000 - 49000) * 0.01


# --- funds and deficits -------------------------------------------------------------------------


def test_an_open_that_cannot_be_paid_is_refused():
    # needs 150.00 margin + 0.90 fee = 150.90
    with pytest.raises(InsufficientFunds):
        fill([], Side.BUY, "3", "50000", fee="0.90", available="150.89")
    assert fill([], Side.BUY, "3", "50000", fee="0.90", available="150.90").margin_held == D("150.00")


def test_cross_loss_beyond_the_account_is_a_deficit():
    # loss (44000 - 50000) * 0.03 = -180.00; the account has 20.00 available + 150.00 released = 170.00
    r = fill([position()], Side.SELL, "3", "44000", fee="0.90", available="20.00")
    assert (r.realized_pnl, r.deficit, r.fee) == (D("-180.00"), D("10.00"), D(0))  # nothing left for the fee
    # available +150 - 170 = -20 (to 0); the house gets 170, absorbs 10
    assert legs(r) == {MARGIN: D("-150.00"), AVAIL: D("-20.00"), HOUSE_AV: D("170.00")}


def test_isolated_loss_is_paid_only_from_its_margin():
    p = position(margin_type=MarginType.ISOLATED)
    r = fill([p], Side.SELL, "3", "44000", fee="0.90", available="500.00", margin_type=MarginType.ISOLATED)
    # loss 180.00 against the released 150.00 only: deficit 30.00; the fee comes from available
    assert (r.deficit, r.fee) == (D("30.00"), D("0.90"))
    assert legs(r) == {MARGIN: D("-150.00"), AVAIL: D("-0.90"), HOUSE_AV: D("150.00"), FEES_AV: D("0.90")}


def test_realized_pnl_rounds_half_even():
    # (50003.5 - 50000) * 0.03 = 0.105 -> 0.10 ; short: -0.105 -> -0.10
    assert fill([position()], Side.SELL, "3", "50003.5").realized_pnl == D("0.10")
    assert fill([position(PositionSide.SHORT)], Side.BUY, "3", "50003.5").realized_pnl == D("-0.10")
    # (50004.5 - 50000) * 0.03 = 0.135 -> 0.14
    assert fill([position()], Side.SELL, "3", "50004.5").realized_pnl == D("0.14")


# --- isolated liquidation price -----------------------------------------------------------------


def test_liquidation_price_isolated():
    stop = D("0.5")
    # long: 50000 - 150 * (1 - 0.5) / 0.03 = 50000 - 2500 = 47500.0
    assert liquidation_price_isolated(position(margin_type=MarginType.ISOLATED), SPEC, stop) == D("47500.0")
    # short: 50000 + 2500 = 52500.0
    assert liquidation_price_isolated(position(PositionSide.SHORT), SPEC, stop) == D("52500.0")
    # 50000.5 - 100.01 * 0.5 / 0.03 = 50000.5 - 1666.8333.. = 48333.6666.. -> 48333.7
    p = position(entry="50000.5", margin="100.01")
    assert liquidation_price_isolated(p, SPEC, stop) == D("48333.7")
    # leverage 1 long with stop-out 0: 50000 - 1500 / 0.03 = 0 -> never
    assert liquidation_price_isolated(position(margin="1500.00", leverage=1), SPEC, D(0)) is None
